"""MobileViT v1 against the official apple/ml-cvnets v0.1 outputs (float64 run)."""
import numpy as np
import pytest

import minivit
from reference import DATA, check_against_official, official_input, official_weights

STAGES = ["conv_1", "layer_1", "layer_2", "layer_3_local", "layer_3_global", "layer_3",
          "layer_4_local", "layer_4_global", "layer_4", "layer_5_local", "layer_5_global", "layer_5",
          "conv_1x1_exp", "features", "logits"]


@pytest.fixture(scope="module")
def trace():
    w = minivit.convert_state_dict(official_weights("mobilevit_xxs"), "mobilevit_xxs", "cvnets",
                                   checkpoint_channels="rgb")   # synthetic weights: no channel flip
    model = minivit.create_model("mobilevit_xxs", weights=w)
    return model.trace(official_input())


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_official(trace, stage):
    ref = np.load(DATA / "mobilevit_xxs.npz")
    check_against_official(ref, f"{stage}_256", trace[stage], atol=1e-5)


def test_trace_names(trace):
    assert list(trace) == STAGES


def test_call_equals_trace_logits(trace):
    w = minivit.convert_state_dict(official_weights("mobilevit_xxs"), "mobilevit_xxs", "cvnets",
                                   checkpoint_channels="rgb")
    logits = minivit.create_model("mobilevit_xxs", weights=w)(official_input())
    np.testing.assert_array_equal(logits, trace["logits"])
