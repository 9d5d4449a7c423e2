"""Every kernel against its NumPy reference, on small odd shapes, run jitted and as plain Python."""

import numpy as np
import pytest

from minivit.kernels import act, attention, conv, norm, patches, pool, resize
from reference import assert_close


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV_CASES = [
    # (B, Ci, H, W, Co, k, stride, dilation, groups)
    (1, 3, 9, 7, 5, 3, 2, 1, 1),      # stem-like dense 3x3 stride 2, odd sizes
    (2, 4, 1, 1, 6, 3, 1, 1, 1),      # 1x1 map through a 3x3 conv
    (2, 6, 5, 4, 6, 3, 1, 1, 6),      # depthwise
    (1, 6, 7, 9, 6, 3, 2, 1, 6),      # depthwise, stride 2
    (1, 4, 8, 7, 4, 3, 1, 2, 4),      # depthwise, dilation 2
    (2, 5, 6, 3, 7, 1, 1, 1, 1),      # pointwise
    (1, 4, 6, 6, 6, 3, 1, 2, 2),      # grouped, dilated
    (1, 3, 5, 5, 4, 1, 2, 1, 1),      # 1x1 stride 2 (im2col path)
    (1, 2, 7, 6, 3, 5, 1, 1, 1),      # 5x5
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("activation", [None, "silu", "relu"])
def test_conv2d(mode, case, activation):
    B, Ci, H, W, Co, k, s, d, g = case
    x, w, b = rand(B, Ci, H, W), rand(Co, Ci // g, k, k, seed=1), rand(Co, seed=2)
    pad = (k - 1) // 2 * d
    ref = conv.conv2d_ref(x, w, b, s, pad, d, g)
    ref = act.bias_act_ref(ref.reshape(B, Co, -1), None, activation).reshape(ref.shape)
    got = conv.conv2d(x, w, b, s, pad, d, g, act=activation)
    assert_close("conv2d", got, ref, atol=1e-5, rtol=1e-5)


def test_conv2d_ref_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = rand(2, 4, 7, 6), rand(6, 2, 3, 3, seed=1), rand(6, seed=2)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                     torch.from_numpy(b).double(), 2, 2, 2, 2).numpy()
    assert_close("conv2d_ref", conv.conv2d_ref(x, w, b, 2, 2, 2, 2), ref, atol=1e-6)


@pytest.mark.parametrize("activation", [None, "silu", "relu"])
def test_bias_act(mode, activation):
    y, b = rand(2, 3, 5), rand(3, seed=1)
    ref = act.bias_act_ref(y, b, activation)
    assert_close("bias_act_", act.bias_act_(y.copy(), b, activation), ref, atol=1e-6, rtol=1e-6)


def test_silu(mode):
    x = rand(3, 7) * 10
    assert_close("silu", act.silu(x), act.silu_ref(x.astype(np.float64)), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 7), (2, 4, 1, 6)])
def test_layer_norm(mode, shape):
    x, w, b = rand(*shape) * 3 + 1, rand(shape[-1], seed=1), rand(shape[-1], seed=2)
    assert_close("layer_norm", norm.layer_norm(x, w, b), norm.layer_norm_ref(x, w, b), atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (1, 5, 3)])
def test_group_norm1(mode, shape):
    x, w, b = rand(*shape) * 3 + 1, rand(shape[1], seed=1), rand(shape[1], seed=2)
    assert_close("group_norm1", norm.group_norm1(x, w, b), norm.group_norm1_ref(x, w, b), atol=1e-5)


def test_norm_refs_match_torch():
    torch = pytest.importorskip("torch")
    x, w, b = rand(2, 6, 3, 5), rand(6, seed=1), rand(6, seed=2)
    t = torch.from_numpy(x).double()
    gn = torch.nn.functional.group_norm(t, 1, torch.from_numpy(w).double(), torch.from_numpy(b).double())
    assert_close("group_norm1_ref", norm.group_norm1_ref(x, w, b), gn.numpy(), atol=1e-6)
    w5, b5 = w[:5], b[:5]
    ln = torch.nn.functional.layer_norm(t, (5,), torch.from_numpy(w5).double(), torch.from_numpy(b5).double())
    assert_close("layer_norm_ref", norm.layer_norm_ref(x, w5, b5), ln.numpy(), atol=1e-6)


def test_softmax(mode):
    s = rand(3, 2, 7) * 5
    assert_close("softmax_", attention.softmax_(s.copy()), attention.softmax_ref(s), atol=1e-6)


@pytest.mark.parametrize("T,N,D,heads", [(4, 1, 8, 4), (2, 9, 12, 3), (3, 5, 16, 1)])
def test_mha(mode, T, N, D, heads):
    x = rand(T, N, D)
    wq, bq, wo, bo = rand(3 * D, D, seed=1) * 0.3, rand(3 * D, seed=2), rand(D, D, seed=3) * 0.3, rand(D, seed=4)
    ref, ref_attn = attention.mha_ref(x, wq, bq, wo, bo, heads, return_attn=True)
    got, got_attn = attention.mha(x, np.ascontiguousarray(wq.T), bq, np.ascontiguousarray(wo.T), bo, heads,
                                  return_attn=True)
    assert_close("mha", got, ref, atol=1e-5, rtol=1e-5)
    assert_close("mha attention", got_attn, ref_attn, atol=1e-6)
    r = rand(T, N, D, seed=5)       # the transformer layer's residual, added in the output projection's epilogue
    got = attention.mha(x, np.ascontiguousarray(wq.T), bq, np.ascontiguousarray(wo.T), bo, heads, residual=r)
    assert_close("mha + residual", got, ref.astype(np.float64) + r, atol=2e-5, rtol=1e-5)


