"""Model configurations: frozen dataclasses and the registry of named presets.

A config says everything needed to build a network (stage widths, depths,
which MobileViT block) and to feed it (input size and preprocessing).
Widths are written as the official code states them (v1) or computed by the
official rules from a width multiplier (v2 and v2-based v3).
"""
from dataclasses import dataclass, field


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


def _v1(name, stem, l1, l2, l3, l4, l5, expand, paper):
    """A v1 preset: ViT stages given as (out, dim, ffn, depth); the head expands 4x, at most 960."""
    vit = [ViTStage(o, d, f, n, 2, expand) for o, d, f, n in (l3, l4, l5)]
    stages = (MV2Stage(l1, 1, 1, expand), MV2Stage(l2, 3, 2, expand), *vit)
    return ModelConfig(name, "v1", stem, stages, min(4 * l5[0], 960), paper=paper)


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
