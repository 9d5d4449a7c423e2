"""Shared test setup: tests/ on the import path, and the `mode` fixture of the kernel tests."""
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=["jit", "python"])
def mode(request, monkeypatch):
    """Run the test with the Numba kernels compiled, then with their plain-Python originals
    (`.py_func`, swapped in for every jitted function of every minivit.kernels module)."""
    if request.param == "python":
        import minivit.kernels
        for info in pkgutil.iter_modules(minivit.kernels.__path__):
            mod = importlib.import_module(f"minivit.kernels.{info.name}")
            for name, obj in list(vars(mod).items()):
                if hasattr(obj, "py_func"):
                    monkeypatch.setattr(mod, name, obj.py_func)
    return request.param
