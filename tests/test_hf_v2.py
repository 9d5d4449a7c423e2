"""MobileViTv2 against transformers' MobileViTV2ForImageClassification, all seven widths.

Both run float32 on the official synthetic weights. transformers gets them by position: its
state_dict lists the same tensors in the same order as the official one (checked name by
name for shape), so loading it does not go through minivit's key tables. The "hf" key table
is then checked on its own: converting transformers' state dict must give minivit exactly the
weights that the "cvnets" table gives.

transformers does not resize maps the patches do not divide, so only 256x256 is compared here
(the resize path is in test_v2_block.py). Every stage transformers can show is compared: the
stem output, the five stage outputs, each block's local and global tensors (by hooks), the
pooled features and the logits.
"""
import numpy as np
import pytest

import minivit
from reference import assert_close, official_input, official_weights

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WIDTHS = {"mobilevitv2_050": 0.5, "mobilevitv2_075": 0.75, "mobilevitv2_100": 1.0, "mobilevitv2_125": 1.25,
          "mobilevitv2_150": 1.5, "mobilevitv2_175": 1.75, "mobilevitv2_200": 2.0}
# float32 against float32: the reference README's v2 tolerances for a float32 implementation
# (the official float32 run is within 1.4e-5 of float64 on stages and 4.6e-6 on features and logits)
STAGE_ATOL, HEAD_ATOL = 5e-5, 2e-5


def hf_model_with(name, sd):
    """transformers' model for the same width, loaded with the official arrays by position."""
    cfg = transformers.MobileViTV2Config(width_multiplier=WIDTHS[name], num_labels=1000)
    with torch.device("meta"):      # no random init: every tensor is assigned below
        model = transformers.MobileViTV2ForImageClassification(cfg).eval()
    theirs = model.state_dict()
    assert len(theirs) == len(sd), f"{name}: {len(theirs)} tensors in transformers, {len(sd)} official"
    loaded = {}
    for (hk, hv), (ok, ov) in zip(theirs.items(), sd.items()):
        assert tuple(hv.shape) == ov.shape, f"{name}: {hk} {tuple(hv.shape)} vs official {ok} {ov.shape}"
        loaded[hk] = torch.from_numpy(np.array(ov))
    model.load_state_dict(loaded, strict=True, assign=True)
    return model


def hf_trace(model, x):
    """The stages transformers exposes, named as minivit's trace names them."""
    out, hooks = {}, []
    base = model.mobilevitv2
    hooks.append(base.conv_stem.register_forward_hook(lambda m, i, o: out.__setitem__("conv_1", o)))
    for k, layer in enumerate(base.encoder.layer[2:], 3):
        hooks.append(layer.conv_1x1.register_forward_hook(
            lambda m, i, o, k=k: out.__setitem__(f"layer_{k}_local", o)))
        hooks.append(layer.conv_projection.register_forward_pre_hook(
            lambda m, i, k=k: out.__setitem__(f"layer_{k}_global", i[0])))
    hooks.append(model.classifier.register_forward_pre_hook(lambda m, i: out.__setitem__("features", i[0])))
    with torch.no_grad():
        res = model(torch.from_numpy(x), output_hidden_states=True)
    for h in hooks:
        h.remove()
    for k, h in enumerate(res.hidden_states, 1):
        out[f"layer_{k}"] = h
    out["logits"] = res.logits
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module", params=list(WIDTHS))
def official(request):
    """(name, official weights, transformers' model loaded with them), once per width."""
    name = request.param
    sd = official_weights(name)
    return name, sd, hf_model_with(name, sd)


def test_hf_key_table_gives_the_cvnets_weights(official):
    name, sd, hf = official
    want = minivit.convert_state_dict(sd, name, "cvnets")
    got = minivit.convert_state_dict(hf.state_dict(), name, "hf")
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_matches_transformers(official):
    name, sd, hf = official
    x = official_input()
    theirs = hf_trace(hf, x)
    mine = minivit.create_model(name, weights=minivit.convert_state_dict(sd, name, "cvnets")).trace(x)
    assert len(theirs) == 14      # conv_1, layer_1..5, 3 x (local, global), features, logits
    for stage, ref in theirs.items():
        atol = HEAD_ATOL if stage in ("features", "logits") else STAGE_ATOL
        assert_close(f"{name} {stage}", mine[stage], ref, atol=atol)
