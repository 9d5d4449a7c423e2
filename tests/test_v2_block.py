"""The MobileViTv2 block on maps the 2x2 patches do not divide, against the PyTorch reference
(tests/torch_reference.py, float64), which follows the official code: the block input is resized
up with bilinear align_corners=True and never resized back.

Also: the context-score maps the block records, against softmax scores taken from the
reference's qkv projection and folded with F.fold, and a whole model at 160x224 (layer_5
sees 5x7 and leaves as 6x8).
"""
import numpy as np
import pytest

import minivit
from minivit.blocks.mobilevit_v2 import MobileViTBlockV2
from minivit.convert import RULES, rename
from reference import assert_close
from synth import read_keys_file, synth_state_dict

torch = pytest.importorskip("torch")
R = pytest.importorskip("torch_reference")
F = torch.nn.functional

C, D, FFN, DEPTH = 6, 8, 16, 2


def block_pair():
    """The reference block and minivit's, with the same synthetic weights (official key names)."""
    ref = R.MobileViTv2Block(C, D, FFN, DEPTH).double().eval()
    sd = synth_state_dict([(k, tuple(v.shape)) for k, v in ref.state_dict().items()], seed=3)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    # the block's keys are the official ones below "layer_3.1.": rename them as a whole model's
    prefix = "layer_3.1."
    mine_sd = {rename(prefix + k, RULES[("cvnets", "v2")])[len(prefix):]: v
               for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    mine = MobileViTBlockV2(C, D, FFN, DEPTH).load_state_dict(mine_sd)
    return ref, mine


def run_both(shape, seed=0):
    ref, mine = block_pair()
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    taps, rec = {}, {}
    with torch.no_grad():
        want = ref(torch.from_numpy(x).double(), taps).numpy()
    got = mine(x, lambda name, a: rec.__setitem__(name, a))
    return x, ref, want, got, taps, rec


@pytest.mark.parametrize("hw, resized", [((7, 9), (8, 10)), ((8, 10), (8, 10)), ((5, 1), (6, 2)),
                                         ((1, 1), (2, 2))])
def test_block_matches_reference(hw, resized):
    x, ref, want, got, taps, rec = run_both((2, C) + hw)
    assert got.shape == want.shape == (2, C) + resized      # never resized back
    assert_close(f"local {hw}", rec["local"], taps["local"].numpy(), atol=1e-5)
    assert_close(f"global {hw}", rec["global"], taps["glob"].numpy(), atol=1e-5)
    assert_close(f"block output {hw}", got, want, atol=1e-5)


def test_resize_is_align_corners_true():
    """The local output is the local convs applied to F.interpolate(x, align_corners=True)."""
    x, ref, want, got, taps, rec = run_both((1, C, 7, 9), seed=1)
    with torch.no_grad():
        up = F.interpolate(torch.from_numpy(x).double(), size=(8, 10), mode="bilinear", align_corners=True)
        local = ref.local_rep(up).numpy()
        local_false = ref.local_rep(F.interpolate(torch.from_numpy(x).double(), size=(8, 10),
                                                  mode="bilinear", align_corners=False)).numpy()
    assert_close("local after align_corners=True resize", rec["local"], local, atol=1e-5)
    assert np.abs(rec["local"] - local_false).max() > 1e-2    # the other convention is far off


def test_score_maps_match_reference():
    """layer l's map holds softmax_N of the qkv projection's first channel, folded like the features."""
    ref, mine = block_pair()
    x = np.random.default_rng(2).standard_normal((2, C, 7, 9)).astype(np.float32)
    qs = []
    hooks = [layer.pre_norm_attn[1].qkv_proj.register_forward_hook(lambda m, i, o: qs.append(o[:, :1]))
             for layer in ref.global_rep[:DEPTH]]
    with torch.no_grad():
        ref(torch.from_numpy(x).double())
    for h in hooks:
        h.remove()
    rec = {}
    mine(x, lambda name, a: rec.__setitem__(name, a))
    assert rec["scores"].shape == (2, DEPTH, 8, 10)
    for layer, q in enumerate(qs):
        s = torch.softmax(q, dim=-1)                                   # (B, 1, P, N)
        want = R.fold_v2(s, 8, 10, 2, 2).numpy()[:, 0]                 # (B, H, W)
        assert_close(f"scores of layer {layer}", rec["scores"][:, layer], want, atol=1e-6)


def test_model_at_size_the_patches_do_not_divide():
    """mobilevitv2_050 at 160x224: layer_5's input is 5x7, resized to 6x8, against the reference."""
    name = "mobilevitv2_050"
    ref = R.load_synthetic(R.build(name), name).double()
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 160, 224)).astype(np.float32)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in ref.trace(torch.from_numpy(x).double()).items()}
    sd = synth_state_dict(read_keys_file(R.KEYS_DIR / f"{name}.txt"))
    got = minivit.create_model(name, weights=minivit.convert_state_dict(sd, name, "cvnets")).trace(x)
    assert got["layer_5_local"].shape[2:] == (6, 8) and got["layer_5"].shape[2:] == (6, 8)
    for stage, w in want.items():
        atol = 2e-5 if stage in ("features", "logits") else 5e-5
        assert_close(stage, got[stage], w, atol=atol)
