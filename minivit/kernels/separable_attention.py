"""Separable self-attention (MobileViTv2), on the (B, d, P, N) patch layout.

x (B, d, P, N): B images, d channels, P = ph*pw pixels per patch, N patches.
Reproduces cvnets v0.2 LinearSelfAttention (its self-attention path):
    qkv = W_qkv x + b_qkv     1x1 conv, d -> 1 + 2d channels: q (1), k (d), v (d)
    s   = softmax_N(q)        one context score per patch, for each pixel position p
    c   = sum_N s * k         the context vector, (B, d, P): one per pixel position
    o   = relu(v) * c         c broadcast over the N patches
    y   = W_out o + b_out     1x1 conv, d -> d
The cost is linear in N: no N x N matrix is ever formed.

The two 1x1 projections are BLAS matmuls; the middle (softmax, context sum,
ReLU gate) is one Numba kernel that reads qkv once. Weights are passed as
matrices: w_qkv (1 + 2d, d), w_out (d, d) (a 1x1 conv weight without its two
trailing unit axes).
"""
import numpy as np

from ..jit import pjit, prange


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
    for bp in prange(B * P):
        b, p = bp // P, bp % P
        m = qkv[b, 0, p, 0]
        for n in range(1, N):
            if qkv[b, 0, p, n] > m:
                m = qkv[b, 0, p, n]
        tot = 0.0
        for n in range(N):
            e = np.exp(qkv[b, 0, p, n] - m)
            scores[b, p, n] = e
            tot += e
        inv = np.float32(1.0 / tot)
        for n in range(N):
            scores[b, p, n] *= inv
    for bc in prange(B * d):
        b, c = bc // d, bc % d
        for p in range(P):
            acc = 0.0                                   # float64 accumulator for the context
            for n in range(N):
                acc += qkv[b, 1 + c, p, n] * scores[b, p, n]
            ctx = np.float32(acc)
            for n in range(N):
                v = qkv[b, 1 + d + c, p, n]
                out[b, c, p, n] = v * ctx if v > 0 else np.float32(0.0)


def separable_attention(x, w_qkv, b_qkv, w_out, b_out, return_scores=False):
    """Fast version. x (B, d, P, N) float32 C-contiguous -> (B, d, P, N) [and scores (B, P, N)]."""
    B, d, P, N = x.shape
    # (1+2d, d) @ (B, d, P*N) -> (B, 1+2d, P*N)
    qkv = np.matmul(w_qkv, x.reshape(B, d, P * N))
    qkv += b_qkv[None, :, None]
    scores = np.empty((B, P, N), np.float32)
    gated = np.empty((B, d, P, N), np.float32)
    _score_context_gate(qkv.reshape(B, 2 * d + 1, P, N), scores, gated)   # (B, 1+2d, P*N) -> (B, 1+2d, P, N)
    # (d, d) @ (B, d, P*N) -> (B, d, P*N)
    y = np.matmul(w_out, gated.reshape(B, d, P * N))
    y += b_out[None, :, None]
    y = y.reshape(B, d, P, N)                                              # (B, d, P*N) -> (B, d, P, N)
    return (y, scores) if return_scores else y
