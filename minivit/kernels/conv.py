"""2-D convolution, as torch.nn.functional.conv2d computes it (zero padding).

x (B, Ci, H, W), w (Co, Ci/groups, kh, kw), bias (Co,) -> (B, Co, Ho, Wo) with
Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo).

`conv2d_ref` is the readable definition. `conv2d` dispatches to three fast paths:
- pointwise (1x1, stride 1, no padding, groups 1): one BLAS matmul per image;
- depthwise (groups == Ci == Co): a Numba loop, parallel over (image, channel);
- everything else: im2col (Numba) then one BLAS matmul per image and group.
Each path ends in the fused bias/activation epilogue of `act.py`. Batch norm is
not here: layers fold it into w and bias when weights load.
"""
import numpy as np

from ..jit import pjit, prange
from .act import ACTS, bias_act_


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


@pjit
def _depthwise(x, w, bias, sh, sw, ph, pw, dh, dw, out):
    # x (B, C, H, W); w (C, kh, kw); bias (C,); out (B, C, Ho, Wo)
    B, C, H, W = x.shape
    kh, kw = w.shape[1], w.shape[2]
    Ho, Wo = out.shape[2], out.shape[3]
    for bc in prange(B * C):
        n, c = bc // C, bc % C
        for oy in range(Ho):
            for ox in range(Wo):
                acc = np.float32(0.0)
                for i in range(kh):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= H:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pw + j * dw
                        if ix >= 0 and ix < W:
                            acc += x[n, c, iy, ix] * w[c, i, j]
                out[n, c, oy, ox] = acc + bias[c]


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
        for oy in range(Ho):
            iy = oy * sh - ph + i * dh
            row_ok = iy >= 0 and iy < H
            for ox in range(Wo):
                ix = ox * sw - pw + j * dw
                if row_ok and ix >= 0 and ix < W:
                    cols[n, r, oy * Wo + ox] = x[n, c, iy, ix]
                else:
                    cols[n, r, oy * Wo + ox] = 0.0


_ZERO_BIAS = {}


def _zeros(n):
    z = _ZERO_BIAS.get(n)
    if z is None:
        z = _ZERO_BIAS[n] = np.zeros(n, np.float32)
    return z


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, act=None):
    """Fast convolution with a fused bias + activation ("silu", "relu" or None).

    x (B, Ci, H, W) float32 C-contiguous; w (Co, Ci/groups, kh, kw) float32.
    Returns a new (B, Co, Ho, Wo) float32 array.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    B, Ci, H, W = x.shape
    Co, cig, kh, kw = w.shape
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    if groups == Ci == Co and cig == 1:
        out = np.empty((B, Co, Ho, Wo), np.float32)
        _depthwise(x, w.reshape(Co, kh, kw), _zeros(Co) if bias is None else bias,
                   sh, sw, ph, pw, dh, dw, out)
        if ACTS[act]:
            bias_act_(out.reshape(B, Co, Ho * Wo), None, act)
        return out
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and groups == 1:
        # (Co, Ci) @ (B, Ci, H*W) -> (B, Co, H*W)
        y = np.matmul(w.reshape(Co, Ci), x.reshape(B, Ci, H * W))
    else:
        cols = np.empty((B, Ci * kh * kw, Ho * Wo), np.float32)
        _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
        if groups == 1:
            # (Co, Ci*kh*kw) @ (B, Ci*kh*kw, Ho*Wo) -> (B, Co, Ho*Wo)
            y = np.matmul(w.reshape(Co, cig * kh * kw), cols)
        else:
            cog, kg = Co // groups, cig * kh * kw
            y = np.empty((B, Co, Ho * Wo), np.float32)
            for g in range(groups):
                y[:, g * cog:(g + 1) * cog] = np.matmul(
                    w[g * cog:(g + 1) * cog].reshape(cog, kg), cols[:, g * kg:(g + 1) * kg])
    bias_act_(y, bias, act)
    return y.reshape(B, Co, Ho, Wo)
