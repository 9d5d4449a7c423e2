"""Element-wise building blocks that the other kernel files compile into their loops.

- `exp32`: exp of a float32, in a form LLVM vectorises. Numba's np.exp and
  math.exp call the scalar libm function (there is no SVML here), which made
  SiLU and softmax the most expensive loops of a forward pass. It rounds
  x/ln2 to k with a magic-number add (k lands in the low bits of the float,
  which then become 2**k by one shift), reduces r = x - k*ln2 in two steps
  (Cody-Waite), and evaluates a degree-6 polynomial in Horner form with fused
  multiply-adds (jit.jit_fma): 14 vector operations, within 1.5 ulp of the
  exact exp over the clamped range [-87, 88]; inputs beyond give exp(-87) or
  exp(88), which SiLU and softmax never notice. The coefficients fit exp on
  [-ln2/2, ln2/2] for the least largest relative error (1.9e-9 before float32
  rounding; Lawson's reweighted least squares on 4000 Chebyshev points).
- `act_row`: the activation epilogue on one row (bias, then none/SiLU/ReLU);
  `act_point` the same on one value, for loops that apply it as they compute.
- `softmax_row`: softmax(scale * row) in place; `exp_row` is its first half (the
  exponentials and their sum), for callers that normalise later.
- `sum_f32`, `moments_f32`: the sums of a row (and of its squares), as vector partial
  sums (the one place fastmath's reassociation is allowed; see jit.py).
The activation codes are those of act.ACTS: 0 none, 1 SiLU, 2 ReLU.

These (and the plane layouts of planes.py) are the only jitted functions called
from other files. Numba's cache does not notice when a callee in another file
changes: after editing this file, delete the cached kernels
(`__pycache__/*.nbi`, `*.nbc`) or run with a fresh NUMBA_CACHE_DIR.
"""
import numpy as np

from ..jit import bits_of_f32, f32_from_bits, jit, jit_fma, jit_sum


_LOG2E = np.float32(1.44269504088896341)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)    # ln2 = hi + lo
_ROUND = np.float32(1.5 * 2 ** 23 + 127)      # t = x/ln2 + _ROUND keeps round(x/ln2) + 127 in its low bits
_E0, _E1, _E2, _E3 = np.float32(1.0), np.float32(1.0), np.float32(0.49999991059303284), np.float32(0.16666419804096222)
_E4, _E5, _E6 = np.float32(0.04166822507977486), np.float32(0.008374815806746483), np.float32(0.0013836845755577087)


@jit_fma
def exp32(v):
    """exp of a float32 scalar, vectorisable: 2**k * p(r) with v = k*ln2 + r, |r| <= ln2/2."""
    v = min(max(v, np.float32(-87.0)), np.float32(88.0))
    t = v * _LOG2E + _ROUND                       # rounds: the float t is exactly 1.5 * 2**23 + k + 127
    k = t - _ROUND
    r = v - k * _LN2_HI                           # exact (k*hi has few bits), then the small correction
    r = r - k * _LN2_LO
    p = _E6 * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + _E1
    p = p * r + _E0
    two_k = f32_from_bits(bits_of_f32(t) << np.int32(23))    # (k + 127) << 23: the exponent field of 2**k
    return p * two_k


@jit
def act_point(v, act):
    """act(v) of one float32: act 0 none, 1 SiLU, 2 ReLU. LLVM does not move the test of act out of
    a caller's loop; with act 0 a 3x3 depthwise plane measured 15% slower than a plain loop."""
    if act == 1:
        return v / (np.float32(1.0) + exp32(-v))
    if act == 2:
        return v if v > 0 else np.float32(0.0)
    return v


@jit
def act_row(row, beta, act):
    """row (L,) float32 in place: act(row + beta); act 0 none, 1 SiLU, 2 ReLU."""
    if act == 1:
        for i in range(row.shape[0]):
            v = row[i] + beta
            row[i] = v / (np.float32(1.0) + exp32(-v))
    elif act == 2:
        for i in range(row.shape[0]):
            v = row[i] + beta
            row[i] = v if v > 0 else np.float32(0.0)
    elif beta != 0:
        for i in range(row.shape[0]):
            row[i] += beta


@jit
def act_row_vec(row, bias, act):
    """row (L,) float32 in place: act(row + bias) with a bias vector (L,)."""
    if act == 1:
        for i in range(row.shape[0]):
            v = row[i] + bias[i]
            row[i] = v / (np.float32(1.0) + exp32(-v))
    elif act == 2:
        for i in range(row.shape[0]):
            v = row[i] + bias[i]
            row[i] = v if v > 0 else np.float32(0.0)
    else:
        for i in range(row.shape[0]):
            row[i] += bias[i]


@jit_sum
def sum_f32(row):
    """sum(row) of a float32 row, in float32 vector partial sums (see jit.jit_sum)."""
    s = np.float32(0.0)
    for i in range(row.shape[0]):
        s += row[i]
    return s


@jit_sum
def moments_f32(row, k):
    """(sum(row - k), sum((row - k)**2)) of a float32 row, in float32 vector partial sums.

    k (float32) should be a typical value of the row (its first one will do): summing around it
    keeps E[(x-k)**2] - E[x-k]**2 free of cancellation whatever the row's offset.
    """
    s = np.float32(0.0)
    q = np.float32(0.0)
    for i in range(row.shape[0]):
        v = row[i] - k
        s += v
        q += v * v
    return s, q


@jit
def exp_row(row, scale):
    """row (N,) float32 in place -> exp(scale * (row - max(row))), scale > 0; returns its sum.

    The max uses eight interleaved partial maxima (with fastmath off LLVM keeps a
    reduction in source order; one accumulator would take one element at a time);
    the sum is `sum_f32`.
    """
    N = row.shape[0]
    n8 = N - N % 8
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = row[0]
    for i in range(0, n8, 8):
        m0 = max(m0, row[i])
        m1 = max(m1, row[i + 1])
        m2 = max(m2, row[i + 2])
        m3 = max(m3, row[i + 3])
        m4 = max(m4, row[i + 4])
        m5 = max(m5, row[i + 5])
        m6 = max(m6, row[i + 6])
        m7 = max(m7, row[i + 7])
    for i in range(n8, N):
        m0 = max(m0, row[i])
    m = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for i in range(N):
        row[i] = exp32((row[i] - m) * scale)
    return sum_f32(row)


@jit
def softmax_row(row, scale):
    """row (N,) float32 in place -> softmax(scale * row), scale > 0."""
    inv = np.float32(1.0) / exp_row(row, scale)
    for i in range(row.shape[0]):
        row[i] *= inv
