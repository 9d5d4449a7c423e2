"""DeepLabv3 semantic segmentation on a MobileViT backbone (official cvnets numerics).

x (B, 3, H, W)
 -> backbone: conv_1, layer_1 ... layer_5, without conv_1x1_exp and the classifier;
    output stride 16 (layer_5 dilated) or 8 (layer_4 and layer_5 dilated)  -> (B, C5, H/os, W/os)
 -> ASPP, every conv with BN and ReLU:
      a 1x1 conv, three 3x3 convs at atrous rates r1, r2, r3,
      image pooling: global mean -> 1x1 conv -> bilinear back to (H/os, W/os) (align_corners=False)
    concatenated (5 * A channels) -> 1x1 projection                          -> (B, A, H/os, W/os)
 -> classifier: 1x1 conv with bias (no BN, no activation)                    -> (B, K, H/os, W/os)
 -> bilinear upsampling to (H, W): align_corners=False for the v1-family
    checkpoints (cvnets v0.1), True for the v2 family (cvnets v0.2)          -> (B, K, H, W)
Dropout (ASPP and classifier) is inactive at inference and absent here.
For H and W multiples of the output stride, upsampling to (H, W) is exactly the
official x16 / x8 `UpSample`. Shape legend: K classes, A ASPP channels.
"""
from dataclasses import dataclass

import numpy as np

from ..kernels.pool import global_avg_pool
from ..kernels.resize import resize_bilinear
from ..nn import ConvBNAct, Module
from .mobilevit import MobileViT, Network


@dataclass(frozen=True)
class DeepLabConfig:
    name: str
    backbone: str            # a classifier preset (minivit.list_models())
    dataset: str             # "voc" (21 classes) or "ade20k" (150 classes)
    num_classes: int
    output_stride: int       # 16 or 8
    aspp_channels: int
    rates: tuple             # three atrous rates
    align_corners: bool      # of the final upsampling
    input_size: int = 512    # the training crop; any size runs
    task: str = "segmentation"


class ASPP(Module):
    """Atrous spatial pyramid pooling (DeepLabv3), ReLU everywhere."""

    def __init__(self, cin, channels, rates):
        self.convs = [ConvBNAct(cin, channels, 1, act="relu")] + [
            ConvBNAct(cin, channels, 3, dilation=r, act="relu") for r in rates]
        self.pool = ConvBNAct(cin, channels, 1, act="relu")
        self.project = ConvBNAct(5 * channels, channels, 1, act="relu")

    def __call__(self, x):
        """x (B, C, h, w) -> (B, A, h, w)."""
        B, C, h, w = x.shape
        branches = [conv(x) for conv in self.convs]              # 4 x (B, A, h, w)
        pooled = global_avg_pool(x).reshape(B, C, 1, 1)           # (B, C) -> (B, C, 1, 1)
        branches.append(resize_bilinear(self.pool(pooled), (h, w), align_corners=False))
        return self.project(np.concatenate(branches, axis=1))    # (B, 5A, h, w) -> (B, A, h, w)


class DeepLabV3(Network):
    def __init__(self, config, backbone_config):
        self.config = config
        self.encoder = MobileViT(backbone_config, output_stride=config.output_stride, classifier=False)
        self.aspp = ASPP(self.encoder.channels, config.aspp_channels, config.rates)
        self.classifier = ConvBNAct(config.aspp_channels, config.num_classes, 1, bn=False, act=None, bias=True)

    @property
    def name(self):
        return self.config.name

    def forward(self, x, record=None):
        """x (B, 3, H, W) -> logits (B, K, H, W). `record(name, array)` sees the stages,
        "aspp", "logits_lowres" (before upsampling) and "logits"."""
        rec = record or (lambda name, a: None)
        feats = self.encoder.features(x, record)[-1]             # (B, C5, H/os, W/os)
        y = self.aspp(feats)
        rec("aspp", y)
        low = self.classifier(y)                                  # (B, K, H/os, W/os)
        rec("logits_lowres", low)
        logits = resize_bilinear(low, x.shape[2:], align_corners=self.config.align_corners)
        rec("logits", logits)
        return logits


def deeplab_presets(backbones):
    """The DeepLabv3 presets of the released checkpoints' recipes, for every backbone config.

    v1 family (block v1 / v3_v1): PASCAL VOC, OS 16, 256 ASPP channels, rates 6/12/18,
    align_corners=False: `deeplabv3_<backbone>`. v2 family (v2 / v3_v2): VOC at OS 16, 512
    channels, rates 6/12/18 (`..._voc`) and ADE20K at OS 8, 512 channels, rates 12/24/36,
    150 classes (`..._ade20k`), align_corners=True.
    """
    out = {}
    for bb in backbones:
        if bb.block in ("v1", "v3_v1"):
            cfgs = [DeepLabConfig(f"deeplabv3_{bb.name}", bb.name, "voc", 21, 16, 256, (6, 12, 18), False)]
        else:
            cfgs = [DeepLabConfig(f"deeplabv3_{bb.name}_voc", bb.name, "voc", 21, 16, 512, (6, 12, 18), True),
                    DeepLabConfig(f"deeplabv3_{bb.name}_ade20k", bb.name, "ade20k", 150, 8, 512, (12, 24, 36),
                                  True)]
        out.update((c.name, c) for c in cfgs)
    return out
