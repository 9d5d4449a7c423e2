"""The one place that decides how minivit compiles its kernels with Numba.

Every jitted kernel in `minivit/kernels/` is decorated with `jit` (serial) or
`pjit` (parallel loops over `prange`). The flags live here and nowhere else:
- cache=True: compiled machine code is kept on disk beside the source, so a
  fresh process does not recompile.
- error_model="numpy": division by zero gives inf/nan instead of raising, which
  lets Numba vectorise the inner loops.
- fastmath=False: results stay bit-comparable with the NumPy references.
"""
import numba

FLAGS = dict(cache=True, error_model="numpy", fastmath=False)


def jit(fn):
    """Compile `fn` as a serial kernel with the project's flags."""
    return numba.njit(**FLAGS)(fn)


def pjit(fn):
    """Compile `fn` as a kernel whose `prange` loops run on Numba's thread pool."""
    return numba.njit(parallel=True, **FLAGS)(fn)


prange = numba.prange
