"""Normalisations over channels.

- `layer_norm`: torch.nn.LayerNorm(D) on (..., D) tokens: each token is
  normalised over its D channels (biased variance, eps inside the sqrt).
- `group_norm1`: torch.nn.GroupNorm(num_groups=1, C) on (B, C, ...): each
  sample is normalised over all of its C*P*N values at once, then scaled per
  channel. This is the v2 "layer_norm_2d"; it is not a per-token LayerNorm.
Statistics: per row (a token, or a channel of one image), sums of (x - k) and
(x - k)**2 around the row's first value k, as float32 vector partial sums
(elementwise.moments_f32), then combined in float64; normalising is float32.
"""
import numpy as np

from ..jit import pjit, prange
from .elementwise import moments_f32


def layer_norm_ref(x, weight, bias, eps=1e-5):
    """x (..., D) -> (..., D)."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=-1, keepdims=True)
    var = x64.var(axis=-1, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + eps) * weight + bias).astype(x.dtype)


@pjit
def _layer_norm(x, weight, bias, eps, out):
    # x (T, D) tokens; weight, bias (D,); out (T, D). One pass for the statistics (around the
    # token's first value), one to normalise.
    T, D = x.shape
    for t in prange(T):
        row, o = x[t], out[t]
        k = row[0]
        s, q = moments_f32(row, k)
        m1 = np.float64(s) / D
        inv = 1.0 / np.sqrt(max(np.float64(q) / D - m1 * m1, 0.0) + eps)
        m32, a32 = np.float32(k + m1), np.float32(inv)
        for d in range(D):
            o[d] = (row[d] - m32) * a32 * weight[d] + bias[d]


def layer_norm(x, weight, bias, eps=1e-5):
    """x (..., D) float32 contiguous -> new (..., D)."""
    D = x.shape[-1]
    out = np.empty_like(x)
    _layer_norm(x.reshape(-1, D), weight, bias, eps, out.reshape(-1, D))
    return out


def group_norm1_ref(x, weight, bias, eps=1e-5):
    """x (B, C, ...) -> same shape; one group: statistics over everything but B."""
    x64 = x.astype(np.float64)
    axes = tuple(range(1, x.ndim))
    mu = x64.mean(axis=axes, keepdims=True)
    var = x64.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x64 - mu) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)
    return y.astype(x.dtype)


@pjit
def _group_norm1(x, weight, bias, eps, out):
    # x (B, C, L); weight, bias (C,); out (B, C, L)
    # One pass for the statistics (per channel, around k = the image's first value), one to normalise.
    B, C, L = x.shape
    part = np.empty((B, C, 2), np.float64)
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        sc, qc = moments_f32(x[b, c], x[b, 0, 0])
        part[b, c, 0], part[b, c, 1] = sc, qc
    mu = np.empty(B, np.float32)
    scale = np.empty(B, np.float64)
    for b in range(B):
        n = C * L
        m1 = part[b, :, 0].sum() / n
        var = max(part[b, :, 1].sum() / n - m1 * m1, 0.0)
        mu[b] = np.float32(x[b, 0, 0] + m1)
        scale[b] = 1.0 / np.sqrt(var + eps)
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        a32, m32, beta = np.float32(scale[b] * weight[c]), mu[b], bias[c]
        row, o = x[b, c], out[b, c]
        for i in range(L):
            o[i] = (row[i] - m32) * a32 + beta


def group_norm1(x, weight, bias, eps=1e-5):
    """x (B, C, ...) float32 contiguous -> new array of the same shape."""
    B, C = x.shape[:2]
    out = np.empty_like(x)
    _group_norm1(x.reshape(B, C, -1), weight, bias, eps, out.reshape(B, C, -1))
    return out
