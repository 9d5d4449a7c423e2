"""convert_state_dict: strict key and shape checks, dtypes, channel order, torch tensors."""
import numpy as np
import pytest

import minivit
from reference import official_weights


@pytest.fixture(scope="module")
def official():
    return official_weights("mobilevit_xxs")


def test_every_official_key_is_used(official):
    out = minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets")
    model = minivit.create_model("mobilevit_xxs")
    assert list(out) == list(model.state_dict())
    used = sum(v.size for v in out.values())
    given = sum(v.size for k, v in official.items() if not k.endswith("num_batches_tracked"))
    assert used == given


def test_all_problems_in_one_error_with_both_shapes(official):
    sd = dict(official)
    del sd["layer_3.1.local_rep.conv_1x1.block.conv.weight"]
    del sd["classifier.fc.bias"]
    sd["layer_4.1.fusion.block.conv.weight"] = np.zeros((64, 128, 1, 1), np.float32)   # wants 3x3
    sd["layer_9.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(minivit.WeightsError) as e:
        minivit.convert_state_dict(sd, "mobilevit_xxs", "cvnets")
    msg = str(e.value)
    assert "2 missing, 1 unexpected, 1 with the wrong shape" in msg
    assert "missing: layer_3.1.conv_1x1.conv.weight" in msg
    assert "missing: classifier.bias" in msg
    assert "unexpected: layer_9.extra.weight" in msg
    assert ("wrong shape: layer_4.1.fusion.block.conv.weight (minivit: layer_4.1.conv_fusion.conv.weight): "
            "model wants (64, 128, 3, 3), weights have (64, 128, 1, 1)") in msg


def test_other_variant_is_refused(official):
    with pytest.raises(minivit.WeightsError, match="wrong shape"):
        minivit.convert_state_dict(official, "mobilevit_xs", "cvnets")


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float_dtypes_become_float32(official, dtype):
    sd = {k: (v.astype(dtype) if v.dtype == np.float32 else v) for k, v in official.items()}
    out = minivit.convert_state_dict(sd, "mobilevit_xxs", "cvnets", checkpoint_channels="rgb")
    ref = minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets", checkpoint_channels="rgb")
    for k in ref:
        assert out[k].dtype == np.float32
        np.testing.assert_array_equal(out[k], ref[k].astype(dtype).astype(np.float32))


@pytest.mark.parametrize("bad", [np.arange(16, dtype=np.int64), np.ones(16, np.complex64), np.ones(16, bool)])
def test_non_float_weights_are_refused_by_name(official, bad):
    sd = dict(official)
    sd["conv_1.block.norm.weight"] = bad
    with pytest.raises(minivit.WeightsError, match=r"tensor 'conv_1\.block\.norm\.weight' has dtype .*; expected floating point"):
        minivit.convert_state_dict(sd, "mobilevit_xxs", "cvnets")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_are_refused_by_name(official, value):
    sd = dict(official)
    w = sd["layer_2.1.block.red_1x1.block.conv.weight"].copy()
    w[3, 2, 0, 0] = value
    sd["layer_2.1.block.red_1x1.block.conv.weight"] = w
    with pytest.raises(minivit.WeightsError, match=r"tensor 'layer_2\.1\.block\.red_1x1\.block\.conv\.weight' holds 1 NaN or infinite"):
        minivit.convert_state_dict(sd, "mobilevit_xxs", "cvnets")


def test_torch_tensors_and_bfloat16_are_accepted(official):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(np.asarray(v)) for k, v in official.items()}
    sd["classifier.fc.weight"] = sd["classifier.fc.weight"].to(torch.bfloat16)
    out = minivit.convert_state_dict(sd, "mobilevit_xxs", "cvnets", checkpoint_channels="rgb")
    want = sd["classifier.fc.weight"].float().numpy()
    np.testing.assert_array_equal(out["classifier.weight"], want)


def test_channel_order(official):
    rgb = minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets", checkpoint_channels="rgb")
    bgr = minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets")      # official v1: BGR
    np.testing.assert_array_equal(bgr["conv_1.conv.weight"], rgb["conv_1.conv.weight"][:, ::-1])
    with pytest.raises(minivit.WeightsError, match="checkpoint_channels must be 'rgb' or 'bgr'"):
        minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets", checkpoint_channels="grb")


def test_unknown_source(official):
    with pytest.raises(minivit.WeightsError, match="unknown source 'keras'"):
        minivit.convert_state_dict(official, "mobilevit_xxs", "keras")


def test_create_model_rejects_a_wrong_dict(official):
    with pytest.raises(minivit.WeightsError, match="missing: conv_1.conv.weight"):
        minivit.create_model("mobilevit_xxs", weights=official)        # official names, not converted


def test_save_load_round_trip(tmp_path, official):
    w = minivit.convert_state_dict(official, "mobilevit_xxs", "cvnets")
    path = tmp_path / "xxs.safetensors"
    minivit.save_weights(path, w, {"model": "mobilevit_xxs", "source": "cvnets", "channels": "rgb"})
    back, meta = minivit.load_weights(path)
    assert meta["model"] == "mobilevit_xxs"
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(minivit.create_model("mobilevit_xxs", weights=path)(x),
                                  minivit.create_model("mobilevit_xxs", weights=w)(x))
    with pytest.raises(minivit.WeightsError, match="for model 'mobilevit_xxs', not 'mobilevit_xs'"):
        minivit.create_model("mobilevit_xs", weights=path)
