"""Pixel tiles: the activation layout of the convolution stages on large maps, and its 1x1 conv.

A map (B, C, H, W) whose width is a multiple of 64 may be stored as (B, H, W/64, C, 64):
tile (y, j) holds the 64 pixels x = 64j ... 64j + 63 of row y, of every channel, as one
contiguous (C, 64) block. A 5-D array is always in this layout; a 4-D one is NCHW.

Why: a 1x1 conv multiplies (Co, Ci) @ (Ci, pixels). On NCHW planes each 64-pixel piece of
that product reads Ci rows and writes Co rows that lie a whole plane apart; in pixel tiles
it reads one block and writes one. The same OpenBLAS calls ran 1.5-2.5x faster on 16-32
input channels at 128x128 (benchmarks/product_layout.py, benchmarks/PROFILE.md). The
depthwise convs keep their NCHW planes: the inverted residual (depthwise.py) turns tiles
into planes inside its expansion and back inside its projection, which costs nothing extra.

The layout is an internal one: models convert back to NCHW before anything else reads a
map (`untiled`), and every result a user sees is NCHW.

Offsets: pixel p = y*W + x of channel c sits at c*P + p in NCHW (P = H*W pixels per image)
and at (p // 64)*C*64 + c*64 + p % 64 in tiles.
"""
import numpy as np

from ..jit import jit, pjit, prange, sgemm
from ..threads import blas, blas_held, blas_single_thread
from .act import ACTS
from .elementwise import act_row
from .matmul import SMALL, tiles

TILE = 64


def tileable(W):
    """Whether a map W pixels wide can be stored in pixel tiles (its products need BLAS by address)."""
    return W > 0 and W % TILE == 0 and bool(blas().sgemm)


def map_shape(a):
    """(B, C, H, W) of a map in either layout."""
    if a.ndim == 5:
        B, H, n, C, T = a.shape
        return B, C, H, n * T
    return a.shape


# ----------------------------------------------------------------------------- the references

