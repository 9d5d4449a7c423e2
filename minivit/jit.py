"""The one place that decides how minivit compiles its kernels with Numba.

Every jitted kernel in `minivit/kernels/` is decorated with `jit` (serial) or
`pjit` (parallel loops over `prange`). The flags live here and nowhere else:
- cache=True: compiled machine code is kept on disk beside the source, so a
  fresh process does not recompile.
- nogil=True: kernels release the GIL, so models called from several Python
  threads at once (and minivit's own batch split, see threads.py) really run
  at the same time.
- error_model="numpy": division by zero gives inf/nan instead of raising, which
  lets Numba vectorise the inner loops.
- fastmath=False: results stay bit-comparable with the NumPy references. The
  price: LLVM keeps every float reduction in source order, so a plain `s += x[i]`
  loop adds one element at a time (measured 0.3-0.7 ns per element against 0.05
  vectorised), and a*b + c is never fused into one FMA. Two narrow exceptions,
  each for small helpers only, each measured and passing the parity tests:
  - `jit_sum` (fastmath={"reassoc"}): helpers that only sum; LLVM splits the sum
    into vector partial sums (what a hand-unrolled loop does, sixteen lanes wide);
  - `jit_fma` (fastmath={"contract"}): the exp polynomial and the depthwise
    taps; mul+add pairs become FMAs (one rounding instead of two), 0.37 -> 0.27
    ns per exp, same accuracy.
  Nothing else is relaxed: no nnan/ninf, no approximate functions.

How many threads the `prange` loops use, and why BLAS runs inside them on one
thread, is decided in `minivit/threads.py`.

Two pieces of Numba extension code live here too, because Numba lacks them:
- `f32_from_bits` and `bits_of_f32`: bit casts int32 <-> float32, with which
  the vectorisable exp of `kernels/elementwise.py` rounds and builds 2**k;
- `sgemm`: a call to BLAS's cblas_sgemm by address, so that kernels can run
  single-threaded matrix products on tiles from inside their own parallel
  loops. The address is a run-time argument (not a baked-in constant), so
  kernels that call it stay cacheable.
Both also run as plain Python, for `.py_func` tests and NUMBA_DISABLE_JIT=1.
"""
import ctypes

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

FLAGS = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)


def jit(fn):
    """Compile `fn` as a serial kernel with the project's flags."""
    return numba.njit(**FLAGS)(fn)


def pjit(fn):
    """Compile `fn` as a kernel whose `prange` loops run on Numba's thread pool."""
    return numba.njit(parallel=True, **FLAGS)(fn)


SUM_FLAGS = dict(FLAGS, fastmath={"reassoc"})
FMA_FLAGS = dict(FLAGS, fastmath={"contract"})


def jit_sum(fn):
    """Compile a serial helper that only sums: its float adds may be reassociated (vectorised)."""
    return numba.njit(**SUM_FLAGS)(fn)


def jit_fma(fn):
    """Compile a serial helper whose multiply-adds may become fused multiply-adds."""
    return numba.njit(**FMA_FLAGS)(fn)


prange = numba.prange
set_pool_threads = numba.set_num_threads
get_pool_threads = numba.get_num_threads


# ----------------------------------------------------------------------------- bit cast

def f32_from_bits(i):
    """The float32 whose bit pattern is the low 32 bits of the integer i (no conversion)."""
    return np.array(i, np.int64).astype(np.int32).view(np.float32)[()]


@intrinsic
def _bitcast_f32(typingctx, i):
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if i.bitwidth != 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())
    return types.float32(i), codegen


@overload(f32_from_bits)
def _f32_from_bits_jit(i):
    return lambda i: _bitcast_f32(i)


def bits_of_f32(x):
    """The int32 whose bit pattern is that of the float32 x (no conversion)."""
    return np.array(x, np.float32).view(np.int32)[()]


