"""Tests of tests/torch_reference.py, the PyTorch reference the other parity tests lean on.

- every variant's state_dict equals the official key list (names, shapes, order) and the
  official parameter count;
- the four variants with official outputs reproduce every stored stage in float64;
- all 19 variants run at 64x64 and at 72x72 (patches do not divide the layer_3..5 maps);
- the reshape/permute (ONNX-friendly) unfold/fold gives the same numbers, and exports to ONNX.
"""
import io
import warnings

import numpy as np
import pytest
import torch

import torch_reference as R
from synth import make_inputs, read_keys_file

# official parameter counts (BatchNorm running statistics excluded)
PARAMS = {
    "mobilevit_xxs": 1272024, "mobilevit_xs": 2317848, "mobilevit_s": 5578632,
    "mobilevitv2_050": 1370593, "mobilevitv2_075": 2866009, "mobilevitv2_100": 4901841,
    "mobilevitv2_125": 7478089, "mobilevitv2_150": 10594753, "mobilevitv2_175": 14251833,
    "mobilevitv2_200": 18449329,
    "mobilevitv3_xxs": 1249448, "mobilevitv3_xs": 2490360, "mobilevitv3_s": 5763912,
    "mobilevitv3_xxs_l2": 1145288, "mobilevitv3_xs_l2": 2257320, "mobilevitv3_s_l2": 5169864,
    "mobilevitv3_050": 1429985, "mobilevitv3_075": 2999641, "mobilevitv3_100": 5139409,
}
WITH_OUTPUTS = ["mobilevit_xxs", "mobilevitv2_050", "mobilevitv3_xxs", "mobilevitv3_050"]
V1_FAMILY = {n for n in R.NAMES if R.get_config(n).family in ("v1", "v3_v1")}


def stage_names(name):
    """The trace keys, in forward order, that a model of this family must return."""
    names = ["conv_1", "layer_1", "layer_2"]
    for k in (3, 4, 5):
        names += [f"layer_{k}_local", f"layer_{k}_global", f"layer_{k}"]
    return names + (["conv_1x1_exp"] if name in V1_FAMILY else []) + ["features", "logits"]


def test_names_cover_all_19_variants():
    assert sorted(R.NAMES) == sorted(PARAMS)
    with pytest.raises(ValueError, match="mobilevit_tiny"):
        R.build("mobilevit_tiny")


@pytest.mark.parametrize("name", R.NAMES)
def test_state_dict_matches_official_keys(name):
    model = R.build(name)
    mine = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    official = read_keys_file(R.KEYS_DIR / f"{name}.txt")
    missing = sorted(set(official) - set(mine))
    extra = sorted(set(mine) - set(official))
    assert not missing and not extra, f"{name}: missing {missing[:5]}, unexpected {extra[:5]}"
    assert mine == official, f"{name}: same keys and shapes, but not in the official order"
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def check_stage(ref, stage, mine):
    """Compare one stage with the stored official values: whole array, subsample, mean/std.

    The reference ran in float64 and stored float32, so a float64 run must agree to float32
    rounding (relative 2**-24 = 6e-8): far tighter than the README's float32 tolerances.
    """
    key = f"{stage}_256"
    mine = mine.numpy()
    if key in ref.files:
        np.testing.assert_allclose(mine, ref[key], rtol=1e-7, atol=1e-12, err_msg=stage)
    elif key + "_idx" in ref.files:
        assert mine.shape == tuple(ref[key + "_shape"]), stage
        np.testing.assert_allclose(mine.reshape(-1)[ref[key + "_idx"]], ref[key + "_val"],
                                   rtol=1e-7, atol=1e-12, err_msg=stage)
    if key + "_mean" in ref.files:
        np.testing.assert_allclose([mine.mean(), mine.std()], [ref[key + "_mean"], ref[key + "_std"]],
                                   rtol=0, atol=1e-12, err_msg=f"{stage} mean/std")


@pytest.mark.parametrize("name", WITH_OUTPUTS)
def test_float64_reproduces_official_outputs(name):
    ref = np.load(R.HERE / "data" / f"{name}.npz")
    model = R.load_synthetic(R.build(name).double(), name)
    with torch.no_grad():
        trace = model.trace(torch.from_numpy(make_inputs()["256"]).double())
    assert list(trace) == stage_names(name)
    stored = {k[:-len("_256_mean")] for k in ref.files if k.endswith("_256_mean")} | {"logits"}
    assert stored == set(trace), f"stages stored but not traced: {stored - set(trace)}"
    for stage, value in trace.items():
        check_stage(ref, stage, value)
    np.testing.assert_allclose(trace["logits"].numpy(), ref["logits_256_f64"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", R.NAMES)
def test_smoke_divisible_and_odd_sizes(name):
    """64x64 (every map divisible by the patch) and 72x72 (layer_3 is 9x9, layer_4 5x5, layer_5 3x3)."""
    model = R.load_synthetic(R.build(name), name)
    cfg = model.cfg
    c5 = cfg.stages[-1].out
    with torch.no_grad():
        t64 = model.trace(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
        t72 = model.trace(torch.rand(1, 3, 72, 72, generator=torch.Generator().manual_seed(1)))
    assert list(t64) == list(t72) == stage_names(name)
    assert t64["layer_5"].shape == (1, c5, 2, 2)
    # v1 family resizes inside the block and back: layer_5 keeps the 3x3 of its input;
    # v2 family resizes the block input up to 4x4 and keeps that size
    assert t72["layer_5"].shape == ((1, c5, 3, 3) if name in V1_FAMILY else (1, c5, 4, 4))
    assert t72["layer_3_local"].shape[-1] == (9 if name in V1_FAMILY else 10)
    assert t72["layer_3_global"].shape == t72["layer_3_local"].shape
    assert t64["features"].shape == (1, cfg.exp_channels or c5)
    for t in (t64, t72):
        assert t["logits"].shape == (1, 1000) and torch.isfinite(t["logits"]).all()


@pytest.mark.parametrize("name", ["mobilevitv2_050", "mobilevitv3_050"])
def test_onnx_friendly_fold_is_exact(name):
    model = R.load_synthetic(R.build(name), name)
    for size in (64, 72):
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        with torch.no_grad():
            plain = model.set_onnx_friendly(False).trace(x)
            friendly = model.set_onnx_friendly(True).trace(x)
        for stage in plain:
            assert torch.equal(plain[stage], friendly[stage]), f"{name} {size}x{size} {stage}"


def test_unfold_fold_layouts_match_torch():
    """unfold_v2 equals F.unfold's layout; both folds invert their unfolds."""
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    a = R.unfold_v2(x, 2, 2)
    assert torch.equal(a, R.unfold_v2(x, 2, 2, onnx_friendly=True))
    assert torch.equal(R.fold_v2(a, 4, 6, 2, 2), x)
    assert torch.equal(R.fold_v2(a, 4, 6, 2, 2, onnx_friendly=True), x)
    p = R.unfold_v1(x, 2, 2)                          # (B*P, N, C)
    assert p.shape == (2 * 4, 2 * 3, 3)
    assert p[1, 0, 2].item() == x[0, 2, 0, 1].item()  # pixel (0, 1) of patch 0, channel 2
    assert torch.equal(R.fold_v1(p, 2, 4, 6, 2, 2), x)


@pytest.mark.parametrize("name", WITH_OUTPUTS)
def test_onnx_export_matches_onnxruntime(name):
    import onnxruntime as ort
    model = R.load_synthetic(R.build(name, onnx_friendly=True), name)
    x = torch.rand(1, 3, 72, 72, generator=torch.Generator().manual_seed(2))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
