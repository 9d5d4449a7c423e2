"""Matrix products on BLAS tiles, spread over minivit's one thread pool, with a fused epilogue.

    out[b] = act(A[b] @ B[b] + bias) + residual[b]        for each b in the batch

A (Ba, M, K), B (Bb, K, N), out (Bo, M, N), float32, C-contiguous; Ba and Bb are
1 (shared, e.g. a weight matrix) or Bo. The bias is per row (M,): one per output
channel of a convolution, or per column (N,): one per output of a linear layer.

The output is cut into tiles (images x row blocks x column blocks). Each tile is
one single-threaded cblas_sgemm call from inside a Numba parallel loop, then its
epilogue, while the tile is still in cache (see minivit/threads.py for why BLAS
runs inside Numba's pool). Without a usable BLAS address, np.matmul does the
product and a Numba loop the epilogue.
"""
import functools

import numpy as np

from ..jit import jit, pjit, prange, sgemm
from ..threads import blas, blas_single_thread, blas_held
from .act import ACTS
from .elementwise import act_row, act_row_vec

NO_TRANS = 111
_DUMMY = np.zeros((1, 1, 1), np.float32)
_NO_BIAS = np.zeros(1, np.float32)


@jit
def _epilogue_tile(C, bias, bias_mode, act, res, has_res, bi, m0, m1, n0, n1):
    # C (M, N) of image bi, rows m0:m1, columns n0:n1: act(C + bias) (+ res[bi])
    for i in range(m0, m1):
        row = C[i, n0:n1]
        if bias_mode == 2:
            act_row_vec(row, bias[n0:n1], act)
        else:
            act_row(row, bias[i] if bias_mode == 1 else np.float32(0.0), act)
        if has_res:
            r = res[bi, i, n0:n1]
            for j in range(n1 - n0):
                row[j] += r[j]


