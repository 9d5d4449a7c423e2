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
from ..blocks.mobilevit_v2 import MobileViTBlockV2
from ..blocks.mobilevit_v3 import MobileViTv3BlockV1, MobileViTv3BlockV2
from ..errors import InputError
from ..kernels.pool import global_avg_pool
from ..memory import keep_freed_memory
from ..nn import ConvBNAct, Linear, Module
from ..threads import blas_single_thread, get_num_threads, pool_guard, split_batch
from .config import MV2Stage

# config.block -> a function building the MobileViT block of a ViTStage
BLOCKS = {
    "v1": lambda c, st: MobileViTBlock(c, st.dim, st.ffn, st.depth, st.heads, st.patch),
    "v2": lambda c, st, dilation=1: MobileViTBlockV2(c, st.dim, st.ffn, st.depth, st.patch, dilation=dilation),
    "v3_v1": lambda c, st: MobileViTv3BlockV1(c, st.dim, st.ffn, st.depth, st.heads, st.patch),
    "v3_v2": lambda c, st, dilation=1: MobileViTv3BlockV2(c, st.dim, st.ffn, st.depth, st.patch,
                                                          dilation=dilation),
}


# blocks whose local depthwise conv takes the stage's dilation (the v1-family blocks never do)
DILATED_BLOCKS = ("v2", "v3_v2")

# output stride -> the stages that trade their stride 2 for dilation (DeepLab backbones)
DILATE = {32: (), 16: (5,), 8: (4, 5)}


def _make_stage(st, cin, block, dilate=False, dilation=1):
    """The blocks of one stage (a list), its output channels and the dilation after it.

    dilate: the stage keeps its input resolution: its stride-2 inverted residual
    gets stride 1 (at the dilation so far) and the convs after it twice the dilation.
    """
    if isinstance(st, MV2Stage):
        layers = [InvertedResidual(cin if i == 0 else st.out, st.out, st.stride if i == 0 else 1, st.expand)
                  for i in range(st.blocks)]
        return layers, st.out, dilation
    layers = []
    if st.stride == 2:
        layers.append(InvertedResidual(cin, st.out, 1 if dilate else 2, st.expand, dilation=dilation))
        dilation = 2 * dilation if dilate else dilation
        cin = st.out
    if dilation > 1 and block in DILATED_BLOCKS:
        layers.append(BLOCKS[block](cin, st, dilation))
    else:
        layers.append(BLOCKS[block](cin, st))
    return layers, cin, dilation


