"""Kernels: functions on NumPy arrays, no weights, no models.

Each module holds the readable NumPy reference of an op (`*_ref`) beside the
fast version that the layers call. Fast versions use BLAS through NumPy for
the matmul-shaped work and Numba (through `minivit.jit`) for the loops.

Layout everywhere: NCHW, float32, C-contiguous. Shape legend:
B batch, C channels, H/W height/width, P = ph*pw pixels per patch,
N = number of patches, D embedding dim, h heads.
"""
