"""The timm key tables (MobileViT v1 and v2), tested without timm.

timm is not installed here, so its state_dict is written out by hand from its source
(timm/models/mobilevit.py and byobnet.py, pytorch-image-models 1.0.x): `timm_keys` below lists
the tensors each module registers, in registration order. timm's order is the official one
(the reference data's README notes that timm loads the official tensors by position), so a
timm-named checkpoint is built by pairing these names with the official key list position by
position. Converting it with source="timm" must give exactly what source="cvnets" gives.

A few real timm key names, seen in third-party code that loads timm's MobileViT checkpoints,
anchor the hand-written list.
"""
import numpy as np
import pytest

import minivit
from minivit.models.config import MV2Stage
from minivit.models.registry import get_config
from reference import official_weights

V1 = ["mobilevit_xxs", "mobilevit_xs", "mobilevit_s"]
V2 = ["mobilevitv2_050", "mobilevitv2_075", "mobilevitv2_100", "mobilevitv2_125", "mobilevitv2_150",
      "mobilevitv2_175", "mobilevitv2_200"]

# real key names of timm MobileViT checkpoints (v1: mobilevit_xs, v2: a mobilevitv2 exported to ONNX)
REAL_V1 = ["stages.2.1.conv_kxk.conv.weight", "stages.2.1.conv_kxk.bn.running_var",
           "stages.2.1.conv_1x1.weight", "stages.2.1.transformer.0.norm1.weight",
           "stages.2.1.transformer.0.attn.qkv.weight", "stages.2.1.transformer.0.attn.proj.bias",
           "stages.2.1.transformer.1.mlp.fc1.weight", "stages.2.1.transformer.1.mlp.fc2.bias",
           "stages.2.1.conv_proj.bn.running_mean", "stages.2.1.conv_fusion.conv.weight",
           "stages.3.0.conv1_1x1.conv.weight", "stages.3.0.conv2_kxk.bn.bias", "stages.3.0.conv3_1x1.bn.weight",
           "stages.4.1.transformer.0.mlp.fc2.weight"]
REAL_V2 = ["stages.4.1.transformer.0.attn.qkv_proj.weight", "stages.4.1.transformer.0.attn.qkv_proj.bias",
           "stages.4.1.transformer.0.attn.out_proj.weight"]


def conv_bn(p):
    """timm ConvNormAct: .conv (no bias) and .bn (BatchNormAct2d, a BatchNorm2d)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return [f"{p}.conv.weight"] + [f"{p}.bn.{b}" for b in bn]


def inverted_residual(p):
    """ByobNet BottleneckBlock(bottle_in=True, linear_out=True); shortcut and attn hold no tensors."""
    return conv_bn(f"{p}.conv1_1x1") + conv_bn(f"{p}.conv2_kxk") + conv_bn(f"{p}.conv3_1x1")


def mobilevit_block(p, depth, v2):
    """MobileVitBlock (v1) / MobileVitV2Block (v2)."""
    keys = conv_bn(f"{p}.conv_kxk") + [f"{p}.conv_1x1.weight"]
    qkv, out = ("qkv_proj", "out_proj") if v2 else ("qkv", "proj")
    for i in range(depth):
        t = f"{p}.transformer.{i}"
        for sub in ("norm1", f"attn.{qkv}", f"attn.{out}", "norm2", "mlp.fc1", "mlp.fc2"):
            keys += [f"{t}.{sub}.weight", f"{t}.{sub}.bias"]
    keys += [f"{p}.norm.weight", f"{p}.norm.bias"] + conv_bn(f"{p}.conv_proj")
    return keys if v2 else keys + conv_bn(f"{p}.conv_fusion")


def timm_keys(name):
    """timm's state_dict keys for a MobileViT / MobileViTv2 model, in order."""
    cfg = get_config(name)
    v2 = cfg.block == "v2"
    keys = conv_bn("stem")
    for s, st in enumerate(cfg.stages):
        if isinstance(st, MV2Stage):
            for j in range(st.blocks):
                keys += inverted_residual(f"stages.{s}.{j}")
        else:
            keys += inverted_residual(f"stages.{s}.0") + mobilevit_block(f"stages.{s}.1", st.depth, v2)
    if cfg.exp_channels:
        keys += conv_bn("final_conv")
    return keys + ["head.fc.weight", "head.fc.bias"]


def timm_checkpoint(name):
    """The official synthetic weights under timm's names (paired by position, kinds checked)."""
    official = official_weights(name)
    names = timm_keys(name)
    assert len(names) == len(official), f"{name}: {len(names)} timm keys, {len(official)} official"
    out = {}
    for tk, (ok, v) in zip(names, official.items()):
        # the tensor kind must agree: weight / bias / running_mean / running_var / num_batches_tracked
        assert tk.rsplit(".", 1)[1] == ok.rsplit(".", 1)[1], f"{name}: {tk} paired with {ok}"
        out[tk] = v
    return out


def test_real_key_names_are_in_the_hand_written_lists():
    assert set(REAL_V1) <= set(timm_keys("mobilevit_xs"))
    for name in V2:
        assert set(REAL_V2) <= set(timm_keys(name))
    # timm's default_cfg names the first conv "stem.conv" and the classifier "head.fc"
    assert timm_keys("mobilevitv2_050")[0] == "stem.conv.weight"
    assert timm_keys("mobilevit_s")[-2:] == ["head.fc.weight", "head.fc.bias"]


@pytest.mark.parametrize("name", V1 + V2)
def test_timm_table_gives_the_cvnets_weights(name):
    want = minivit.convert_state_dict(official_weights(name), name, "cvnets", checkpoint_channels="rgb")
    got = minivit.convert_state_dict(timm_checkpoint(name), name, "timm")
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_timm_checkpoint_with_a_missing_or_misshapen_tensor_is_refused():
    ckpt = timm_checkpoint("mobilevitv2_050")
    del ckpt["stages.4.1.norm.weight"]
    with pytest.raises(minivit.WeightsError, match=r"missing: layer_5\.1\.global_rep\.norm\.weight"):
        minivit.convert_state_dict(ckpt, "mobilevitv2_050", "timm")
    ckpt = timm_checkpoint("mobilevit_xxs")
    ckpt["stages.2.1.conv_1x1.weight"] = ckpt["stages.2.1.conv_1x1.weight"][:, :, None]
    with pytest.raises(minivit.WeightsError, match=r"stages\.2\.1\.conv_1x1\.weight"):
        minivit.convert_state_dict(ckpt, "mobilevit_xxs", "timm")
