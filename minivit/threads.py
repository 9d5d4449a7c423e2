"""How minivit uses the cores: one thread pool, Numba's, with BLAS running inside it.

The policy, and why:
- Two thread pools must never be busy at the same time. NumPy's OpenBLAS keeps
  its worker threads spinning for a while after every call, and Numba's OpenMP
  workers spin after every parallel loop; on a 2-core machine each pool's
  spinners steal the core the other pool needs, and one block ran tens of
  times slower. Even one after the other, the pools collide.
- So minivit has one pool: Numba's (`set_num_threads`). Every matrix product
  is cut into tiles (images x column or row blocks), and each tile is one
  single-threaded cblas_sgemm call made from inside a Numba parallel loop,
  followed at once by its epilogue (bias, activation, residual) while the tile
  is still in cache. Depthwise convs, norms, softmax and the patch index maps
  are Numba loops on the same pool; at batch 1 they split each operation
  over the threads.
- While minivit runs, NumPy's BLAS is held at one thread (`blas_single_thread`,
  reference-counted, so concurrent calls from several threads nest), and then
  put back as it was. Other code that calls NumPy's BLAS at the same moment
  from another thread runs single-threaded meanwhile.
- A batch of several images goes one image at a time (`split_batch`): with n
  threads, each takes the next image and runs it with its kernels on one
  thread. Measured on 2 cores, batch 8 (best of 5): mobilevit_xxs 65 ms
  against 68 for cutting every operation of the whole batch in two,
  mobilevitv2_050 75 against 89, mobilevitv3_xxs 56 against 59; with one
  thread, 5-8% faster than the batch at once. One image at a time also keeps
  the memory small: one image's activations per thread, so batch 8 peaks at
  ~205 MiB of resident memory where ONNX Runtime takes 220-260 and PyTorch
  400-450 (benchmarks/RESULTS.md). The worker threads are minivit's own, and
  they run only while Numba's pool is not asked for more than one thread, so
  the cores still see one pool's worth of threads.
- That holds for the large early maps. A network may run its later part in
  groups instead (`split_batch(fn, x, per)`, models/mobilevit.py): there the
  weights outweigh one image's activations, and one group per thread
  multiplies them into several images at once.
- minivit finds cblas_sgemm in the BLAS library NumPy loaded (through
  threadpoolctl), checks it on a small product, and calls it by address. If
  that fails (no threadpoolctl, a BLAS other than OpenBLAS, a failed check),
  `blas()` reports no address and kernels fall back to np.matmul with NumPy's
  own threading: correct, slower.
Set the pool size with `set_num_threads(n)` (it applies to the calling thread,
as in Numba) or NUMBA_NUM_THREADS before the first import.
"""
import ctypes
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .jit import get_pool_threads, pool_is_threadsafe, set_pool_threads, sgemm


def set_num_threads(n):
    """Threads minivit's kernels use from now on, in the calling thread (1 .. NUMBA_NUM_THREADS)."""
    set_pool_threads(int(n))


def get_num_threads():
    return get_pool_threads()


@dataclass(frozen=True)
class Blas:
    """What minivit knows about NumPy's BLAS: the cblas_sgemm address (0: none usable) and its int width."""
    sgemm: int = 0
    ilp64: bool = False
    get_threads: object = None         # the library's own get/set of its thread count (ctypes)
    set_threads: object = None
    why: str = ""                      # why there is no usable sgemm, if there is none


_BLAS = None
_FIND_LOCK = threading.Lock()


def _numpy_blas_controller():
    import threadpoolctl
    np.dot(np.ones((2, 2)), np.ones((2, 2)))         # make sure NumPy's BLAS is loaded
    libs = [lc for lc in threadpoolctl.ThreadpoolController().lib_controllers if lc.user_api == "blas"]
    ours = [lc for lc in libs if "numpy" in str(lc.filepath)] or libs
    return ours[0] if ours else None


def _find_blas():
    try:
        lc = _numpy_blas_controller()
    except ImportError:
        return Blas(why="threadpoolctl is not installed")
    if lc is None:
        return Blas(why="NumPy's BLAS library was not found")
    if lc.internal_api != "openblas":
        return Blas(why=f"BLAS is {lc.internal_api}, not OpenBLAS")
    lib = ctypes.CDLL(lc.filepath)
    for prefix in ("scipy_", ""):
        for suffix, ilp64 in (("64_", True), ("_64", True), ("", False)):
            fn = getattr(lib, f"{prefix}cblas_sgemm{suffix}", None)
            get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if fn is None or get is None or put is None:
                continue
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            addr = ctypes.cast(fn, ctypes.c_void_p).value
            if _works(addr, ilp64):
                return Blas(addr, ilp64, get, put)
    return Blas(why=f"no working cblas_sgemm in {lc.filepath}")


