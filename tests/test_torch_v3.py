"""All nine MobileViTv3 variants against the PyTorch reference (tests/torch_reference.py),
every stage, batch 2, at 256x256 and at 200x232, a size whose layer_3..5 maps (25x29,
13x15, 7x8) the 2x2 patches do not divide.

The reference runs in float64 with the same synthetic weights, so the float32 tolerances
of the reference data apply (v1-based: 1e-5 everywhere; v2-based: 5e-5 for stages,
2e-5 for features and logits). At 200x232 the two families part: the v1-based block
resizes the local features up (to 26x30, 14x16, 8x8) and back, so every stage keeps its
size; the v2-based block resizes its input up and never back, so layer_3 leaves as
26x30, layer_4 as 14x16 (from 13x15) and layer_5 as 8x8 (from 7x8).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minivit                                # noqa: E402
import torch_reference as R                   # noqa: E402
from reference import assert_close, synthetic_model   # noqa: E402

V1_BASED = ["mobilevitv3_xxs", "mobilevitv3_xs", "mobilevitv3_s",
            "mobilevitv3_xxs_l2", "mobilevitv3_xs_l2", "mobilevitv3_s_l2"]
V2_BASED = ["mobilevitv3_050", "mobilevitv3_075", "mobilevitv3_100"]
NAMES = V1_BASED + V2_BASED
SIZES = [(256, 256), (200, 232)]
# the stage sizes of layer_3..5 at 200x232
SHAPES_200x232 = {"v3_v1": [(25, 29), (13, 15), (7, 8)], "v3_v2": [(26, 30), (14, 16), (8, 8)]}


def atol(name, stage):
    if name in V1_BASED:
        return 1e-5
    return 2e-5 if stage in ("features", "logits") else 5e-5


@pytest.fixture(scope="module", params=NAMES)
def pair(request):
    """(name, minivit model, float64 torch reference), both with the synthetic official weights."""
    name = request.param
    ref = R.load_synthetic(R.build(name), name).double()
    return name, synthetic_model(name), ref


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_stage_matches_torch(pair, size):
    name, model, ref = pair
    x = np.random.default_rng(size[0] * size[1]).uniform(0, 1, (2, 3, *size)).astype(np.float32)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in ref.trace(torch.from_numpy(x).double()).items()}
    got = model.trace(x)
    # minivit's trace may hold extra teaching maps (v2 "scores"); the reference's stages, in order
    assert [k for k in got if k in want] == list(want)
    for stage, value in want.items():          # forward order: the first bad stage is reported
        assert_close(f"{name} {size} {stage}", got[stage], value, atol(name, stage))
    if size == (200, 232):
        family = minivit.models.registry.get_config(name).block
        assert [got[f"layer_{k}"].shape[2:] for k in (3, 4, 5)] == SHAPES_200x232[family]
