"""MobileViT v1 (xxs, xs, s) against transformers' MobileViTForImageClassification,
with the same weights, at 256x256 and at a size the patches do not divide, batch 2."""
import numpy as np
import pytest

import minivit
from reference import assert_close
from synth import synth_state_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# transformers' names for the three sizes (its config fields, from the official widths)
HF_CONFIGS = {
    "mobilevit_xxs": dict(hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                          expand_ratio=2.0),
    "mobilevit_xs": dict(hidden_sizes=[96, 120, 144], neck_hidden_sizes=[16, 32, 48, 64, 80, 96, 384]),
    "mobilevit_s": dict(hidden_sizes=[144, 192, 240], neck_hidden_sizes=[16, 32, 64, 96, 128, 160, 640]),
}


def hf_model(name):
    cfg = transformers.MobileViTConfig(num_labels=1000, **HF_CONFIGS[name])
    model = transformers.MobileViTForImageClassification(cfg).eval()
    sd = model.state_dict()
    weights = synth_state_dict([(k, tuple(v.shape)) for k, v in sd.items()])
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    return model, weights


def hf_stages(model, x):
    with torch.inference_mode():
        out = model(torch.from_numpy(x), output_hidden_states=True)
        base = model.mobilevit(torch.from_numpy(x), output_hidden_states=True)
    stages = {f"layer_{k + 1}": h.numpy() for k, h in enumerate(base.hidden_states)}
    stages.update(conv_1x1_exp=base.last_hidden_state.numpy(), features=base.pooler_output.numpy(),
                  logits=out.logits.numpy())
    return stages


@pytest.mark.parametrize("size", [(256, 256), (200, 232)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_matches_transformers(name, size):
    model, weights = hf_model(name)
    x = np.random.default_rng(5).uniform(0, 1, (2, 3, *size)).astype(np.float32)
    ref = hf_stages(model, x)
    mine = minivit.create_model(name, minivit.convert_state_dict(weights, name, "hf", checkpoint_channels="rgb"))
    trace = mine.trace(x)
    assert len(ref) == 8
    for stage, want in ref.items():
        assert_close(f"{name} {size} {stage}", trace[stage], want, atol=1e-5)


def test_bgr_checkpoint_flip_is_folded_into_the_stem():
    """A BGR-trained checkpoint given RGB input equals the same network fed BGR input."""
    name = "mobilevit_xxs"
    model, weights = hf_model(name)
    x = np.random.default_rng(6).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(np.ascontiguousarray(x[:, ::-1]))).logits.numpy()
    mine = minivit.create_model(name, minivit.convert_state_dict(weights, name, "hf"))   # default: bgr
    assert_close("logits with folded BGR flip", mine(x), want, atol=1e-5)
