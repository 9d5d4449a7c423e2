"""MobileNetV2 inverted residual (cvnets InvertedResidual).

1x1 expand (BN, SiLU; absent when the ratio is 1) -> 3x3 depthwise (BN, SiLU,
stride, dilation) -> 1x1 project (BN, no activation), plus the input when
stride is 1 and the channel count does not change.
"""
from ..nn import ConvBNAct, Module


def make_divisible(v, divisor=8, min_value=None):
    """Round v to the nearest multiple of divisor, never going below 90% of v (TF/cvnets rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class InvertedResidual(Module):
    def __init__(self, cin, cout, stride, expand_ratio, dilation=1):
        hidden = make_divisible(int(round(cin * expand_ratio)), 8)
        self.expand = ConvBNAct(cin, hidden, 1) if expand_ratio != 1 else None
        self.dw = ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, dilation=dilation)
        self.project = ConvBNAct(hidden, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def __call__(self, x):
        """x (B, Ci, H, W) -> (B, Co, H/stride, W/stride)."""
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.dw(y))
        if self.residual:
            y += x
        return y
