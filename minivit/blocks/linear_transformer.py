"""The pre-norm layer of MobileViTv2 (cvnets v0.2 LinearAttnFFN), on (B, d, P, N) patches.

x -> x + SeparableAttention(GroupNorm1(x)) -> x + FFN(GroupNorm1(x)),
FFN = 1x1 conv (bias, SiLU), 1x1 conv (bias). GroupNorm1 is one group over
(d, P, N) per image (cvnets' "layer_norm_2d"), not a per-token LayerNorm.
Every projection is a 1x1 conv because channels come first in this layout.
Dropout is inactive at inference and absent here.
"""
import numpy as np

from ..kernels.conv import conv2d
from ..kernels.separable_attention import separable_attention
from ..nn import GroupNorm1, Module


class Pointwise(Module):
    """A 1x1 convolution with bias on (B, Ci, P, N) (or any (B, Ci, H, W)) -> (B, Co, P, N)."""

    def __init__(self, cin, cout):
        self.weight = np.zeros((cout, cin, 1, 1), np.float32)   # (Co, Ci, 1, 1), as PyTorch stores it
        self.bias = np.zeros(cout, np.float32)

    @property
    def matrix(self):
        """The weight as a (Co, Ci) matrix (a view)."""
        return self.weight.reshape(self.weight.shape[:2])

    def __call__(self, x, act=None, residual=None):
        return conv2d(x, self.weight, self.bias, act=act, residual=residual)


class SeparableSelfAttention(Module):
    """cvnets LinearSelfAttention: qkv 1x1 conv to 1 + 2d channels, out 1x1 conv."""

    def __init__(self, dim):
        self.qkv = Pointwise(dim, 1 + 2 * dim)
        self.proj = Pointwise(dim, dim)

    def __call__(self, x, return_scores=False, residual=None):
        """x (B, d, P, N) -> (B, d, P, N) (+ residual) [and the context scores (B, P, N)]."""
        return separable_attention(x, self.qkv.matrix, self.qkv.bias, self.proj.matrix, self.proj.bias,
                                   return_scores, residual)


class ConvMLP(Module):
    def __init__(self, dim, hidden):
        self.fc1 = Pointwise(dim, hidden)
        self.fc2 = Pointwise(hidden, dim)

    def __call__(self, x, residual=None):
        return self.fc2(self.fc1(x, act="silu"), residual=residual)


class LinearTransformerLayer(Module):
    def __init__(self, dim, ffn_dim):
        self.norm1 = GroupNorm1(dim)
        self.attn = SeparableSelfAttention(dim)
        self.norm2 = GroupNorm1(dim)
        self.mlp = ConvMLP(dim, ffn_dim)

    def __call__(self, x, scores=None):
        """x (B, d, P, N) -> (B, d, P, N). If `scores` is a list, this layer's (B, P, N) scores join it."""
        # each residual add happens in its projection's epilogue; the caller's x is left as it was
        if scores is None:
            x = self.attn(self.norm1(x), residual=x)
        else:
            x, s = self.attn(self.norm1(x), return_scores=True, residual=x)
            scores.append(s)
        return self.mlp(self.norm2(x), residual=x)