@intrinsic
def _bitcast_i32(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(x), codegen


@overload(bits_of_f32)
def _bits_of_f32_jit(x):
    return lambda x: _bitcast_i32(x)


# ----------------------------------------------------------------------------- cblas_sgemm by address

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112       # the CBLAS enum values


def _sgemm_call(ilp64, fn, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, builder):
    """Emit cblas_sgemm(RowMajor, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)."""
    i32, f32, ptr = ir.IntType(32), ir.FloatType(), ir.IntType(8).as_pointer()
    iN = ir.IntType(64 if ilp64 else 32)
    fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, iN, iN, iN, f32, ptr, iN, ptr, iN, f32, ptr, iN])
    to_int = (lambda v: v) if ilp64 else (lambda v: builder.trunc(v, iN))
    to_ptr = lambda v: builder.inttoptr(v, ptr)
    builder.call(builder.inttoptr(fn, fnty.as_pointer()),
                 [ir.Constant(i32, ROW_MAJOR), builder.trunc(transa, i32), builder.trunc(transb, i32),
                  to_int(m), to_int(n), to_int(k), alpha, to_ptr(a), to_int(lda), to_ptr(b), to_int(ldb),
                  beta, to_ptr(c), to_int(ldc)])


@intrinsic
def _sgemm_intrinsic(typingctx, fn, ilp64, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    ints = (fn, transa, transb, m, n, k, a, lda, b, ldb, c, ldc)
    if not all(isinstance(t, types.Integer) for t in ints) or not isinstance(ilp64, types.Boolean):
        return None
    sig = types.void(fn, ilp64, transa, transb, m, n, k, types.float32, a, lda, b, ldb, types.float32, c, ldc)

    def codegen(context, builder, signature, args):
        fn_, ilp, ta, tb, m_, n_, k_, al, a_, lda_, b_, ldb_, be, c_, ldc_ = args
        i64 = ir.IntType(64)
        tys = signature.args
        widen = [builder.sext(v, i64) if isinstance(t, types.Integer) and t.bitwidth < 64 else v
                 for v, t in zip(args, tys)]
        fn_, _, ta, tb, m_, n_, k_, _, a_, lda_, b_, ldb_, _, c_, ldc_ = widen
        with builder.if_else(ilp) as (then, otherwise):
            with then:
                _sgemm_call(True, fn_, ta, tb, m_, n_, k_, al, a_, lda_, b_, ldb_, be, c_, ldc_, builder)
            with otherwise:
                _sgemm_call(False, fn_, ta, tb, m_, n_, k_, al, a_, lda_, b_, ldb_, be, c_, ldc_, builder)
        return context.get_dummy_value()
    return sig, codegen


_PY_SGEMM = {}


def sgemm(fn, ilp64, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """C = alpha * op(A) @ op(B) + beta * C, row-major, through cblas_sgemm at address `fn`.

    a, b, c are addresses (arr.ctypes.data); op(X) is X (NO_TRANS) or X^T (TRANS);
    ilp64 says whether the library takes 64-bit integers. Call it only with a
    BLAS that runs on one thread (see minivit/threads.py).
    """
    key = (fn, bool(ilp64))
    f = _PY_SGEMM.get(key)
    if f is None:
        I = ctypes.c_int64 if ilp64 else ctypes.c_int32
        proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, I, I, I, ctypes.c_float,
                                 ctypes.c_void_p, I, ctypes.c_void_p, I, ctypes.c_float, ctypes.c_void_p, I)
        f = _PY_SGEMM[key] = proto(fn)
    f(ROW_MAJOR, int(transa), int(transb), int(m), int(n), int(k), float(alpha), int(a), int(lda), int(b),
      int(ldb), float(beta), int(c), int(ldc))


@overload(sgemm)
def _sgemm_jit(fn, ilp64, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    def impl(fn, ilp64, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        _sgemm_intrinsic(fn, ilp64, transa, transb, m, n, k, np.float32(alpha), a, lda, b, ldb,
                         np.float32(beta), c, ldc)
    return impl


def pool_is_threadsafe():
    """Whether Numba's pool may be entered from several Python threads at once.

    True for the TBB and OpenMP layers; False for "workqueue", the fallback
    where neither loads (it aborts the process on concurrent launches); None
    before the first parallel kernel has run and chosen the layer.
    """
    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:
        return None
