"""MobileViTv2 against the official apple/ml-cvnets v0.2 outputs (float64 run), plus the
official parameter counts of all seven widths and the context-score maps of the trace."""
import numpy as np
import pytest

import minivit
from reference import DATA, assert_close, check_against_official, official_input, official_weights

NAME = "mobilevitv2_050"
STAGES = ["conv_1", "layer_1", "layer_2", "layer_3_local", "layer_3_global", "layer_3",
          "layer_4_local", "layer_4_global", "layer_4", "layer_5_local", "layer_5_global", "layer_5",
          "features", "logits"]
# the reference README's tolerances for the v2 family (float32 against the float64 run)
ATOL = {"features": 2e-5, "logits": 2e-5}
STAGE_ATOL = 5e-5

# official parameter counts (1000 classes), cvnets v0.2 MobileViTv2
PARAMS = {"mobilevitv2_050": 1370593, "mobilevitv2_075": 2866009, "mobilevitv2_100": 4901841,
          "mobilevitv2_125": 7478089, "mobilevitv2_150": 10594753, "mobilevitv2_175": 14251833,
          "mobilevitv2_200": 18449329}
DEPTHS = {3: 2, 4: 4, 5: 3}      # attention layers per block


@pytest.fixture(scope="module")
def model():
    w = minivit.convert_state_dict(official_weights(NAME), NAME, "cvnets")
    return minivit.create_model(NAME, weights=w)


@pytest.fixture(scope="module")
def trace(model):
    return model.trace(official_input())


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_official(trace, stage):
    ref = np.load(DATA / f"{NAME}.npz")
    check_against_official(ref, f"{stage}_256", trace[stage], atol=ATOL.get(stage, STAGE_ATOL))


def test_trace_names(trace):
    """The v1 stage names without conv_1x1_exp, plus each block's score maps after its global output."""
    want = []
    for s in STAGES:
        want.append(s)
        if s.endswith("_global"):
            want.append(s.replace("_global", "_scores"))
    assert list(trace) == want


@pytest.mark.parametrize("k", [3, 4, 5])
def test_score_maps(trace, k):
    """(B, layers, H, W) softmax scores: each of the 2x2 interleaved sub-grids sums to 1 per layer."""
    s = trace[f"layer_{k}_scores"]
    H, W = trace[f"layer_{k}_global"].shape[2:]
    assert s.shape == (2, DEPTHS[k], H, W) and s.dtype == np.float32
    assert (s > 0).all()
    for py in range(2):
        for px in range(2):
            assert_close(f"layer_{k}_scores sub-grid ({py}, {px})", s[:, :, py::2, px::2].sum(axis=(2, 3)),
                         np.ones((2, DEPTHS[k])), atol=1e-5)


def test_call_equals_trace_logits(model, trace):
    np.testing.assert_array_equal(model(official_input()), trace["logits"])


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count(name):
    cfg = minivit.models.registry.get_config(name)
    assert cfg.block == "v2" and cfg.exp_channels is None
    assert cfg.preprocessing.interpolation == "pil_bicubic"
    assert (cfg.preprocessing.resize, cfg.preprocessing.crop) == (288, 256)
    assert minivit.models.mobilevit.MobileViT(cfg).num_params() == PARAMS[name]


def test_224_input_ends_on_8x8(model):
    """224 -> layer_5 input 7x7, resized up to 8x8 and never back, as in the official code."""
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    t = model.trace(x)
    assert t["layer_4"].shape[2:] == (14, 14)
    assert t["layer_5_local"].shape[2:] == (8, 8) and t["layer_5"].shape[2:] == (8, 8)
    assert t["logits"].shape == (1, 1000)
