"""Multi-head self-attention over patches (MobileViT v1 and v1-based v3).

x (T, N, D): T independent sequences (T = B*P: one per pixel position inside a
patch), each of N tokens (patches) with D channels; h heads of d = D/h.
Reproduces cvnets' MultiHeadAttention: one qkv projection, per-head split,
q scaled by d**-0.5, softmax(q k^T) v, output projection. The projections
are matmuls on BLAS tiles (matmul.py); the attention itself is one Numba loop
over (sequence, head) pairs, each two single-threaded BLAS products with the
softmax between them (the q scale folded into the first product).
"""
import numpy as np

from ..jit import pjit, prange, sgemm
from ..threads import blas, blas_single_thread
from .act import softmax_rows_
from .elementwise import exp_row, softmax_row
from .matmul import gemm

NO_TRANS, TRANS = 111, 112
_NO_SCORES = np.zeros((1, 1, 1, 1), np.float32)


def softmax_ref(s):
    """Softmax over the last axis, in float64."""
    s64 = s.astype(np.float64)
    e = np.exp(s64 - s64.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(s.dtype)


def softmax_(s):
    """In place softmax over the last axis of a float32 C-contiguous array."""
    return softmax_rows_(s, 1.0)


def _split_heads(qkv, heads):
    T, N, D3 = qkv.shape
    # (T, N, 3*D) -> (T, N, 3, h, d) -> (3, T, h, N, d)
    return qkv.reshape(T, N, 3, heads, D3 // (3 * heads)).transpose(2, 0, 3, 1, 4)


def mha_ref(x, w_qkv, b_qkv, w_out, b_out, heads, return_attn=False):
    """x (T, N, D); w_qkv (3D, D); b_qkv (3D,); w_out (D, D); b_out (D,). float64 math."""
    T, N, D = x.shape
    x64 = x.astype(np.float64)
    qkv = x64 @ w_qkv.T.astype(np.float64) + b_qkv                   # (T, N, 3D)
    q, k, v = _split_heads(qkv, heads)                                 # each (T, h, N, d)
    q = q * (D // heads) ** -0.5
    attn = softmax_ref(q @ k.transpose(0, 1, 3, 2))                    # (T, h, N, N)
    o = (attn @ v).transpose(0, 2, 1, 3).reshape(T, N, D)              # (T, h, N, d) -> (T, N, D)
    y = (o @ w_out.T.astype(np.float64) + b_out).astype(x.dtype)
    return (y, attn.astype(x.dtype)) if return_attn else y


@pjit
def _attend(fn, ilp64, qkv, heads, scale, scores, keep_scores, out):
    # qkv (T, N, 3D): q | k | v, each D = heads * d wide; scores (T, h, N, N) if keep_scores;
    # out (T, N, D). One (sequence, head) per loop step: two single-threaded BLAS products
    # with the softmax between them, while the N x N scores are still in cache. Unless the
    # scores are wanted, the softmax is left unnormalised and each output row is divided by
    # its sum instead (N x d divisions, not N x N).
    T, N, D3 = qkv.shape
    D = D3 // 3
    d = D // heads
    for th in prange(T * heads):
        t, h = th // heads, th % heads
        S = scores[t, h] if keep_scores else np.empty((N, N), np.float32)
        inv = np.empty(N, np.float32)
        seq = qkv[t]                                                     # (N, 3D)
        # S = scale * q k^T: (N, d) @ (d, N), q and k are column blocks of seq (row stride 3D)
        sgemm(fn, ilp64, NO_TRANS, TRANS, N, N, d, scale, seq[:, h * d:].ctypes.data, D3,
              seq[:, D + h * d:].ctypes.data, D3, 0.0, S.ctypes.data, N)
        for i in range(N):
            if keep_scores:
                softmax_row(S[i], np.float32(1.0))
            else:
                inv[i] = np.float32(1.0) / exp_row(S[i], np.float32(1.0))
        # out[t, :, h*d:(h+1)*d] = S @ v: (N, N) @ (N, d), written into its column block of (N, D)
        o = out[t][:, h * d:(h + 1) * d]
        sgemm(fn, ilp64, NO_TRANS, NO_TRANS, N, d, N, 1.0, S.ctypes.data, N,
              seq[:, 2 * D + h * d:].ctypes.data, D3, 0.0, o.ctypes.data, D)
        if not keep_scores:
            for i in range(N):
                r, a = o[i], inv[i]
                for j in range(d):
                    r[j] *= a


def mha(x, w_qkv_t, b_qkv, w_out_t, b_out, heads, return_attn=False, residual=None):
    """Fast version. x (T, N, D); w_qkv_t (D, 3D) and w_out_t (D, D) are transposed weights.

    residual (T, N, D) or None: added to the output in the output projection's epilogue.
    """
    T, N, D = x.shape
    d = D // heads
    qkv = gemm(x.reshape(T * N, D), w_qkv_t, b_qkv, "cols")            # (T*N, D) @ (D, 3D) -> (1, T*N, 3D)
    scores = np.empty((T, heads, N, N), np.float32) if return_attn else _NO_SCORES
    o = np.empty((T, N, D), np.float32)
    lib = blas()
    if lib.sgemm:
        with blas_single_thread():
            _attend(lib.sgemm, lib.ilp64, qkv.reshape(T, N, 3 * D), heads, np.float32(d ** -0.5),
                    scores, return_attn, o)
    else:
        q, k, v = _split_heads(qkv.reshape(T, N, 3 * D), heads)       # each (T, h, N, d), views
        scores = np.matmul(q, k.transpose(0, 1, 3, 2))                 # (T, h, N, N)
        softmax_rows_(scores, d ** -0.5)                               # softmax(q k^T / sqrt(d))
        # (T, h, N, N) @ (T, h, N, d) -> (T, h, N, d), written straight into the (T, N, h, d) layout
        np.matmul(scores, v, out=o.reshape(T, N, heads, d).transpose(0, 2, 1, 3))
    res = None if residual is None else residual.reshape(1, T * N, D)
    y = gemm(o.reshape(T * N, D), w_out_t, b_out, "cols", residual=res).reshape(T, N, D)   # (T*N, D) @ (D, D)
    return (y, scores) if return_attn else y
