"""The MobileViT network: stem, five stages, optional 1x1 expansion, classifier.

One class serves every family; the config's `block` picks the MobileViT block
that stages 3-5 use. Attribute names follow the official module names
(conv_1, layer_1 ... layer_5, conv_1x1_exp, classifier), so `trace` names
match the official code and the reference data.
"""
from collections import OrderedDict

import numpy as np

from ..blocks.inverted_residual import InvertedResidual
from ..blocks.mobilevit_v1 import MobileViTBlock
from ..errors import InputError
from ..kernels.pool import global_avg_pool
from ..nn import ConvBNAct, Linear, Module
from .config import MV2Stage

# config.block -> a function building the MobileViT block of a ViTStage
BLOCKS = {
    "v1": lambda c, st: MobileViTBlock(c, st.dim, st.ffn, st.depth, st.heads, st.patch),
}


def _make_stage(st, cin, block):
    """The blocks of one stage (a list) and its output channels."""
    if isinstance(st, MV2Stage):
        layers = [InvertedResidual(cin if i == 0 else st.out, st.out, st.stride if i == 0 else 1, st.expand)
                  for i in range(st.blocks)]
        return layers, st.out
    layers = []
    if st.stride == 2:
        layers.append(InvertedResidual(cin, st.out, 2, st.expand))
        cin = st.out
    layers.append(BLOCKS[block](cin, st))
    return layers, cin


class MobileViT(Module):
    def __init__(self, config, num_classes=1000):
        self.config = config
        self.num_classes = num_classes
        self.conv_1 = ConvBNAct(3, config.stem, 3, stride=2)
        c = config.stem
        for k, st in enumerate(config.stages, 1):
            layer, c = _make_stage(st, c, config.block)
            setattr(self, f"layer_{k}", layer)
        self.conv_1x1_exp = ConvBNAct(c, config.exp_channels, 1) if config.exp_channels else None
        self.classifier = Linear(config.exp_channels or c, num_classes)

    @property
    def name(self):
        return self.config.name

    def forward(self, x, record=None):
        """x (B, 3, H, W) float32 -> logits (B, classes). `record(name, array)` sees each stage."""
        rec = record or (lambda name, a: None)
        x = self.conv_1(x)
        rec("conv_1", x)
        for k in range(1, 6):
            for block in getattr(self, f"layer_{k}"):
                if isinstance(block, InvertedResidual):
                    x = block(x)
                else:
                    x = block(x, None if record is None else
                              (lambda name, a, k=k: rec(f"layer_{k}_{name}", a)))
            rec(f"layer_{k}", x)
        if self.conv_1x1_exp is not None:
            x = self.conv_1x1_exp(x)
            rec("conv_1x1_exp", x)
        features = global_avg_pool(x)      # (B, C, H, W) -> (B, C)
        rec("features", features)
        logits = self.classifier(features)
        rec("logits", logits)
        return logits

    def __call__(self, x):
        """Logits (N, num_classes) for x (N, 3, H, W): RGB in [0, 1]."""
        return self.forward(check_input(x))

    def trace(self, x):
        """An ordered dict of named intermediate arrays (stage outputs, block internals, logits)."""
        out = OrderedDict()

        def record(name, a):
            out[name] = a.copy()
        self.forward(check_input(x), record)
        return out


def check_input(x):
    """The one conversion a model input gets: to float32 (N, 3, H, W), C-contiguous, finite."""
    try:
        a = np.asarray(x)
    except Exception as e:
        raise InputError(f"model input must be an array of shape (N, 3, H, W); could not convert it: {e}")
    if a.ndim != 4:
        hint = " (add a batch axis: x[None])" if a.ndim == 3 else ""
        raise InputError(f"model input must have 4 dimensions (N, 3, H, W), got shape {a.shape}{hint}")
    if a.shape[1] != 3:
        hint = " (channels-last? use x.transpose(0, 3, 1, 2))" if a.shape[-1] == 3 else ""
        raise InputError(f"model input must have 3 channels on axis 1 (N, 3, H, W), got shape {a.shape}{hint}")
    if a.shape[0] == 0:
        raise InputError("model input is an empty batch (N = 0)")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"model input must be a float array, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InputError("model input contains NaN or infinite values")
    return a
