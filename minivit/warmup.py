"""Compile every kernel a model needs, before its first real input.

Numba compiles a kernel the first time it sees a new combination of argument
types, and keeps the machine code in its on-disk cache. `warmup` runs the model
on tiny inputs that take every path a full-size input takes (the same kernels
with the same argument types), so that afterwards no call compiles anything:
- a size the patches divide at every MobileViT stage (64 x 64), and
- one they do not (72 x 72), for the resize around the patch grid.
With a warm cache this only loads compiled code; with a cold one it compiles
everything (see benchmarks/RESULTS.md for how long each takes).
"""
import time

import numpy as np

from .errors import InputError

SIZES = ((64, 64), (72, 72))


def warmup(model_or_name):
    """Compile (or load from the cache) every kernel `model_or_name` needs; returns the seconds taken.

    model_or_name: a model from `create_model`, or a model name (built with random weights).
    """
    t0 = time.perf_counter()
    model = model_or_name
    if isinstance(model_or_name, str):
        from .models.registry import create_model
        model = create_model(model_or_name)
    if not callable(model):
        raise InputError(f"warmup needs a model or a model name, got {type(model_or_name).__name__}")
    for h, w in SIZES:
        x = np.random.default_rng(0).uniform(0, 1, (1, 3, h, w)).astype(np.float32)
        model(x)
    return time.perf_counter() - t0
