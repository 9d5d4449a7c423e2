"""Depthwise convolution (groups == channels), as torch's conv2d computes it, on NCHW planes.

x (B, C, H, W), w (C, kh, kw), bias (C,) -> (B, C, Ho, Wo); the reference is
conv.conv2d_ref with groups = C. The fast version works plane by plane, in
parallel over (image, channel), on a zero-bordered copy of each plane:
- stride 1: the whole plane is one vectorised loop over the flattened padded
  grid (output pixel (y, x) at y*Wp + x; the Wp - Wo columns past each row's
  end are computed and dropped), which keeps per-row overhead out;
- stride 2, 3x3 (MobileNet's downsampling): the same on the four phase planes;
- other strides: each needed row at full width, then every sw-th column.
The bias is added first; the activation (act.ACTS codes) is applied in the same loop
as the 3x3 taps (stride 1 and the phase planes), or in a pass at the end otherwise.

`inverted_residual` fuses MobileNetV2's block (1x1 expand, depthwise, 1x1
project, residual) band by band, so that its widest tensor, the expanded map,
never exists whole (see _mbconv); `inverted_residual_ref` is its definition
as three plain convolutions.
"""
import numpy as np

from ..jit import get_pool_threads, jit, jit_fma, pjit, prange, sgemm
from ..threads import blas, blas_single_thread
from .elementwise import act_point, act_row
from .matmul import tiles
from .planes import fill_interior, phases


@jit_fma
def _taps(flat, wc, beta, step_y, step_x, act, n, dst):
    # dst[t] = act(beta + sum_ij wc[i, j] * flat[t + i*step_y + j*step_x]) for t < n: every tap
    # is a contiguous run of the flattened padded plane; 3x3 in one pass (the activation applied
    # as each value is made), others tap by tap
    kh, kw = wc.shape
    if kh == 3 and kw == 3:
        a0, b0, c0 = flat[0:n], flat[step_x:step_x + n], flat[2 * step_x:2 * step_x + n]
        r1, r2 = step_y, 2 * step_y
        a1, b1, c1 = flat[r1:r1 + n], flat[r1 + step_x:r1 + step_x + n], flat[r1 + 2 * step_x:r1 + 2 * step_x + n]
        a2, b2, c2 = flat[r2:r2 + n], flat[r2 + step_x:r2 + step_x + n], flat[r2 + 2 * step_x:r2 + 2 * step_x + n]
        w00, w01, w02 = wc[0, 0], wc[0, 1], wc[0, 2]
        w10, w11, w12 = wc[1, 0], wc[1, 1], wc[1, 2]
        w20, w21, w22 = wc[2, 0], wc[2, 1], wc[2, 2]
        for t in range(n):
            dst[t] = act_point(beta + (w00 * a0[t] + w01 * b0[t] + w02 * c0[t])
                               + (w10 * a1[t] + w11 * b1[t] + w12 * c1[t])
                               + (w20 * a2[t] + w21 * b2[t] + w22 * c2[t]), act)
    else:
        for t in range(n):
            dst[t] = beta
        for i in range(kh):
            for j in range(kw):
                off = i * step_y + j * step_x
                a = flat[off:off + n]
                wv = wc[i, j]
                for t in range(n):
                    dst[t] += wv * a[t]
        act_row(dst[:n], np.float32(0.0), act)


@jit_fma
def _taps3_rows(r0, r1, r2, wc, beta, dst):
    # dst[t] = beta + the nine taps of a 3x3 kernel at horizontal stride 1 and dilation 1,
    # from three padded input rows: the common strided case, one row at a time
    w00, w01, w02 = wc[0, 0], wc[0, 1], wc[0, 2]
    w10, w11, w12 = wc[1, 0], wc[1, 1], wc[1, 2]
    w20, w21, w22 = wc[2, 0], wc[2, 1], wc[2, 2]
    for t in range(dst.shape[0]):
        dst[t] = (beta + (w00 * r0[t] + w01 * r0[t + 1] + w02 * r0[t + 2])
                  + (w10 * r1[t] + w11 * r1[t + 1] + w12 * r1[t + 2])
                  + (w20 * r2[t] + w21 * r2[t + 1] + w22 * r2[t + 2]))


