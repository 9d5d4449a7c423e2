"""Model configurations: frozen dataclasses and the registry of named presets.

A config says everything needed to build a network (stage widths, depths,
which MobileViT block) and to feed it (input size and preprocessing).
Widths are written as the official code states them (v1) or computed by the
official rules from a width multiplier (v2 and v2-based v3).
"""
from dataclasses import dataclass, field

from ..blocks.inverted_residual import make_divisible


@dataclass(frozen=True)
class MV2Stage:
    """A stack of MobileNetV2 inverted residuals; the first one has the stride."""
    out: int
    blocks: int
    stride: int
    expand: float


@dataclass(frozen=True)
class ViTStage:
    """One inverted residual (stride 2) then one MobileViT block."""
    out: int          # channels of the stage output
    dim: int          # transformer width D
    ffn: int          # feed-forward hidden width
    depth: int        # transformer (or attention) layers
    stride: int
    expand: float     # expansion of the inverted residual in front
    heads: int = 4    # v1 attention heads (v2 separable attention has none)
    patch: int = 2


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model input: shorter side to `resize`, centre crop `crop`."""
    resize: int = 288
    crop: int = 256
    interpolation: str = "cv2_bilinear"   # or "pil_bicubic"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    block: str                         # "v1", "v2", "v3_v1" or "v3_v2": which MobileViT block
    stem: int                          # channels of conv_1
    stages: tuple                      # five MV2Stage / ViTStage
    exp_channels: int | None = None    # conv_1x1_exp width (None: no expansion, as in v2)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    paper: dict = field(default_factory=dict, compare=False)   # numbers the paper reports


def _v1(name, stem, l1, l2, l3, l4, l5, expand, paper, block="v1"):
    """A v1-style preset (v1, or v1-based v3 with block="v3_v1"): ViT stages given as
    (out, dim, ffn, depth); the head expands 4x, at most 960."""
    vit = [ViTStage(o, d, f, n, 2, expand) for o, d, f, n in (l3, l4, l5)]
    stages = (MV2Stage(l1, 1, 1, expand), MV2Stage(l2, 3, 2, expand), *vit)
    return ModelConfig(name, block, stem, stages, min(4 * l5[0], 960), paper=paper)


# v2 images: Pillow, shorter side to 288 (bicubic), centre crop 256 (cvnets v0.2 mobilevit_v2.yaml)
V2_PREPROCESSING = Preprocessing(resize=288, crop=256, interpolation="pil_bicubic")


def _v2(name, width, paper, block="v2"):
    """A v2-style preset (v2, or v2-based v3 with block="v3_v2") from its width multiplier, by
    the official rules (cvnets v0.2 config/mobilevit_v2.py): stem 32*width clipped to 16..64,
    then rounded to 8; layer_1 64*width rounded to 16; the other widths rounded to 8;
    attention widths d = 128/192/256 * width with 2/4/3 layers and FFN 2d rounded down
    to 16; every expansion ratio 2; no head expansion (conv_1x1_exp is an identity)."""
    def w(c, divisor=8):
        return int(make_divisible(c * width, divisor))
    stem = int(make_divisible(min(max(32 * width, 16), 64), 8, min_value=16))
    vit = []
    for out, dim, depth in ((256, 128, 2), (384, 192, 4), (512, 256, 3)):
        d = w(dim)
        vit.append(ViTStage(w(out), d, (2 * d) // 16 * 16, depth, 2, 2, heads=0))   # no heads in v2
    stages = (MV2Stage(w(64, 16), 1, 1, 2), MV2Stage(w(128), 2, 2, 2), *vit)
    return ModelConfig(name, block, stem, stages, None, V2_PREPROCESSING, paper=paper)


MODELS = {}


def register(cfg):
    MODELS[cfg.name] = cfg
    return cfg


# MobileViT v1 (Mehta and Rastegari, ICLR 2022; cvnets v0.1 config/mobilevit.py)
register(_v1("mobilevit_xxs", 16, 16, 24, (48, 64, 128, 2), (64, 80, 160, 4), (80, 96, 192, 3), 2,
             dict(params_m=1.3, top1=69.0)))
register(_v1("mobilevit_xs", 16, 32, 48, (64, 96, 192, 2), (80, 120, 240, 4), (96, 144, 288, 3), 4,
             dict(params_m=2.3, top1=74.8)))
register(_v1("mobilevit_s", 16, 32, 64, (96, 144, 288, 2), (128, 192, 384, 4), (160, 240, 480, 3), 4,
             dict(params_m=5.6, top1=78.4)))

# MobileViTv2 (Mehta and Rastegari, "Separable Self-attention for Mobile Vision Transformers", 2022;
# cvnets v0.2). paper: the cvnets v0.2 model zoo (params in millions, ImageNet-1k top-1 at 256x256).
for _width, _params, _top1 in ((0.5, 1.4, 70.18), (0.75, 2.9, 75.56), (1.0, 4.9, 78.09), (1.25, 7.5, 79.65),
                               (1.5, 10.6, 80.38), (1.75, 14.3, 80.84), (2.0, 18.4, 81.17)):
    register(_v2(f"mobilevitv2_{round(_width * 100):03d}", _width, dict(params_m=_params, top1=_top1)))

# MobileViTv3, v1-based (Wadekar and Chaurasia, 2022; MobileViTv3-v1 config/mobilevit.py, modes
# *_v3, and *_v3_fast for the low-latency *_l2: layer 4 has 2 transformer layers instead of 4).
# Layers 1-2 as in v1, wider layers 3-5, 4 heads; evaluated as v1 (OpenCV bilinear, 288 -> crop 256).
# paper: the authors' README table (params in millions, "FLOPs" in millions, ImageNet-1k top-1).
register(_v1("mobilevitv3_xxs", 16, 16, 24, (64, 64, 128, 2), (80, 80, 160, 4), (128, 96, 192, 3), 2,
             dict(params_m=1.2, macs_m=289, top1=70.98), block="v3_v1"))
register(_v1("mobilevitv3_xs", 16, 32, 48, (96, 96, 192, 2), (160, 120, 240, 4), (160, 144, 288, 3), 4,
             dict(params_m=2.5, macs_m=927, top1=76.7), block="v3_v1"))
register(_v1("mobilevitv3_s", 16, 32, 64, (128, 144, 288, 2), (256, 192, 384, 4), (320, 240, 480, 3), 4,
             dict(params_m=5.8, macs_m=1841, top1=79.3), block="v3_v1"))
register(_v1("mobilevitv3_xxs_l2", 16, 16, 24, (64, 64, 128, 2), (80, 80, 160, 2), (128, 96, 192, 3), 2,
             dict(params_m=1.1, macs_m=256, top1=70.23), block="v3_v1"))
register(_v1("mobilevitv3_xs_l2", 16, 32, 48, (96, 96, 192, 2), (160, 120, 240, 2), (160, 144, 288, 3), 4,
             dict(params_m=2.3, macs_m=853, top1=76.10), block="v3_v1"))
register(_v1("mobilevitv3_s_l2", 16, 32, 64, (128, 144, 288, 2), (256, 192, 384, 2), (320, 240, 480, 3), 4,
             dict(params_m=5.2, macs_m=1651, top1=79.06), block="v3_v1"))

# MobileViTv3, v2-based (MobileViTv3-v2 config/mobilevit_v3.py): the v2 widths and the v2
# evaluation (Pillow bicubic, 288 -> crop 256, as mobilevit_v3_oneserver.py sets it).
# paper: the authors' README table (params in millions, "FLOPs" in millions, ImageNet-1k top-1).
for _width, _params, _macs, _top1 in ((0.5, 1.4, 481, 72.33), (0.75, 3.0, 1064, 76.55), (1.0, 5.1, 1876, 78.64)):
    register(_v2(f"mobilevitv3_{round(_width * 100):03d}", _width,
                 dict(params_m=_params, macs_m=_macs, top1=_top1), block="v3_v2"))
