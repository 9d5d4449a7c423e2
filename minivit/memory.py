"""Where minivit's activations come from: glibc's heap, kept between passes.

A forward pass allocates and frees the same few dozen activation arrays every
time. With glibc's default settings, arrays above its mmap threshold (128 KiB,
then raised on the fly) are mapped fresh and unmapped on free, and free memory
at the top of the heap is handed back to the kernel; either way the next pass
touches new pages and takes a page fault per 4 KiB. On mobilevitv2_050
(one image, one thread) that was about 1,000 faults and 1.5-2 ms of a 19 ms
pass; some variants hit it and some do not, depending on their sizes.

So, the first time a model runs, minivit asks glibc (mallopt) to serve
allocations up to 32 MiB from its heaps and to keep up to 256 MiB of free
memory instead of trimming it, which is what an inference engine's own arena
(ONNX Runtime's, say) does. The price is memory: freed activations stay with
the process instead of going back to the system.

It is one process-wide setting, made once, and skipped when
- the C library is not glibc (no mallopt);
- the user has chosen glibc's thresholds already (MALLOC_MMAP_THRESHOLD_ or
  MALLOC_TRIM_THRESHOLD_ in the environment);
- MINIVIT_MALLOC=default is set.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

_done = False
_applied = False


def keep_freed_memory():
    """Make the allocator keep activations between passes (once per process; see the module doc)."""
    global _done, _applied
    if _done:
        return _applied
    _done = True
    if os.environ.get("MINIVIT_MALLOC", "").lower() == "default" or \
            "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version               # glibc only: other C libraries' mallopt differ
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def applied():
    """True once minivit has changed the allocator's thresholds in this process."""
    return _applied