@jit
def _dw_plane(src, wc, beta, sh, sw, ph, pw, dh, dw, act, buf, wide, tmp, dst):
    # One plane: src (H, W) -> dst (Ho, Wo), through the scratch buf (Hp, Wp), whose zero
    # border the caller wrote once (only the interior is copied here), wide ((Ho-1)*Wp + Wo,)
    # at stride 1, tmp (Wf,) when strided.
    kh, kw = wc.shape
    Ho, Wo = dst.shape
    Hp, Wp = buf.shape
    fill_interior(src, ph, pw, buf)
    flat = buf.reshape(Hp * Wp)
    if sh == 1 and sw == 1:
        m = wide.shape[0]
        _taps(flat, wc, beta, dh * Wp, dw, act, m, wide)
        for oy in range(Ho):
            orow, row = dst[oy], wide[oy * Wp:oy * Wp + Wo]
            for t in range(Wo):
                orow[t] = row[t]
        return
    for oy in range(Ho):
        if kh == 3 and kw == 3 and dw == 1:
            _taps3_rows(buf[oy * sh], buf[oy * sh + dh], buf[oy * sh + 2 * dh], wc, beta, tmp)
        else:
            _taps(flat[oy * sh * Wp:], wc, beta, dh * Wp, dw, 0, tmp.shape[0], tmp)
        orow = dst[oy]
        for t in range(Wo):
            orow[t] = tmp[t * sw]
    act_row(dst.reshape(Ho * Wo), np.float32(0.0), act)


@jit_fma
def _taps_s2(P, wc, beta, act, n, dst):
    # dst[t] = act(beta + the nine taps of a 3x3 stride-2 conv), t over the flattened (Hq, Wq)
    # output grid: tap (i, j) reads phase (i % 2, j % 2) shifted by (i // 2, j // 2)
    Hq, Wq = P.shape[2], P.shape[3]
    f = P.reshape(4, Hq * Wq)
    p00, p01, p10, p11 = f[0], f[1], f[2], f[3]
    a0, b0, c0 = p00[0:n], p01[0:n], p00[1:1 + n]               # i = 0: phase row 0
    a1, b1, c1 = p10[0:n], p11[0:n], p10[1:1 + n]               # i = 1: phase row 1
    a2, b2, c2 = p00[Wq:Wq + n], p01[Wq:Wq + n], p00[Wq + 1:Wq + 1 + n]   # i = 2: phase row 0, next
    w00, w01, w02 = wc[0, 0], wc[0, 1], wc[0, 2]
    w10, w11, w12 = wc[1, 0], wc[1, 1], wc[1, 2]
    w20, w21, w22 = wc[2, 0], wc[2, 1], wc[2, 2]
    for t in range(n):
        dst[t] = act_point(beta + (w00 * a0[t] + w01 * b0[t] + w02 * c0[t])
                           + (w10 * a1[t] + w11 * b1[t] + w12 * c1[t])
                           + (w20 * a2[t] + w21 * b2[t] + w22 * c2[t]), act)


@jit
def _dw_plane_s2(src, wc, beta, act, P, wide, dst):
    # The MobileNet downsampling case (3x3, stride 2, padding 1, no dilation, even width) on one
    # plane: split into phases, then one loop over the flattened output grid, like stride 1.
    Ho, Wo = dst.shape
    Wq = P.shape[3]
    phases(src, P)
    _taps_s2(P, wc, beta, act, wide.shape[0], wide)
    for oy in range(Ho):
        orow, row = dst[oy], wide[oy * Wq:oy * Wq + Wo]
        for t in range(Wo):
            orow[t] = row[t]


