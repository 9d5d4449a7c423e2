"""The MobileViT v1 block (cvnets v0.1 MobileViTBlock).

x (B, C, H, W)
 -> local:  3x3 conv (BN, SiLU), 1x1 conv to D (no BN, no act)   -> (B, D, H, W)
 -> if H or W is not a multiple of the patch: bilinear resize up
    (align_corners=False) to the next multiple
 -> unfold to (B*P, N, D), transformer layers, LayerNorm, fold back
 -> if resized: bilinear resize back to (H, W) (align_corners=False)
 -> 1x1 conv to C (BN, SiLU)                                       -> (B, C, H, W)
 -> fusion: 3x3 conv (BN, SiLU) over cat(x, projected) (2C -> C)
"""
import math

import numpy as np

from ..kernels.patches import fold_v1, unfold_v1
from ..kernels.resize import resize_bilinear
from ..nn import ConvBNAct, LayerNorm, Module
from .transformer import TransformerLayer


class GlobalRepV1(Module):
    """Unfold, transformer layers, LayerNorm, fold: the shared middle of v1 and v1-based v3."""

    def __init__(self, dim, ffn_dim, depth, heads, patch):
        self.transformer = [TransformerLayer(dim, ffn_dim, heads) for _ in range(depth)]
        self.norm = LayerNorm(dim)
        self.patch = patch

    def __call__(self, fm):
        """fm (B, D, H, W) -> (B, D, H, W): attention across patches."""
        B, D, H, W = fm.shape
        ph = pw = self.patch
        Hn, Wn = math.ceil(H / ph) * ph, math.ceil(W / pw) * pw
        resized = (Hn, Wn) != (H, W)
        if resized:
            fm = resize_bilinear(fm, (Hn, Wn), align_corners=False)
        tokens = unfold_v1(fm, ph, pw)               # (B, D, Hn, Wn) -> (B*P, N, D)
        for layer in self.transformer:
            tokens = layer(tokens)
        tokens = self.norm(tokens)
        out = fold_v1(tokens, B, Hn, Wn, ph, pw)     # (B*P, N, D) -> (B, D, Hn, Wn)
        if resized:
            out = resize_bilinear(out, (H, W), align_corners=False)
        return out


class MobileViTBlock(Module):
    def __init__(self, cin, dim, ffn_dim, depth, heads=4, patch=2, kernel=3):
        self.conv_kxk = ConvBNAct(cin, cin, kernel)
        self.conv_1x1 = ConvBNAct(cin, dim, 1, bn=False, act=None)
        self.global_rep = GlobalRepV1(dim, ffn_dim, depth, heads, patch)
        self.conv_proj = ConvBNAct(dim, cin, 1)
        self.conv_fusion = ConvBNAct(2 * cin, cin, kernel)

    def __call__(self, x, record=None):
        """x (B, C, H, W) -> (B, C, H, W). `record(name, array)` sees local and global."""
        local = self.conv_1x1(self.conv_kxk(x))      # (B, D, H, W)
        glob = self.global_rep(local)                # (B, D, H, W)
        if record is not None:
            record("local", local)
            record("global", glob)
        y = self.conv_proj(glob)                     # (B, C, H, W)
        return self.conv_fusion(np.concatenate([x, y], axis=1))   # (B, 2C, H, W) -> (B, C, H, W)
