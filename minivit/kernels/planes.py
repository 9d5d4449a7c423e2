"""Plane layouts that the convolution kernels share (compiled into their loops).

- `pad_plane`: a copy of one (H, W) plane inside a zero border, so that the taps
  of a convolution need no bounds tests; `fill_interior` copies the plane only,
  into a scratch plane whose border was zeroed once and stays zero;
- `phases`: the four phase planes of a plane padded by one, P[a, b, y, x] =
  padded[2y + a, 2x + b], so that a stride-2 3x3 convolution reads only
  contiguous runs (its tap (i, j) is phase (i % 2, j % 2) shifted by
  (i // 2, j // 2)).
Like elementwise.py, these are jitted helpers called from other files: Numba's
cache does not notice when they change; clear the cached kernels after editing.
"""
import numpy as np

from ..jit import jit


@jit
def pad_plane(src, ph, pw, buf):
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


@jit
def fill_interior(src, ph, pw, buf):
    # src (H, W) -> buf[ph:ph + H, pw:pw + W]; the rest of buf is left as it is (a zero border
    # written once for many planes: one copy loop per row instead of three)
    H, W = src.shape
    for y in range(H):
        d, s = buf[y + ph, pw:pw + W], src[y]
        for t in range(W):
            d[t] = s[t]


@jit
def phases(src, P):
    # src (H, W), W even -> P (2, 2, Hq, Wq): the four phases of the plane padded by one,
    # P[a, b, y, x] = padded[2y + a, 2x + b] = src[2y + a - 1, 2x + b - 1] (0 outside src).
    # The even/odd split of a row is one loop with constant-stride reads s[2k], s[2k + 1] on a
    # contiguous row, which LLVM vectorises as an interleaved load (0.12 us for a 16 x 16 plane,
    # 2.0 for 128 x 128; reading each row as uint64 pairs and splitting the halves took 0.42 and 4.9).
    H, W = src.shape
    Hq, Wq = P.shape[2], P.shape[3]
    half = W // 2
    for a in range(2):
        for y in range(Hq):
            e, o = P[a, 1, y], P[a, 0, y]
            r = 2 * y + a - 1
            if r < 0 or r >= H:
                e[:] = 0.0
                o[:] = 0.0
                continue
            s = src[r]
            o[0] = 0.0
            o1 = o[1:]
            for k in range(half):
                e[k] = s[2 * k]
                o1[k] = s[2 * k + 1]
            for t in range(half, Wq):
                e[t] = 0.0
            for t in range(half + 1, Wq):
                o[t] = 0.0
