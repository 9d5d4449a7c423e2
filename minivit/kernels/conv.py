"""2-D convolution, as torch.nn.functional.conv2d computes it (zero padding).

x (B, Ci, H, W), w (Co, Ci/groups, kh, kw), bias (Co,) -> (B, Co, Ho, Wo) with
Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo).

`conv2d_ref` is the readable definition. `conv2d` dispatches to three fast paths:
- pointwise (1x1, stride 1, no padding, groups 1): a matmul on BLAS tiles
  (matmul.py), W (Co, Ci) @ x (Ci, H*W) per image;
- depthwise (groups == Ci == Co): depthwise.py, Numba loops over the planes;
- everything else: im2col (Numba) then the same tiled matmul (per group); at
  stride 1 the im2col rows are laid on the padded-width grid (at stride 2, 3x3,
  on the grid of the four phase planes), each one contiguous copy, and the few
  extra output columns are dropped afterwards.
Each path ends in a fused epilogue: act(conv + bias) + residual. Batch norm is
not here: layers fold it into w and bias when weights load.
"""
import weakref

import numpy as np

from ..jit import jit, pjit, prange, sgemm
from ..threads import blas, blas_single_thread
from .act import ACTS, bias_act_
from .depthwise import _depthwise, depthwise  # noqa: F401  (_depthwise: shown as conv._depthwise in tutorial 8)
from .elementwise import act_row
from .matmul import gemm, tile_origin, tiles
from .planes import pad_plane, phases


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n, k, s, p, d):
    """Output length of a convolution along one axis."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d_ref(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Readable reference: a sum over kernel taps of strided windows, in float64."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, Ci, H, W = x.shape
    Co, cig, kh, kw = w.shape
    cog = Co // groups
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((B, Co, Ho, Wo))
    for g in range(groups):
        xg = xp[:, g * cig:(g + 1) * cig]                    # (B, cig, H+2ph, W+2pw)
        wg = w[g * cog:(g + 1) * cog].astype(np.float64)     # (cog, cig, kh, kw)
        for i in range(kh):
            for j in range(kw):
                # the input pixels that tap (i, j) sees, for every output pixel
                win = xg[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh,
                         j * dw:j * dw + sw * (Wo - 1) + 1:sw]   # (B, cig, Ho, Wo)
                out[:, g * cog:(g + 1) * cog] += np.einsum("bchw,oc->bohw", win, wg[:, :, i, j])
    if bias is not None:
        out += bias[None, :, None, None]
    return out.astype(x.dtype)


@jit
def _valid_range(n_out, n_in, s, off):
    """The outputs o in [0, n_out) whose input o*s + off lies in [0, n_in): (lo, hi)."""
    lo = 0 if off >= 0 else (s - 1 - off) // s
    hi = 0 if n_in - 1 - off < 0 else (n_in - 1 - off) // s + 1
    return lo, max(lo, min(hi, n_out))


@pjit
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    # x (B, Ci, H, W); cols (B, Ci*kh*kw, Ho*Wo): row r = (c, i, j), column = (oy, ox)
    B, Ci, H, W = x.shape
    K = Ci * kh * kw
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    L = cols.shape[2]
    Ho = L // Wo
    for br in prange(B * K):
        n, r = br // K, br % K
        c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
        dst = cols[n, r]
        off = j * dw - pw
        lo, hi = _valid_range(Wo, W, sw, off)
        for oy in range(Ho):
            iy = oy * sh - ph + i * dh
            base = oy * Wo
            if iy < 0 or iy >= H:
                for ox in range(Wo):
                    dst[base + ox] = 0.0
                continue
            irow = x[n, c, iy]
            for ox in range(lo):
                dst[base + ox] = 0.0
            o = dst[base + lo:base + hi]                    # a view, indexed from 0 (see _depthwise)
            if sw == 1:
                o[:] = irow[lo + off:hi + off]
            else:
                o[:] = irow[lo * sw + off:(hi - 1) * sw + off + 1:sw]
            for ox in range(hi, Wo):
                dst[base + ox] = 0.0


@pjit
def _im2col_wide(x, kh, kw, ph, pw, dh, dw, Wp, cols):
    # Stride 1 only. x (B, Ci, H, W); cols (B, Ci*kh*kw, Lw) with Lw = (Ho-1)*Wp + Wo: the
    # columns are the output pixels on a grid Wp wide (the padded width), so that each row
    # (c, i, j) is one contiguous run of the zero-bordered plane, offset by i*dh*Wp + j*dw.
    # The Wp - Wo columns past each output row's end are garbage, dropped by _compact.
    B, Ci, H, W = x.shape
    Hp = H + 2 * ph
    Lw = cols.shape[2]
    for bc in prange(B * Ci):
        n, c = bc // Ci, bc % Ci
        buf = np.empty((Hp, Wp), np.float32)
        pad_plane(x[n, c], ph, pw, buf)
        flat = buf.reshape(Hp * Wp)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * Wp + j * dw
                dst, src = cols[n, (c * kh + i) * kw + j], flat[off:off + Lw]
                for t in range(Lw):
                    dst[t] = src[t]


@pjit
def _im2col_phased(x, cols):
    # 3x3, stride 2, padding 1, even W (the stem): x (B, Ci, H, W); cols (B, Ci*9, Lw) on the
    # grid Wq = Wo + 1 wide, Lw = (Ho-1)*Wq + Wo. Row (c, i, j) is phase (i % 2, j % 2) of the
    # padded plane (see _phases), shifted by (i // 2, j // 2): one contiguous copy each.
    B, Ci, H, W = x.shape
    Ho, Wo = (H + 1) // 2, W // 2
    Hq, Wq = Ho + 1, Wo + 1
    Lw = cols.shape[2]
    for bc in prange(B * Ci):
        n, c = bc // Ci, bc % Ci
        P = np.empty((2, 2, Hq, Wq), np.float32)
        phases(x[n, c], P)
        for i in range(3):
            for j in range(3):
                src = P[i % 2, j % 2].reshape(Hq * Wq)[(i // 2) * Wq + j // 2:]
                dst = cols[n, c * 9 + i * 3 + j]
                for t in range(Lw):
                    dst[t] = src[t]


@pjit
def _compact(wide, Wp, res, has_res, out):
    # wide (B, Co, Lw) on the Wp-wide grid -> out (B, Co, Ho, Wo) (+ res, same shape as out)
    B, Co, Ho, Wo = out.shape
    for bc in prange(B * Co):
        n, c = bc // Co, bc % Co
        src, dst = wide[n, c], out[n, c]
        for y in range(Ho):
            row, o = src[y * Wp:y * Wp + Wo], dst[y]
            if has_res:
                r = res[n, c, y]
                for t in range(Wo):
                    o[t] = row[t] + r[t]
            else:
                for t in range(Wo):
                    o[t] = row[t]


@pjit
def _pad_planes(x, ph, pw, xp):
    # x (B, C, H, W) -> xp (B, C, Hp, Wp): every plane inside its zero border
    B, C = x.shape[0], x.shape[1]
    for bc in prange(B * C):
        pad_plane(x[bc // C, bc % C], ph, pw, xp[bc // C, bc % C])


@pjit
def _conv_taps(fn, ilp64, xp, wt, bias, has_bias, act, kw, dh, dw, tm, tn, wide):
    # Stride-1 dense conv as one matmul per kernel tap, accumulated: for tap (i, j),
    # wide (Co, Lw) += wt[tap] (Co, Ci) @ the padded planes shifted by i*dh*Wp + j*dw, read in
    # place (Ci rows, row stride Hp*Wp): no im2col. Columns are output pixels on the Wp-wide
    # grid (see _im2col_wide); the output is cut into tiles of tm x tn (matmul.tiles: OpenBLAS's
    # small-matrix path), one loop step per (image, tile), then the bias/activation epilogue on it.
    B, Ci, Hp, Wp = xp.shape
    T, Co = wt.shape[0], wt.shape[1]
    Lw = wide.shape[2]
    nm, nt = (Co + tm - 1) // tm, (Lw + tn - 1) // tn
    for u in prange(B * nm * nt):
        b, r = u // (nm * nt), u % (nm * nt)
        m0, t0 = tile_origin(r, nm, nt, tm, tn)
        m = min(Co, m0 + tm) - m0
        n = min(Lw, t0 + tn) - t0
        src = xp[b].reshape(Ci, Hp * Wp)
        dst = wide[b]
        for tap in range(T):
            off = (tap // kw) * dh * Wp + (tap % kw) * dw + t0
            sgemm(fn, ilp64, 111, 111, m, n, Ci, 1.0, wt[tap, m0:].ctypes.data, Ci, src[:, off:].ctypes.data,
                  Hp * Wp, 0.0 if tap == 0 else 1.0, dst[m0:, t0:].ctypes.data, Lw)
        for co in range(m0, m0 + m):
            act_row(dst[co, t0:t0 + n], bias[co] if has_bias else np.float32(0.0), act)


_TAPS = {}      # id(w) -> (weakref to w, w as (kh*kw, Co, Ci)): weights repacked once per weight array


def _tap_major(w):
    """w (Co, Ci, kh, kw) -> (kh*kw, Co, Ci), cached while w lives (layers keep their folded weights)."""
    hit = _TAPS.get(id(w))
    if hit is not None and hit[0]() is w:
        return hit[1]
    Co, Ci, kh, kw = w.shape
    # (Co, Ci, kh, kw) -> (kh, kw, Co, Ci) -> (kh*kw, Co, Ci)
    wt = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(kh * kw, Co, Ci)
    if len(_TAPS) > 512:
        _TAPS.clear()
    _TAPS[id(w)] = (weakref.ref(w), wt)
    return wt


_ZERO_BIAS = {}
_NO_RES = np.zeros((1, 1, 1, 1), np.float32)


def _zeros(n):
    z = _ZERO_BIAS.get(n)
    if z is None:
        z = _ZERO_BIAS[n] = np.zeros(n, np.float32)
    return z


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, act=None, residual=None):
    """Fast convolution with a fused epilogue: act(conv(x) + bias) + residual.

    x (B, Ci, H, W) float32 C-contiguous; w (Co, Ci/groups, kh, kw) float32;
    act "silu", "relu" or None; residual None or (B, Co, Ho, Wo).
    Returns a new (B, Co, Ho, Wo) float32 array.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, Ci, H, W = x.shape
    Co, cig, kh, kw = w.shape
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    res = None if residual is None else residual.reshape(B, Co, Ho * Wo)
    if groups == Ci == Co and cig == 1:
        out = np.empty((B, Co, Ho, Wo), np.float32)
        depthwise(x, w.reshape(Co, kh, kw), _zeros(Co) if bias is None else bias,
                  (sh, sw), (ph, pw), (dh, dw), ACTS[act], out)
        if res is not None:
            out += residual
        return out
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        # (Co, Ci) @ (B, Ci, H*W) -> (B, Co, H*W), bias per output channel (row)
        y = gemm(w.reshape(Co, Ci), x.reshape(B, Ci, H * W), bias, "rows", act, res)
        return y.reshape(B, Co, Ho, Wo)
    if groups == 1 and sh == sw == 1 and (kh > 1 or kw > 1):
        # stride 1: output pixels on the padded-width grid Wp wide; the extra columns are dropped
        Hp, Wp = H + 2 * ph, W + 2 * pw
        Lw = (Ho - 1) * Wp + Wo
        lib = blas()
        if lib.sgemm:
            # one matmul per tap on the padded planes, accumulated: no im2col
            xp = np.empty((B, Ci, Hp, Wp), np.float32)
            _pad_planes(x, ph, pw, xp)
            wide = np.empty((B, Co, Lw), np.float32)
            tm, tn = tiles(Co, Lw, Ci)                               # the tiles of one tap's product
            with blas_single_thread():
                _conv_taps(lib.sgemm, lib.ilp64, xp, _tap_major(w), _zeros(Co) if bias is None else bias,
                           bias is not None, ACTS[act], kw, dh, dw, tm, tn, wide)
        else:
            cols = np.empty((B, Ci * kh * kw, Lw), np.float32)
            _im2col_wide(x, kh, kw, ph, pw, dh, dw, Wp, cols)
            # (Co, Ci*kh*kw) @ (B, Ci*kh*kw, Lw) -> (B, Co, Lw)
            wide = gemm(w.reshape(Co, cig * kh * kw), cols, bias, "rows", act)
        out = np.empty((B, Co, Ho, Wo), np.float32)
        _compact(wide, Wp, _NO_RES if residual is None else residual, residual is not None, out)
        return out
    if (groups == 1 and kh == kw == 3 and sh == sw == 2 and ph == pw == 1 and dh == dw == 1 and W % 2 == 0
            and Ho == (H + 1) // 2 and Wo == W // 2):
        # the stem: the same on the grid of the four phase planes (Wo + 1 wide)
        Lw = (Ho - 1) * (Wo + 1) + Wo
        cols = np.empty((B, Ci * 9, Lw), np.float32)
        _im2col_phased(x, cols)
        wide = gemm(w.reshape(Co, Ci * 9), cols, bias, "rows", act)      # (Co, Ci*9) @ (B, Ci*9, Lw)
        out = np.empty((B, Co, Ho, Wo), np.float32)
        _compact(wide, Wo + 1, _NO_RES if residual is None else residual, residual is not None, out)
        return out
    cols = np.empty((B, Ci * kh * kw, Ho * Wo), np.float32)
    _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    if groups == 1:
        # (Co, Ci*kh*kw) @ (B, Ci*kh*kw, Ho*Wo) -> (B, Co, Ho*Wo)
        y = gemm(w.reshape(Co, cig * kh * kw), cols, bias, "rows", act, res)
        return y.reshape(B, Co, Ho, Wo)
    cog, kg = Co // groups, cig * kh * kw
    y = np.empty((B, Co, Ho * Wo), np.float32)
    for g in range(groups):
        # (cog, kg) @ (B, kg, Ho*Wo) -> (B, cog, Ho*Wo), one group at a time
        y[:, g * cog:(g + 1) * cog] = np.matmul(
            w[g * cog:(g + 1) * cog].reshape(cog, kg), cols[:, g * kg:(g + 1) * kg])
    bias_act_(y, bias, act)
    if res is not None:
        y += res
    return y.reshape(B, Co, Ho, Wo)
