"""Unfold a feature map into patches and fold it back: the two layouts.

A map (B, C, H, W) with H = nh*ph and W = nw*pw is cut into N = nh*nw
non-overlapping patches of P = ph*pw pixels. Pixel (py, px) of patch (ny, nx)
is x[b, c, ny*ph + py, nx*pw + px].

- v1 layout (cvnets MobileViTBlock.unfolding): (B*P, N, C). Each of the B*P
  sequences holds the pixels at one position inside the patches, so attention
  runs across patches, never inside one.
- v2 layout (cvnets MobileViTBlockv2, F.unfold with kernel = stride = patch):
  (B, C, P, N), channels first, so 1x1 convs act on it directly.
The `_ref` functions are one reshape and one transpose each way; the fast
versions are Numba index maps that write the output in one pass.
"""
import numpy as np

from ..jit import pjit, prange


def unfold_v1_ref(x, ph, pw):
    B, C, H, W = x.shape
    nh, nw = H // ph, W // pw
    # (B, C, nh, ph, nw, pw) -> (B, ph, pw, nh, nw, C) -> (B*P, N, C)
    t = x.reshape(B, C, nh, ph, nw, pw).transpose(0, 3, 5, 2, 4, 1)
    return np.ascontiguousarray(t).reshape(B * ph * pw, nh * nw, C)


def fold_v1_ref(patches, B, H, W, ph, pw):
    BP, N, C = patches.shape
    nh, nw = H // ph, W // pw
    # (B*P, N, C) -> (B, ph, pw, nh, nw, C) -> (B, C, nh, ph, nw, pw) -> (B, C, H, W)
    t = patches.reshape(B, ph, pw, nh, nw, C).transpose(0, 5, 3, 1, 4, 2)
    return np.ascontiguousarray(t).reshape(B, C, H, W)


def unfold_v2_ref(x, ph, pw):
    B, C, H, W = x.shape
    nh, nw = H // ph, W // pw
    # (B, C, nh, ph, nw, pw) -> (B, C, ph, pw, nh, nw) -> (B, C, P, N)
    t = x.reshape(B, C, nh, ph, nw, pw).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(t).reshape(B, C, ph * pw, nh * nw)


def fold_v2_ref(patches, H, W, ph, pw):
    B, C, P, N = patches.shape
    nh, nw = H // ph, W // pw
    # (B, C, P, N) -> (B, C, ph, pw, nh, nw) -> (B, C, nh, ph, nw, pw) -> (B, C, H, W)
    t = patches.reshape(B, C, ph, pw, nh, nw).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(t).reshape(B, C, H, W)


CB = 16     # channels per loop step of the v1 fold: a step's reads of a patch row share cache lines


@pjit
def _unfold_v1(x, ph, pw, out):
    # x (B, C, H, W) -> out (B*P, N, C): a transpose per patch position (py, px). For one patch
    # row ny, each channel's row of x is read once (every pw-th pixel from px) and written down
    # a column of out; the nw x C block of out it fills is contiguous and stays in cache.
    # (An index map per element, the channel innermost, took ~2.8 ns per element.)
    B, C, H, W = x.shape
    nh, nw = H // ph, W // pw
    for bp in prange(B * ph * pw):
        b, p = bp // (ph * pw), bp % (ph * pw)
        py, px = p // pw, p % pw
        o = out[bp]                                          # (N, C)
        for ny in range(nh):
            for c in range(C):
                src = x[b, c, ny * ph + py, px:]
                for nx in range(nw):
                    o[ny * nw + nx, c] = src[nx * pw]


