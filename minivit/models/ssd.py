"""SSDLite object detection on a MobileViT backbone (official cvnets numerics).

x (B, 3, 320, 320)
 -> backbone without conv_1x1_exp and classifier: layer_4 (output stride 16), layer_5 (32)
 -> extra layers on layer_5, each a separable conv: 3x3 depthwise stride 2 (BN),
    1x1 (BN, ReLU): output strides 64, 128, 256; then global mean + 1x1 conv (ReLU,
    no BN, no bias): a 1x1 map. Six feature maps in all.
 -> one head per map: a 1x1 projection (BN, ReLU) when its width differs from the map's,
    then a separable conv (3x3 depthwise with BN, 1x1 with bias) predicting, per cell and
    anchor, 4 box offsets and K class scores (a single 1x1 conv on the 1x1 map)
 -> concatenated over maps: class logits (B, A, K) and box offsets (B, A, 4)
Anchors, decoding and NMS are in `minivit.boxes`. Shape legend: A anchors
(cells x anchors per cell, over all maps), K classes (81 for COCO: background first).
"""
from collections import namedtuple
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..boxes import anchors_per_cell, ssd_anchors
from ..kernels.pool import global_avg_pool
from ..nn import ConvBNAct, Module
from .mobilevit import MobileViT, Network

SSDOutput = namedtuple("SSDOutput", "cls_logits locations anchors")


@dataclass(frozen=True)
class SSDConfig:
    name: str
    backbone: str                       # a classifier preset (minivit.list_models())
    num_classes: int = 81               # COCO: background + 80 classes
    input_size: int = 320
    proj_channels: tuple = (512, 256, 256, 128, 128, 64)     # head widths, maps at OS 16 ... global
    aspect_ratios: tuple = field(default=((2, 3),) * 5 + ((2,),))
    min_scale: float = 0.1
    max_scale: float = 1.05
    center_variance: float = 0.1
    size_variance: float = 0.2
    # inference, as the official code of the backbone's family post-processes (see boxes.batched_nms)
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    top_k: int | None = 200             # boxes kept per class after NMS
    pre_nms_top_k: int | None = None    # boxes per class entering NMS
    max_detections: int | None = None   # boxes kept per image
    task: str = "detection"


class SeparableConv(Module):
    """3x3 depthwise conv with BN, then a 1x1 conv: BN + ReLU (extra layers) or bias only (heads)."""

    def __init__(self, cin, cout, stride=1, head=False):
        self.dw_conv = ConvBNAct(cin, cin, 3, stride=stride, groups=cin, act=None)
        self.pw_conv = (ConvBNAct(cin, cout, 1, bn=False, act=None, bias=True) if head
                        else ConvBNAct(cin, cout, 1, act="relu"))

    def __call__(self, x):
        return self.pw_conv(self.dw_conv(x))


class SSDHead(Module):
    def __init__(self, cin, proj, n_anchors, num_classes, kernel=3):
        self.proj_layer = ConvBNAct(cin, proj, 1, act="relu") if kernel > 1 and proj != cin else None
        c = proj if self.proj_layer is not None else cin
        out = n_anchors * (4 + num_classes)
        self.loc_cls_layer = (SeparableConv(c, out, head=True) if kernel > 1
                              else ConvBNAct(c, out, 1, bn=False, act=None, bias=True))
        self.num_classes = num_classes

    def __call__(self, x):
        """x (B, C, h, w) -> box offsets (B, h*w*a, 4), class logits (B, h*w*a, K)."""
        B = x.shape[0]
        if self.proj_layer is not None:
            x = self.proj_layer(x)
        y = self.loc_cls_layer(x)                                     # (B, a*(4+K), h, w)
        # (B, a*(4+K), h, w) -> (B, h, w, a*(4+K)) -> (B, h*w*a, 4+K): cells row-major, anchors inside
        y = y.transpose(0, 2, 3, 1).reshape(B, -1, 4 + self.num_classes)
        return y[..., :4], y[..., 4:]


class SSDLite(Network):
    def __init__(self, config, backbone_config):
        self.config = config
        self.encoder = MobileViT(backbone_config, classifier=False)
        widths = [backbone_config.stages[3].out, self.encoder.channels]   # layer_4, layer_5
        c = self.encoder.channels
        self.extra_layers = []
        for p in config.proj_channels[2:5]:                  # output strides 64, 128, 256
            self.extra_layers.append(SeparableConv(c, p, stride=2))
            c = p
            widths.append(p)
        self.extra_pool = ConvBNAct(c, config.proj_channels[5], 1, bn=False, act="relu")
        widths.append(config.proj_channels[5])
        self.ssd_heads = [SSDHead(w, p, anchors_per_cell(r), config.num_classes, 3 if i < 5 else 1)
                          for i, (w, p, r) in enumerate(zip(widths, config.proj_channels, config.aspect_ratios))]

    @property
    def name(self):
        return self.config.name

    def feature_maps(self, x, record=None):
        """The six maps the heads see: layer_4, layer_5, the three extra layers, the pooled 1x1."""
        l4, l5 = self.encoder.features(x, record)[3:]
        maps = [l4, l5]
        for layer in self.extra_layers:
            maps.append(layer(maps[-1]))
        B, C = maps[-1].shape[:2]
        maps.append(self.extra_pool(global_avg_pool(maps[-1]).reshape(B, C, 1, 1)))   # (B, C) -> (B, C, 1, 1)
        return maps

    def forward(self, x, record=None):
        """x (B, 3, H, W) -> SSDOutput(cls_logits (B, A, K), locations (B, A, 4), anchors (A, 4))."""
        rec = record or (lambda name, a: None)
        maps = self.feature_maps(x, record)
        locs, logits = zip(*(head(m) for head, m in zip(self.ssd_heads, maps)))
        out = SSDOutput(np.concatenate(logits, axis=1), np.concatenate(locs, axis=1),
                        self.anchors(tuple(m.shape[2:] for m in maps)))
        for name, a in zip(out._fields, out):
            rec(name, a)
        return out

    def anchors(self, map_sizes):
        """Anchors (A, 4), centre form in [0, 1], for feature maps of the given (h, w) sizes (read-only)."""
        c = self.config
        return _anchors(tuple(map_sizes), c.aspect_ratios, c.min_scale, c.max_scale)


@lru_cache(maxsize=16)
def _anchors(map_sizes, aspect_ratios, min_scale, max_scale):
    a = ssd_anchors(map_sizes, aspect_ratios, min_scale, max_scale)
    a.flags.writeable = False       # shared between calls
    return a


def ssd_presets(backbones):
    """SSDLite-320 on COCO for every backbone config: `ssd_<backbone>`. Post-processing as the
    family's official code: v1 family (cvnets v0.1) score > 0.05, 200 boxes per class after NMS;
    v2 family (v0.2) score > 0.01, the best 400 per class into NMS, 200 boxes per image."""
    out = {}
    for bb in backbones:
        name = f"ssd_{bb.name}"
        if bb.block in ("v1", "v3_v1"):
            out[name] = SSDConfig(name, bb.name)
        else:
            out[name] = SSDConfig(name, bb.name, score_threshold=0.01, top_k=None, pre_nms_top_k=400,
                                  max_detections=200)
    return out
