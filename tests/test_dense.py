"""DeepLabv3 and SSDLite on every backbone family, against PyTorch.

- tests/torch_dense_reference.py (float64; it reproduces the official dense outputs
  of tests/data/dense to 6e-8): one backbone of each family, both DeepLab recipes of
  the v2 family (OS 16 and the dilated OS 8), SSDLite; tolerances are the reference
  README's for the family's logits (1e-5 v1 family, 2e-5 v2 family).
- transformers' MobileViTForSemanticSegmentation / MobileViTV2ForSemanticSegmentation,
  converted with the "hf" rules. transformers returns the logits before upsampling, so
  those are compared. Its v2 head does not dilate the depthwise local conv of the
  MobileViT blocks in dilated stages (the official code does): we compare v2 with those
  convs' weights zero outside the centre tap, where dilation changes nothing, and check
  that with full kernels the two really differ.
- Every preset's official key list (built by the reference) converts strictly.
"""
import numpy as np
import pytest
import torch

import minivit
import torch_dense_reference as tdr
from minivit.models.dense import build_dense
from minivit.models.registry import get_config
from reference import assert_close, synthetic_model
from synth import synth_state_dict

V1_FAMILY = ("v1", "v3_v1")


def family_atol(config):
    return 1e-5 if get_config(config.backbone).block in V1_FAMILY else 2e-5


def synth_for(torch_model):
    """Synthetic weights (tests/synth.py) for every key of a torch model, loaded into it."""
    sd = synth_state_dict([(k, tuple(v.shape)) for k, v in torch_model.state_dict().items()])
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    return sd


def registered(names):
    """The names whose backbone family minivit has (all four families once they exist)."""
    have = set(minivit.list_models(task=None))
    return [n for n in names if n in have]


@pytest.mark.parametrize("name", registered([
    "deeplabv3_mobilevitv3_xxs", "deeplabv3_mobilevitv2_050_voc", "deeplabv3_mobilevitv2_050_ade20k",
    "deeplabv3_mobilevitv3_050_voc", "deeplabv3_mobilevitv3_050_ade20k"]))
def test_deeplab_against_torch(name):
    config = get_config(name)
    ref = tdr.deeplab_for(config)
    sd = synth_for(ref)
    model = synthetic_model(name, sd)
    x = np.random.default_rng(5).uniform(0, 1, (1, 3, 128, 96)).astype(np.float32)
    with torch.no_grad():
        low, up = ref.double()(torch.from_numpy(x).double())
    trace = model.trace(x)
    os_ = config.output_stride
    assert trace["logits_lowres"].shape == (1, config.num_classes, 128 // os_, 96 // os_)
    assert_close(f"{name} logits_lowres", trace["logits_lowres"], low.numpy(), family_atol(config))
    assert_close(f"{name} logits", trace["logits"], up.numpy(), family_atol(config))


@pytest.mark.parametrize("name", registered(["ssd_mobilevitv3_xxs", "ssd_mobilevitv2_050", "ssd_mobilevitv3_050"]))
def test_ssd_against_torch(name):
    config = get_config(name)
    ref = tdr.SSDLite(config.backbone).eval()
    sd = synth_for(ref)
    model = synthetic_model(name, sd)
    x = np.random.default_rng(5).uniform(0, 1, (2, 3, 256, 256)).astype(np.float32)
    with torch.no_grad():
        cls, loc = ref.double()(torch.from_numpy(x).double())
    out = model(x)
    n = 6 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1) + 4 * 1      # maps 16, 8, 4, 2, 1 (6 anchors), global (4)
    assert out.cls_logits.shape == (2, n, 81) and out.anchors.shape == (n, 4)
    assert_close(f"{name} cls_logits", out.cls_logits, cls.numpy(), family_atol(config))
    assert_close(f"{name} locations", out.locations, loc.numpy(), family_atol(config))


# ---- transformers ------------------------------------------------------------------------------

