"""minivit.warmup compiles every kernel a full-size forward pass needs: afterwards nothing new compiles."""
import importlib
import pkgutil

import numpy as np
import pytest

import minivit
import minivit.kernels
from minivit.warmup import warmup


def kernel_signatures():
    """{kernel name: number of compiled signatures} over every jitted function in minivit.kernels."""
    out = {}
    for m in pkgutil.iter_modules(minivit.kernels.__path__):
        mod = importlib.import_module(f"minivit.kernels.{m.name}")
        for name, obj in vars(mod).items():
            if hasattr(obj, "signatures"):
                out[f"{m.name}.{name}"] = len(obj.signatures)
    return out


@pytest.mark.parametrize("name", ["mobilevit_xxs", "mobilevitv2_050", "mobilevitv3_xxs", "mobilevitv3_050"])
def test_warmup_covers_a_full_size_batch(name):
    model = minivit.create_model(name)
    seconds = warmup(model)
    assert seconds > 0
    before = kernel_signatures()
    for shape in [(2, 3, 256, 256), (1, 3, 200, 232)]:
        model(np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32))
    after = kernel_signatures()
    new = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert not new, f"compiled after warmup: {new}"


def test_warmup_by_name_and_bad_argument():
    assert warmup("mobilevit_xxs") > 0
    with pytest.raises(minivit.InputError):
        warmup(3)
