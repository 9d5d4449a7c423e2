"""The two MobileViTv3 blocks (Wadekar and Chaurasia, 2022; the authors' patches to cvnets).

Both keep their base block's global path and change only what is fused and added.

MobileViTv3BlockV1, on the v1 block (MobileViTv3-v1 MobileViTv3Block):
x (B, C, H, W)
 -> local:  3x3 depthwise conv (BN, SiLU), 1x1 conv to D (no BN, no act)  -> (B, D, H, W)
 -> global: unfold, transformer layers, LayerNorm, fold, with v1's bilinear
    resize up to a patch multiple and back (GlobalRepV1)                   -> (B, D, H, W)
 -> 1x1 conv to C (BN, SiLU)                                               -> (B, C, H, W)
 -> fusion: 1x1 conv (BN, SiLU) over cat(local, projected) (D + C -> C)
 -> + x

MobileViTv3BlockV2, on the v2 block (MobileViTv3-v2 MobileViTBlockv3):
x (B, C, H, W) -> v2 resize of the input (align_corners=True) if the patch does not divide it,
    never undone                                                           -> (B, C, H', W')
 -> local:  3x3 depthwise conv (BN, SiLU; dilated in DeepLab backbones), 1x1 conv to d
 -> global: unfold, separable-attention layers, GroupNorm1, fold (GlobalRepV2)
 -> 1x1 conv (BN, no act) over cat(global, local) (2d -> C; v2 projects global alone)
 -> + the (resized) input                                                  -> (B, C, H', W')
Like the v2 block it records "local", "global" (the global half of the projection's
input; the other half is "local") and the attention "scores" maps.
"""
import numpy as np

from ..nn import ConvBNAct, Module
from .mobilevit_v1 import GlobalRepV1
from .mobilevit_v2 import GlobalRepV2, resize_to_patch


class MobileViTv3BlockV1(Module):
    def __init__(self, cin, dim, ffn_dim, depth, heads=4, patch=2, kernel=3):
        self.conv_kxk = ConvBNAct(cin, cin, kernel, groups=cin)    # depthwise, unlike v1
        self.conv_1x1 = ConvBNAct(cin, dim, 1, bn=False, act=None)
        self.global_rep = GlobalRepV1(dim, ffn_dim, depth, heads, patch)
        self.conv_proj = ConvBNAct(dim, cin, 1)
        self.conv_fusion = ConvBNAct(dim + cin, cin, 1)           # 1x1, unlike v1's 3x3

    def __call__(self, x, record=None):
        """x (B, C, H, W) -> (B, C, H, W). `record(name, array)` sees local and global."""
        local = self.conv_1x1(self.conv_kxk(x))      # (B, D, H, W)
        glob = self.global_rep(local)                # (B, D, H, W)
        if record is not None:
            record("local", local)
            record("global", glob)
        y = self.conv_proj(glob)                     # (B, C, H, W)
        # (B, D+C, H, W) -> (B, C, H, W), + x in the conv's epilogue
        return self.conv_fusion(np.concatenate([local, y], axis=1), residual=x)


class MobileViTv3BlockV2(Module):
    def __init__(self, cin, dim, ffn_dim, depth, patch=2, kernel=3, dilation=1):
        self.conv_kxk = ConvBNAct(cin, cin, kernel, groups=cin, dilation=dilation)   # depthwise
        self.conv_1x1 = ConvBNAct(cin, dim, 1, bn=False, act=None)
        self.global_rep = GlobalRepV2(dim, ffn_dim, depth, patch)
        self.conv_proj = ConvBNAct(2 * dim, cin, 1, act=None)   # takes global and local
        self.patch = patch

    def __call__(self, x, record=None):
        """x (B, C, H, W) -> (B, C, H', W'), H' and W' rounded up to patch multiples.

        `record(name, array)` sees "local", "global" and "scores" (B, layers, H', W').
        """
        x = resize_to_patch(x, self.patch)               # (B, C, H', W')
        local = self.conv_1x1(self.conv_kxk(x))          # (B, d, H', W')
        scores = None if record is None else []
        glob = self.global_rep(local, scores)            # (B, d, H', W')
        if record is not None:
            record("local", local)
            record("global", glob)
            record("scores", np.concatenate(scores, axis=1))   # layers x (B, 1, H', W') -> (B, layers, H', W')
        # (B, 2d, H', W') -> (B, C, H', W'), + x in the conv's epilogue
        return self.conv_proj(np.concatenate([glob, local], axis=1), residual=x)