def test_mha_ref_matches_torch():
    torch = pytest.importorskip("torch")
    T, N, D, h = 2, 6, 8, 2
    x, wq, bq, wo, bo = rand(T, N, D), rand(3 * D, D, seed=1), rand(3 * D, seed=2), rand(D, D, seed=3), rand(D, seed=4)
    t = lambda a: torch.from_numpy(a).double()
    ref, _ = torch.nn.functional.multi_head_attention_forward(
        t(x).transpose(0, 1), t(x).transpose(0, 1), t(x).transpose(0, 1), D, h, t(wq), t(bq), None, None,
        False, 0.0, t(wo), t(bo), training=False, need_weights=False)
    assert_close("mha_ref", attention.mha_ref(x, wq, bq, wo, bo, h), ref.transpose(0, 1).numpy(), atol=1e-6)


@pytest.mark.parametrize("B,C,H,W,ph,pw", [(1, 3, 2, 2, 2, 2), (2, 5, 4, 6, 2, 2), (1, 2, 6, 9, 3, 3), (2, 3, 4, 6, 2, 3),
                                         (1, 4, 6, 70, 2, 2), (1, 3, 4, 66, 2, 3),   # rows of 35 and 22 patches
                                         (2, 20, 4, 34, 2, 2)])                      # two channel blocks, one partial
def test_unfold_fold(mode, B, C, H, W, ph, pw):
    x = rand(B, C, H, W)
    t1 = patches.unfold_v1(x, ph, pw)
    np.testing.assert_array_equal(t1, patches.unfold_v1_ref(x, ph, pw))
    np.testing.assert_array_equal(patches.fold_v1(t1, B, H, W, ph, pw), x)
    np.testing.assert_array_equal(patches.fold_v1_ref(t1, B, H, W, ph, pw), x)
    t2 = patches.unfold_v2(x, ph, pw)
    np.testing.assert_array_equal(t2, patches.unfold_v2_ref(x, ph, pw))
    np.testing.assert_array_equal(patches.fold_v2(t2, H, W, ph, pw), x)
    np.testing.assert_array_equal(patches.fold_v2_ref(t2, H, W, ph, pw), x)


def test_unfold_layouts_match_torch():
    """v1: the official reshape/transpose sequence; v2: F.unfold with kernel = stride = patch."""
    torch = pytest.importorskip("torch")
    B, C, H, W, ph, pw = 2, 3, 4, 6, 2, 2
    x = rand(B, C, H, W)
    t = torch.from_numpy(x)
    nh, nw = H // ph, W // pw
    v1 = (t.reshape(B * C * nh, ph, nw, pw).transpose(1, 2).reshape(B, C, nh * nw, ph * pw)
          .transpose(1, 3).reshape(B * ph * pw, nh * nw, C))
    np.testing.assert_array_equal(patches.unfold_v1_ref(x, ph, pw), v1.numpy())
    v2 = torch.nn.functional.unfold(t, (ph, pw), stride=(ph, pw)).reshape(B, C, ph * pw, nh * nw)
    np.testing.assert_array_equal(patches.unfold_v2_ref(x, ph, pw), v2.numpy())
    back = torch.nn.functional.fold(v2.reshape(B, C * ph * pw, -1), (H, W), (ph, pw), stride=(ph, pw))
    np.testing.assert_array_equal(patches.fold_v2_ref(v2.numpy(), H, W, ph, pw), back.numpy())


RESIZE_CASES = [((5, 7), (6, 8)), ((8, 8), (3, 5)), ((1, 1), (2, 2)), ((3, 4), (1, 1)), ((7, 9), (16, 10)), ((4, 4), (4, 4))]


@pytest.mark.parametrize("src,dst", RESIZE_CASES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_resize(mode, src, dst, align_corners):
    x = rand(2, 3, *src)
    got = resize.resize_bilinear(x, dst, align_corners)
    assert_close("resize_bilinear", got, resize.resize_bilinear_ref(x, dst, align_corners), atol=1e-6)


@pytest.mark.parametrize("src,dst", RESIZE_CASES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_matches_torch(src, dst, align_corners):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, *src)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=dst, mode="bilinear",
                                          align_corners=align_corners).numpy()
    assert_close("resize_bilinear vs torch", resize.resize_bilinear(x, dst, align_corners), ref, atol=2e-6)


def test_pool_and_linear():
    torch = pytest.importorskip("torch")
    x = rand(2, 5, 3, 7)
    assert_close("global_avg_pool", pool.global_avg_pool(x), pool.global_avg_pool_ref(x), atol=1e-6)
    assert_close("global_avg_pool vs torch", pool.global_avg_pool(x), torch.from_numpy(x).mean((2, 3)).numpy(),
                 atol=1e-6)
    f, w, b = rand(4, 5), rand(3, 5, seed=1), rand(3, seed=2)
    ref = torch.nn.functional.linear(torch.from_numpy(f), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    assert_close("linear_ref", pool.linear_ref(f, w, b), ref, atol=1e-5)
    assert_close("linear", pool.linear(f, np.ascontiguousarray(w.T), b), ref, atol=1e-5)
    r = rand(4, 3, seed=3)
    assert_close("linear + residual", pool.linear(f, np.ascontiguousarray(w.T), b, residual=r), ref + r, atol=1e-5)
