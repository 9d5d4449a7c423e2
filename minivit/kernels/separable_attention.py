"""Separable self-attention (MobileViTv2), on the (B, d, P, N) patch layout.

x (B, d, P, N): B images, d channels, P = ph*pw pixels per patch, N patches.
Reproduces cvnets v0.2 LinearSelfAttention (its self-attention path):
    qkv = W_qkv x + b_qkv     1x1 conv, d -> 1 + 2d channels: q (1), k (d), v (d)
    s   = softmax_N(q)        one context score per patch, for each pixel position p
    c   = sum_N s * k         the context vector, (B, d, P): one per pixel position
    o   = relu(v) * c         c broadcast over the N patches
    y   = W_out o + b_out     1x1 conv, d -> d
The cost is linear in N: no N x N matrix is ever formed.

The two 1x1 projections are matmuls on BLAS tiles (matmul.py); the middle
(softmax, context sum, ReLU gate) is one Numba kernel that reads qkv once.
Weights are passed as matrices: w_qkv (1 + 2d, d), w_out (d, d) (a 1x1 conv weight without its two
trailing unit axes).
"""
import numpy as np

from ..jit import pjit, prange
from .elementwise import softmax_row
from .matmul import gemm


def separable_attention_ref(x, w_qkv, b_qkv, w_out, b_out, return_scores=False):
    """Readable reference, in float64. x (B, d, P, N) -> (B, d, P, N) [and scores (B, P, N)]."""
    B, d, P, N = x.shape
    x64 = x.astype(np.float64)
    qkv = np.einsum("oc,bcpn->bopn", w_qkv.astype(np.float64), x64) + b_qkv[None, :, None, None]
    q, k, v = qkv[:, :1], qkv[:, 1:1 + d], qkv[:, 1 + d:]           # (B, 1 | d | d, P, N)
    e = np.exp(q - q.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)                             # (B, 1, P, N): sums to 1 over N
    context = (k * s).sum(axis=-1, keepdims=True)                     # (B, d, P, 1)
    o = np.maximum(v, 0.0) * context                                  # (B, d, P, N)
    y = np.einsum("oc,bcpn->bopn", w_out.astype(np.float64), o) + b_out[None, :, None, None]
    y = y.astype(x.dtype)
    return (y, s[:, 0].astype(x.dtype)) if return_scores else y


@pjit
def _score_context_gate(qkv, scores, out):
    # qkv (B, 1+2d, P, N) float32: channel 0 = q, 1..d = k, d+1..2d = v
    # scores (B, P, N) <- softmax over N of q;  out (B, d, P, N) <- relu(v) * sum_N(scores * k)
    B, D1, P, N = qkv.shape
    d = (D1 - 1) // 2
    n8 = N - N % 8
    for bp in prange(B * P):
        b, p = bp // P, bp % P
        s, q = scores[b, p], qkv[b, 0, p]
        for n in range(N):
            s[n] = q[n]
        softmax_row(s, np.float32(1.0))
    for bc in prange(B * d):
        b, c = bc // d, bc % d
        for p in range(P):
            k, v, s, o = qkv[b, 1 + c, p], qkv[b, 1 + d + c, p], scores[b, p], out[b, c, p]
            # the context, in float64 over eight partial sums (fastmath is off: see jit.py)
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
            for n in range(0, n8, 8):
                a0 += k[n] * s[n]
                a1 += k[n + 1] * s[n + 1]
                a2 += k[n + 2] * s[n + 2]
                a3 += k[n + 3] * s[n + 3]
                a4 += k[n + 4] * s[n + 4]
                a5 += k[n + 5] * s[n + 5]
                a6 += k[n + 6] * s[n + 6]
                a7 += k[n + 7] * s[n + 7]
            for n in range(n8, N):
                a0 += k[n] * s[n]
            ctx = np.float32(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)))
            for n in range(N):
                vn = v[n]
                o[n] = vn * ctx if vn > 0 else np.float32(0.0)


def separable_attention(x, w_qkv, b_qkv, w_out, b_out, return_scores=False, residual=None):
    """Fast version. x (B, d, P, N) float32 C-contiguous -> (B, d, P, N) [and scores (B, P, N)].

    residual (B, d, P, N) or None: added to the output in the output projection's epilogue.
    """
    B, d, P, N = x.shape
    # (1+2d, d) @ (B, d, P*N) -> (B, 1+2d, P*N), bias per output channel
    qkv = gemm(w_qkv, x.reshape(B, d, P * N), b_qkv, "rows")
    scores = np.empty((B, P, N), np.float32)
    gated = np.empty((B, d, P, N), np.float32)
    _score_context_gate(qkv.reshape(B, 2 * d + 1, P, N), scores, gated)
    # (d, d) @ (B, d, P*N) -> (B, d, P*N)
    res = None if residual is None else residual.reshape(B, d, P * N)
    y = gemm(w_out, gated.reshape(B, d, P * N), b_out, "rows", residual=res).reshape(B, d, P, N)
    return (y, scores) if return_scores else y