@pjit
def _fold_v1(patches, ph, pw, out):
    # patches (B*P, N, C) -> out (B, C, H, W): the inverse transposes, in blocks of CB channels
    # (one loop step per image and block)
    B, C, H, W = out.shape
    nh, nw = H // ph, W // pw
    nb = (C + CB - 1) // CB
    for u in prange(B * nb):
        b, c0 = u // nb, (u % nb) * CB
        for py in range(ph):
            for px in range(pw):
                src = patches[b * ph * pw + py * pw + px]    # (N, C)
                for ny in range(nh):
                    for c in range(c0, min(C, c0 + CB)):
                        orow = out[b, c, ny * ph + py, px:]
                        for nx in range(nw):
                            orow[nx * pw] = src[ny * nw + nx, c]


@pjit
def _unfold_v2(x, ph, pw, out):
    # x (B, C, H, W) -> out (B, C, P, N): row ny*ph + py of a plane gives, for every px, the nw
    # pixels of patch row ny at position (py, px): every pw-th pixel from px. For pw == 2 (all
    # MobileViT models) that is a constant-stride read LLVM vectorises (an interleaved load);
    # the index map with a division per pixel took ~3.7 ns per pixel.
    B, C, H, W = x.shape
    nh, nw = H // ph, W // pw
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        for py in range(ph):
            for px in range(pw):
                dst = out[b, c, py * pw + px]
                for ny in range(nh):
                    src, d = x[b, c, ny * ph + py, px:], dst[ny * nw:(ny + 1) * nw]
                    if pw == 2:
                        for k in range(nw):
                            d[k] = src[2 * k]
                    else:
                        for k in range(nw):
                            d[k] = src[k * pw]


@pjit
def _fold_v2(patches, ph, pw, out):
    # patches (B, C, P, N) -> out (B, C, H, W): output row ny*ph + py interleaves the pw runs
    # patches[b, c, py*pw + px, ny*nw:(ny+1)*nw]; for pw == 2 one loop of interleaved stores
    B, C, H, W = out.shape
    nh, nw = H // ph, W // pw
    for bc in prange(B * C):
        b, c = bc // C, bc % C
        for ny in range(nh):
            for py in range(ph):
                orow = out[b, c, ny * ph + py]
                if pw == 2:
                    s0 = patches[b, c, 2 * py, ny * nw:(ny + 1) * nw]
                    s1 = patches[b, c, 2 * py + 1, ny * nw:(ny + 1) * nw]
                    for k in range(nw):
                        orow[2 * k] = s0[k]
                        orow[2 * k + 1] = s1[k]
                else:
                    for px in range(pw):
                        src, d = patches[b, c, py * pw + px, ny * nw:(ny + 1) * nw], orow[px:]
                        for k in range(nw):
                            d[k * pw] = src[k]


def _check_divisible(H, W, ph, pw):
    if H % ph or W % pw:
        raise ValueError(f"map {H}x{W} is not divisible by the patch {ph}x{pw}; resize it first")


def unfold_v1(x, ph, pw):
    """(B, C, H, W) -> (B*P, N, C)."""
    B, C, H, W = x.shape
    _check_divisible(H, W, ph, pw)
    out = np.empty((B * ph * pw, (H // ph) * (W // pw), C), np.float32)
    _unfold_v1(x, ph, pw, out)
    return out


def fold_v1(patches, B, H, W, ph, pw):
    """(B*P, N, C) -> (B, C, H, W)."""
    out = np.empty((B, patches.shape[2], H, W), np.float32)
    _fold_v1(patches, ph, pw, out)
    return out


def unfold_v2(x, ph, pw):
    """(B, C, H, W) -> (B, C, P, N)."""
    B, C, H, W = x.shape
    _check_divisible(H, W, ph, pw)
    out = np.empty((B, C, ph * pw, (H // ph) * (W // pw)), np.float32)
    _unfold_v2(x, ph, pw, out)
    return out


def fold_v2(patches, H, W, ph, pw):
    """(B, C, P, N) -> (B, C, H, W)."""
    B, C = patches.shape[:2]
    out = np.empty((B, C, H, W), np.float32)
    _fold_v2(patches, ph, pw, out)
    return out
