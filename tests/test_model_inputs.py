"""Arrays given to a model: each bad input gets a clear InputError; good ones are converted once."""
import numpy as np
import pytest

import minivit
from minivit.blocks.inverted_residual import InvertedResidual
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


def test_a_batch_runs_per_image_then_joint(model):
    """model(x) = joint(per_image(x)): the blocks before layer_4's MobileViT block one image at a
    time, the rest in groups; each half is exactly the matching part of forward."""
    a = x(1, 3, 64, 80)
    front = model.per_image(a)
    assert front.shape == (1, 64, 4, 5)                    # layer_4's stride-2 block's output: 1/16
    np.testing.assert_array_equal(front, model.layer_4[0](model.features(a)[2]))
    before, after = model.split_blocks()
    assert [b for _, b, _ in before + after] == [b for _, b, _ in model._blocks()]
    k, first_joint, _ = after[0]
    assert k == 4 and type(first_joint).__name__ == "MobileViTBlock"
    np.testing.assert_array_equal(model.joint(front), model.forward(a))


@pytest.mark.parametrize("name", minivit.list_models())
def test_every_variant_joins_its_batch_at_layer_4s_mobilevit_block(name):
    model = minivit.create_model(name)
    k, block, _ = model.split_blocks()[1][0]
    assert k == 4 and not isinstance(block, InvertedResidual)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_rows_are_independent_at_each_thread_count(model, threads):
    import numba
    from minivit.threads import get_num_threads, set_num_threads
    before = get_num_threads()
    set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        a = x(5, 3, 64, 80)
        got = model(a)
        for i in range(5):
            np.testing.assert_allclose(got[i:i + 1], model(a[i:i + 1]), rtol=0, atol=1e-5, err_msg=f"image {i}")
    finally:
        set_num_threads(before)
