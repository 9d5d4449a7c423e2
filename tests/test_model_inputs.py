"""Arrays given to a model: each bad input gets a clear InputError; good ones are converted once."""
import numpy as np
import pytest

import minivit
from minivit.models.mobilevit import MIN_SIZE, check_input


@pytest.fixture(scope="module")
def model():
    return minivit.create_model("mobilevit_xxs")


def x(*shape, dtype=np.float32):
    return np.random.default_rng(0).uniform(0, 1, shape).astype(dtype)


@pytest.mark.parametrize("bad,match", [
    (x(3, 64, 64), r"4 dimensions .* got shape \(3, 64, 64\) \(add a batch axis"),
    (x(1, 1, 3, 64, 64), r"4 dimensions"),
    (x(1, 64, 64, 3), r"3 channels on axis 1 .*channels-last"),
    (x(2, 1, 64, 64), r"3 channels on axis 1 .*\(2, 1, 64, 64\)"),
    (x(0, 3, 64, 64), r"empty batch"),
    (x(1, 3, 16, 64), r"16x64 pixels; the smallest size these networks take is 32x32"),
    ((x(1, 3, 64, 64) * 255).astype(np.uint8), r"floating point .*uint8 .*/ 255"),
    (x(1, 3, 64, 64).astype(np.complex64), r"floating point"),
    ("an image.jpg", r"4 dimensions"),
])
def test_bad_input_is_named(model, bad, match):
    with pytest.raises(minivit.InputError, match=match):
        model(bad)
    with pytest.raises(minivit.InputError, match=match):
        model.trace(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(model, value):
    a = x(1, 3, 64, 64)
    a[0, 1, 5, 7] = value
    with pytest.raises(minivit.InputError, match="NaN or infinite"):
        model(a)


def test_input_errors_are_value_errors(model):
    with pytest.raises(ValueError):
        model(x(1, 3, 8, 8))


def test_float32_contiguous_input_is_not_copied():
    a = x(1, 3, 64, 64)
    assert check_input(a) is a


def test_float64_and_strided_inputs_give_the_float32_answer(model):
    a = x(2, 3, 64, 64)
    want = model(a)
    np.testing.assert_array_equal(model(a.astype(np.float64)), want)
    wide = np.zeros((2, 3, 64, 128), np.float32)
    wide[..., ::2] = a
    view = wide[..., ::2]                      # non-contiguous view of the same values
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(model(view), want)
    np.testing.assert_array_equal(model(np.asfortranarray(a)), want)


def test_smallest_size_runs(model):
    out = model(x(1, 3, MIN_SIZE, MIN_SIZE))
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_batch_rows_are_independent(model):
    a = x(3, 3, 64, 80)
    np.testing.assert_allclose(model(a)[1:2], model(a[1:2]), rtol=0, atol=1e-5)