@pjit
def _depthwise(x, w, bias, sh, sw, ph, pw, dh, dw, act, out):
    # x (B, C, H, W); w (C, kh, kw); bias (C,); act code (0 none, 1 SiLU, 2 ReLU); out (B, C, Ho, Wo)
    # Parallel over (image, channel) planes, in chunks that share their scratch buffers. Each
    # plane is copied into a zero-bordered scratch plane (Hp, Wp), so taps need no bounds
    # tests (the border is written once per chunk). At stride 1 the whole plane is then one
    # loop over the flattened padded grid (output pixel (y, x) at y*Wp + x; the Wp - Wo columns
    # past each row's end are computed and dropped), which keeps per-row overhead out. A
    # strided conv computes each needed row at full width and keeps every sw-th column:
    # contiguous taps and one strided read per output beat strided reads for every tap.
    B, C, H, W = x.shape
    kh, kw = w.shape[1], w.shape[2]
    Ho, Wo = out.shape[2], out.shape[3]
    Wf = (Wo - 1) * sw + 1                                   # full-resolution width of a row
    Hp = max(H + 2 * ph, (Ho - 1) * sh + (kh - 1) * dh + 1)
    Wp = max(W + 2 * pw, Wf + (kw - 1) * dw)
    planes = B * C
    chunks = min(planes, 64)
    per = (planes + chunks - 1) // chunks
    phased = (kh == 3 and kw == 3 and sh == 2 and sw == 2 and ph == 1 and pw == 1 and dh == 1 and dw == 1
              and W % 2 == 0 and Ho == (H + 1) // 2 and Wo == W // 2)
    if phased:
        for k in prange(chunks):
            P = np.empty((2, 2, Ho + 1, Wo + 1), np.float32)
            wide = np.empty((Ho - 1) * (Wo + 1) + Wo, np.float32)
            for bc in range(k * per, min(planes, (k + 1) * per)):
                n, c = bc // C, bc % C
                _dw_plane_s2(x[n, c], w[c], bias[c], act, P, wide, out[n, c])
        return
    for k in prange(chunks):
        buf = np.zeros((Hp, Wp), np.float32)                 # its border stays zero for every plane
        wide = np.empty((Ho - 1) * Wp + Wo if sh == 1 and sw == 1 else 1, np.float32)
        tmp = np.empty(Wf, np.float32)
        for bc in range(k * per, min(planes, (k + 1) * per)):
            n, c = bc // C, bc % C
            _dw_plane(x[n, c], w[c], bias[c], sh, sw, ph, pw, dh, dw, act, buf, wide, tmp, out[n, c])


def depthwise(x, w, bias, stride, padding, dilation, act, out):
    """Depthwise conv into out (B, C, Ho, Wo): x (B, C, H, W), w (C, kh, kw), bias (C,), act code."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    _depthwise(x, w, bias, sh, sw, ph, pw, dh, dw, act, out)
    return out


# ----------------------------------------------------------------------------- the inverted residual, fused

def inverted_residual_ref(x, w_expand, b_expand, act_expand, w_dw, b_dw, act_dw, stride, dilation,
                          w_proj, b_proj, residual):
    """MobileNetV2's block as three convolutions (conv.conv2d_ref): 1x1 expand (if any), 3x3
    depthwise, 1x1 project, plus x if residual. Weights are 4-D conv weights; act codes 0/1/2."""
    from .act import bias_act_ref
    from .conv import conv2d_ref
    names = {0: None, 1: "silu", 2: "relu"}

    def conv_act(a, w, b, code, **kw):
        y = conv2d_ref(a, w, b, **kw)
        return bias_act_ref(y.reshape(y.shape[0], y.shape[1], -1), None, names[code]).reshape(y.shape)
    h = x if w_expand is None else conv_act(x, w_expand, b_expand, act_expand)
    h = conv_act(h, w_dw, b_dw, act_dw, stride=stride, padding=dilation, dilation=dilation, groups=w_dw.shape[0])
    y = conv2d_ref(h, w_proj, b_proj)
    return y + x if residual else y


@jit
def _gemm_tiled(fn, ilp64, M, N, K, tm, tn, a, lda, b, ldb, c, ldc):
    # C (M, N) = A (M, K) @ B (K, N) at addresses a, b, c (row strides lda, ldb, ldc), in tiles of
    # tm x tn (matmul.tiles: tiles that OpenBLAS's small-matrix path takes, where it can)
    for m0 in range(0, M, tm):
        for n0 in range(0, N, tn):
            sgemm(fn, ilp64, 111, 111, min(tm, M - m0), min(tn, N - n0), K, 1.0, a + 4 * m0 * lda, lda,
                  b + 4 * n0, ldb, 0.0, c + 4 * (m0 * ldc + n0), ldc)


@jit
def _expand_rows(fn, ilp64, xb, H, W, we, be, ae, has_expand, y0, y1, hid, row0, d, tmp, tm, tn):
    # Hidden rows [y0, y1) of one image into hid[:, row0:row0 + y1 - y0, d:d + W]: rows inside
    # the map are expanded (1x1 conv, bias, act) or copied (no expansion), rows outside are 0.
    Ch = hid.shape[0]
    lo, hi = max(0, y0), min(H, y1)
    for y in range(y0, y1):                                  # rows in the zero border of the map
        if y < lo or y >= hi:
            for c in range(Ch):
                dst = hid[c, row0 + y - y0, d:d + W]
                for t in range(W):
                    dst[t] = 0.0
    if hi <= lo:
        return
    nv = hi - lo
    if has_expand:
        Ci = we.shape[1]
        # (Ch, Ci) @ (Ci, nv*W) -> tmp: input rows [lo, hi) of every channel (row stride H*W)
        _gemm_tiled(fn, ilp64, Ch, nv * W, Ci, tm, tn, we.ctypes.data, Ci, xb[:, lo * W:].ctypes.data, H * W,
                    tmp.ctypes.data, nv * W)
    flat = tmp.reshape(tmp.size)                             # the product is (Ch, nv*W), row stride nv*W
    for c in range(Ch):
        for j in range(nv):
            dst = hid[c, row0 + lo - y0 + j, d:d + W]
            if has_expand:                                   # bias and activation on the way into the band
                src, beta = flat[(c * nv + j) * W:(c * nv + j + 1) * W], be[c]
                for t in range(W):
                    dst[t] = act_point(src[t] + beta, ae)
            else:                                            # no expansion: the input rows as they are
                src = xb[c, (lo + j) * W:(lo + j + 1) * W]
                for t in range(W):
                    dst[t] = src[t]


@pjit
def _mbconv(fn, ilp64, x, we, be, ae, has_expand, wd, bd, ad, s, d, wp, bp, residual, R, G, te, tp, out):
    # x (B, Ci, H, W) -> out (B, Co, Ho, Wo) through the hidden map (B, Ch, H, W), band by band:
    # a band is R output rows of one image. Its hidden rows are expanded into a zero-bordered
    # band buffer (the border written here, so the depthwise needs no copy), the depthwise runs
    # on it, and the projection writes straight into the output rows. The hidden map never
    # exists whole: a band stays in cache. Each image's bands are cut into G groups (one loop
    # step each); within a group, the rows two bands share are kept, not recomputed.
    # we (Ch, Ci), be (Ch,), ae act code [has_expand]; wd (Ch, 3, 3), bd (Ch,), ad act code;
    # wp (Co, Ch), bp (Co,); stride s (1, or 2 with d == 1), dilation d = padding; te, tp the
    # (rows, columns) tiles of the expansion and projection products.
    B, Ci, H, W = x.shape
    Ch, Co = wd.shape[0], wp.shape[0]
    Ho, Wo = out.shape[2], out.shape[3]
    nb = (Ho + R - 1) // R                                   # bands per image
    per = (nb + G - 1) // G                                  # bands per group
    Wp = W + 2 * d
    rmax = (R - 1) * s + 2 * d + 1                           # hidden rows of a full band
    for u in prange(B * G):
        b, g = u // G, u % G
        xb = x[b].reshape(Ci, H * W)
        ob = out[b].reshape(Co, Ho * Wo)
        hid = np.zeros((Ch, rmax, Wp), np.float32)           # border columns stay 0 throughout
        tmp = np.empty((Ch, rmax * W), np.float32)
        dwo = np.empty((Ch, R * Wo), np.float32)
        wide = np.empty((R - 1) * Wp + Wo, np.float32)
        full = np.empty(2 * Wo, np.float32)                  # one stride-2 row at full width
        have0, have1 = 0, 0                                  # hidden rows [have0, have1) in hid
        for k in range(g * per, min(nb, (g + 1) * per)):
            oy0 = k * R
            r = min(Ho, oy0 + R) - oy0
            y0, rin = oy0 * s - d, (r - 1) * s + 2 * d + 1   # this band's hidden rows [y0, y0 + rin)
            keep = max(0, have1 - y0) if have1 > have0 else 0
            for c in range(Ch):                              # rows shared with the previous band: to the top
                for j in range(keep):
                    dst, src = hid[c, j], hid[c, y0 - have0 + j]
                    for t in range(Wp):
                        dst[t] = src[t]
            _expand_rows(fn, ilp64, xb, H, W, we, be, ae, has_expand, y0 + keep, y0 + rin, hid, keep, d, tmp,
                         te[0], te[1])
            have0, have1 = y0, y0 + rin
            # depthwise over the band -> dwo (Ch, r*Wo), bias and activation fused
            for c in range(Ch):
                if s == 1:
                    m = (r - 1) * Wp + Wo
                    _taps(hid[c].reshape(rmax * Wp), wd[c], bd[c], d * Wp, d, ad, m, wide)
                    for j in range(r):
                        dst, src = dwo[c, j * Wo:(j + 1) * Wo], wide[j * Wp:j * Wp + Wo]
                        for t in range(Wo):
                            dst[t] = src[t]
                else:
                    for j in range(r):
                        _taps3_rows(hid[c, 2 * j], hid[c, 2 * j + 1], hid[c, 2 * j + 2], wd[c], bd[c],
                                    full[:2 * Wo - 1])
                        dst = dwo[c, j * Wo:(j + 1) * Wo]
                        for t in range(Wo):
                            dst[t] = full[2 * t]                  # the even columns (a vectorised strided read)
                    act_row(dwo[c, :r * Wo], np.float32(0.0), ad)
            # project: (Co, Ch) @ (Ch, r*Wo) -> the band's rows of out (row stride Ho*Wo), + bias (+ x)
            _gemm_tiled(fn, ilp64, Co, r * Wo, Ch, tp[0], tp[1], wp.ctypes.data, Ch, dwo.ctypes.data, R * Wo,
                        ob[:, oy0 * Wo:].ctypes.data, Ho * Wo)
            for co in range(Co):
                row, beta = ob[co, oy0 * Wo:(oy0 + r) * Wo], bp[co]
                if residual:
                    xr = xb[co, oy0 * Wo:(oy0 + r) * Wo]
                    for t in range(r * Wo):
                        row[t] += beta + xr[t]
                else:
                    for t in range(r * Wo):
                        row[t] += beta


# A hidden band of about this size. 256 KB kept a band's whole work (band, product scratch,
# depthwise rows) in the 1 MB L2; 512 KB spills some of it to L3, but each band multiplies wider
# matrices, an image streams the weights half as often, and more blocks fuse (bands of 4-8 rows
# where 256 KB gave 1-3: mobilevitv2_100 layer_2.1, mobilevit_s layer_2.x, layer_1 of the wide v2
# models). Whole passes against 256 KB, interleaved windows: one thread, batch 1, 17 of 19
# variants 0.1-2.8% faster, mobilevitv2_050 and mobilevitv2_200 within 1% either way; two
# threads, batch 1 (with band_plan), 0.98-1.07x; batch 8, two threads, mobilevitv2_125 +4.0%,
# mobilevit_xs +2.7%, mobilevitv2_100 +1.3-2.5%, mobilevitv3_050 -2.0% and -2.8% (the one variant
# slower in both runs). Tables in benchmarks/PROFILE.md, "Wider bands".
BAND_BYTES = 512 * 1024
FUSE_BYTES = 1536 * 1024    # fuse only when one image's hidden map is at least this large


def band_plan(Ho, R, B, threads):
    """(R, G) for a fused block: output rows per band (at most R) and groups of bands per image.

    The B * G loop steps of _mbconv cover the threads (G = 1 once there are as many images as
    threads). A group takes a run of ceil(bands / G) consecutive bands, so with G > 1 the band
    height decides how evenly the rows split: with 2 threads at batch 1, mobilevitv2_050's
    layer_1 (128 rows) in bands of 29 would be 87 rows for one thread and 41 for the other.
    So R is the tallest band height, up to the one asked for, whose largest group has no more
    than ceil(Ho / G) rows (bands of 16 there: 64 and 64). With G = 1 that is R itself.
    """
    G = min(-(-Ho // R), max(1, -(-threads // B)))
    if G == 1:
        return R, 1
    even = -(-Ho // G)
    for r in range(R, 1, -1):
        nb = -(-Ho // r)
        per = -(-nb // G)                                    # bands per group
        if per * r <= even:
            return r, G
    return 1, G                                              # bands of one row: ceil(Ho / G) per group


def _fusion_pays(stride, W):
    """Where the fused block measured faster than the three convs (activations kept on the heap,
    see memory.py), for a hidden map above FUSE_BYTES: every stride-1 block, and stride 2 on rows
    128 wide or more.

    History. With 256 KB bands, stride 1 needed bands of 4 rows or more (mobilevitv2_100 layer_1
    3.8 ms against 4.7; with 1-3 rows, mobilevit_s layer_2.1 5.7 against 4.7 and mobilevitv2_200
    layer_1 15.2 against 13.5, timed block by block), and stride 2 a 128-wide hidden map of 8 MB
    or more (mobilevitv2_100 layer_2.0 7.6 against 8.1; mobilevitv2_200 layer_5.0 14.6 against
    9.9). With 512 KB bands (BAND_BYTES) both limits were re-measured in whole passes, the old and
    the new rule in alternating order, thread time, median of the pass-by-pass ratios
    (benchmarks/PROFILE.md, "Stride-2 fusion on smaller hidden maps, and stride 1 on any band"):
    - stride 2, 128-wide, hidden maps of 2-6 MB (layer_2.0 of mobilevit_xxs, mobilevitv2_050 and
      _075 and the v3 models built on them), batch 1, one thread, 120 passes: mobilevitv2_075
      +3.0%, mobilevitv3_050 +2.8%, mobilevitv2_050 +2.1%, mobilevitv3_xxs +1.8%,
      mobilevitv3_075 +1.2%, mobilevit_xxs +0.3%; two threads, 60 passes: +1.9% to +4.0%.
      Fusing the 64-wide ones too (layer_3.0) added nothing;
    - stride 1 with bands of 1-3 rows (layer_2.1 of mobilevitv2_150, _175 and _200), batch 1:
      one thread +1.0% and +1.1% (mobilevitv2_150, two runs), +1.7% and +3.0% (_175), +3.2%
      (_200); two threads +2.9% (_175), +0.7% (_200).
    The fastest passes (the minima) barely move; the medians do: a fused block makes fewer passes
    over memory, and the host's slow stretches cost it less. Outputs are bit-identical either way.
    """
    return stride == 1 or W >= 128


def inverted_residual(x, w_expand, b_expand, act_expand, w_dw, b_dw, act_dw, stride, dilation,
                      w_proj, b_proj, residual):
    """The fused block, or None when it does not apply (the caller then runs the three convs).

    x (B, Ci, H, W) float32; w_expand (Ch, Ci, 1, 1) or None; w_dw (Ch, 1, 3, 3); w_proj (Co, Ch, 1, 1);
    biases 1-D (b_expand may be None only without expansion); act codes 0/1/2; padding = dilation.
    Applies to stride 1 (any dilation) and stride 2 (dilation 1, rows 128 wide or more: _fusion_pays),
    3x3, with a usable BLAS address, when the hidden map of one image is larger than the L2 cache
    (FUSE_BYTES); below that the three convolutions one after the other were as fast or faster.
    """
    lib = blas()
    B, Ci, H, W = x.shape
    if (not lib.sgemm or w_dw.shape[2:] != (3, 3) or stride not in (1, 2) or (stride == 2 and dilation != 1)
            or 4 * w_dw.shape[0] * H * W < FUSE_BYTES or b_dw is None or b_proj is None):
        return None
    if not _fusion_pays(stride, W):
        return None
    Ch, Co = w_dw.shape[0], w_proj.shape[0]
    Ho, Wo = (H - 1) // stride + 1, (W - 1) // stride + 1
    row_bytes = 4 * Ch * (W + 2 * dilation)
    R = max(1, (BAND_BYTES // row_bytes - 2 * dilation - 1) // stride + 1)
    has_expand = w_expand is not None
    we = w_expand.reshape(Ch, Ci) if has_expand else _NO_W
    be = b_expand if has_expand else _NO_B
    R, G = band_plan(Ho, R, B, get_pool_threads())
    rows_in = (R - 1) * stride + 2 * dilation + 1           # hidden rows of a full band
    out = np.empty((B, Co, Ho, Wo), np.float32)
    with blas_single_thread():
        _mbconv(lib.sgemm, lib.ilp64, x, we, be, act_expand, has_expand, w_dw.reshape(Ch, 3, 3), b_dw, act_dw,
                stride, dilation, w_proj.reshape(Co, Ch), b_proj, residual, R, G,
                tiles(Ch, rows_in * W, Ci), tiles(Co, R * Wo, Ch), out)
    return out


_NO_W = np.zeros((1, 1), np.float32)
_NO_B = np.zeros(1, np.float32)
