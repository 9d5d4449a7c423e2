"""MobileViTv3 against the authors' code (micronDLA/MobileViTv3 over cvnets, float64 run):
every stage of mobilevitv3_xxs (v1-based) and mobilevitv3_050 (v2-based), the official
parameter counts of all nine variants, and the converter on all nine official key lists."""
import numpy as np
import pytest

import minivit
from minivit.models.mobilevit import MobileViT
from minivit.models.registry import get_config
from reference import DATA, check_against_official, official_input, official_weights, synthetic_model
from synth import read_keys_file

# official parameter counts (1000 classes), from the authors' code
PARAMS = {
    "mobilevitv3_xxs": 1249448, "mobilevitv3_xs": 2490360, "mobilevitv3_s": 5763912,
    "mobilevitv3_xxs_l2": 1145288, "mobilevitv3_xs_l2": 2257320, "mobilevitv3_s_l2": 5169864,
    "mobilevitv3_050": 1429985, "mobilevitv3_075": 2999641, "mobilevitv3_100": 5139409,
}
V1_BASED = ["mobilevitv3_xxs", "mobilevitv3_xs", "mobilevitv3_s",
            "mobilevitv3_xxs_l2", "mobilevitv3_xs_l2", "mobilevitv3_s_l2"]
V2_BASED = ["mobilevitv3_050", "mobilevitv3_075", "mobilevitv3_100"]
V1_STAGES = ["conv_1", "layer_1", "layer_2", "layer_3_local", "layer_3_global", "layer_3",
             "layer_4_local", "layer_4_global", "layer_4", "layer_5_local", "layer_5_global", "layer_5",
             "conv_1x1_exp", "features", "logits"]
# v2-based: no conv_1x1_exp (an identity upstream); each block also records its attention scores
V2_STAGES = [s for s in V1_STAGES if s != "conv_1x1_exp"]
V2_TRACE = [n for s in V2_STAGES for n in ([s, s.replace("global", "scores")] if s.endswith("global") else [s])]


@pytest.fixture(scope="module")
def trace_xxs():
    return synthetic_model("mobilevitv3_xxs").trace(official_input())


@pytest.mark.parametrize("stage", V1_STAGES)
def test_xxs_stage_matches_official(trace_xxs, stage):
    ref = np.load(DATA / "mobilevitv3_xxs.npz")
    check_against_official(ref, f"{stage}_256", trace_xxs[stage], atol=1e-5)   # v1-based tolerance


def test_xxs_trace_names(trace_xxs):
    assert list(trace_xxs) == V1_STAGES


@pytest.fixture(scope="module")
def trace_050():
    return synthetic_model("mobilevitv3_050").trace(official_input())


@pytest.mark.parametrize("stage", V2_STAGES)
def test_050_stage_matches_official(trace_050, stage):
    """layer_k_global is the global half of conv_proj's input, as the reference stores it."""
    ref = np.load(DATA / "mobilevitv3_050.npz")
    atol = 2e-5 if stage in ("features", "logits") else 5e-5     # v2-based tolerances
    check_against_official(ref, f"{stage}_256", trace_050[stage], atol=atol)


def test_050_trace_names(trace_050):
    assert list(trace_050) == V2_TRACE


@pytest.mark.parametrize("name", V1_BASED)
def test_v1_based_config(name):
    cfg = get_config(name)
    assert cfg.block == "v3_v1"
    assert (cfg.preprocessing.resize, cfg.preprocessing.crop) == (288, 256)
    assert cfg.preprocessing.interpolation == "cv2_bilinear"
    depths = [st.depth for st in cfg.stages[2:]]
    assert depths == ([2, 2, 3] if name.endswith("_l2") else [2, 4, 3])


@pytest.mark.parametrize("name", V2_BASED)
def test_v2_based_config(name):
    cfg = get_config(name)
    assert cfg.block == "v3_v2" and cfg.exp_channels is None
    assert (cfg.preprocessing.resize, cfg.preprocessing.crop) == (288, 256)
    assert cfg.preprocessing.interpolation == "pil_bicubic"
    # the same widths as the v2 model of that width multiplier
    assert cfg.stages == get_config(name.replace("v3", "v2")).stages


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count(name):
    assert MobileViT(get_config(name)).num_params() == PARAMS[name]


@pytest.mark.parametrize("name", list(PARAMS))
def test_official_keys_accepted_exactly(name):
    """Every official tensor but num_batches_tracked lands on exactly one minivit weight, unchanged."""
    official = official_weights(name)
    model = MobileViT(get_config(name))
    out = minivit.convert_state_dict(official, model, "cvnets", checkpoint_channels="rgb")
    assert list(out) == list(model.state_dict())
    kept = [k for k, _ in read_keys_file(DATA / "keys" / f"{name}.txt") if not k.endswith("num_batches_tracked")]
    assert len(kept) == len(out)
    # a bijection that moves values without touching them: same multiset of arrays
    src = sorted(official[k].tobytes() for k in kept)
    assert src == sorted(v.tobytes() for v in out.values())


@pytest.mark.parametrize("name", list(PARAMS))
def test_default_channel_order(name):
    """Released checkpoints: the v1-based ones saw BGR (OpenCV), so the stem gets its input axis
    reversed; the v2-based ones saw RGB (Pillow) and are left alone."""
    official = official_weights(name)
    model = MobileViT(get_config(name))
    out = minivit.convert_state_dict(official, model, "cvnets")
    stem = official["conv_1.block.conv.weight"]
    np.testing.assert_array_equal(out["conv_1.conv.weight"], stem[:, ::-1] if name in V1_BASED else stem)


def test_missing_key_is_named():
    official = official_weights("mobilevitv3_xxs")
    del official["layer_4.1.fusion.block.conv.weight"]
    with pytest.raises(minivit.WeightsError, match="layer_4.1.conv_fusion.conv.weight"):
        minivit.convert_state_dict(official, "mobilevitv3_xxs", "cvnets")


def test_v2_weights_do_not_fit_v3():
    """v2 and v2-based v3 share every key name; the narrower conv_proj tells them apart."""
    with pytest.raises(minivit.WeightsError, match=r"layer_3.1.conv_proj.*\(128, 128, 1, 1\).*\(128, 64, 1, 1\)"):
        minivit.convert_state_dict(official_weights("mobilevitv2_050"), "mobilevitv3_050", "cvnets")
