"""MobileNetV2 inverted residual (cvnets InvertedResidual).

1x1 expand (BN, SiLU; absent when the ratio is 1) -> 3x3 depthwise (BN, SiLU,
stride, dilation) -> 1x1 project (BN, no activation), plus the input when
stride is 1 and the channel count does not change.

The three convolutions run fused, band by band (kernels/depthwise.py,
inverted_residual), where that kernel applies; otherwise one after the other.
"""
from ..kernels.act import ACTS
from ..kernels.depthwise import inverted_residual
from ..nn import ConvBNAct, Module


def make_divisible(v, divisor=8, min_value=None):
    """Round v to the nearest multiple of divisor, never going below 90% of v (TF/cvnets rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


_PLAIN_CALL = ConvBNAct.__call__


class InvertedResidual(Module):
    def __init__(self, cin, cout, stride, expand_ratio, dilation=1):
        hidden = make_divisible(int(round(cin * expand_ratio)), 8)
        self.expand = ConvBNAct(cin, hidden, 1) if expand_ratio != 1 else None
        self.dw = ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, dilation=dilation)
        self.project = ConvBNAct(hidden, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def __call__(self, x):
        """x (B, Ci, H, W) -> (B, Co, H/stride, W/stride)."""
        if ConvBNAct.__call__ is _PLAIN_CALL:   # (not while minivit.profile counts each layer's calls)
            e, dw, p = self.expand, self.dw, self.project
            y = inverted_residual(x, None if e is None else e._w, None if e is None else e._b,
                                  0 if e is None else ACTS[e.act], dw._w, dw._b, ACTS[dw.act], dw.stride,
                                  dw.dilation, p._w, p._b, self.residual)
            if y is not None:                  # the fused kernel: the expanded map stays in cache
                return y
        y = x if self.expand is None else self.expand(x)
        return self.project(self.dw(y), residual=x if self.residual else None)
