"""Parameters and multiply-accumulates (MACs) of a model, in total and stage by stage.

The count is analytical, from the shapes each layer sees when the model runs once on a
zero image of the given size (batch 1), so it follows what the layers really do at that
size: v1's resize of the local features up to a patch multiple, v2's resized block input.
One MAC is one multiply-add. Counted:
- convolution (batch norm folded in): Co * Ci/groups * kh * kw * Ho * Wo
- linear layer, or 1x1 convolution on (B, d, P, N) patches: tokens * Din * Dout
- v1 multi-head attention on (T, N, D): the qkv and output projections (4 * T*N*D*D) plus
  q @ k^T and attn @ v (T*N*N*D each, whatever the number of heads)
- separable attention on (B, d, P, N): the qkv and output projections ((1 + 2d)*d + d*d per
  token) plus the context vector, a weighted sum over the N patches (d per token)
Not counted: biases, norms, activations, softmax, residual adds, resizes, pooling, and
the elementwise product of v2's values with the context vector.

While a count runs, the counted layer classes are wrapped; do not run other minivit
models in other threads meanwhile (their layers would be counted too).
"""
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .blocks.linear_transformer import Pointwise, SeparableSelfAttention
from .blocks.transformer import MultiHeadAttention
from .errors import InputError
from .nn import ConvBNAct, Linear


def _conv(layer, x, out):
    co, cig, kh, kw = layer.conv.weight.shape        # (Co, Ci/g, kh, kw)
    B, _, ho, wo = out.shape
    return B * co * cig * kh * kw * ho * wo


def _linear(layer, x, out):
    dout, din = layer.weight.shape                   # x (..., Din): x.size // Din tokens
    return x.size * dout


def _pointwise(layer, x, out):
    co, ci = layer.weight.shape[:2]                  # x (B, Ci, P, N): x.size // Ci tokens
    return x.size * co


def _mha(layer, x, out):
    T, N, D = x.shape
    return 4 * T * N * D * D + 2 * T * N * N * D    # projections + q@k^T + attn@v


def _separable(layer, x, out):
    B, d, P, N = x.shape
    tokens = B * P * N
    return tokens * ((1 + 2 * d) * d + d * d + d)  # qkv, out projection, context sum


# layer class -> MACs of one call, from the layer, its input and its output
RULES = {
    ConvBNAct: _conv,
    Linear: _linear,
    Pointwise: _pointwise,
    MultiHeadAttention: _mha,
    SeparableSelfAttention: _separable,
}


# What cvnets' profile_module (and so the MobileViT papers' "FLOPs") counts instead:
# biases as one MAC per output, q@k^T and attn@v as T*N*D*D each (D*D where N*N belongs),
# and for separable attention only its two projections.
def _conv_cvnets(layer, x, out):
    bias = 0 if layer.conv.bias is None else out.size
    return _conv(layer, x, out) + bias


def _linear_cvnets(layer, x, out):
    return _linear(layer, x, out) + (0 if layer.bias is None else out.size)


def _pointwise_cvnets(layer, x, out):
    return _pointwise(layer, x, out) + out.size


def _mha_cvnets(layer, x, out):
    T, N, D = x.shape
    return T * N * (4 * D * D + 4 * D) + 2 * T * N * D * D


def _separable_cvnets(layer, x, out):
    B, d, P, N = x.shape
    return B * P * N * ((1 + 2 * d) * (d + 1) + d * (d + 1))


CVNETS_RULES = {
    ConvBNAct: _conv_cvnets,
    Linear: _linear_cvnets,
    Pointwise: _pointwise_cvnets,
    MultiHeadAttention: _mha_cvnets,
    SeparableSelfAttention: _separable_cvnets,
}
CONVENTIONS = {"exact": RULES, "cvnets": CVNETS_RULES}

_LOCK = threading.Lock()


@contextmanager
def _counting(tally, convention="exact"):
    """Within the block, every call of a counted layer adds its MACs to tally[0]."""
    if convention not in CONVENTIONS:
        raise InputError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    rules = CONVENTIONS[convention]
    def counted(cls, call, rule):
        def __call__(self, x, *args, **kwargs):
            out = call(self, x, *args, **kwargs)
            tally[0] += rule(self, x, out)
            return out
        return __call__

    with _LOCK:
        originals = {cls: cls.__call__ for cls in rules}
        try:
            for cls, rule in rules.items():
                cls.__call__ = counted(cls, originals[cls], rule)
            yield
        finally:
            for cls, call in originals.items():
                cls.__call__ = call


def _zeros(input_size):
    h, w = input_size
    return np.zeros((1, 3, int(h), int(w)), np.float32)


def count_macs(model, input_size=(256, 256), convention="exact"):
    """Multiply-accumulates of one forward pass of one (3, *input_size) image.

    convention: "exact" (the rules above) or "cvnets" (what cvnets' profiler counts).
    """
    tally = [0]
    with _counting(tally, convention):
        model(_zeros(input_size))
    return int(tally[0])


@dataclass(frozen=True)
class StageCost:
    stage: str        # module name: conv_1, layer_1 ... layer_5, conv_1x1_exp, pool, classifier
    shape: tuple      # output shape of one image, (C, H, W) or (C,)
    params: int
    macs: int


# trace name -> the module that produced it (None: pooling, no parameters)
_MODULE_OF = {"features": None, "logits": "classifier"}


def profile(model, input_size=(256, 256), convention="exact"):
    """One StageCost per stage of a MobileViT classifier, in forward order.

    Their params add up to model.num_params() and their macs to count_macs().
    """
    rows, tally, seen = [], [0], [0]

    def record(name, a):
        if name.startswith("layer_") and name.count("_") > 1:
            return                                      # a block's internals, not a stage
        attr = _MODULE_OF.get(name, name)
        part = getattr(model, attr) if attr else []
        parts = part if isinstance(part, list) else [part]
        params = sum(p.num_params() for p in parts)
        rows.append(StageCost(attr or "pool", tuple(a.shape[1:]), params, tally[0] - seen[0]))
        seen[0] = tally[0]

    with _counting(tally, convention):
        model.forward(_zeros(input_size), record)
    return rows


def format_profile(rows):
    """The rows of `profile` as a plain-text table, with a total line."""
    lines = [f"{'stage':<14}{'output':>16}{'params':>12}{'MMACs':>10}"]
    for r in rows:
        lines.append(f"{r.stage:<14}{str(r.shape):>16}{r.params:>12,}{r.macs / 1e6:>10.1f}")
    total_p, total_m = sum(r.params for r in rows), sum(r.macs for r in rows)
    lines.append(f"{'total':<14}{'':>16}{total_p:>12,}{total_m / 1e6:>10.1f}")
    return "\n".join(lines)
