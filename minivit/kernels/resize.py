"""Bilinear resize, as torch.nn.functional.interpolate(mode="bilinear") does it.

x (B, C, H, W) -> (B, C, Ho, Wo), up or down, no antialiasing.
Source coordinate of output index i along an axis of n_in -> n_out samples:
- align_corners=False: s = max((i + 0.5) * n_in / n_out - 0.5, 0)
- align_corners=True:  s = i * (n_in - 1) / (n_out - 1)   (0 when n_out == 1)
then i0 = floor(s), i1 = min(i0 + 1, n_in - 1), weights (1 - (s - i0), s - i0).
Coordinates and weights are computed in float32, as PyTorch does on the CPU.
"""
import numpy as np

from ..jit import pjit, prange


def _axis(n_in, n_out, align_corners):
    """Indices (i0, i1) and weights (w0, w1) for one axis, each (n_out,)."""
    i = np.arange(n_out, dtype=np.float32)
    if align_corners:
        scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        s = scale * i
    else:
        scale = np.float32(n_in / n_out)
        s = np.maximum(scale * (i + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(s.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (s - i0).astype(np.float32)
    return i0, i1, (np.float32(1) - w1).astype(np.float32), w1


def resize_bilinear_ref(x, size, align_corners):
    """Readable reference: gather the four neighbours and blend, in float64."""
    Ho, Wo = size
    B, C, H, W = x.shape
    y0, y1, wy0, wy1 = _axis(H, Ho, align_corners)
    x0, x1, wx0, wx1 = _axis(W, Wo, align_corners)
    x64 = x.astype(np.float64)
    top = x64[:, :, y0][:, :, :, x0] * wx0 + x64[:, :, y0][:, :, :, x1] * wx1   # (B, C, Ho, Wo)
    bot = x64[:, :, y1][:, :, :, x0] * wx0 + x64[:, :, y1][:, :, :, x1] * wx1
    return (top * wy0[:, None] + bot * wy1[:, None]).astype(x.dtype)


@pjit
def _resize(x, y0, y1, wy0, wy1, x0, x1, wx0, wx1, out):
    # x (B, C, H, W) -> out (B, C, Ho, Wo)
    B, C = x.shape[0], x.shape[1]
    Ho, Wo = out.shape[2], out.shape[3]
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        for i in range(Ho):
            for j in range(Wo):
                top = wx0[j] * x[b, c, y0[i], x0[j]] + wx1[j] * x[b, c, y0[i], x1[j]]
                bot = wx0[j] * x[b, c, y1[i], x0[j]] + wx1[j] * x[b, c, y1[i], x1[j]]
                out[b, c, i, j] = wy0[i] * top + wy1[i] * bot


def resize_bilinear(x, size, align_corners):
    """x (B, C, H, W) float32 -> new (B, C, *size) float32."""
    B, C, H, W = x.shape
    Ho, Wo = int(size[0]), int(size[1])
    out = np.empty((B, C, Ho, Wo), np.float32)
    _resize(x, *_axis(H, Ho, align_corners), *_axis(W, Wo, align_corners), out)
    return out
