"""A compact PyTorch reference of the MobileViT family, for tests, benchmarks and training.

Holds all 19 classification variants: MobileViT v1 (mobilevit_xxs/xs/s), MobileViTv2
(mobilevitv2_050 ... _200) and MobileViTv3, both the v1-based (mobilevitv3_xxs/xs/s and the
low-latency *_l2) and the v2-based (mobilevitv3_050/075/100). Written from the papers and
the official code's numerics; torch only (no cvnets, timm or transformers). Not part of the
minivit package, which never imports torch.

Contract:
- Input NCHW, RGB in [0, 1], no mean/std; eval() mode reproduces the official models.
- The state_dict has the official key names, shapes and order (tests/data/keys/<name>.txt),
  so official checkpoints and tests/synth.py weights load with strict=True.
- `model.trace(x)` returns every stage the reference data stores (conv_1, layer_1..5,
  layer_k_local / layer_k_global for k = 3, 4, 5, conv_1x1_exp, features, logits).
- Sizes the 2x2 patches do not divide: v1 and v3 (v1-based) resize the map bilinearly
  (align_corners=False) up to the next multiple before unfolding and back after folding;
  v2 and v3 (v2-based) resize the block input (align_corners=True) and never back.

Shape legend: B batch, C channels of the CNN path, d transformer width, H, W map size,
ph, pw patch size, P = ph*pw pixels per patch, N = (H/ph)*(W/pw) patches.
"""
import math
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
KEYS_DIR = HERE / "data" / "keys"


# ----------------------------------------------------------------------------- layers

