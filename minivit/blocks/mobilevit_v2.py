"""The MobileViTv2 block (cvnets v0.2 MobileViTBlockv2).

x (B, C, H, W)
 -> if H or W is not a multiple of the patch: bilinear resize of x itself up
    to the next multiple (align_corners=True), never resized back, so the
    block output has the resized size (a 7x7 map leaves as 8x8)
 -> local:  3x3 depthwise conv (BN, SiLU; dilated in DeepLab backbones),
    1x1 conv to d (no BN, no act)                                          -> (B, d, H', W')
 -> global: unfold to (B, d, P, N), separable-attention layers, GroupNorm1,
    fold back                                                              -> (B, d, H', W')
 -> 1x1 conv to C (BN, no activation)                                      -> (B, C, H', W')
No fusion with the input and no residual around the block (unlike v1 and v3).

Teaching hook: with `record`, the block reports "local", "global" and
"scores": the context scores of its attention layers as maps, (B, layers,
H', W'). Pixel (y, x) holds the softmax score of its patch among all patches
at the same position inside their patch, so each of the P = ph*pw interleaved
sub-grids of a map sums to 1.

Reuse: `resize_to_patch` and `GlobalRepV2` are the parts the v2-based v3
block shares.
"""
import math

import numpy as np

from ..kernels.patches import fold_v2, unfold_v2
from ..kernels.resize import resize_bilinear
from ..nn import ConvBNAct, GroupNorm1, Module
from .linear_transformer import LinearTransformerLayer


def resize_to_patch(x, patch):
    """x (B, C, H, W) resized up to patch multiples (bilinear, align_corners=True); x if they divide."""
    B, C, H, W = x.shape
    Hn, Wn = math.ceil(H / patch) * patch, math.ceil(W / patch) * patch
    if (Hn, Wn) == (H, W):
        return x
    return resize_bilinear(x, (Hn, Wn), align_corners=True)


class GlobalRepV2(Module):
    """Unfold, separable-attention layers, GroupNorm1, fold: the shared middle of v2 and v2-based v3."""

    def __init__(self, dim, ffn_dim, depth, patch):
        self.transformer = [LinearTransformerLayer(dim, ffn_dim) for _ in range(depth)]
        self.norm = GroupNorm1(dim)
        self.patch = patch

    def __call__(self, fm, scores=None):
        """fm (B, d, H, W), H and W multiples of the patch -> (B, d, H, W).

        If `scores` is a list, one (B, 1, H, W) map of context scores per layer is appended.
        """
        B, d, H, W = fm.shape
        p = self.patch
        patches = unfold_v2(fm, p, p)                    # (B, d, H, W) -> (B, d, P, N)
        per_layer = None if scores is None else []
        for layer in self.transformer:
            patches = layer(patches, per_layer)
        patches = self.norm(patches)
        if scores is not None:
            for s in per_layer:
                scores.append(fold_v2(s[:, None], H, W, p, p))   # (B, 1, P, N) -> (B, 1, H, W)
        return fold_v2(patches, H, W, p, p)               # (B, d, P, N) -> (B, d, H, W)


class MobileViTBlockV2(Module):
    def __init__(self, cin, dim, ffn_dim, depth, patch=2, kernel=3, dilation=1):
        self.conv_kxk = ConvBNAct(cin, cin, kernel, groups=cin, dilation=dilation)   # depthwise
        self.conv_1x1 = ConvBNAct(cin, dim, 1, bn=False, act=None)
        self.global_rep = GlobalRepV2(dim, ffn_dim, depth, patch)
        self.conv_proj = ConvBNAct(dim, cin, 1, act=None)
        self.patch = patch

    def __call__(self, x, record=None):
        """x (B, C, H, W) -> (B, C, H', W'), H' and W' rounded up to patch multiples.

        `record(name, array)` sees "local", "global" and "scores" (B, layers, H', W').
        """
        x = resize_to_patch(x, self.patch)
        local = self.conv_1x1(self.conv_kxk(x))          # (B, d, H', W')
        scores = None if record is None else []
        glob = self.global_rep(local, scores)            # (B, d, H', W')
        if record is not None:
            record("local", local)
            record("global", glob)
            # layers x (B, 1, H', W') -> (B, layers, H', W')
            record("scores", np.concatenate(scores, axis=1))
        return self.conv_proj(glob)                      # (B, C, H', W')