class Network(Module):
    """What every minivit network shares: the input check, the thread policy for one
    pass (see minivit/threads.py), and `trace`. Subclasses define forward(x, record);
    those with split_images also per_image(x) and joint(y), with forward(x) == joint(per_image(x))."""

    split_images = False    # True: a batch runs per_image one image at a time, then joint in groups

    def __call__(self, x):
        """The network's output for x (N, 3, H, W): RGB in [0, 1] (see the class's forward)."""
        keep_freed_memory()
        with pool_guard(), blas_single_thread():     # once per pass, not per matmul
            x = check_input(x)
            if not self.split_images:
                return self.forward(x)
            y = split_batch(self.per_image, x)                          # each thread: the next image
            return split_batch(self.joint, y, per=-(-len(y) // get_num_threads()))   # one group per thread

    def trace(self, x):
        """An ordered dict of named intermediate arrays (stage outputs, block internals, outputs)."""
        out = OrderedDict()

        def record(name, a):
            out[name] = a.copy()
        keep_freed_memory()
        with pool_guard(), blas_single_thread():
            self.forward(check_input(x), record)
        return out


class MobileViT(Network):
    # A batch runs its large maps one image at a time (per_image), each image's activations staying
    # in cache, and the rest in groups (joint: the whole batch on one thread, half of it per thread
    # on two). From layer_4's MobileViT block on (16x16 maps at 256x256), a layer's weights outweigh
    # one image's activations, and a group multiplies them into several images at once, with one
    # kernel call for the group. Batch 8 against one image at a time throughout, 10 interleaved
    # windows (medians of the per-window ratios, benchmarks/PROFILE.md, "Batches in two parts"):
    # one thread 18 of 19 variants faster, 1.006-1.107 (median 1.04; mobilevitv3_xs 0.97), two
    # threads 15 of 19, 1.018-1.145 (median 1.06; mobilevitv3_s 1.000, mobilevitv2_150 0.93,
    # _175 and _200 0.995-0.998).
    split_images = True
    JOINT_FROM = 4                         # the first MobileViT block of this stage starts joint()

    def __init__(self, config, num_classes=1000, output_stride=32, classifier=True):
        """output_stride 16 or 8 dilates layer_5 (and layer_4) instead of striding them;
        classifier=False leaves out conv_1x1_exp and the classifier (a backbone for dense heads)."""
        self.config = config
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.conv_1 = ConvBNAct(3, config.stem, 3, stride=2)
        c, dilation = config.stem, 1
        for k, st in enumerate(config.stages, 1):
            layer, c, dilation = _make_stage(st, c, config.block, k in DILATE[output_stride], dilation)
            setattr(self, f"layer_{k}", layer)
        self.channels = c    # of the layer_5 output
        has_exp = classifier and config.exp_channels
        self.conv_1x1_exp = ConvBNAct(c, config.exp_channels, 1) if has_exp else None
        self.classifier = Linear(config.exp_channels or c, num_classes) if classifier else None

    @property
    def name(self):
        return self.config.name

    def _blocks(self):
        """(stage k, block, whether it ends its stage) for every block of layer_1 ... layer_5, in order."""
        return [(k, block, j == len(layer) - 1) for k in range(1, 6)
                for layer in [getattr(self, f"layer_{k}")] for j, block in enumerate(layer)]

    def split_blocks(self):
        """(per_image's blocks, joint's blocks): _blocks() cut before the first MobileViT block from
        layer_JOINT_FROM on (in every variant, layer_4's); with none, joint runs the head only."""
        blocks = self._blocks()
        start = next((i for i, (k, block, _) in enumerate(blocks)
                      if k >= self.JOINT_FROM and not isinstance(block, InvertedResidual)), len(blocks))
        return blocks[:start], blocks[start:]

    def _run(self, x, blocks, record=None, outs=None):
        """x through blocks (from _blocks()); each stage's output recorded and appended to outs."""
        rec = record or (lambda name, a: None)
        for k, block, ends_stage in blocks:
            if isinstance(block, InvertedResidual):
                x = block(x)
            else:
                x = block(x, None if record is None else (lambda name, a, k=k: rec(f"layer_{k}_{name}", a)))
            if ends_stage:
                rec(f"layer_{k}", x)
                if outs is not None:
                    outs.append(x)
        return x

    def features(self, x, record=None):
        """x (B, 3, H, W) float32 -> [layer_1 ... layer_5 outputs]. `record(name, array)` sees each stage."""
        x = self.conv_1(x)
        if record is not None:
            record("conv_1", x)
        outs = []
        self._run(x, self._blocks(), record, outs)
        return outs

    def per_image(self, x):
        """The pass up to joint(): the stem and split_blocks()'s first half."""
        return self._run(self.conv_1(x), self.split_blocks()[0])

    def joint(self, x):
        """The rest of the pass, from per_image's output to the logits."""
        return self._head(self._run(x, self.split_blocks()[1]))

    def forward(self, x, record=None):
        """x (B, 3, H, W) float32 -> logits (B, classes). `record(name, array)` sees each stage."""
        return self._head(self.features(x, record)[-1], record)

    def _head(self, x, record=None):
        """layer_5's output -> logits: conv_1x1_exp (if any), global average pool, classifier."""
        rec = record or (lambda name, a: None)
        if self.conv_1x1_exp is not None:
            x = self.conv_1x1_exp(x)
            rec("conv_1x1_exp", x)
        features = global_avg_pool(x)      # (B, C, H, W) -> (B, C)
        rec("features", features)
        logits = self.classifier(features)
        rec("logits", logits)
        return logits


MIN_SIZE = 32   # the network's total stride: below it every late stage sees the same 1x1 map


def check_input(x):
    """The one conversion a model input gets: to float32 (N, 3, H, W), C-contiguous, finite.

    A float32 C-contiguous array passes through without a copy; anything else
    (float64, a non-contiguous view, a list) is converted once.
    """
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
        raise InputError(f"model input is an empty batch: shape {a.shape}")
    if min(a.shape[2:]) < MIN_SIZE:
        raise InputError(f"model input is {a.shape[2]}x{a.shape[3]} pixels; the smallest size these networks "
                         f"take is {MIN_SIZE}x{MIN_SIZE} (their total stride)")
    if a.dtype.kind != "f":
        hint = " (for 8-bit pixels use x.astype(np.float32) / 255)" if a.dtype.kind in "ui" else ""
        raise InputError(f"model input must be floating point (RGB in [0, 1]), got dtype {a.dtype}{hint}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InputError("model input contains NaN or infinite values")
    return a
