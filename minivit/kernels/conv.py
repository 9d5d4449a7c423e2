"""2-D convolution, as torch.nn.functional.conv2d computes it (zero padding).

x (B, Ci, H, W), w (Co, Ci/groups, kh, kw), bias (Co,) -> (B, Co, Ho, Wo) with
Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo).

`conv2d_ref` is the readable definition. `conv2d` dispatches to three fast paths:
- pointwise (1x1, stride 1, no padding, groups 1): a matmul on BLAS tiles
  (matmul.py), W (Co, Ci) @ x (Ci, H*W) per image;
- depthwise (groups == Ci == Co): a Numba loop, parallel over (image, channel),
  on a zero-bordered copy of each plane;
- everything else: im2col (Numba) then the same tiled matmul (per group).
Each path ends in a fused epilogue: act(conv + bias) + residual. Batch norm is
not here: layers fold it into w and bias when weights load.
"""
import numpy as np

from ..jit import f32_from_bits, jit, jit_fma, pjit, prange
from .act import ACTS, bias_act_
from .elementwise import act_row
from .matmul import gemm


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n, k, s, p, d):
    """Output length of a convolution along one axis."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d_ref(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Readable reference: a sum over kernel taps of strided windows, in float64."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, Ci, H, W = x.shape
    Co, cig, kh, kw = w.shape
    cog = Co // groups
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((B, Co, Ho, Wo))
    for g in range(groups):
        xg = xp[:, g * cig:(g + 1) * cig]                    # (B, cig, H+2ph, W+2pw)
        wg = w[g * cog:(g + 1) * cog].astype(np.float64)     # (cog, cig, kh, kw)
        for i in range(kh):
            for j in range(kw):
                # the input pixels that tap (i, j) sees, for every output pixel
                win = xg[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh,
                         j * dw:j * dw + sw * (Wo - 1) + 1:sw]   # (B, cig, Ho, Wo)
                out[:, g * cog:(g + 1) * cog] += np.einsum("bchw,oc->bohw", win, wg[:, :, i, j])
    if bias is not None:
        out += bias[None, :, None, None]
    return out.astype(x.dtype)


@jit
def _valid_range(n_out, n_in, s, off):
    """The outputs o in [0, n_out) whose input o*s + off lies in [0, n_in): (lo, hi)."""
    lo = 0 if off >= 0 else (s - 1 - off) // s
    hi = 0 if n_in - 1 - off < 0 else (n_in - 1 - off) // s + 1
    return lo, max(lo, min(hi, n_out))


@jit
def _pad_plane(src, ph, pw, buf):
    # src (H, W) -> buf (Hp, Wp): the plane inside a zero border, src[y, x] at buf[y + ph, x + pw].
    # Loops run over views from index 0, so Numba knows no index is negative and vectorises them.
    H, W = src.shape
    Hp, Wp = buf.shape
    for y in range(Hp):
        row = buf[y]
        if y < ph or y >= ph + H:
            for t in range(Wp):
                row[t] = 0.0
            continue
        for t in range(pw):
            row[t] = 0.0
        d, s = row[pw:pw + W], src[y - ph]
        for t in range(W):
            d[t] = s[t]
        e = row[pw + W:]
        for t in range(Wp - pw - W):
            e[t] = 0.0


@jit_fma
def _taps(flat, wc, beta, step_y, step_x, n, dst):
    # dst[t] = beta + sum_ij wc[i, j] * flat[t + i*step_y + j*step_x] for t < n: every tap
    # is a contiguous run of the flattened padded plane; 3x3 in one pass, others tap by tap
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
            dst[t] = (beta + (w00 * a0[t] + w01 * b0[t] + w02 * c0[t])
                      + (w10 * a1[t] + w11 * b1[t] + w12 * c1[t])
                      + (w20 * a2[t] + w21 * b2[t] + w22 * c2[t]))
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
    # One plane: src (H, W) -> dst (Ho, Wo), through the scratch buf (Hp, Wp) (zero-bordered
    # copy), wide ((Ho-1)*Wp + Wo,) at stride 1, tmp (Wf,) when strided.
    kh, kw = wc.shape
    Ho, Wo = dst.shape
    Hp, Wp = buf.shape
    _pad_plane(src, ph, pw, buf)
    flat = buf.reshape(Hp * Wp)
    if sh == 1 and sw == 1:
        m = wide.shape[0]
        _taps(flat, wc, beta, dh * Wp, dw, m, wide)
        act_row(wide, np.float32(0.0), act)              # the bias is in already
        for oy in range(Ho):
            orow, row = dst[oy], wide[oy * Wp:oy * Wp + Wo]
            for t in range(Wo):
                orow[t] = row[t]
        return
    for oy in range(Ho):
        if kh == 3 and kw == 3 and dw == 1:
            _taps3_rows(buf[oy * sh], buf[oy * sh + dh], buf[oy * sh + 2 * dh], wc, beta, tmp)
        else:
            _taps(flat[oy * sh * Wp:], wc, beta, dh * Wp, dw, tmp.shape[0], tmp)
        orow = dst[oy]
        for t in range(Wo):
            orow[t] = tmp[t * sw]
    act_row(dst.reshape(Ho * Wo), np.float32(0.0), act)


@jit
def _phases(src, P):
    # src (H, W), W even -> P (2, 2, Hq, Wq): the four phases of the plane padded by one,
    # P[a, b, y, x] = padded[2y + a, 2x + b] = src[2y + a - 1, 2x + b - 1] (0 outside src).
    # Each src row is read as uint64 pairs (columns 2k, 2k + 1): the low halves are the even
    # columns, the high halves the odd ones, a vectorisable split (a stride-2 read is not).
    H, W = src.shape
    Hq, Wq = P.shape[2], P.shape[3]
    half = W // 2
    for a in range(2):
        for y in range(Hq):
            e, o = P[a, 1, y], P[a, 0, y]
            r = 2 * y + a - 1
            if r < 0 or r >= H:
                for t in range(Wq):
                    e[t] = 0.0
                    o[t] = 0.0
                continue
            pairs = src[r].view(np.uint64)
            o[0] = 0.0
            o1 = o[1:]
            for k in range(half):
                v = pairs[k]
                e[k] = f32_from_bits(v)
                o1[k] = f32_from_bits(v >> np.uint64(32))
            for t in range(half, Wq):
                e[t] = 0.0
            for t in range(half + 1, Wq):
                o[t] = 0.0


@jit_fma
def _taps_s2(P, wc, beta, n, dst):
    # dst[t] = beta + the nine taps of a 3x3 stride-2 conv, t over the flattened (Hq, Wq)
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
        dst[t] = (beta + (w00 * a0[t] + w01 * b0[t] + w02 * c0[t])
                  + (w10 * a1[t] + w11 * b1[t] + w12 * c1[t])
                  + (w20 * a2[t] + w21 * b2[t] + w22 * c2[t]))


@jit
def _dw_plane_s2(src, wc, beta, act, P, wide, dst):
    # The MobileNet downsampling case (3x3, stride 2, padding 1, no dilation, even width) on one
    # plane: split into phases, then one loop over the flattened output grid, like stride 1.
    Ho, Wo = dst.shape
    Wq = P.shape[3]
    _phases(src, P)
    _taps_s2(P, wc, beta, wide.shape[0], wide)
    act_row(wide, np.float32(0.0), act)
    for oy in range(Ho):
        orow, row = dst[oy], wide[oy * Wq:oy * Wq + Wo]
        for t in range(Wo):
            orow[t] = row[t]


@pjit
def _depthwise(x, w, bias, sh, sw, ph, pw, dh, dw, act, out):
    # x (B, C, H, W); w (C, kh, kw); bias (C,); act code (0 none, 1 SiLU, 2 ReLU); out (B, C, Ho, Wo)
    # Parallel over (image, channel) planes, in chunks that share their scratch buffers. Each
    # plane is copied into a zero-bordered scratch plane (Hp, Wp), so taps need no bounds
    # tests. At stride 1 the whole plane is then one loop over the flattened padded grid
    # (output pixel (y, x) at y*Wp + x; the Wp - Wo columns past each row's end are computed
    # and dropped), which keeps per-row overhead out. A strided conv computes each needed row
    # at full width and keeps every sw-th column: contiguous taps and one strided read per
    # output beat strided reads for every tap.
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
        buf = np.empty((Hp, Wp), np.float32)
        wide = np.empty((Ho - 1) * Wp + Wo if sh == 1 and sw == 1 else 1, np.float32)
        tmp = np.empty(Wf, np.float32)
        for bc in range(k * per, min(planes, (k + 1) * per)):
            n, c = bc // C, bc % C
            _dw_plane(x[n, c], w[c], bias[c], sh, sw, ph, pw, dh, dw, act, buf, wide, tmp, out[n, c])


@pjit
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    # x (B, Ci, H, W); cols (B, Ci*kh*kw, Ho*Wo): row r = (c, i, j), column = (oy, ox)
    B, Ci, H, W = x.shape
    K = Ci * kh * kw
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    L = cols.shape[2]
    Ho = L // Wo
    for br in prange(B * K):
        n, r = br // K, br % K
        c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
        dst = cols[n, r]
        off = j * dw - pw
        lo, hi = _valid_range(Wo, W, sw, off)
        for oy in range(Ho):
            iy = oy * sh - ph + i * dh
            base = oy * Wo
            if iy < 0 or iy >= H:
                for ox in range(Wo):
                    dst[base + ox] = 0.0
                continue
            irow = x[n, c, iy]
            for ox in range(lo):
                dst[base + ox] = 0.0
            o = dst[base + lo:base + hi]                    # a view, indexed from 0 (see _depthwise)
            if sw == 1:
                o[:] = irow[lo + off:hi + off]
            else:
                o[:] = irow[lo * sw + off:(hi - 1) * sw + off + 1:sw]
            for ox in range(hi, Wo):
                dst[base + ox] = 0.0


_ZERO_BIAS = {}


def _zeros(n):
    z = _ZERO_BIAS.get(n)
    if z is None:
        z = _ZERO_BIAS[n] = np.zeros(n, np.float32)
    return z


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, act=None, residual=None):
    """Fast convolution with a fused epilogue: act(conv(x) + bias) + residual.

    x (B, Ci, H, W) float32 C-contiguous; w (Co, Ci/groups, kh, kw) float32;
    act "silu", "relu" or None; residual None or (B, Co, Ho, Wo).
    Returns a new (B, Co, Ho, Wo) float32 array.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, Ci, H, W = x.shape
    Co, cig, kh, kw = w.shape
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    res = None if residual is None else residual.reshape(B, Co, Ho * Wo)
    if groups == Ci == Co and cig == 1:
        out = np.empty((B, Co, Ho, Wo), np.float32)
        _depthwise(x, w.reshape(Co, kh, kw), _zeros(Co) if bias is None else bias,
                   sh, sw, ph, pw, dh, dw, ACTS[act], out)
        if res is not None:
            out += residual
        return out
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        # (Co, Ci) @ (B, Ci, H*W) -> (B, Co, H*W), bias per output channel (row)
        y = gemm(w.reshape(Co, Ci), x.reshape(B, Ci, H * W), bias, "rows", act, res)
        return y.reshape(B, Co, Ho, Wo)
    cols = np.empty((B, Ci * kh * kw, Ho * Wo), np.float32)
    _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    if groups == 1:
        # (Co, Ci*kh*kw) @ (B, Ci*kh*kw, Ho*Wo) -> (B, Co, Ho*Wo)
        y = gemm(w.reshape(Co, cig * kh * kw), cols, bias, "rows", act, res)
        return y.reshape(B, Co, Ho, Wo)
    cog, kg = Co // groups, cig * kh * kw
    y = np.empty((B, Co, Ho * Wo), np.float32)
    for g in range(groups):
        # (cog, kg) @ (B, kg, Ho*Wo) -> (B, cog, Ho*Wo), one group at a time
        y[:, g * cog:(g + 1) * cog] = np.matmul(
            w[g * cog:(g + 1) * cog].reshape(cog, kg), cols[:, g * kg:(g + 1) * kg])
    bias_act_(y, bias, act)
    if res is not None:
        y += res
    return y.reshape(B, Co, Ho, Wo)
