"""The fast paths of the kernels against their NumPy references, jitted and as plain Python.

Covers what test_kernels.py does not reach: the vectorised exp, the tiled BLAS matmul with
its fused epilogue (bias per row or column, activation, residual, shared or batched
operands, many tiles), the residual of conv2d on every path, odd depthwise shapes
(1x1 maps, stride 2, dilation, 5x5), attention with many sequence-head pairs, the
np.matmul fallback used when no BLAS address is found, and the BLAS thread guard.
"""

import numpy as np
import pytest

from minivit import threads
from minivit.kernels import act, attention, conv, elementwise, matmul, norm, separable_attention
from reference import assert_close


@pytest.fixture
def no_blas(monkeypatch):
    """Pretend no usable cblas_sgemm was found: kernels take the np.matmul fallback."""
    monkeypatch.setattr(threads, "_BLAS", threads.Blas(why="disabled by the test"))


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_blas_is_found():
    """On the supported setup (NumPy wheels with OpenBLAS) the fast path is active."""
    lib = threads.blas()
    assert lib.sgemm, lib.why


def test_exp32_matches_exp():
    x = np.concatenate([np.linspace(-87, 88, 20001, dtype=np.float32),
                        np.array([0.0, -0.0, 1e-30, -1e-30, 0.34657, -0.34657], np.float32)])
    got = np.array([elementwise.exp32(v) for v in x], np.float64)
    ref = np.exp(x.astype(np.float64))
    rel = np.abs(got - ref) / ref
    assert rel.max() < 2e-7, f"exp32: max relative error {rel.max():.3g} at x = {x[np.argmax(rel)]}"
    # beyond the clamp: finite and tiny / huge, never inf, nan or 0
    assert 0 < elementwise.exp32(np.float32(-200.0)) < 1e-37
    assert np.isfinite(elementwise.exp32(np.float32(200.0)))


def test_exp32_python_equals_jit():
    """The plain-Python exp32 (no fused multiply-adds) is within 2 ulp of the compiled one."""
    x = np.linspace(-30, 30, 101, dtype=np.float32)
    jit = np.array([elementwise.exp32(v) for v in x])
    py = np.array([elementwise.exp32.py_func(v) for v in x])
    np.testing.assert_allclose(jit, py, rtol=2.5e-7, atol=0)


@pytest.mark.parametrize("N", [1, 7, 8, 9, 64, 257])
def test_softmax_row(mode, N):
    s = rand(3, N) * 8
    got = act.softmax_rows_(s.copy(), 0.3)
    assert_close("softmax_rows_", got, attention.softmax_ref(s * np.float32(0.3)), atol=1e-6)


GEMM_CASES = [
    # (Ba, Bb, M, K, N, bias_on)
    (1, 1, 1, 1, 1, "rows"),
    (1, 2, 5, 7, 9, "rows"),          # shared weight, batch of inputs (conv layout)
    (3, 1, 11, 6, 4, "cols"),         # batch of inputs, shared weight (linear layout)
    (2, 2, 3, 5, 2, "cols"),
    (1, 1, 24, 40, 3000, "rows"),     # many column tiles
    (1, 1, 900, 33, 20, "cols"),      # many row tiles
    (1, 3, 17, 1, 65, "rows"),        # K = 1
    (1, 2, 200, 300, 700, "rows"),    # a 2-D grid of tiles, partial at both far edges
]


def test_gemm_cases_include_a_2d_grid_of_tiles():
    tm, tn = matmul.tiles(200, 700, 300)
    assert 200 % tm and 700 % tn and tn > tm, (tm, tn)     # the column-major tile order, ragged edges


@pytest.mark.parametrize("nm, nn, tm, tn", [(9, 6, 24, 128), (4, 3, 64, 16), (1, 5, 8, 32), (7, 1, 16, 8), (3, 3, 16, 16)])
def test_tile_origins_visit_every_tile_once(nm, nn, tm, tn):
    seen = sorted(matmul.tile_origin(r, nm, nn, tm, tn) for r in range(nm * nn))
    assert seen == sorted((i * tm, j * tn) for i in range(nm) for j in range(nn))


