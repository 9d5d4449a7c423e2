"""Converting foreign state dicts into minivit's naming: the only module that
knows other projects' key names.

Each source has one table of rename rules (regex -> replacement, applied in
order to every key) per family. Afterwards, keys that the source splits but
minivit keeps together are merged (transformers' separate q/k/v projections
become one qkv). The result is checked strictly against the model: every
missing, unexpected or wrongly shaped key is reported in one error.

Channel order: minivit models always take RGB. A checkpoint trained on BGR
images (OpenCV) gets the flip folded into the stem convolution, by reversing
its input-channel axis.

Telling a checkpoint apart: `detect_source` names its naming from the stem
convolution's key; `detect_model` lists the registered classifiers whose every
key and shape it fits (used when no model is given, and in mismatch errors).
"""
import re

import numpy as np

from .errors import WeightsError
from .nn import describe_mismatch
from .weights import as_weight

SOURCES = ("cvnets", "timm", "hf")

# ---- apple/ml-cvnets (and the MobileViTv3 authors' code, which shares it) ----
_CVNETS_COMMON = [
    (r"\.block\.exp_1x1\.", ".expand."),            # inverted residual: 1x1 expansion
    (r"\.block\.conv_3x3\.", ".dw."),               # inverted residual: 3x3 depthwise
    (r"\.block\.red_1x1\.", ".project."),           # inverted residual: 1x1 reduction
    (r"\.block\.conv\.", ".conv."),                 # ConvLayer = Sequential(conv, norm, act)
    (r"\.block\.norm\.", ".bn."),
    (r"^classifier\.fc\.", "classifier."),
]
_CVNETS_V1 = _CVNETS_COMMON + [
    (r"\.local_rep\.conv_3x3\.", ".conv_kxk."),
    (r"\.local_rep\.conv_1x1\.", ".conv_1x1."),
    (r"\.global_rep\.(\d+)\.pre_norm_mha\.0\.", r".global_rep.transformer.\1.norm1."),
    (r"\.global_rep\.(\d+)\.pre_norm_mha\.1\.qkv_proj\.", r".global_rep.transformer.\1.attn.qkv."),
    (r"\.global_rep\.(\d+)\.pre_norm_mha\.1\.out_proj\.", r".global_rep.transformer.\1.attn.proj."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.0\.", r".global_rep.transformer.\1.norm2."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.1\.", r".global_rep.transformer.\1.mlp.fc1."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.4\.", r".global_rep.transformer.\1.mlp.fc2."),
    (r"\.global_rep\.\d+\.(weight|bias)$", r".global_rep.norm.\1"),   # the final LayerNorm
    (r"\.fusion\.", ".conv_fusion."),
]
# v2 (cvnets v0.2): rules see keys after _CVNETS_COMMON, so ".block.conv." is already ".conv."
_CVNETS_V2 = _CVNETS_COMMON + [
    (r"\.local_rep\.0\.", ".conv_kxk."),
    (r"\.local_rep\.1\.", ".conv_1x1."),
    (r"\.global_rep\.(\d+)\.pre_norm_attn\.0\.", r".global_rep.transformer.\1.norm1."),
    (r"\.global_rep\.(\d+)\.pre_norm_attn\.1\.qkv_proj\.conv\.", r".global_rep.transformer.\1.attn.qkv."),
    (r"\.global_rep\.(\d+)\.pre_norm_attn\.1\.out_proj\.conv\.", r".global_rep.transformer.\1.attn.proj."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.0\.", r".global_rep.transformer.\1.norm2."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.1\.conv\.", r".global_rep.transformer.\1.mlp.fc1."),
    (r"\.global_rep\.(\d+)\.pre_norm_ffn\.3\.conv\.", r".global_rep.transformer.\1.mlp.fc2."),
    (r"\.global_rep\.\d+\.(weight|bias)$", r".global_rep.norm.\1"),   # the final GroupNorm
    (r"^classifier\.1\.", "classifier."),                              # Sequential(GlobalPool, Linear)
]


def _stage(m):
    """transformers counts stages from 0, the official code from 1."""
    return f"layer_{int(m.group(1)) + 1}."


# ---- Hugging Face transformers MobileViTForImageClassification ----
_HF_COMMON = [
    (r"^mobilevit\.conv_stem\.", "conv_1."),
    (r"^mobilevit\.conv_1x1_exp\.", "conv_1x1_exp."),
    (r"^mobilevit\.encoder\.layer\.(\d+)\.layer\.(\d+)\.",
     lambda m: f"{_stage(m)}{m.group(2)}."),                                    # MobileNetV2 stages
    (r"^mobilevit\.encoder\.layer\.(\d+)\.downsampling_layer\.", lambda m: f"{_stage(m)}0."),
    (r"^mobilevit\.encoder\.layer\.(\d+)\.", lambda m: f"{_stage(m)}1."),        # the MobileViT block
    (r"\.expand_1x1\.", ".expand."),
    (r"\.conv_3x3\.", ".dw."),
    (r"\.reduce_1x1\.", ".project."),
    (r"\.convolution\.", ".conv."),
    (r"\.normalization\.", ".bn."),
]
_HF_V1 = _HF_COMMON + [
    (r"\.transformer\.layer\.(\d+)\.attention\.attention\.query\.", r".global_rep.transformer.\1.attn.q."),
    (r"\.transformer\.layer\.(\d+)\.attention\.attention\.key\.", r".global_rep.transformer.\1.attn.k."),
    (r"\.transformer\.layer\.(\d+)\.attention\.attention\.value\.", r".global_rep.transformer.\1.attn.v."),
    (r"\.transformer\.layer\.(\d+)\.attention\.output\.dense\.", r".global_rep.transformer.\1.attn.proj."),
    (r"\.transformer\.layer\.(\d+)\.intermediate\.dense\.", r".global_rep.transformer.\1.mlp.fc1."),
    (r"\.transformer\.layer\.(\d+)\.output\.dense\.", r".global_rep.transformer.\1.mlp.fc2."),
    (r"\.transformer\.layer\.(\d+)\.layernorm_before\.", r".global_rep.transformer.\1.norm1."),
    (r"\.transformer\.layer\.(\d+)\.layernorm_after\.", r".global_rep.transformer.\1.norm2."),
    (r"\.1\.layernorm\.", ".1.global_rep.norm."),
    (r"\.conv_projection\.", ".conv_proj."),
    (r"\.fusion\.", ".conv_fusion."),
]
# transformers MobileViTV2ForImageClassification: the v1 layout under "mobilevitv2.", with
# separable attention (1x1 convs) in place of q/k/v; rules see keys after _HF_COMMON
_HF_V2 = [(r"^mobilevitv2\.", "mobilevit.")] + _HF_COMMON + [
    (r"\.transformer\.layer\.(\d+)\.layernorm_before\.", r".global_rep.transformer.\1.norm1."),
    (r"\.transformer\.layer\.(\d+)\.attention\.qkv_proj\.conv\.", r".global_rep.transformer.\1.attn.qkv."),
    (r"\.transformer\.layer\.(\d+)\.attention\.out_proj\.conv\.", r".global_rep.transformer.\1.attn.proj."),
    (r"\.transformer\.layer\.(\d+)\.layernorm_after\.", r".global_rep.transformer.\1.norm2."),
    (r"\.transformer\.layer\.(\d+)\.ffn\.conv1\.conv\.", r".global_rep.transformer.\1.mlp.fc1."),
    (r"\.transformer\.layer\.(\d+)\.ffn\.conv2\.conv\.", r".global_rep.transformer.\1.mlp.fc2."),
    (r"\.1\.layernorm\.", ".1.global_rep.norm."),
    (r"\.conv_projection\.", ".conv_proj."),
]
# timm (pytorch-image-models mobilevit.py on its ByobNet): stem, stages.{s}.{j}, final_conv, head.fc;
# inverted residuals are BottleneckBlocks (conv1_1x1, conv2_kxk, conv3_1x1, each ConvNormAct with
# .conv/.bn); the MobileViT blocks keep conv_kxk / conv_1x1 (a bare Conv2d) / transformer / norm /
# conv_proj / conv_fusion
_TIMM_COMMON = [
    (r"^stem\.", "conv_1."),
    (r"^stages\.(\d+)\.", lambda m: f"layer_{int(m.group(1)) + 1}."),
    (r"\.conv1_1x1\.", ".expand."),
    (r"\.conv2_kxk\.", ".dw."),
    (r"\.conv3_1x1\.", ".project."),
    (r"\.conv_1x1\.weight$", ".conv_1x1.conv.weight"),
    (r"\.transformer\.(\d+)\.", r".global_rep.transformer.\1."),
    (r"^(layer_\d+\.\d+)\.norm\.", r"\1.global_rep.norm."),
    (r"^final_conv\.", "conv_1x1_exp."),
    (r"^head\.fc\.", "classifier."),
]
_TIMM_V1 = _TIMM_COMMON                          # timm's ViT Block: norm1, attn.qkv/proj, norm2, mlp.fc1/fc2
_TIMM_V2 = _TIMM_COMMON + [                      # LinearTransformerBlock: attn.qkv_proj/out_proj, mlp a ConvMlp
    (r"\.attn\.qkv_proj\.", ".attn.qkv."),
    (r"\.attn\.out_proj\.", ".attn.proj."),
]

# (source, config.block) -> rename rules. Other families add their tables here.
RULES = {
    ("cvnets", "v1"): _CVNETS_V1,
    ("cvnets", "v3_v1"): _CVNETS_V1,     # v1-based v3: the v1 module names, so the v1 table
    ("hf", "v1"): _HF_V1,
    ("cvnets", "v2"): _CVNETS_V2,
    ("cvnets", "v3_v2"): _CVNETS_V2,     # v2-based v3: the v2 module names (conv_proj is wider)
    ("hf", "v2"): _HF_V2,
    ("timm", "v1"): _TIMM_V1,
    ("timm", "v2"): _TIMM_V2,
}

# (source, config.block) -> the channel order checkpoints of that kind were trained on
DEFAULT_CHANNELS = {
    ("cvnets", "v1"): "bgr",    # official v1 checkpoints: OpenCV-decoded images
    ("cvnets", "v3_v1"): "bgr",  # the v3 authors trained the v1-based ones on cvnets v0.1 (OpenCV)
    ("hf", "v1"): "bgr",        # converted from the official ones
    ("timm", "v1"): "rgb",      # timm flipped the stem when it converted them
    ("cvnets", "v2"): "rgb",    # cvnets v0.2 trained v2 on Pillow-decoded (RGB) images
    ("cvnets", "v3_v2"): "rgb",  # the v3 authors trained the v2-based ones on cvnets v0.2 (Pillow)
    ("hf", "v2"): "rgb",        # converted from the official v2 ones
    ("timm", "v2"): "rgb",
}

# ---- dense heads (DeepLabv3, SSDLite): backbone keys go through the family's table above ----
# official segmentation / detection checkpoints: the backbone under "encoder."
_CVNETS_DENSE = {
    "segmentation": [
        (r"^seg_head\.aspp\.aspp_layer\.convs\.4\.aspp_pool\.conv_1x1\.", "aspp.pool."),  # image pooling
        (r"^seg_head\.aspp\.aspp_layer\.", "aspp."),
        (r"^seg_head\.classifier\.(classifier\.)?", "classifier."),   # v0.1 wraps it in a Sequential
        (r"\.block\.conv\.", ".conv."),
        (r"\.block\.norm\.", ".bn."),
    ],
    "detection": [
        (r"^extra_layers\.os_64\.", "extra_layers.0."),
        (r"^extra_layers\.os_128\.", "extra_layers.1."),
        (r"^extra_layers\.os_256\.", "extra_layers.2."),
        (r"^extra_layers\.os_-1\.1\.", "extra_pool."),             # Sequential(global pool, conv)
        (r"\.block\.conv\.", ".conv."),
        (r"\.block\.norm\.", ".bn."),
    ],
}
# transformers *ForSemanticSegmentation: the backbone under "mobilevit." / "mobilevitv2."
_HF_DENSE = {
    "segmentation": [
        (r"^segmentation_head\.aspp\.convs\.4\.conv_1x1\.", "aspp.pool."),
        (r"^segmentation_head\.", ""),
        (r"\.convolution\.", ".conv."),
        (r"\.normalization\.", ".bn."),
    ],
}
_DENSE_BACKBONE = {"cvnets": re.compile(r"^encoder\."), "hf": re.compile(r"^(?=mobilevit(v2)?\.)")}


def _dense_renamer(source, task, backbone_rules):
    """key -> minivit key for a segmentation/detection checkpoint: the backbone part by the
    classifier family's rules, under "encoder."; the head by the task's table."""
    head = {"cvnets": _CVNETS_DENSE, "hf": _HF_DENSE}.get(source, {}).get(task)
    if head is None:
        raise WeightsError(f"converting {source!r} {task} checkpoints is not supported")

    def renamer(key):
        m = _DENSE_BACKBONE[source].match(key)
        return "encoder." + rename(key[m.end():], backbone_rules) if m else rename(key, head)
    return renamer


_SKIP = re.compile(r"(num_batches_tracked|\.aux_head\..*)$")


def to_float32(key, value):
    """One checkpoint tensor (torch or NumPy) as a float32 array, or a WeightsError naming the key.

    The dtype and finiteness rules are the weights loader's (`minivit.weights.as_weight`).
    """
    if hasattr(value, "detach"):                       # a torch tensor: no torch import needed
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return as_weight("checkpoint", key, np.asarray(value))


def rename(key, rules):
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def _merge_qkv(out, origin):
    """transformers' separate q, k, v projections -> one qkv, stacked in that order."""
    for key in [k for k in out if re.search(r"\.attn\.q\.(weight|bias)$", k)]:
        parts = [key.replace(".attn.q.", f".attn.{p}.") for p in "qkv"]
        if all(p in out for p in parts):
            merged = key.replace(".attn.q.", ".attn.qkv.")
            out[merged] = np.concatenate([out.pop(p) for p in parts], axis=0)
            origin[merged] = " + ".join(origin.pop(p) for p in parts)


def convert_state_dict(state_dict, model, source, checkpoint_channels=None):
    """Map a PyTorch state dict from `source` naming into minivit's naming, strictly.

    state_dict: {key: torch tensor or array}; model: a minivit model or its name;
    source: "cvnets", "timm" or "hf"; checkpoint_channels: "rgb" or "bgr", the
    channel order the checkpoint was trained on (default: what that source's
    released checkpoints use). Returns {minivit key: float32 array}.
    """
    if isinstance(model, str):
        model = _model_for(model, state_dict, source)
    task = getattr(model.config, "task", "classification")
    dense = task != "classification"
    block = (model.encoder if dense else model).config.block
    if source not in SOURCES:
        raise WeightsError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if (source, block) not in RULES:
        raise WeightsError(f"converting {source!r} checkpoints for {model.name} is not supported yet")
    rules = RULES[(source, block)]
    renamer = _dense_renamer(source, task, rules) if dense else (lambda k: rename(k, rules))
    out, origin = {}, {}
    for key, value in state_dict.items():
        if _SKIP.search(key):
            continue
        new = renamer(key)
        out[new] = to_float32(key, value)
        origin[new] = key
    _merge_qkv(out, origin)

    own = model.state_dict()
    missing = [k for k in own if k not in out]
    unexpected = [origin[k] for k in out if k not in own]
    bad = [(f"{origin[k]} (minivit: {k})", own[k].shape, out[k].shape)
           for k in own if k in out and own[k].shape != out[k].shape]
    if missing or unexpected or bad:
        raise WeightsError(describe_mismatch(missing, unexpected, bad) + _fit_hint(state_dict, source, model))

    channels = checkpoint_channels or DEFAULT_CHANNELS.get((source, block), "rgb")
    if channels not in ("rgb", "bgr"):
        raise WeightsError(f"checkpoint_channels must be 'rgb' or 'bgr', got {channels!r}")
    if channels == "bgr":
        # the stem saw (B, G, R); reversing its input axis makes it take (R, G, B)
        stem = "encoder.conv_1.conv.weight" if dense else "conv_1.conv.weight"
        out[stem] = np.ascontiguousarray(out[stem][:, ::-1])
    return {k: out[k] for k in own}


# ---- telling the naming and the variant from the keys and shapes ----
# Each naming calls the stem convolution differently; dense checkpoints put the
# backbone under "encoder." (cvnets) or keep the classifier's prefix (hf).
_STEM_KEYS = {
    "cvnets": re.compile(r"^(encoder\.)?conv_1\.block\.conv\.weight$"),
    "timm": re.compile(r"^stem\.conv\.weight$"),
    "hf": re.compile(r"^mobilevit(v2)?\.conv_stem\.convolution\.weight$"),
}
_MINIVIT_STEM = re.compile(r"^(encoder\.)?conv_1\.conv\.weight$")


def detect_source(state_dict, where="checkpoint"):
    """The naming a state dict uses, "cvnets", "timm" or "hf", told by its stem convolution's key."""
    keys = list(state_dict)
    found = [s for s, pattern in _STEM_KEYS.items() if any(pattern.match(k) for k in keys)]
    if len(found) == 1:
        return found[0]
    if not found and any(_MINIVIT_STEM.match(k) for k in keys):
        raise WeightsError(f"{where}: already in minivit's naming (conv_1.conv.weight); load it as "
                           f"minivit weights, no conversion needed")
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    raise WeightsError(f"{where}: cannot tell the naming from the keys ({len(keys)} keys: {shown}); "
                       f"expected one stem key: conv_1.block.conv.weight (cvnets), stem.conv.weight "
                       f"(timm) or mobilevit.conv_stem.convolution.weight (hf); give the source explicitly")


def _minivit_shapes(state_dict, source, block):
    """{minivit key: shape} of a state dict renamed by one (source, block) table; no copies of the data."""
    rules = RULES[(source, block)]
    out, origin = {}, {}
    for key, value in state_dict.items():
        if not _SKIP.search(key):
            new = rename(key, rules)
            out[new] = np.broadcast_to(np.float32(0), tuple(np.shape(value)))   # a stand-in, no memory
            origin[new] = key
    _merge_qkv(out, origin)
    return {k: tuple(v.shape) for k, v in out.items()}


def detect_model(state_dict, source):
    """The registered classifiers whose every key and shape a `source`-named state dict fits,
    with any number of classes: a list of names (empty if none fits; dense models are not tried)."""
    from .models.mobilevit import MobileViT
    from .models.registry import get_config, list_models
    fits, renamed = [], {}
    for name in list_models():
        config = get_config(name)
        if (source, config.block) not in RULES:
            continue
        table = id(RULES[(source, config.block)])
        if table not in renamed:
            renamed[table] = _minivit_shapes(state_dict, source, config.block)
        shapes = renamed[table]
        fc, stem = shapes.get("classifier.weight"), shapes.get("conv_1.conv.weight")
        # a cheap filter before building the model: stem width and classifier input width
        if (fc is None or stem is None or len(fc) != 2 or len(stem) != 4 or stem[0] != config.stem
                or fc[1] != (config.exp_channels or config.stages[-1].out)):
            continue
        own = MobileViT(config, fc[0]).state_dict()
        if own.keys() == shapes.keys() and all(own[k].shape == shapes[k] for k in own):
            fits.append(name)
    return fits


def _model_for(name, state_dict, source):
    """A model named `name` with as many classes as the checkpoint's classifier has (weights unset)."""
    from .models.mobilevit import MobileViT
    from .models.registry import create_model, get_config
    config = get_config(name)
    if getattr(config, "task", "classification") != "classification" or (source, config.block) not in RULES:
        return create_model(name)
    fc = _minivit_shapes(state_dict, source, config.block).get("classifier.weight")
    return MobileViT(config, fc[0] if fc is not None and len(fc) == 2 else 1000)


def _fit_hint(state_dict, source, model):
    """A sentence for a mismatch error: which naming or variant the checkpoint does fit."""
    try:
        actual = detect_source(state_dict)
    except WeightsError:
        return ""
    if actual != source:
        return f"\nthe keys look like the {actual!r} naming, not {source!r}"
    if getattr(model.config, "task", "classification") != "classification":
        return ""
    fits = detect_model(state_dict, source)
    if fits and model.name not in fits:
        return f"\nits keys and shapes fit {' or '.join(fits)}, not {model.name}"
    return ""
