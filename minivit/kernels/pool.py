"""Global average pooling and the linear (fully connected) layer.

Reproduces torch.mean(x, dim=(2, 3)) (cvnets' GlobalPool "mean") and
torch.nn.functional.linear. The pool is NumPy; the linear layer is a matmul on
BLAS tiles (matmul.py) with the bias (and an optional activation) fused.
"""
import numpy as np

from .matmul import gemm


def global_avg_pool_ref(x):
    """x (B, C, H, W) -> (B, C), summed in float64 then rounded."""
    return x.astype(np.float64).mean(axis=(2, 3)).astype(x.dtype)


def global_avg_pool(x):
    """x (B, C, H, W) -> (B, C)."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H * W).mean(axis=2, dtype=np.float64).astype(np.float32)  # (B, C)


def linear_ref(x, w, b=None):
    """x (..., Din), w (Dout, Din), b (Dout,) -> (..., Dout), in float64."""
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if b is not None:
        y = y + b
    return y.astype(x.dtype)


def linear(x, w_t, b=None, act=None, residual=None):
    """x (..., Din), w_t (Din, Dout) (the transposed weight, packed once) -> act(x @ w_t + b) + residual,
    (..., Dout); residual (..., Dout) or None."""
    Din, Dout = w_t.shape
    x2 = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, Din)
    res = None if residual is None else residual.reshape(1, -1, Dout)
    # (M, Din) @ (Din, Dout) -> (M, Dout), bias per output (column)
    y = gemm(x2, w_t, b, "cols", act, res)
    return y.reshape(x.shape[:-1] + (Dout,))