def to_tiles_ref(x):
    """NCHW (B, C, H, W) -> pixel tiles (B, H, W/64, C, 64), by reshapes."""
    B, C, H, W = x.shape
    return np.ascontiguousarray(x.reshape(B, C, H, W // TILE, TILE).transpose(0, 2, 3, 1, 4))


def from_tiles_ref(t):
    """Pixel tiles (B, H, W/64, C, 64) -> NCHW (B, C, H, W), by reshapes."""
    B, H, n, C, T = t.shape
    return np.ascontiguousarray(t.transpose(0, 3, 1, 2, 4)).reshape(B, C, H, n * T)


# ----------------------------------------------------------------------------- conversions

@jit
def off(tiled, C, P, c, p):
    """Offset of channel c, pixel p in one image's flat map (C channels, P pixels), either layout."""
    if tiled:
        return (p // 64) * C * 64 + c * 64 + p % 64
    return c * P + p


@pjit
def _grid_to_tiles(src, Wg, H, out):
    # src (B, C, L): row y of each plane starts at y*Wg (Wg >= W, the extra columns dropped)
    # -> out (B, H, W/64, C, 64)
    B, C = src.shape[0], src.shape[1]
    n = out.shape[2]
    for u in prange(B * H):
        b, y = u // H, u % H
        for j in range(n):
            for c in range(C):
                s, d = src[b, c, y * Wg + j * 64:y * Wg + j * 64 + 64], out[b, y, j, c]
                for t in range(64):
                    d[t] = s[t]


@pjit
def _from_tiles(t, out):
    # t (B, H, n, C, 64) -> out (B, C, H, n*64)
    B, H, n, C = t.shape[0], t.shape[1], t.shape[2], t.shape[3]
    for u in prange(B * C):
        b, c = u // C, u % C
        for y in range(H):
            for j in range(n):
                s, d = t[b, y, j, c], out[b, c, y, j * 64:j * 64 + 64]
                for k in range(64):
                    d[k] = s[k]


def grid_to_tiles(src, Wg, H, W):
    """Planes on a grid Wg wide, src (B, C, L) with L >= (H-1)*Wg + W -> tiles (B, H, W/64, C, 64)."""
    B, C = src.shape[:2]
    out = np.empty((B, H, W // TILE, C, TILE), np.float32)
    _grid_to_tiles(src, Wg, H, out)
    return out


def to_tiles(x):
    """NCHW (B, C, H, W) -> pixel tiles (B, H, W/64, C, 64); W must be a multiple of 64."""
    B, C, H, W = x.shape
    return grid_to_tiles(x.reshape(B, C, H * W), W, H, W)      # (B, C, H*W): rows W apart


def untiled(a):
    """a itself when NCHW, else its NCHW copy."""
    if a.ndim != 5:
        return a
    B, C, H, W = map_shape(a)
    out = np.empty((B, C, H, W), np.float32)
    _from_tiles(a, out)
    return out


# ----------------------------------------------------------------------------- the 1x1 conv

@jit
def px_gemm(fn, ilp64, M, K, N, a, lda, b, b_tiled, b_P, b_p0, c, c_tiled, c_P, c_p0, tm, tn):
    """C[:, c_p0:c_p0+N] = A (M, K) @ B[:, b_p0:b_p0+N], A at address a (row stride lda); B (K rows)
    and C (M rows) at addresses b and c, each NCHW-like (row stride P) or in pixel tiles. Pieces of
    64 columns when either side is tiled (p0 then a multiple of 64), else of tn; rows in tm."""
    step = 64 if (b_tiled or c_tiled) else tn
    for n0 in range(0, N, step):
        n = min(step, N - n0)
        pb, pc = b_p0 + n0, c_p0 + n0
        if b_tiled:
            bb, ldb = b + 4 * ((pb // 64) * K * 64 + pb % 64), 64
        else:
            bb, ldb = b + 4 * pb, b_P
        if c_tiled:
            cc, ldc = c + 4 * ((pc // 64) * M * 64 + pc % 64), 64
        else:
            cc, ldc = c + 4 * pc, c_P
        for m0 in range(0, M, tm):
            sgemm(fn, ilp64, 111, 111, min(tm, M - m0), n, K, 1.0, a + 4 * m0 * lda, lda, bb, ldb, 0.0,
                  cc + 4 * m0 * ldc, ldc)


@pjit
def _pointwise(fn, ilp64, x, x_tiled, w, bias, act, res, has_res, out, o_tiled, P, per, tm, tn):
    # x (B, Ci*P), out and res (B, Co*P), flat, each NCHW or pixel tiles; w (Co, Ci); per loop step
    # `per` pixels of one image (a multiple of 64): product, then bias, act (+ res) while in cache
    B = x.shape[0]
    Co, Ci = w.shape
    ng = (P + per - 1) // per
    for u in prange(B * ng):
        b, g = u // ng, u % ng
        p0 = g * per
        n = min(per, P - p0)
        px_gemm(fn, ilp64, Co, Ci, n, w.ctypes.data, Ci, x[b].ctypes.data, x_tiled, P, p0,
                out[b].ctypes.data, o_tiled, P, p0, tm, tn)
        ob, rb = out[b], res[b if has_res else 0]
        for q in range(p0, p0 + n, 64):
            for co in range(Co):
                o = off(o_tiled, Co, P, co, q)
                row = ob[o:o + 64]
                act_row(row, bias[co], act)
                if has_res:
                    r = rb[o:o + 64]
                    for t in range(64):
                        row[t] += r[t]


def tile_rows(M, K):
    """Rows per OpenBLAS call for an (M, K) @ (K, 64) piece: its small-matrix path (at most SMALL
    multiply-adds), in multiples of 16 (fewer rows ran at half speed, see matmul.py)."""
    return min(M, max(16, SMALL // (64 * K) // 16 * 16))


def pointwise(x, w, bias, act, residual=None, tiled=False):
    """1x1 conv act(w @ x + bias) (+ residual) with x in either layout: x (B, Ci, H, W) or its pixel
    tiles; w (Co, Ci); bias (Co,). The result is in pixel tiles when `tiled` (W a multiple of 64),
    else NCHW; residual, if any, in the result's layout."""
    B, Ci, H, W = map_shape(x)
    Co = w.shape[0]
    P = H * W
    if x.ndim != 5 and not tiled:
        raise ValueError("pointwise: one side must be in pixel tiles (use matmul.gemm for NCHW)")
    shape = (B, H, W // TILE, Co, TILE) if tiled else (B, Co, H, W)
    out = np.empty(shape, np.float32)
    res = np.zeros((1, 1), np.float32) if residual is None else residual.reshape(B, Co * P)
    lib = blas()
    per = 256 if P % 256 == 0 else 64                       # 4 tiles per loop step
    args = (lib.sgemm, lib.ilp64, x.reshape(B, Ci * P), x.ndim == 5, w, bias, ACTS[act], res,
            residual is not None, out.reshape(B, Co * P), tiled, P, per, tile_rows(Co, Ci), tiles(Co, per, Ci)[1])
    if blas_held():
        _pointwise(*args)
    else:
        with blas_single_thread():
            _pointwise(*args)
    return out