@pytest.mark.parametrize("case", GEMM_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("activation", [None, "silu", "relu"])
@pytest.mark.parametrize("with_residual", [False, True])
def test_gemm_epilogue(mode, case, activation, with_residual):
    Ba, Bb, M, K, N, bias_on = case
    Bo = max(Ba, Bb)
    a, b = rand(Ba, M, K), rand(Bb, K, N, seed=1)
    bias = rand(M if bias_on == "rows" else N, seed=2)
    res = rand(Bo, M, N, seed=3) if with_residual else None
    got = matmul.gemm(a, b, bias, bias_on, activation, res)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    ref = ref + (bias[:, None] if bias_on == "rows" else bias)
    ref = act.bias_act_ref(ref.reshape(Bo, M, N), None, activation)
    if res is not None:
        ref = ref + res
    assert_close("gemm", got, ref, atol=2e-5, rtol=2e-5)


def test_gemm_fallback_equals_fast(no_blas):
    a, b, bias, res = rand(1, 24, 40), rand(2, 40, 300, seed=1), rand(24, seed=2), rand(2, 24, 300, seed=3)
    slow = matmul.gemm(a, b, bias, "rows", "silu", res)
    threads._BLAS = None                                   # find the real BLAS again
    fast = matmul.gemm(a, b, bias, "rows", "silu", res)
    assert_close("gemm fallback vs tiles", slow, fast, atol=1e-5, rtol=1e-5)


def test_tiles_cover_the_output():
    for M, N, K in [(16, 16384, 32), (64, 4096, 64), (1024, 192, 64), (1, 1, 1), (320, 64, 80), (48, 1024, 864),
                    (4000, 3, 2000)]:
        tm, tn = matmul.tiles(M, N, K)
        assert 1 <= tm <= M and 1 <= tn <= N
        assert tn == N or tn % 16 == 0


def test_tiles_take_openblas_small_path_in_good_shapes():
    # OpenBLAS multiplies a tile without packing when tm * tn * K <= SMALL; its kernel runs odd
    # multiples of 16 columns, and fewer than 16 (or an odd number of) rows, much slower
    for M, K in [(128, 64), (64, 128), (64, 32), (16, 32), (32, 16), (16, 27), (96, 96)]:
        cols = matmul.small_cols(M, K)
        assert cols % 32 == 0 and cols >= 64 and M * K * cols <= matmul.SMALL, (M, K, cols)
    assert matmul.small_cols(256, 64) == 0 and matmul.small_cols(192, 96) == 0
    for M, N, K in [(128, 16384, 64), (16, 16384, 32), (256, 1024, 128), (192, 256, 96), (96, 256, 192),
                    (1024, 64, 512), (1024, 432, 144), (512, 4096, 256), (384, 256, 768), (48, 1024, 864),
                    (257, 64, 128), (193, 256, 96), (320, 64, 80)]:
        tm, tn = matmul.tiles(M, N, K)
        assert tm * tn * K <= matmul.SMALL, (M, N, K, tm, tn)
        assert tn == N or tn % 32 == 0, (M, N, K, tm, tn)
        assert tm == M or (tm % 8 == 0 and tm >= 16), (M, N, K, tm, tn)
    tm, tn = matmul.tiles(48, 1024, 8000)              # not even 16 x 64 fits: the packed path, wide tiles
    assert tm == 48 and tn >= 256


def test_tiles_share_work_evenly_between_two_threads():
    # products of SPLIT multiply-adds or more get at least two tiles, and an even count below eight
    for M, N, K in [(192, 256, 96), (96, 256, 192), (256, 64, 128), (192, 256, 256), (384, 256, 192),
                    (64, 1024, 64), (48, 4096, 24), (256, 1024, 128), (16, 16384, 27)]:
        tm, tn = matmul.tiles(M, N, K)
        count = -(-M // tm) * -(-N // tn)
        assert count >= 2 and (count % 2 == 0 or count >= 8), (M, N, K, tm, tn)
    assert matmul.tiles(8, 8, 8) == (8, 8)              # small products stay whole


CONV_CASES = [
    # (B, Ci, H, W, Co, k, stride, dilation, groups)
    (1, 5, 1, 1, 5, 3, 1, 1, 5),      # depthwise on a 1x1 map
    (2, 3, 1, 1, 3, 3, 2, 1, 3),      # depthwise, stride 2, 1x1 map
    (1, 4, 2, 3, 4, 3, 2, 1, 4),      # depthwise, stride 2, map smaller than the kernel
    (1, 3, 9, 8, 3, 3, 2, 1, 3),      # depthwise, stride 2, odd height
    (1, 2, 7, 5, 2, 3, 1, 3, 2),      # depthwise, dilation 3 (the padding exceeds the map)
    (2, 3, 6, 7, 3, 5, 2, 1, 3),      # depthwise 5x5, stride 2
    (1, 4, 5, 6, 4, 1, 1, 1, 4),      # depthwise 1x1
    (1, 6, 5, 7, 10, 1, 1, 1, 1),     # pointwise
    (2, 3, 1, 1, 4, 1, 1, 1, 1),      # pointwise on a 1x1 map
    (1, 3, 8, 9, 5, 3, 2, 1, 1),      # dense 3x3 stride 2, odd width (plain im2col)
    (1, 3, 10, 8, 5, 3, 2, 1, 1),     # dense 3x3 stride 2, even width (the stem's phase planes)
    (2, 2, 7, 6, 4, 3, 2, 1, 1),      # the same, odd height
    (2, 5, 6, 4, 5, 3, 2, 1, 5),      # depthwise stride 2, even width (phase planes)
    (1, 2, 2, 2, 2, 3, 2, 1, 2),      # depthwise stride 2 on a 2x2 map
    (1, 3, 11, 70, 3, 3, 2, 1, 3),    # depthwise stride 2, rows wide enough for the vector split plus a tail
    (1, 4, 3, 3, 6, 3, 1, 2, 1),      # dense 3x3 dilation 2 on a 3x3 map
    (2, 6, 5, 5, 4, 3, 1, 1, 2),      # grouped
    (1, 8, 40, 48, 16, 1, 1, 1, 1),   # pointwise, several tiles
    (1, 16, 36, 36, 16, 3, 1, 1, 16), # depthwise, larger plane
    (2, 80, 6, 5, 80, 3, 1, 1, 80),   # depthwise, several planes per chunk: one zero-bordered scratch plane reused
    (1, 70, 5, 6, 70, 3, 1, 2, 70),   # the same with dilation 2 (a wider border)
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("with_residual", [False, True])
def test_conv2d_fast_paths(mode, case, activation, with_residual):
    B, Ci, H, W, Co, k, s, d, g = case
    x, w, b = rand(B, Ci, H, W), rand(Co, Ci // g, k, k, seed=1), rand(Co, seed=2)
    pad = (k - 1) // 2 * d
    ref = conv.conv2d_ref(x, w, b, s, pad, d, g)
    ref = act.bias_act_ref(ref.reshape(B, Co, -1), None, activation).reshape(ref.shape)
    res = rand(*ref.shape, seed=3) if with_residual else None
    if res is not None:
        ref = ref + res
    got = conv.conv2d(x, w, b, s, pad, d, g, act=activation, residual=res)
    assert_close("conv2d", got, ref, atol=1e-5, rtol=1e-5)


def test_conv2d_fallback(no_blas):
    x, w, b = rand(2, 6, 9, 7), rand(8, 6, 3, 3, seed=1), rand(8, seed=2)
    ref = act.bias_act_ref(conv.conv2d_ref(x, w, b, 1, 1).reshape(2, 8, -1), None, "silu").reshape(2, 8, 9, 7)
    assert_close("conv2d (np.matmul fallback)", conv.conv2d(x, w, b, 1, 1, act="silu"), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("T,N,D,heads", [(1, 1, 4, 1), (3, 33, 12, 3), (8, 16, 24, 4), (2, 70, 8, 2)])
@pytest.mark.parametrize("return_attn", [False, True])
def test_mha_fast(mode, T, N, D, heads, return_attn):
    x = rand(T, N, D)
    wq, bq, wo, bo = rand(3 * D, D, seed=1) * 0.3, rand(3 * D, seed=2), rand(D, D, seed=3) * 0.3, rand(D, seed=4)
    ref, ref_attn = attention.mha_ref(x, wq, bq, wo, bo, heads, return_attn=True)
    got = attention.mha(x, np.ascontiguousarray(wq.T), bq, np.ascontiguousarray(wo.T), bo, heads, return_attn)
    if return_attn:
        got, got_attn = got
        assert_close("mha attention", got_attn, ref_attn, atol=1e-6)
    assert_close("mha", got, ref, atol=1e-5, rtol=1e-5)


def test_mha_fallback(no_blas):
    x = rand(3, 20, 16)
    wq, bq, wo, bo = rand(48, 16, seed=1) * 0.3, rand(48, seed=2), rand(16, 16, seed=3) * 0.3, rand(16, seed=4)
    ref = attention.mha_ref(x, wq, bq, wo, bo, 4)
    got = attention.mha(x, np.ascontiguousarray(wq.T), bq, np.ascontiguousarray(wo.T), bo, 4)
    assert_close("mha (fallback)", got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 5, 4, 9), (1, 8, 4, 70)])
def test_separable_attention_fast(mode, shape):
    B, d, P, N = shape
    x = rand(*shape)
    wq, bq = rand(1 + 2 * d, d, seed=1) * 0.4, rand(1 + 2 * d, seed=2)
    wo, bo = rand(d, d, seed=3) * 0.4, rand(d, seed=4)
    ref, ref_s = separable_attention.separable_attention_ref(x, wq, bq, wo, bo, return_scores=True)
    got, got_s = separable_attention.separable_attention(x, wq, bq, wo, bo, return_scores=True)
    assert_close("separable attention", got, ref, atol=2e-5, rtol=1e-5)
    assert_close("separable attention scores", got_s, ref_s, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (4, 9), (2, 8), (3, 240)])
def test_layer_norm_rows(mode, shape):
    x, w, b = rand(*shape) * 4 + 3, rand(shape[-1], seed=1), rand(shape[-1], seed=2)
    assert_close("layer_norm", norm.layer_norm(x, w, b), norm.layer_norm_ref(x, w, b), atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 17), (2, 9, 8, 8)])