def _works(addr, ilp64):
    """A 3x5 @ 5x4 product (B transposed) through the address equals NumPy's (too small to go multi-threaded)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    c = np.zeros((3, 4), np.float32)
    sgemm(addr, ilp64, 111, 112, 3, 4, 5, 1.0, a.ctypes.data, 5, b.ctypes.data, 5, 0.0, c.ctypes.data, 4)
    return np.allclose(c, a @ b.T, rtol=1e-5, atol=1e-6)


def blas():
    """The `Blas` found at first use (cached for the process)."""
    global _BLAS
    if _BLAS is None:
        with _FIND_LOCK:
            if _BLAS is None:
                _BLAS = _find_blas()
    return _BLAS


class _SingleThreadBlas:
    """NumPy's BLAS on one thread while inside (nests, thread-safe); restored when the last one leaves."""

    def __init__(self):
        self.depth, self.saved, self.lock = 0, None, threading.Lock()

    def __enter__(self):
        lib = blas()
        with self.lock:
            if self.depth == 0 and lib.get_threads is not None:
                self.saved = lib.get_threads()
                if self.saved != 1:
                    lib.set_threads(1)
            self.depth += 1

    def __exit__(self, *exc):
        lib = blas()
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and lib.set_threads is not None and self.saved not in (None, 1):
                lib.set_threads(self.saved)


_GUARD = _SingleThreadBlas()


def blas_single_thread():
    """Context manager: NumPy's BLAS runs on one thread inside it (see the module docstring)."""
    return _GUARD


def blas_held():
    """True while some caller is inside blas_single_thread (a cheap check for nested kernels).

    Read without the lock: a caller that sees True runs inside another's guard; should that
    one leave at that instant, only speed is at stake (BLAS back to its threads), not results.
    """
    return _GUARD.depth > 0



_EXECUTOR = None
_EXECUTOR_LOCK = threading.Lock()


def _executor(workers):
    """minivit's worker threads for split_batch (created at first use, kept for the process)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None or _EXECUTOR._max_workers < workers:
            _EXECUTOR = ThreadPoolExecutor(workers, thread_name_prefix="minivit")
        return _EXECUTOR


def split_batch(fn, x, per=1):
    """fn(x) for a batch x (B, ...) whose result is (B, ...): `per` images at a time, over the threads.

    The batch is cut into groups of `per` consecutive images (the last one may be smaller). Each
    of min(n, groups) threads (the caller and n - 1 workers) takes the next group and runs fn on
    it with its kernels on one thread; results are joined in order. With one group, fn(x) runs
    on the calling thread at the pool's size. The result is fn(x): every kernel computes each
    image on its own (to rounding, where a product's tiles fall differently on a larger batch).
    """
    n, B = get_pool_threads(), x.shape[0]
    groups = -(-B // per)
    if groups < 2 or not pool_is_threadsafe():      # workqueue layer: one launching thread only
        return fn(x)
    out = [None] * groups
    taken = iter(range(groups))
    lock = threading.Lock()

    def work():
        before = get_pool_threads()
        set_pool_threads(1)
        try:
            while True:
                with lock:
                    i = next(taken, None)
                if i is None:
                    return
                out[i] = fn(x[i * per:(i + 1) * per])
        finally:
            set_pool_threads(before)

    helpers = [_executor(n - 1).submit(work) for _ in range(min(n, groups) - 1)]
    work()
    for h in helpers:
        h.result()
    return np.concatenate(out, axis=0)


_POOL_LOCK = threading.RLock()


@contextmanager
def pool_guard():
    """One forward pass at a time where Numba's pool is not threadsafe.

    Under the workqueue threading layer two threads launching parallel kernels
    at once abort the process, so there whole passes are serialised (and the
    first pass, which picks the layer, always is). Under OpenMP or TBB this is
    free and passes from several threads run side by side.
    """
    if pool_is_threadsafe():
        yield
    else:
        with _POOL_LOCK:
            yield
