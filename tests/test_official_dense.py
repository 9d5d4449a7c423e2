"""DeepLabv3 and SSDLite on MobileViT-XXS against the official cvnets v0.1 outputs
(tests/data/dense: float64 run stored as float32, synthetic weights, README there).

Tolerances: the official code run in float32 differs from its float64 run by at most
4.5e-7 (DeepLabv3) and 1.2e-6 (SSDLite); we allow about twice that, 1e-6 and 2.5e-6
(the values reach 0.7 and 1.8). The argmax may differ where the top two classes tie to
within float32 noise (the closest gap in the reference is 8e-7).
"""
import numpy as np
import pytest

from minivit.boxes import anchors_per_cell, center_to_corner, decode
from reference import DATA, assert_close, synthetic_model
from synth import read_keys_file, synth_state_dict

DENSE = DATA / "dense"
DEEPLAB_ATOL = 1e-6
SSD_ATOL = 2.5e-6


def official_model(name):
    """`name` with the synthetic weights of the official key list, converted from cvnets naming."""
    return synthetic_model(name, synth_state_dict(read_keys_file(DENSE / f"{name}.keys.txt")))


def official_input(size):
    return np.random.default_rng(1234).uniform(0, 1, (1, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def deeplab():
    model = official_model("deeplabv3_mobilevit_xxs")
    return model, model.trace(official_input(512)), np.load(DENSE / "deeplabv3_mobilevit_xxs.npz")


@pytest.fixture(scope="module")
def ssd():
    model = official_model("ssd_mobilevit_xxs")
    return model, model(official_input(320)), np.load(DENSE / "ssd_mobilevit_xxs.npz")


def test_deeplab_parameter_count(deeplab):
    assert deeplab[0].num_params() == 1_854_853


def test_deeplab_lowres_logits(deeplab):
    _, trace, ref = deeplab
    assert_close("logits_lowres", trace["logits_lowres"], ref["logits_lowres"], DEEPLAB_ATOL)


def test_deeplab_upsampled_logits(deeplab):
    _, trace, ref = deeplab
    up = trace["logits"]
    assert up.shape == (1, 21, 512, 512)
    assert_close("logits_up_sub7", up[:, :, ::7, ::7], ref["logits_up_sub7"], DEEPLAB_ATOL)
    # 21 classes summed: each pixel's error is at most the sum of 21 class errors
    assert_close("up_sum_over_classes", up.astype(np.float64).sum(axis=1), ref["up_sum_over_classes"], 4e-6)
    assert_close("up_mean_hw", up.astype(np.float64).mean(axis=(2, 3)), ref["up_mean_hw"], 2e-7)


def test_deeplab_argmax(deeplab):
    _, trace, ref = deeplab
    up = trace["logits"][0]
    mine = up.argmax(axis=0)
    off = np.argwhere(mine != ref["argmax_up"][0])
    assert len(off) <= 10, f"{len(off)} of {mine.size} pixels have another class than the official argmax"
    for y, x in off:   # each must be a near-tie between our best class and the official one
        gap = up[mine[y, x], y, x] - up[ref["argmax_up"][0, y, x], y, x]
        assert gap < 4 * DEEPLAB_ATOL, f"pixel ({y}, {x}): class {mine[y, x]} beats the official one by {gap}"


def test_deeplab_call_equals_trace(deeplab):
    model, trace, _ = deeplab
    names = list(trace)
    assert names[-3:] == ["aspp", "logits_lowres", "logits"] and "layer_5" in names
    assert trace["layer_5"].shape == (1, 80, 32, 32)                    # output stride 16
    assert trace["layer_4"].shape == (1, 64, 32, 32)


def test_ssd_parameter_count(ssd):
    assert ssd[0].num_params() == 1_755_050


def test_ssd_head_outputs(ssd):
    _, out, ref = ssd
    assert_close("cls_logits", out.cls_logits, ref["cls_logits"], SSD_ATOL)
    assert_close("locations", out.locations, ref["locations"], SSD_ATOL)


def test_ssd_anchors(ssd):
    model, out, ref = ssd
    cells = [20 * 20, 10 * 10, 5 * 5, 3 * 3, 2 * 2, 1]
    per_cell = [anchors_per_cell(r) for r in model.config.aspect_ratios]
    assert per_cell == [6, 6, 6, 6, 6, 4]
    assert out.anchors.shape == (sum(c * a for c, a in zip(cells, per_cell)), 4) == (3232, 4)
    np.testing.assert_array_equal(out.anchors, ref["anchors_cxcywh"][0])


def test_ssd_decoding(ssd):
    _, out, ref = ssd
    # decoding alone, on the official locations and anchors
    boxes = center_to_corner(decode(ref["locations"], ref["anchors_cxcywh"][0], 0.1, 0.2))
    assert_close("boxes_xyxy (official locations)", boxes, ref["boxes_xyxy"], 2e-7)
    # end to end: our head outputs and anchors
    boxes = center_to_corner(decode(out.locations, out.anchors, 0.1, 0.2))
    assert_close("boxes_xyxy", boxes, ref["boxes_xyxy"], SSD_ATOL)
