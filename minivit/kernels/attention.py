"""Multi-head self-attention over patches (MobileViT v1 and v1-based v3).

x (T, N, D): T independent sequences (T = B*P: one per pixel position inside a
patch), each of N tokens (patches) with D channels; h heads of d = D/h.
Reproduces cvnets' MultiHeadAttention: one qkv projection, per-head split,
q scaled by d**-0.5, softmax(q k^T) v, output projection. The matmuls go to
BLAS; the softmax is a Numba loop.
"""
import numpy as np

from ..jit import pjit, prange


def softmax_ref(s):
    """Softmax over the last axis, in float64."""
    s64 = s.astype(np.float64)
    e = np.exp(s64 - s64.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(s.dtype)


@pjit
def _softmax_rows(s):
    # s (R, N) float32, in place: each row becomes softmax(row)
    R, N = s.shape
    for r in prange(R):
        m = s[r, 0]
        for i in range(1, N):
            if s[r, i] > m:
                m = s[r, i]
        tot = 0.0
        for i in range(N):
            e = np.exp(s[r, i] - m)
            s[r, i] = e
            tot += e
        inv = np.float32(1.0 / tot)
        for i in range(N):
            s[r, i] *= inv


def softmax_(s):
    """In place softmax over the last axis of a float32 C-contiguous array."""
    _softmax_rows(s.reshape(-1, s.shape[-1]))
    return s


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


def mha(x, w_qkv_t, b_qkv, w_out_t, b_out, heads, return_attn=False):
    """Fast version. x (T, N, D); w_qkv_t (D, 3D) and w_out_t (D, D) are transposed weights."""
    T, N, D = x.shape
    d = D // heads
    qkv = x @ w_qkv_t                                                  # (T, N, 3D)
    qkv += b_qkv
    q, k, v = _split_heads(qkv, heads)                                 # each (T, h, N, d), views
    q = q * np.float32(d ** -0.5)
    scores = np.matmul(q, k.transpose(0, 1, 3, 2))                     # (T, h, N, N)
    softmax_(scores)
    o = np.matmul(scores, v)                                           # (T, h, N, d)
    o = np.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(T, N, D)  # (T, N, h, d) -> (T, N, D)
    y = o @ w_out_t
    y += b_out
    return (y, scores) if return_attn else y
