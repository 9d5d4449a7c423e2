"""minivit.profile: MACs by hand for two tiny models, against PyTorch's FLOP counter on the
PyTorch reference, and (in cvnets' convention) against the MobileViTv3 authors' numbers."""
import pytest

import minivit
from minivit.models.config import ModelConfig, MV2Stage, ViTStage
from minivit.models.mobilevit import MobileViT
from minivit.models.registry import get_config
from minivit.profile import count_macs, format_profile, profile


def tiny(block):
    """40x40 input: conv_1 20x20, layer_1 20x20, layer_2 10x10, layer_3 5x5 (2x2 patches do not
    divide it), layer_4 3x3, layer_5 3x3. Only layer_3 has a MobileViT block."""
    heads = 2 if block == "v3_v1" else 0
    stages = (MV2Stage(8, 1, 1, 2), MV2Stage(16, 1, 2, 2), ViTStage(16, 8, 16, 1, 2, 2, heads=heads),
              MV2Stage(24, 1, 2, 2), MV2Stage(32, 1, 1, 1))
    exp = 64 if block == "v3_v1" else None
    return MobileViT(ModelConfig("tiny_" + block, block, 8, stages, exp), num_classes=10)


# MACs of the layers the two tiny models share, by hand (inverted residual: hidden = 2 * Ci)
CONV_1 = 8 * 3 * 9 * 20 * 20                                          # 3x3 s2, 3 -> 8
LAYER_1 = 16 * 8 * 400 + 16 * 9 * 400 + 8 * 16 * 400                   # 1x1 8->16, dw 3x3, 1x1 16->8 at 20x20
LAYER_2 = 16 * 8 * 400 + 16 * 9 * 100 + 16 * 16 * 100                  # dw with stride 2 -> 10x10
IR_3 = 32 * 16 * 100 + 32 * 9 * 25 + 16 * 32 * 25                      # 10x10 -> 5x5, 16 -> 16


def test_v1_based_by_hand():
    # the v3 (v1-based) block at 5x5, C 16, D 8, FFN 16; attention runs on the 6x6
    # resize: T = 4 pixel positions, N = 9 patches
    T, N, D, F = 4, 9, 8, 16
    block = (16 * 9 * 25                # depthwise 3x3
             + 8 * 16 * 25              # 1x1 16 -> 8
             + T * N * D * 3 * D        # qkv
             + T * N * N * D            # q @ k^T (2 heads of 4: same total)
             + T * N * N * D            # attn @ v
             + T * N * D * D            # output projection
             + 2 * T * N * D * F        # FFN
             + 16 * 8 * 25              # projection 8 -> 16
             + 16 * 24 * 25)            # fusion 1x1 over cat(local, projected): 24 -> 16
    layer_4 = 32 * 16 * 25 + 32 * 9 * 9 + 24 * 32 * 9          # 5x5 -> 3x3, 16 -> 24
    layer_5 = 24 * 9 * 9 + 32 * 24 * 9                          # expand ratio 1: dw, 1x1 24 -> 32
    head = 64 * 32 * 9 + 64 * 10                                 # conv_1x1_exp, classifier
    want = [CONV_1, LAYER_1, LAYER_2, IR_3 + block, layer_4, layer_5, head - 640, 0, 640]
    model = tiny("v3_v1")
    rows = profile(model, (40, 40))
    assert [r.stage for r in rows] == ["conv_1", "layer_1", "layer_2", "layer_3", "layer_4", "layer_5",
                                       "conv_1x1_exp", "pool", "classifier"]
    assert [r.macs for r in rows] == want
    assert [r.shape for r in rows][3:7] == [(16, 5, 5), (24, 3, 3), (32, 3, 3), (64, 3, 3)]
    assert count_macs(model, (40, 40)) == sum(want)
    assert sum(r.params for r in rows) == model.num_params()


def test_v2_based_by_hand():
    # the v3 (v2-based) block resizes its 5x5 input to 6x6 and keeps it: 36 tokens of d 8
    tokens, d, F = 36, 8, 16
    block = (16 * 9 * 36                # depthwise 3x3 at 6x6
             + 8 * 16 * 36              # 1x1 16 -> 8
             + tokens * (1 + 2 * d) * d  # qkv: 1 score + d keys + d values
             + tokens * d               # context vector: weighted sum of the keys over the patches
             + tokens * d * d           # output projection
             + 2 * tokens * d * F       # FFN
             + 16 * 16 * 36)            # projection of cat(global, local): 16 -> 16
    layer_4 = 32 * 16 * 36 + 32 * 9 * 9 + 24 * 32 * 9          # 6x6 -> 3x3
    layer_5 = 24 * 9 * 9 + 32 * 24 * 9
    want = [CONV_1, LAYER_1, LAYER_2, IR_3 + block, layer_4, layer_5, 0, 32 * 10]
    model = tiny("v3_v2")
    rows = profile(model, (40, 40))
    assert [r.stage for r in rows] == ["conv_1", "layer_1", "layer_2", "layer_3", "layer_4", "layer_5",
                                       "pool", "classifier"]
    assert [r.macs for r in rows] == want
    assert rows[3].shape == (16, 6, 6)
    assert sum(r.params for r in rows) == model.num_params()


def test_format_profile():
    text = format_profile(profile(tiny("v3_v1"), (40, 40)))
    assert text.splitlines()[0].split() == ["stage", "output", "params", "MMACs"]
    assert text.splitlines()[-1].split()[0] == "total"


def test_unknown_convention():
    with pytest.raises(minivit.InputError, match="convention"):
        count_macs(tiny("v3_v1"), (40, 40), convention="fvcore")


@pytest.mark.parametrize("name", ["mobilevitv3_xxs_l2", "mobilevitv3_050"])
@pytest.mark.parametrize("size", [(256, 256), (200, 232)], ids=["256x256", "200x232"])
def test_against_torch_flop_counter(name, size):
    """torch's FlopCounterMode counts 2 FLOPs per MAC of convs and matmuls (not biases), like the
    exact convention; it does not see the separable attention's context sum (a broadcast
    product and a sum), added here as d per token per layer. (The v1 and v2 models use the
    same layer classes as these two.)"""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    import torch_reference as R
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        R.build(name)(torch.zeros(1, 3, *size))
    config = get_config(name)
    rows = profile(MobileViT(config), size)
    context = 0
    if config.block == "v3_v2":     # the block's output has the size its attention ran at
        for row, st in zip(rows[3:6], config.stages[2:]):
            context += st.depth * st.dim * row.shape[1] * row.shape[2]
    assert sum(r.macs for r in rows) == counter.get_total_flops() // 2 + context


V3 = ["mobilevitv3_xxs", "mobilevitv3_xs", "mobilevitv3_s", "mobilevitv3_xxs_l2", "mobilevitv3_xs_l2",
      "mobilevitv3_s_l2", "mobilevitv3_050", "mobilevitv3_075", "mobilevitv3_100"]


@pytest.mark.parametrize("name", V3)
def test_cvnets_convention_reproduces_the_papers(name):
    """The authors' "FLOPs" (millions, 256x256) are cvnets' profile: within 0.1% (their rounding)."""
    paper = get_config(name).paper["macs_m"]
    model = MobileViT(get_config(name))
    assert abs(count_macs(model, convention="cvnets") / 1e6 - paper) <= 1e-3 * paper
    if name in ("mobilevitv3_050", "mobilevitv3_075", "mobilevitv3_100"):
        # without v1 attention the conventions differ only by biases and the context sum
        assert abs(count_macs(model) / 1e6 - paper) <= 5e-3 * paper
