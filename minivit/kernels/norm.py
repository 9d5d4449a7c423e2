"""Normalisations over channels.

- `layer_norm`: torch.nn.LayerNorm(D) on (..., D) tokens: each token is
  normalised over its D channels (biased variance, eps inside the sqrt).
- `group_norm1`: torch.nn.GroupNorm(num_groups=1, C) on (B, C, ...): each
  sample is normalised over all of its C*P*N values at once, then scaled per
  channel. This is the v2 "layer_norm_2d"; it is not a per-token LayerNorm.
Statistics are accumulated in float64 and the output is float32.
"""
import numpy as np

from ..jit import pjit, prange


def layer_norm_ref(x, weight, bias, eps=1e-5):
    """x (..., D) -> (..., D)."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=-1, keepdims=True)
    var = x64.var(axis=-1, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + eps) * weight + bias).astype(x.dtype)


@pjit
def _layer_norm(x, weight, bias, eps, out):
    # x (T, D) tokens; weight, bias (D,); out (T, D)
    T, D = x.shape
    for t in prange(T):
        s = 0.0
        for d in range(D):
            s += x[t, d]
        mu = s / D
        ss = 0.0
        for d in range(D):
            v = x[t, d] - mu
            ss += v * v
        inv = 1.0 / np.sqrt(ss / D + eps)
        for d in range(D):
            out[t, d] = (x[t, d] - mu) * inv * weight[d] + bias[d]


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
    B, C, L = x.shape
    for b in range(B):
        s = 0.0
        for c in range(C):
            for i in range(L):
                s += x[b, c, i]
        mu = s / (C * L)
        ss = 0.0
        for c in range(C):
            for i in range(L):
                v = x[b, c, i] - mu
                ss += v * v
        inv = 1.0 / np.sqrt(ss / (C * L) + eps)
        for c in prange(C):
            a = inv * weight[c]
            for i in range(L):
                out[b, c, i] = (x[b, c, i] - mu) * a + bias[c]


def group_norm1(x, weight, bias, eps=1e-5):
    """x (B, C, ...) float32 contiguous -> new array of the same shape."""
    B, C = x.shape[:2]
    out = np.empty_like(x)
    _group_norm1(x.reshape(B, C, -1), weight, bias, eps, out.reshape(B, C, -1))
    return out