def make_divisible(v, divisor=8, min_value=None):
    """Round v to the nearest multiple of divisor, never going down by more than 10%."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBN(nn.Module):
    """Conv2d -> BatchNorm2d -> SiLU, the official `ConvLayer` (state keys block.conv / block.norm).

    BatchNorm and SiLU can each be switched off; "same" padding for odd kernels.
    """

    def __init__(self, cin, cout, k=1, stride=1, groups=1, norm=True, act=True, bias=False):
        super().__init__()
        layers = OrderedDict(conv=nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias))
        if norm:
            layers["norm"] = nn.BatchNorm2d(cout, eps=1e-5)
        if act:
            layers["act"] = nn.SiLU()
        self.block = nn.Sequential(layers)

    def forward(self, x):
        return self.block(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise (stride) -> 1x1 reduce, residual if shapes allow."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = make_divisible(int(round(cin * expand)), 8)
        layers = OrderedDict()
        if expand != 1:
            layers["exp_1x1"] = ConvBN(cin, hidden, 1)
        layers["conv_3x3"] = ConvBN(hidden, hidden, 3, stride=stride, groups=hidden)
        layers["red_1x1"] = ConvBN(hidden, cout, 1, act=False)
        self.block = nn.Sequential(layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class GlobalMeanPool(nn.Module):
    """(B, C, H, W) -> (B, C): mean over the spatial dimensions."""

    def forward(self, x):
        return x.mean(dim=(-2, -1))


# ------------------------------------------------------------- v1: transformer on (B*P, N, d)

class MultiHeadAttention(nn.Module):
    """Softmax self-attention over the N patches, one sequence per pixel position (v1 and v3-v1)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.heads = heads
        self.scale = (dim // heads) ** -0.5

    def forward(self, x):
        b, n, d = x.shape
        # (b, n, 3*d) -> (b, n, 3, heads, hd) -> (3, b, heads, n, hd)
        qkv = self.qkv_proj(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)   # (b, heads, n, n)
        # (b, heads, n, hd) -> (b, n, heads, hd) -> (b, n, d)
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class TransformerEncoder(nn.Module):
    """Pre-norm transformer layer: x + MHA(LN(x)), then x + FFN(LN(x)) with a SiLU FFN.

    The Sequential indices follow the official layout, dropouts included (inactive in eval).
    """

    def __init__(self, dim, ffn_dim, heads, dropout=0.0):
        super().__init__()
        self.pre_norm_mha = nn.Sequential(nn.LayerNorm(dim, eps=1e-5), MultiHeadAttention(dim, heads),
                                          nn.Dropout(dropout))
        self.pre_norm_ffn = nn.Sequential(nn.LayerNorm(dim, eps=1e-5), nn.Linear(dim, ffn_dim), nn.SiLU(),
                                          nn.Dropout(0.0), nn.Linear(ffn_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.pre_norm_mha(x)
        return x + self.pre_norm_ffn(x)


def unfold_v1(x, ph, pw):
    """(B, C, H, W) -> (B*P, N, C): one sequence of N patches per pixel position inside a patch."""
    b, c, h, w = x.shape
    nh, nw = h // ph, w // pw
    # (B, C, nh, ph, nw, pw) -> (B, ph, pw, nh, nw, C) -> (B*P, N, C)
    x = x.reshape(b, c, nh, ph, nw, pw).permute(0, 3, 5, 2, 4, 1)
    return x.reshape(b * ph * pw, nh * nw, c)


def fold_v1(patches, b, h, w, ph, pw):
    """(B*P, N, C) -> (B, C, H, W), the inverse of unfold_v1."""
    c = patches.shape[-1]
    nh, nw = h // ph, w // pw
    # (B*P, N, C) -> (B, ph, pw, nh, nw, C) -> (B, C, nh, ph, nw, pw) -> (B, C, H, W)
    x = patches.reshape(b, ph, pw, nh, nw, c).permute(0, 5, 3, 1, 4, 2)
    return x.reshape(b, c, h, w)


class MobileViTBlock(nn.Module):
    """MobileViT v1 block: local 3x3+1x1 convs, transformer on patches, 1x1 projection,
    then a 3x3 fusion of cat(block input, projection)."""

    def __init__(self, c, dim, ffn_dim, depth, heads=4, patch=2, dropout=0.0):
        super().__init__()
        self.local_rep = nn.Sequential(OrderedDict(
            conv_3x3=ConvBN(c, c, 3),
            conv_1x1=ConvBN(c, dim, 1, norm=False, act=False)))
        self.global_rep = nn.Sequential(*[TransformerEncoder(dim, ffn_dim, heads, dropout) for _ in range(depth)],
                                        nn.LayerNorm(dim, eps=1e-5))
        self.conv_proj = ConvBN(dim, c, 1)
        self.fusion = ConvBN(2 * c, c, 3)
        self.patch = patch

    def global_path(self, local):
        """(B, d, H, W) -> (B, d, H, W): unfold, transformer, fold (resizing if patches do not divide)."""
        b, _, h, w = local.shape
        p = self.patch
        nh, nw = math.ceil(h / p) * p, math.ceil(w / p) * p
        resized = (nh, nw) != (h, w)
        if resized:
            local = F.interpolate(local, size=(nh, nw), mode="bilinear", align_corners=False)
        fm = fold_v1(self.global_rep(unfold_v1(local, p, p)), b, nh, nw, p, p)
        if resized:
            fm = F.interpolate(fm, size=(h, w), mode="bilinear", align_corners=False)
        return fm

    def forward(self, x, taps=None):
        local = self.local_rep(x)
        glob = self.global_path(local)
        if taps is not None:
            taps.update(local=local, glob=glob)
        return self.fusion(torch.cat((x, self.conv_proj(glob)), dim=1))


class MobileViTv3Block(MobileViTBlock):
    """MobileViTv3 block on the v1 base: depthwise local 3x3, a 1x1 fusion of
    cat(local, projected global) instead of cat(input, ...), and a residual from the block input."""

    def __init__(self, c, dim, ffn_dim, depth, heads=4, patch=2, dropout=0.0):
        super().__init__(c, dim, ffn_dim, depth, heads, patch, dropout)
        self.local_rep.conv_3x3 = ConvBN(c, c, 3, groups=c)
        self.fusion = ConvBN(dim + c, c, 1)

    def forward(self, x, taps=None):
        local = self.local_rep(x)
        glob = self.global_path(local)
        if taps is not None:
            taps.update(local=local, glob=glob)
        return x + self.fusion(torch.cat((local, self.conv_proj(glob)), dim=1))


# ------------------------------------------------------- v2: linear attention on (B, d, P, N)

class LinearSelfAttention(nn.Module):
    """Separable self-attention (MobileViTv2): one context score per patch, softmax over N.

    out = out_proj( relu(V) * sum_N(K * softmax_N(q)) ), all projections 1x1 convs.
    """

    def __init__(self, dim):
        super().__init__()
        self.qkv_proj = ConvBN(dim, 1 + 2 * dim, 1, norm=False, act=False, bias=True)
        self.out_proj = ConvBN(dim, dim, 1, norm=False, act=False, bias=True)
        self.dim = dim

    def forward(self, x):
        # (B, d, P, N) -> (B, 1, P, N), (B, d, P, N), (B, d, P, N)
        q, k, v = torch.split(self.qkv_proj(x), [1, self.dim, self.dim], dim=1)
        scores = torch.softmax(q, dim=-1)                       # (B, 1, P, N)
        context = (k * scores).sum(dim=-1, keepdim=True)        # (B, d, P, 1)
        return self.out_proj(F.relu(v) * context)


class LinearAttnFFN(nn.Module):
    """Pre-norm v2 layer: x + LSA(GN(x)), then x + FFN(GN(x)); GN = GroupNorm with one group
    (the official layer_norm_2d: normalizes each sample over d, P and N together).

    Identity modules stand where the official code has dropouts of rate 0.
    """

    def __init__(self, dim, ffn_dim):
        super().__init__()
        self.pre_norm_attn = nn.Sequential(nn.GroupNorm(1, dim, eps=1e-5), LinearSelfAttention(dim), nn.Identity())
        self.pre_norm_ffn = nn.Sequential(
            nn.GroupNorm(1, dim, eps=1e-5),
            ConvBN(dim, ffn_dim, 1, norm=False, act=True, bias=True), nn.Identity(),
            ConvBN(ffn_dim, dim, 1, norm=False, act=False, bias=True), nn.Identity())

    def forward(self, x):
        x = x + self.pre_norm_attn(x)
        return x + self.pre_norm_ffn(x)


def unfold_v2(x, ph, pw, onnx_friendly=False):
    """(B, C, H, W) -> (B, C, P, N), the layout of F.unfold with kernel = stride = patch."""
    b, c, h, w = x.shape
    nh, nw = h // ph, w // pw
    if not onnx_friendly:
        # (B, C*P, N) -> (B, C, P, N)
        return F.unfold(x, kernel_size=(ph, pw), stride=(ph, pw)).reshape(b, c, ph * pw, nh * nw)
    # (B, C, nh, ph, nw, pw) -> (B, C, ph, pw, nh, nw) -> (B, C, P, N)
    x = x.reshape(b, c, nh, ph, nw, pw).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c, ph * pw, nh * nw)


def fold_v2(patches, h, w, ph, pw, onnx_friendly=False):
    """(B, C, P, N) -> (B, C, H, W), the inverse of unfold_v2 (F.fold)."""
    b, c, _, _ = patches.shape
    nh, nw = h // ph, w // pw
    if not onnx_friendly:
        # (B, C, P, N) -> (B, C*P, N) -> (B, C, H, W)
        return F.fold(patches.reshape(b, c * ph * pw, nh * nw), (h, w), kernel_size=(ph, pw), stride=(ph, pw))
    # (B, C, ph, pw, nh, nw) -> (B, C, nh, ph, nw, pw) -> (B, C, H, W)
    x = patches.reshape(b, c, ph, pw, nh, nw).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c, h, w)


class MobileViTv2Block(nn.Module):
    """MobileViTv2 block: depthwise 3x3 + 1x1 local convs, linear-attention layers on patches,
    1x1 projection (BN, no activation). No fusion, no residual."""

    def __init__(self, c, dim, ffn_dim, depth, patch=2, onnx_friendly=False):
        super().__init__()
        self.local_rep = nn.Sequential(ConvBN(c, c, 3, groups=c), ConvBN(c, dim, 1, norm=False, act=False))
        self.global_rep = nn.Sequential(*[LinearAttnFFN(dim, ffn_dim) for _ in range(depth)],
                                        nn.GroupNorm(1, dim, eps=1e-5))
        self.conv_proj = ConvBN(dim, c, 1, act=False)
        self.patch = patch
        self.onnx_friendly = onnx_friendly

    def resize_input(self, x):
        """Resize the block input up to a multiple of the patch (align_corners=True); never undone."""
        h, w = x.shape[-2:]
        p = self.patch
        if h % p or w % p:
            x = F.interpolate(x, size=(math.ceil(h / p) * p, math.ceil(w / p) * p),
                              mode="bilinear", align_corners=True)
        return x

    def global_path(self, local):
        """(B, d, H, W) -> (B, d, H, W): unfold, linear-attention layers, fold."""
        h, w = local.shape[-2:]
        p = self.patch
        patches = self.global_rep(unfold_v2(local, p, p, self.onnx_friendly))
        return fold_v2(patches, h, w, p, p, self.onnx_friendly)

    def forward(self, x, taps=None):
        x = self.resize_input(x)
        local = self.local_rep(x)
        glob = self.global_path(local)
        if taps is not None:
            taps.update(local=local, glob=glob)
        return self.conv_proj(glob)


class MobileViTv3v2Block(MobileViTv2Block):
    """MobileViTv3 block on the v2 base: the projection takes cat(global, local) and a
    residual adds the (resized) block input."""

    def __init__(self, c, dim, ffn_dim, depth, patch=2, onnx_friendly=False):
        super().__init__(c, dim, ffn_dim, depth, patch, onnx_friendly)
        self.conv_proj = ConvBN(2 * dim, c, 1, act=False)

    def forward(self, x, taps=None):
        x = self.resize_input(x)
        local = self.local_rep(x)
        glob = self.global_path(local)
        if taps is not None:
            taps.update(local=local, glob=glob)
        return x + self.conv_proj(torch.cat((glob, local), dim=1))


# ------------------------------------------------------------------------------ configs

@dataclass(frozen=True)
class Stage:
    """One stage layer_k: `blocks` inverted residuals, or (dim > 0) one stride-2 inverted
    residual followed by a MobileViT block of width dim, FFN width ffn_dim and depth layers."""
    out: int
    stride: int = 2
    blocks: int = 1
    dim: int = 0
    ffn_dim: int = 0
    depth: int = 0


@dataclass(frozen=True)
class Config:
    family: str          # "v1", "v3_v1" (v1-based v3), "v2", "v3_v2" (v2-based v3)
    stem: int            # conv_1 output channels
    expand: int          # expansion ratio of every inverted residual
    stages: tuple        # five Stage
    exp_channels: int    # conv_1x1_exp width (v1 family); 0: identity (v2 family)
    dropout: float = 0.0             # transformer dropout (v1 family)
    classifier_dropout: float = 0.0  # before the classifier's linear layer (v1 family)


# v1-family modes as the official configs type them:
# (expand, layer_1 out, layer_2 out, [(out, transformer dim, ffn dim, depth) for layer_3..5])
V1_MODES = {
    "xx_small": (2, 16, 24, [(48, 64, 128, 2), (64, 80, 160, 4), (80, 96, 192, 3)]),
    "x_small": (4, 32, 48, [(64, 96, 192, 2), (80, 120, 240, 4), (96, 144, 288, 3)]),
    "small": (4, 32, 64, [(96, 144, 288, 2), (128, 192, 384, 4), (160, 240, 480, 3)]),
    "xx_small_v3": (2, 16, 24, [(64, 64, 128, 2), (80, 80, 160, 4), (128, 96, 192, 3)]),
    "x_small_v3": (4, 32, 48, [(96, 96, 192, 2), (160, 120, 240, 4), (160, 144, 288, 3)]),
    "small_v3": (4, 32, 64, [(128, 144, 288, 2), (256, 192, 384, 4), (320, 240, 480, 3)]),
    # the low-latency "fast" modes (the *_l2 names) keep 2 transformer layers in layer_4
    "xx_small_v3_fast": (2, 16, 24, [(64, 64, 128, 2), (80, 80, 160, 2), (128, 96, 192, 3)]),
    "x_small_v3_fast": (4, 32, 48, [(96, 96, 192, 2), (160, 120, 240, 2), (160, 144, 288, 3)]),
    "small_v3_fast": (4, 32, 64, [(128, 144, 288, 2), (256, 192, 384, 2), (320, 240, 480, 3)]),
}


def v1_config(family, mode):
    """v1 and v3 (v1-based): stem 16, layer_1 one IR, layer_2 three IRs, conv_1x1_exp = min(4*C, 960)."""
    expand, c1, c2, vit = V1_MODES[mode]
    stages = (Stage(c1, stride=1, blocks=1), Stage(c2, stride=2, blocks=3)) + tuple(
        Stage(out, dim=dim, ffn_dim=ffn, depth=depth) for out, dim, ffn, depth in vit)
    return Config(family, stem=16, expand=expand, stages=stages, exp_channels=min(4 * vit[-1][0], 960),
                  dropout=0.05, classifier_dropout=0.1)


def v2_config(family, width):
    """v2 and v3 (v2-based): every width follows from the multiplier by the official rounding rules."""
    stem = int(make_divisible(max(16, min(64, 32 * width)), 8, min_value=16))
    stages = [Stage(int(make_divisible(64 * width, 16)), stride=1, blocks=1),
              Stage(int(make_divisible(128 * width, 8)), stride=2, blocks=2)]
    for out, dim, depth in ((256, 128, 2), (384, 192, 4), (512, 256, 3)):
        dim = int(make_divisible(dim * width, 8))
        stages.append(Stage(int(make_divisible(out * width, 8)), dim=dim, ffn_dim=(2 * dim // 16) * 16, depth=depth))
    return Config(family, stem=stem, expand=2, stages=tuple(stages), exp_channels=0)


PRESETS = {
    "mobilevit_xxs": ("v1", "xx_small"),
    "mobilevit_xs": ("v1", "x_small"),
    "mobilevit_s": ("v1", "small"),
    **{f"mobilevitv2_{w}": ("v2", int(w) / 100) for w in ("050", "075", "100", "125", "150", "175", "200")},
    "mobilevitv3_xxs": ("v3_v1", "xx_small_v3"),
    "mobilevitv3_xs": ("v3_v1", "x_small_v3"),
    "mobilevitv3_s": ("v3_v1", "small_v3"),
    "mobilevitv3_xxs_l2": ("v3_v1", "xx_small_v3_fast"),
    "mobilevitv3_xs_l2": ("v3_v1", "x_small_v3_fast"),
    "mobilevitv3_s_l2": ("v3_v1", "small_v3_fast"),
    **{f"mobilevitv3_{w}": ("v3_v2", int(w) / 100) for w in ("050", "075", "100")},
}
NAMES = list(PRESETS)


def get_config(name):
    family, arg = PRESETS[name]
    return v1_config(family, arg) if family in ("v1", "v3_v1") else v2_config(family, arg)


# -------------------------------------------------------------------------------- model

class MobileViT(nn.Module):
    """conv_1 (3x3 s2) -> layer_1..layer_5 -> conv_1x1_exp (v1 family) -> mean pool -> linear."""

    def __init__(self, cfg, num_classes=1000, onnx_friendly=False):
        super().__init__()
        self.cfg = cfg
        self.conv_1 = ConvBN(3, cfg.stem, 3, stride=2)
        c = cfg.stem
        for k, stage in enumerate(cfg.stages, start=1):
            setattr(self, f"layer_{k}", self._make_stage(c, stage, onnx_friendly))
            c = stage.out
        if cfg.exp_channels:
            self.conv_1x1_exp = ConvBN(c, cfg.exp_channels, 1)
            self.classifier = nn.Sequential(OrderedDict(
                global_pool=GlobalMeanPool(), dropout=nn.Dropout(cfg.classifier_dropout),
                fc=nn.Linear(cfg.exp_channels, num_classes)))
        else:
            self.conv_1x1_exp = nn.Identity()
            self.classifier = nn.Sequential(GlobalMeanPool(), nn.Linear(c, num_classes))

    def _make_stage(self, cin, st, onnx_friendly):
        cfg = self.cfg
        if not st.dim:
            return nn.Sequential(*[InvertedResidual(cin if i == 0 else st.out, st.out, st.stride if i == 0 else 1,
                                                    cfg.expand) for i in range(st.blocks)])
        ir = InvertedResidual(cin, st.out, st.stride, cfg.expand)
        if cfg.family == "v1":
            block = MobileViTBlock(st.out, st.dim, st.ffn_dim, st.depth, dropout=cfg.dropout)
        elif cfg.family == "v3_v1":
            block = MobileViTv3Block(st.out, st.dim, st.ffn_dim, st.depth, dropout=cfg.dropout)
        elif cfg.family == "v2":
            block = MobileViTv2Block(st.out, st.dim, st.ffn_dim, st.depth, onnx_friendly=onnx_friendly)
        else:
            block = MobileViTv3v2Block(st.out, st.dim, st.ffn_dim, st.depth, onnx_friendly=onnx_friendly)
        return nn.Sequential(ir, block)

    def set_onnx_friendly(self, flag=True):
        """Switch the v2-family unfold/fold between F.unfold/F.fold and reshape/permute (same numbers)."""
        for m in self.modules():
            if isinstance(m, MobileViTv2Block):
                m.onnx_friendly = flag
        return self

    def trace(self, x):
        """Run the model and return every stage, in forward order, as an ordered dict."""
        out = {}
        x = out["conv_1"] = self.conv_1(x)
        for k in range(1, 6):
            for m in getattr(self, f"layer_{k}"):
                if isinstance(m, InvertedResidual):
                    x = m(x)
                else:
                    taps = {}
                    x = m(x, taps)
                    out[f"layer_{k}_local"], out[f"layer_{k}_global"] = taps["local"], taps["glob"]
            out[f"layer_{k}"] = x
        if self.cfg.exp_channels:
            x = out["conv_1x1_exp"] = self.conv_1x1_exp(x)
        features = out["features"] = self.classifier[0](x)
        out["logits"] = self.classifier[1:](features)
        return out

    def forward(self, x):
        return self.trace(x)["logits"]


def build(name, num_classes=1000, onnx_friendly=False):
    """The variant `name` (one of NAMES) with fresh PyTorch-initialized weights, in eval mode."""
    if name not in PRESETS:
        raise ValueError(f"unknown model name {name!r}; expected one of {NAMES}")
    return MobileViT(get_config(name), num_classes, onnx_friendly).eval()


def load_synthetic(model, name):
    """Load the deterministic weights of tests/synth.py for `name` into model (strict)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from synth import read_keys_file, synth_state_dict
    sd = synth_state_dict(read_keys_file(KEYS_DIR / f"{name}.txt"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    return model
