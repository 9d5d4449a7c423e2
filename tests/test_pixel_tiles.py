"""Pixel tiles (kernels/pixel_tiles.py): the layout against its reshape definition, and every
conv that reads or writes it against the NumPy convolution, jitted and as plain Python."""

import numpy as np
import pytest

from minivit.kernels import act, conv, depthwise, pixel_tiles as pt
from reference import assert_close


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 5, 3, 128), (1, 3, 1, 64), (1, 17, 2, 192)])
def test_layout_round_trip(mode, shape):
    x = rand(*shape)
    t = pt.to_tiles(x)
    B, C, H, W = shape
    assert t.shape == (B, H, W // 64, C, 64)
    np.testing.assert_array_equal(t, pt.to_tiles_ref(x))
    np.testing.assert_array_equal(t[0, H - 1, W // 64 - 1, C - 1], x[0, C - 1, H - 1, W - 64:])
    np.testing.assert_array_equal(pt.untiled(t), x)
    np.testing.assert_array_equal(pt.from_tiles_ref(t), x)
    assert pt.map_shape(t) == shape and pt.untiled(x) is x


def test_grid_to_tiles_drops_the_extra_columns(mode):
    B, C, H, W, Wg = 2, 3, 4, 64, 70
    src = rand(B, C, (H - 1) * Wg + W)
    grid = np.zeros((B, C, H * Wg), np.float32)
    grid[:, :, :src.shape[2]] = src
    planes = grid.reshape(B, C, H, Wg)[:, :, :, :W]                # (B, C, H, W): each row's first W
    np.testing.assert_array_equal(pt.grid_to_tiles(src, Wg, H, W), pt.to_tiles_ref(planes))


def test_offsets_match_the_layout():
    x = rand(1, 6, 2, 128)
    flat = pt.to_tiles_ref(x).reshape(-1)
    for c, p in [(0, 0), (5, 63), (2, 64), (3, 200), (5, 255)]:
        assert flat[pt.off(True, 6, 256, c, p)] == x[0, c].reshape(-1)[p]
        assert x.reshape(-1)[pt.off(False, 6, 256, c, p)] == x[0, c].reshape(-1)[p]


POINTWISE_CASES = [
    # (B, Ci, H, W, Co)
    (2, 7, 3, 128, 9),          # 384 pixels: loop steps of one tile
    (1, 7, 4, 128, 200),        # 512 pixels: steps of four tiles
    (1, 300, 2, 64, 100),       # many input channels: each tile's rows in several calls
]


def conv1x1_ref(x, w, b, activation, residual):
    y = conv.conv2d_ref(x, w, b)
    y = act.bias_act_ref(y.reshape(y.shape[0], y.shape[1], -1), None, activation).reshape(y.shape)
    return y if residual is None else y + residual


@pytest.mark.parametrize("case", POINTWISE_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("layouts", ["tiles->tiles", "tiles->nchw", "nchw->tiles"])
@pytest.mark.parametrize("activation,with_residual", [("silu", False), (None, True), ("relu", False)])
def test_pointwise(mode, case, layouts, activation, with_residual):
    B, Ci, H, W, Co = case
    x, w, b = rand(B, Ci, H, W), rand(Co, Ci, 1, 1, seed=1) * 0.2, rand(Co, seed=2)
    r = rand(B, Co, H, W, seed=3) if with_residual else None
    ref = conv1x1_ref(x, w, b, activation, r)
    t_in, t_out = layouts.split("->")[0] == "tiles", layouts.split("->")[1] == "tiles"
    xi = pt.to_tiles_ref(x) if t_in else x
    ri = None if r is None else (pt.to_tiles_ref(r) if t_out else r)
    got = pt.pointwise(xi, w.reshape(Co, Ci), b, activation, ri, tiled=t_out)
    assert got.ndim == (5 if t_out else 4)
    assert_close(f"pointwise {layouts}", pt.from_tiles_ref(got) if t_out else got, ref, atol=2e-5, rtol=1e-5)


def test_pointwise_needs_tiles_on_one_side():
    with pytest.raises(ValueError, match="pixel tiles"):
        pt.pointwise(rand(1, 4, 2, 64), rand(3, 4), rand(3), None)


def test_conv2d_in_and_out_of_tiles(mode):
    """The stem writes tiles from its phase grid; other convs convert; an output width that is no
    multiple of 64 stays NCHW."""
    x, w, b = rand(1, 3, 6, 256), rand(16, 3, 3, 3, seed=1) * 0.3, rand(16, seed=2)
    stem = conv.conv2d(x, w, b, 2, 1, act="silu", tiled=True)
    assert stem.shape == (1, 3, 2, 16, 64)
    y = conv.conv2d_ref(x, w, b, stride=2, padding=1)
    ref = act.bias_act_ref(y.reshape(1, 16, -1), None, "silu").reshape(y.shape)
    assert_close("stem into tiles", pt.from_tiles_ref(stem), ref, atol=2e-5, rtol=1e-5)
    # depthwise from tiles (NCHW out), and a dense 3x3 into tiles with a tiled residual
    t = pt.to_tiles_ref(ref)
    wd, bd = rand(16, 1, 3, 3, seed=3), rand(16, seed=4)
    got = conv.conv2d(t, wd, bd, 1, 1, groups=16)
    assert got.ndim == 4
    assert_close("depthwise from tiles", got, conv.conv2d_ref(ref, wd, bd, padding=1, groups=16),
                 atol=2e-5, rtol=1e-5)
    w3 = rand(16, 16, 3, 3, seed=5) * 0.1
    got = conv.conv2d(t, w3, None, 1, 1, residual=t, tiled=True)
    assert got.ndim == 5
    assert_close("3x3 into tiles", pt.from_tiles_ref(got), conv.conv2d_ref(ref, w3, None, padding=1) + ref,
                 atol=2e-5, rtol=1e-5)
    half = np.ascontiguousarray(ref[:, :, :, :64])
    got = conv.conv2d(pt.to_tiles_ref(half), w3, None, 2, 1, tiled=True)      # 64 wide -> 32: NCHW
    assert got.ndim == 4
    assert_close("3x3 stride 2", got, conv.conv2d_ref(half, w3, None, stride=2, padding=1), atol=2e-5, rtol=1e-5)


MBCONV_TILED_CASES = [
    # (B, Ci, Ch, Co, H, W, stride, residual, tiles in, tiles out)
    (1, 8, 16, 8, 9, 64, 1, True, True, True),          # stride 1 with the residual, one tile per row
    (2, 6, 12, 10, 7, 128, 1, False, True, True),       # two tiles per row, batch 2
    (1, 8, 16, 12, 9, 128, 2, False, True, True),       # stride 2: 128 -> 64 wide
    (1, 8, 16, 12, 8, 128, 2, False, True, False),      # stride 2 out of tiles into NCHW
    (1, 8, 16, 12, 8, 256, 2, False, False, True),      # NCHW into tiles
]


@pytest.mark.parametrize("case", MBCONV_TILED_CASES, ids=lambda c: "x".join(map(str, c)))
def test_inverted_residual_fused_on_tiles(mode, case, monkeypatch):
    """The band-fused block reading and writing tiles, thresholds lowered so that it runs (several
    bands per image), against the block as three NumPy convolutions."""
    monkeypatch.setattr(depthwise, "FUSE_BYTES", 0)
    monkeypatch.setattr(depthwise, "BAND_BYTES", 16 * 1024)
    monkeypatch.setattr(depthwise, "_fusion_pays", lambda *a: True)
    B, Ci, Ch, Co, H, W, s, residual, t_in, t_out = case
    x = rand(B, Ci, H, W)
    we, be, wd, bd = rand(Ch, Ci, 1, 1, seed=1) * 0.4, rand(Ch, seed=2), rand(Ch, 1, 3, 3, seed=3) * 0.4, rand(Ch, seed=4)
    wp, bp = rand(Co, Ch, 1, 1, seed=5) * 0.3, rand(Co, seed=6)
    got = depthwise.inverted_residual(pt.to_tiles_ref(x) if t_in else x, we, be, 1, wd, bd, 1, s, 1, wp, bp,
                                      residual, tiled=t_out)
    assert got is not None and got.ndim == (5 if t_out else 4)
    ref = depthwise.inverted_residual_ref(x, we, be, 1, wd, bd, 1, s, 1, wp, bp, residual)
    assert_close("inverted_residual on tiles", pt.from_tiles_ref(got) if t_out else got, ref, atol=2e-5, rtol=1e-5)


def test_inverted_residual_without_expansion_declines_tiles():
    x = pt.to_tiles_ref(rand(1, 16, 8, 64))
    wd, bd, wp, bp = rand(16, 1, 3, 3), rand(16), rand(16, 16, 1, 1), rand(16)
    assert depthwise.inverted_residual(x, None, None, 0, wd, bd, 1, 1, 1, wp, bp, True, tiled=True) is None


def test_models_keep_the_stem_run_in_tiles():
    """At 256x256 the stem and the inverted residuals on 128- and 64-wide maps pass tiles on, and
    what the model returns is the same with the layout switched off (conv2d's NCHW paths)."""
    from minivit.blocks.inverted_residual import InvertedResidual
    from minivit.models.registry import create_model, random_init
    m = create_model("mobilevitv2_050")
    random_init(m)
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    assert m.conv_1(x, tiled=True).ndim == 5
    seen = []
    call = InvertedResidual.__call__

    def spy(self, a, tiled=False):
        y = call(self, a, tiled)
        seen.append((a.ndim, y.ndim))
        return y
    InvertedResidual.__call__ = spy
    try:
        logits = m(x)
    finally:
        InvertedResidual.__call__ = call
    assert seen[:4] == [(5, 5), (5, 5), (5, 5), (5, 4)], seen            # layer_1.0 ... layer_3.0
    assert all(pair == (4, 4) for pair in seen[4:])
    no_tiles = {}
    mp = pytest.MonkeyPatch()
    try:
        for mod in ("minivit.kernels.conv", "minivit.kernels.depthwise", "minivit.blocks.inverted_residual"):
            mp.setattr(f"{mod}.tileable", lambda W: False)
        no_tiles = m(x)
    finally:
        mp.undo()
    assert_close("logits with and without tiles", logits, no_tiles, atol=1e-5, rtol=1e-5)
