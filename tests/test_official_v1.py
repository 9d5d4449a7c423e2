"""MobileViT v1 against the official apple/ml-cvnets v0.1 outputs (float64 run)."""
import numpy as np
import pytest

from reference import DATA, check_against_official, official_input, synthetic_model

STAGES = ["conv_1", "layer_1", "layer_2", "layer_3_local", "layer_3_global", "layer_3",
          "layer_4_local", "layer_4_global", "layer_4", "layer_5_local", "layer_5_global", "layer_5",
          "conv_1x1_exp", "features", "logits"]


@pytest.fixture(scope="module")
def trace():
    return synthetic_model("mobilevit_xxs").trace(official_input())


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_official(trace, stage):
    ref = np.load(DATA / "mobilevit_xxs.npz")
    check_against_official(ref, f"{stage}_256", trace[stage], atol=1e-5)


def test_trace_names(trace):
    assert list(trace) == STAGES


def test_call_equals_trace_logits(trace):
    logits = synthetic_model("mobilevit_xxs")(official_input())
    np.testing.assert_array_equal(logits, trace["logits"])
