"""Element-wise building blocks that the other kernel files compile into their loops.

- `exp32`: exp of a float32, in a form LLVM vectorises. Numba's np.exp and
  math.exp call the scalar libm function (there is no SVML here), which made
  SiLU and softmax the most expensive loops of a forward pass. It is Cody-Waite
  range reduction and the Cephes degree-6 polynomial, with fused multiply-adds
  (jit.jit_fma): within 1.5 ulp of the exact exp over the clamped range
  [-87, 88]; inputs beyond give exp(-87) or exp(88), which SiLU and softmax
  never notice.
- `act_row`: the activation epilogue on one row (bias, then none/SiLU/ReLU).
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

from ..jit import f32_from_bits, jit, jit_fma, jit_sum


@jit_fma
def exp32(v):
    """exp of a float32 scalar, vectorisable: 2**k * p(r) with v = k*ln2 + r, |r| <= ln2/2."""
    v = min(max(v, np.float32(-87.0)), np.float32(88.0))
    k = np.floor(v * np.float32(1.44269504088896341) + np.float32(0.5))
    r = v - k * np.float32(0.693359375)              # ln2 in two parts (Cody-Waite):
    r = r + k * np.float32(2.12194440e-4)            # 0.693359375 - 2.12194440e-4 = ln2
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    two_k = f32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))   # 2**k from its exponent bits
    return (p * (r * r) + r + np.float32(1.0)) * two_k


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
