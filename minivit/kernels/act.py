"""Activations and the bias/activation epilogue that follows a matmul.

Reproduces torch.nn.SiLU (x * sigmoid(x)) and torch.nn.ReLU. The epilogue adds
a per-channel bias and applies the activation in place, in one pass over
memory, on a (B, C, L) buffer (L = H*W for feature maps).
"""
import math

import numpy as np

from ..jit import pjit, prange

ACTS = {None: 0, "none": 0, "silu": 1, "relu": 2}


def silu_ref(x):
    """SiLU as torch defines it: x * sigmoid(x)."""
    return x / (1.0 + np.exp(-x))


def relu_ref(x):
    return np.maximum(x, 0)


def bias_act_ref(y, bias, act):
    """y (B, C, L), bias (C,) or None, act in ACTS -> new array."""
    out = y if bias is None else y + bias[None, :, None]
    if ACTS[act] == 1:
        out = silu_ref(out)
    elif ACTS[act] == 2:
        out = relu_ref(out)
    return out.astype(y.dtype)


@pjit
def _bias_act(y, bias, has_bias, act):
    # y (B, C, L) float32, modified in place; bias (C,)
    B, C, L = y.shape
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        row = y[b, c]
        beta = bias[c] if has_bias else np.float32(0.0)
        if act == 1:
            for i in range(L):
                v = row[i] + beta
                row[i] = v / (np.float32(1.0) + np.exp(-v))
        elif act == 2:
            for i in range(L):
                v = row[i] + beta
                row[i] = v if v > 0 else np.float32(0.0)
        elif has_bias:
            for i in range(L):
                row[i] += beta


_NO_BIAS = np.zeros(1, np.float32)


def bias_act_(y, bias, act):
    """In place on y (B, C, L): y = act(y + bias[c]). Returns y."""
    code = ACTS[act]
    if bias is None and code == 0:
        return y
    _bias_act(y, _NO_BIAS if bias is None else bias, bias is not None, code)
    return y


def silu(x):
    """SiLU on any float32 array (a new array)."""
    y = np.array(x, dtype=np.float32, order="C")
    bias_act_(y.reshape(1, 1, -1), None, "silu")
    return y