def _hf_pair(hf_model, name, centre_only=()):
    """minivit and transformers models with the same synthetic weights; the named depthwise
    kernels are zeroed outside their centre tap."""
    sd = synth_state_dict([(k, tuple(v.shape)) for k, v in hf_model.state_dict().items()])
    for k in centre_only:
        centre = np.zeros_like(sd[k])
        centre[:, :, 1, 1] = sd[k][:, :, 1, 1]
        sd[k] = centre
    hf_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    w = minivit.convert_state_dict(sd, name, "hf", checkpoint_channels="rgb")
    return minivit.create_model(name, weights=w), hf_model.double().eval()


def _hf_lowres(hf_model, x):
    with torch.no_grad():
        return hf_model(torch.from_numpy(x).double()).logits.numpy()


def test_hf_v1_segmentation():
    from transformers import MobileViTConfig, MobileViTForSemanticSegmentation
    cfg = MobileViTConfig(hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                          expand_ratio=2.0, output_stride=16, num_labels=21, aspp_out_channels=256)
    model, hf = _hf_pair(MobileViTForSemanticSegmentation(cfg), "deeplabv3_mobilevit_xxs")
    x = np.random.default_rng(6).uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)
    low = _hf_lowres(hf, x)
    trace = model.trace(x)
    assert_close("hf v1 logits (before upsampling)", trace["logits_lowres"], low, 1e-5)
    up = torch.nn.functional.interpolate(torch.from_numpy(low), size=(128, 128), mode="bilinear",
                                         align_corners=False).numpy()
    assert_close("hf v1 logits upsampled", trace["logits"], up, 1e-5)


@pytest.mark.parametrize("output_stride", [16, 8])
def test_hf_v2_segmentation(output_stride):
    from transformers import MobileViTV2Config, MobileViTV2ForSemanticSegmentation
    name = "deeplabv3_mobilevitv2_050_voc" if output_stride == 16 else "deeplabv3_mobilevitv2_050_ade20k"
    config = get_config(name)
    hf_cfg = MobileViTV2Config(width_multiplier=0.5, output_stride=output_stride, num_labels=config.num_classes,
                               atrous_rates=list(config.rates), aspp_out_channels=config.aspp_channels)
    dilated = {16: (4,), 8: (3, 4)}[output_stride]          # transformers counts stages from 0
    local = [f"mobilevitv2.encoder.layer.{k}.conv_kxk.convolution.weight" for k in dilated]
    x = np.random.default_rng(6).uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)

    model, hf = _hf_pair(MobileViTV2ForSemanticSegmentation(hf_cfg), name, centre_only=local)
    assert_close(f"hf v2 OS{output_stride} logits", model.trace(x)["logits_lowres"], _hf_lowres(hf, x), 2e-5)

    # the known difference: with full kernels, the official (dilated) and transformers' outputs part
    model, hf = _hf_pair(MobileViTV2ForSemanticSegmentation(hf_cfg), name)
    assert np.abs(model.trace(x)["logits_lowres"] - _hf_lowres(hf, x)).max() > 1e-2


# ---- every preset --------------------------------------------------------------------------------

def test_every_preset_converts_from_official_keys():
    """Each preset's official state-dict layout (the reference's, on the meta device: keys and
    shapes only) converts strictly, and the preset builds the model it names."""
    names = minivit.list_models("segmentation") + minivit.list_models("detection")
    classifiers = minivit.list_models()
    assert len(names) == sum(1 if get_config(c).block in V1_FAMILY else 2 for c in classifiers) + len(classifiers)
    for name in names:
        config = get_config(name)
        with torch.device("meta"):
            ref = tdr.deeplab_for(config) if config.task == "segmentation" else tdr.SSDLite(config.backbone)
        sd = {k: np.zeros(v.shape, np.float32) for k, v in ref.state_dict().items()}
        minivit.convert_state_dict(sd, build_dense(config), "cvnets")     # raises on any mismatch