@jit
def tile_origin(r, nm, nn, tm, tn):
    """(m0, n0), the first row and column of tile r of an output cut into nm x nn tiles of tm x tn.

    The order of the tiles decides what is read again from memory. Row blocks outer: each
    row panel of A (tm x K) serves a sweep over all of B (K x N), so B is read nm times.
    Column blocks outer: each column panel of B (K x tn) serves a sweep over all of A, so A
    is read nn times. The second moves less data when tn > tm (nn * M * K < nm * K * N), as
    with the 2-D small-path tiles (16-48 rows x 128-256 columns), and keeps the weights (A)
    in cache: (192, 384) @ (384, 4096) with a residual ran 1.3-1.6x faster that way on one
    core, (96, 96) @ (96, 16384) 1.1-1.3x; the products are bit-identical either way.
    """
    if tn > tm:
        return (r % nm) * tm, (r // nm) * tn
    return (r // nn) * tm, (r % nn) * tn


@pjit
def _gemm_tiles(fn, ilp64, a, b, out, bias, bias_mode, act, res, has_res, tm, tn):
    # a (Ba, M, K), b (Bb, K, N), out (Bo, M, N), res like out (if has_res); tiles of tm x tn
    Bo, M, N = out.shape
    K = a.shape[2]
    nm, nn = (M + tm - 1) // tm, (N + tn - 1) // tn
    for t in prange(Bo * nm * nn):
        bi, r = t // (nm * nn), t % (nm * nn)
        m0, n0 = tile_origin(r, nm, nn, tm, tn)
        m1, n1 = min(M, m0 + tm), min(N, n0 + tn)
        A = a[bi if a.shape[0] > 1 else 0]
        Bm = b[bi if b.shape[0] > 1 else 0]
        C = out[bi]
        # (m1-m0, K) @ (K, n1-n0) -> the tile of C; row strides K, N and N
        sgemm(fn, ilp64, NO_TRANS, NO_TRANS, m1 - m0, n1 - n0, K, 1.0, A[m0:].ctypes.data, K,
              Bm[:, n0:].ctypes.data, N, 0.0, C[m0:, n0:].ctypes.data, N)
        _epilogue_tile(C, bias, bias_mode, act, res, has_res, bi, m0, m1, n0, n1)


@pjit
def _epilogue(out, bias, bias_mode, act, res, has_res):
    # out (Bo, M, N) in place, one row per loop step (the fallback after np.matmul)
    Bo, M, N = out.shape
    for t in prange(Bo * M):
        bi, i = t // M, t % M
        _epilogue_tile(out[bi], bias, bias_mode, act, res, has_res, bi, i, i + 1, 0, N)


SMALL = 1_000_000   # OpenBLAS multiplies M*N*K <= 100**3 without packing: twice as fast on skinny shapes
SPLIT = 1 << 21     # a product of at least this many multiply-adds (~40 us on one core) is never one tile


def small_cols(M, K):
    """The widest column tile of an (M, K) @ (K, n) product that OpenBLAS's small-matrix path takes,
    as a multiple of 32 (0 when not even 64 columns fit). Its kernel runs odd multiples of 16 columns
    much slower: (128, 64) @ (64, n) at 87-89 GFLOP/s in tiles of 64 or 96 columns, 50-71 in tiles
    of 48, 80 or 112 (one thread)."""
    cols = SMALL // max(1, M * K) // 32 * 32
    return cols if cols >= 64 else 0


def even_tiles(n, t, align, split, cap=None):
    """A tile length near t for a side of n, giving an even number of tiles (when fewer than eight),
    and at least two when `split`: two threads then get equal shares. Multiples of align, or n;
    never above cap (when given) unless that is n."""
    k = -(-n // t)
    if (k % 2 and 1 < k < 8) or (k == 1 and split):
        k += 1
    t = -(-(-(-n // k)) // align) * align
    if cap is not None and t > cap:
        t = max(align, cap // align * align)
    return n if t >= n else t


def _small_2d(M, N, K, split):
    """Tiles (tm, tn) of OpenBLAS's small-matrix path that cut both sides, or None: the widest
    column tiles (256, 128 or 64 columns, or N if narrower) that leave at least 16 rows, rows in
    multiples of 8. (128, 128) @ (128, 1024) ran at 105-107 GFLOP/s in tiles of 16-32 x 128-256
    against 83 in the packed path; (384, 768) @ (768, 256) at 113 in 16-20 x 64-128 against 100;
    tiles of fewer than 16 rows (or an odd number of them) fell to 45-70."""
    for cols in (256, 128, 64):
        tn = min(N, cols)
        rows = SMALL // max(1, tn * K) // 8 * 8              # the most rows the path takes, in 8s
        if rows >= 16:
            return even_tiles(M, min(M, rows), 8, split and tn >= N, cap=rows), tn
    return None


@functools.lru_cache(maxsize=1024)
def tiles(M, N, K):
    """Tile shape (tm, tn) for an M x N output with inner dimension K.

    OpenBLAS multiplies a tile without packing it when tm * tn * K <= SMALL (its small-matrix
    path): measured 90-110 GFLOP/s on one core, against 80-100 for the packed path on the same
    products. So tiles are small-path tiles wherever that leaves reasonable shapes:
    - whole rows when they allow 256 columns or more (or all of N), as most 1x1 convs over few
      channels: (16, 32) @ (32, 16384) at 94 GFLOP/s in tiles of 1792 columns, 81 in 256;
    - otherwise 2-D tiles (`_small_2d`), rows x 64-256 columns;
    - for tall outputs (M > N: linear layers, 1x1 convs on small maps) whole columns and rows in
      multiples of 8, at least 16 of them ((1024, 512) @ (512, 64): 109 against 94 packed).
    Only where even that leaves thin tiles does the packed path take wide ones: at least 256
    columns (128 rows), at most four tiles per side. Tile counts are made even below eight,
    and a product of SPLIT multiply-adds or more gets two tiles at least, so that two threads
    share it evenly (a 192 x 256 x 96 product was one tile, on one core, whatever the thread
    count). The shape depends on the matrix sizes only, never on the thread count, so results
    do not change with threads.
    """
    split = M * N * K >= SPLIT
    if N >= M:
        wide = small_cols(M, K)
        if wide and wide >= min(N, 256):
            return M, even_tiles(N, min(N, wide), 32, split and N >= 64, cap=SMALL // max(1, M * K))
        two_d = _small_2d(M, N, K, split)
        if two_d is not None:
            return two_d
        quarter = -(-N // 4)
        tn = max(256, -(-quarter // 16) * 16)
        return M, even_tiles(N, min(N, tn), 16, split and N >= 32)
    cap = SMALL // max(1, N * K) // 8 * 8
    if cap >= 16:
        return even_tiles(M, min(M, cap), 8, split and M >= 2, cap=cap), N
    two_d = _small_2d(M, N, K, split)
    if two_d is not None:
        return two_d
    return even_tiles(M, min(M, max(128, -(-M // 4))), 1, split and M >= 2), N


def gemm(a, b, bias=None, bias_on="rows", act=None, residual=None, out=None, act_code=None):
    """act(a @ b + bias) + residual over a batch: a (Ba, M, K), b (Bb, K, N) -> (Bo, M, N).

    2-D a or b count as a batch of one. bias_on: "rows" (bias (M,)) or "cols" (bias (N,)).
    act: None, "silu" or "relu" (or act_code 0/1/2). residual: (Bo, M, N) or None.
    """
    a3 = a if a.ndim == 3 else a[None]
    b3 = b if b.ndim == 3 else b[None]
    Bo, M, K, N = max(a3.shape[0], b3.shape[0]), a3.shape[1], a3.shape[2], b3.shape[2]
    if out is None:
        out = np.empty((Bo, M, N), np.float32)
    code = ACTS[act] if act_code is None else act_code
    mode = 0 if bias is None else (1 if bias_on == "rows" else 2)
    bias = _NO_BIAS if bias is None else bias
    res = _DUMMY if residual is None else residual
    lib = blas()
    if lib.sgemm and M and N:
        tm, tn = tiles(M, N, K)
        if blas_held():                    # inside a model's pass: BLAS is on one thread already
            _gemm_tiles(lib.sgemm, lib.ilp64, a3, b3, out, bias, mode, code, res, residual is not None, tm, tn)
        else:
            with blas_single_thread():
                _gemm_tiles(lib.sgemm, lib.ilp64, a3, b3, out, bias, mode, code, res, residual is not None, tm, tn)
    else:
        np.matmul(a3, b3, out=out)
        if mode or code or residual is not None:
            _epilogue(out, bias, mode, code, res, residual is not None)
    return out