def test_group_norm1_shifted(mode, shape):
    """Inputs far from zero: the two-pass variance keeps its precision."""
    x, w, b = rand(*shape) + 100, rand(shape[1], seed=1), rand(shape[1], seed=2)
    assert_close("group_norm1", norm.group_norm1(x, w, b), norm.group_norm1_ref(x, w, b), atol=2e-5)


def test_blas_guard_restores_threads():
    lib = threads.blas()
    if lib.get_threads is None:
        pytest.skip(lib.why)
    before = lib.get_threads()
    with threads.blas_single_thread():
        assert lib.get_threads() == 1
        with threads.blas_single_thread():
            assert lib.get_threads() == 1
        assert lib.get_threads() == 1
    assert lib.get_threads() == before


MBCONV_CASES = [
    # (B, Ci, Ch, Co, H, W, stride, dilation, expand, residual)
    (1, 8, 16, 8, 32, 32, 1, 1, True, True),      # stride 1 with the residual
    (2, 6, 12, 10, 33, 34, 2, 1, True, False),    # stride 2, odd height, batch 2
    (1, 12, 12, 8, 32, 36, 1, 1, False, False),   # no expansion (MobileViT's first block)
    (1, 8, 16, 8, 32, 40, 1, 2, True, True),      # dilation 2 (DeepLab backbones)
    (1, 4, 8, 4, 70, 33, 1, 1, True, True),       # several bands, odd width
    (1, 4, 8, 6, 67, 32, 2, 1, True, False),      # several bands at stride 2
    (1, 4, 8, 4, 60, 33, 1, 1, True, True),       # 5 bands of 12 rows made 6 of 10 for two threads
]


