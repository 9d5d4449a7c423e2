"""The separable self-attention kernel (MobileViTv2): the fast version against the NumPy
reference on small odd shapes, jitted and as plain Python, and the reference against PyTorch."""
import numpy as np
import pytest

from minivit.kernels import separable_attention as sa
from reference import assert_close

# (B, d, P, N): odd sizes, a single patch, a single pixel per patch, one channel
SHAPES = [(2, 5, 3, 7), (1, 3, 4, 1), (3, 1, 1, 5), (2, 8, 4, 9)]


@pytest.fixture(params=["jit", "python"])
def mode(request, monkeypatch):
    """Run with the Numba kernel compiled, then with its plain-Python original."""
    if request.param == "python":
        monkeypatch.setattr(sa, "_score_context_gate", sa._score_context_gate.py_func)
    return request.param


def make(B, d, P, N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, d, P, N)).astype(np.float32)
    w_qkv = (rng.standard_normal((1 + 2 * d, d)) / np.sqrt(d)).astype(np.float32)
    b_qkv = (0.1 * rng.standard_normal(1 + 2 * d)).astype(np.float32)
    w_out = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
    b_out = (0.1 * rng.standard_normal(d)).astype(np.float32)
    return x, w_qkv, b_qkv, w_out, b_out


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fast_matches_reference(mode, shape):
    args = make(*shape)
    y_ref, s_ref = sa.separable_attention_ref(*args, return_scores=True)
    y, s = sa.separable_attention(*args, return_scores=True)
    assert y.dtype == s.dtype == np.float32
    assert_close("separable_attention", y, y_ref, atol=2e-6, rtol=1e-5)
    assert_close("context scores", s, s_ref, atol=1e-7, rtol=1e-6)
    np.testing.assert_array_equal(sa.separable_attention(*args), y)   # same numbers without scores
    # the transformer layer's residual, added in the output projection's epilogue
    r = make(*shape, seed=5)[0]
    assert_close("separable_attention + residual", sa.separable_attention(*args, residual=r),
                 y_ref.astype(np.float64) + r, atol=4e-6, rtol=1e-5)


def test_scores_are_a_softmax_over_patches():
    y, s = sa.separable_attention(*make(2, 4, 4, 6), return_scores=True)
    assert s.shape == (2, 4, 6) and (s > 0).all()
    assert_close("sum of scores over N", s.sum(axis=-1), np.ones((2, 4)), atol=1e-6)


def test_large_logits_do_not_overflow(mode):
    x, w_qkv, b_qkv, w_out, b_out = make(1, 3, 2, 5)
    b_qkv = b_qkv.copy()
    b_qkv[0] = 200.0                    # exp(200) overflows float32 unless the max is subtracted
    y, s = sa.separable_attention(x, w_qkv, b_qkv, w_out, b_out, return_scores=True)
    assert np.isfinite(y).all()
    # q near 200 is rounded to float32 (half an ulp is 7.6e-6), so each score carries a relative
    # error of up to about 2 * 7.6e-6 before any arithmetic: compare relatively
    assert_close("scores", s, sa.separable_attention_ref(x, w_qkv, b_qkv, w_out, b_out, True)[1],
                 atol=0, rtol=2e-5)


def test_reference_matches_torch():
    """The reference against the upstream formula written in PyTorch (float64)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w_qkv, b_qkv, w_out, b_out = make(2, 5, 4, 7)
    d = x.shape[1]
    t = lambda a: torch.from_numpy(a).double()
    qkv = F.conv2d(t(x), t(w_qkv)[:, :, None, None], t(b_qkv))
    q, k, v = torch.split(qkv, [1, d, d], dim=1)
    scores = F.softmax(q, dim=-1)
    context = (k * scores).sum(dim=-1, keepdim=True)
    ref = F.conv2d(F.relu(v) * context.expand_as(v), t(w_out)[:, :, None, None], t(b_out))
    y, s = sa.separable_attention_ref(x, w_qkv, b_qkv, w_out, b_out, return_scores=True)
    assert_close("separable_attention_ref", y, ref.numpy(), atol=1e-6)
    assert_close("scores", s, scores[:, 0].numpy(), atol=1e-7)
