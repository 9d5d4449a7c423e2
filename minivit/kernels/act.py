"""Activations, the bias/activation epilogue that follows a matmul, and softmax.

Reproduces torch.nn.SiLU (x * sigmoid(x)), torch.nn.ReLU and torch.softmax.
The epilogue adds a per-channel bias and applies the activation in place, in
one pass over memory, on a (B, C, L) buffer (L = H*W for feature maps). The
row loops (and the vectorisable exp they use) are in elementwise.py.
"""
import numpy as np

from ..jit import pjit, prange
from .elementwise import act_row, softmax_row

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
        act_row(y[b, c], bias[c] if has_bias else np.float32(0.0), act)


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


@pjit
def _softmax_rows(s, scale):
    # s (R, N) float32, in place: each row becomes softmax(scale * row)
    for r in prange(s.shape[0]):
        softmax_row(s[r], scale)


def softmax_rows_(s, scale=1.0):
    """In place softmax(scale * s) over the last axis of a float32 C-contiguous array; scale > 0."""
    _softmax_rows(s.reshape(-1, s.shape[-1]), np.float32(scale))
    return s