def mbconv_weights(Ci, Ch, Co, expand):
    we, be = (rand(Ch, Ci, 1, 1, seed=1) * 0.4, rand(Ch, seed=2)) if expand else (None, None)
    return we, be, rand(Ch, 1, 3, 3, seed=3) * 0.4, rand(Ch, seed=4), rand(Co, Ch, 1, 1, seed=5) * 0.3, rand(Co, seed=6)


@pytest.mark.parametrize("acts", [(1, 1), (2, 2), (2, 0), (0, 1)], ids=lambda a: "expand%d-dw%d" % a)
@pytest.mark.parametrize("case", MBCONV_CASES, ids=lambda c: "x".join(map(str, c)))
def test_inverted_residual_fused(mode, case, acts, monkeypatch):
    """Small shapes, with the size threshold lowered so that the fused path runs on them; the
    activation codes (0 none, 1 SiLU, 2 ReLU) of the expansion and of the depthwise."""
    from minivit.kernels import depthwise
    monkeypatch.setattr(depthwise, "FUSE_BYTES", 0)
    monkeypatch.setattr(depthwise, "BAND_BYTES", 16 * 1024)     # several bands even on small maps
    monkeypatch.setattr(depthwise, "_fusion_pays", lambda *a: True)
    B, Ci, Ch, Co, H, W, s, d, expand, residual = case
    x = rand(B, Ci, H, W)
    we, be, wd, bd, wp, bp = mbconv_weights(Ci, Ch, Co, expand)
    ae, ad = acts
    got = depthwise.inverted_residual(x, we, be, ae, wd, bd, ad, s, d, wp, bp, residual)
    assert got is not None, "the fused path should apply to this case"
    ref = depthwise.inverted_residual_ref(x, we, be, ae, wd, bd, ad, s, d, wp, bp, residual)
    assert_close("inverted_residual", got, ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("B", [1, 2, 3])
def test_band_plan_splits_the_rows_evenly_with_the_tallest_bands(B, threads):
    """The groups of bands cover the rows, the largest has ceil(Ho / G) rows (as even as whole rows
    allow), there are enough groups for the threads, and no taller band up to the one asked for
    would have done."""
    from minivit.kernels.depthwise import band_plan

    def group_rows(Ho, R, G):
        nb = -(-Ho // R)
        per = -(-nb // G)
        return [min(Ho, (g + 1) * per * R) - min(Ho, g * per * R) for g in range(G)]
    uneven_as_asked = 0
    for Ho in list(range(1, 70)) + [128, 129]:
        for R0 in range(1, Ho + 2):
            R, G = band_plan(Ho, R0, B, threads)
            assert 1 <= R <= R0 and G == min(-(-Ho // R0), -(-threads // B))
            rows = group_rows(Ho, R, G)
            assert sum(rows) == Ho and max(rows) == -(-Ho // G), (Ho, R0, R, G, rows)
            assert all(max(group_rows(Ho, r, G)) > -(-Ho // G) for r in range(R + 1, R0 + 1))
            uneven_as_asked += max(group_rows(Ho, R0, G)) > -(-Ho // G)
    assert (uneven_as_asked > 0) == (threads > B)    # one image per thread needs no split, so no change


def test_inverted_residual_at_full_size():
    """The real thresholds: a 64x64 map with 96 hidden channels is fused, a 32x32 one is not."""
    from minivit.kernels import depthwise
    x = rand(1, 16, 64, 64)
    we, be, wd, bd, wp, bp = mbconv_weights(16, 96, 16, True)
    got = depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 1, 1, wp, bp, True)
    assert got is not None
    ref = depthwise.inverted_residual_ref(x, we, be, 1, wd, bd, 1, 1, 1, wp, bp, True)
    assert_close("inverted_residual (64x64)", got, ref, atol=2e-5, rtol=1e-5)
    assert depthwise.inverted_residual(x[:, :, :32, :32].copy(), we, be, 1, wd, bd, 1, 1, 1, wp, bp, True) is None


def test_inverted_residual_fuses_only_where_it_measured_faster():
    """Stride 1 always (bands of one row included); stride 2 only on rows 128 wide or more."""
    from minivit.kernels import depthwise
    x = rand(1, 16, 64, 64)
    we, be, wd, bd, wp, bp = mbconv_weights(16, 512, 16, True)       # 512 hidden channels: 1-row bands
    got = depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 1, 1, wp, bp, True)
    assert got is not None
    ref = depthwise.inverted_residual_ref(x, we, be, 1, wd, bd, 1, 1, 1, wp, bp, True)
    assert_close("inverted_residual (512 hidden, 1-row bands)", got, ref, atol=2e-5, rtol=1e-5)
    we, be, wd, bd, wp, bp = mbconv_weights(16, 96, 24, True)
    assert depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 2, 1, wp, bp, False) is None   # 64 wide
    x = rand(1, 16, 128, 128)
    for hidden in (128, 32):                                         # hidden maps of 8 and 2 MB
        we, be, wd, bd, wp, bp = mbconv_weights(16, hidden, 24, True)
        got = depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 2, 1, wp, bp, False)
        assert got is not None
        ref = depthwise.inverted_residual_ref(x, we, be, 1, wd, bd, 1, 2, 1, wp, bp, False)
        assert_close(f"inverted_residual (128x128, stride 2, {hidden} hidden)", got, ref, atol=2e-5, rtol=1e-5)


def test_inverted_residual_declines(no_blas):
    """Without a BLAS address, or at stride 2 with dilation, the caller runs three convs."""
    from minivit.kernels import depthwise
    x = rand(1, 16, 64, 64)
    we, be, wd, bd, wp, bp = mbconv_weights(16, 96, 16, True)
    assert depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 1, 1, wp, bp, True) is None
    threads._BLAS = None
    assert depthwise.inverted_residual(x, we, be, 1, wd, bd, 1, 2, 2, wp, bp, False) is None
