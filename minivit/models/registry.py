"""Create models by name: the presets, random initialisation and weight loading."""
import json
import zlib

import numpy as np

from ..errors import InputError, WeightsError
from ..nn import BUFFERS
from .config import MODELS, Preprocessing
from .mobilevit import MobileViT


def list_models(task="classification"):
    """Names of the models minivit builds for a task, in registry order.

    task: "classification" (the default), "segmentation" (DeepLabv3), "detection" (SSDLite) or None (all).
    """
    from .dense import TASKS, dense_configs
    if task is not None and task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)} (or None for all)")
    names = list(MODELS) if task in (None, "classification") else []
    return names + [n for n, c in dense_configs().items() if task in (None, c.task)]


def get_config(name):
    if name in MODELS:
        return MODELS[name]
    from .dense import dense_configs
    dense = dense_configs()
    if name not in dense:
        raise InputError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)} "
                         "(segmentation and detection models: list_models(task=None))")
    return dense[name]


def random_init(model, seed=0):
    """Seeded, untrained weights: conv/linear N(0, 1/fan_in), norms at identity, biases 0."""
    weights = {}
    for key, v in model.state_dict().items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("running_var") or (v.ndim == 1 and key.endswith("weight")):
            a = np.ones(v.shape)
        elif v.ndim == 1:
            a = np.zeros(v.shape)
        else:
            a = rng.normal(0.0, 1.0 / np.sqrt(np.prod(v.shape[1:])), v.shape)
        weights[key] = a.astype(np.float32)
    return weights


def create_model(name, weights=None, num_classes=None):
    """Build `name`. weights: None (seeded random, untrained), a .safetensors path, or a dict.

    A weights file's metadata can carry class names (`model.labels`) and preprocessing
    that replaces the config's (`model.preprocessing`); `model.metadata` keeps it all.

    A dict or file must be in minivit's naming (see `convert_state_dict` for others).
    num_classes defaults to the classifier size the weights carry, else 1000.
    """
    config = get_config(name)
    labels, preprocessing, meta = None, None, {}
    if isinstance(weights, (str, bytes)) or hasattr(weights, "__fspath__"):
        from ..weights import load_weights, metadata_preprocessing
        path = weights
        weights, meta = load_weights(path)
        if meta.get("model") and meta["model"] != name:
            raise WeightsError(f"{path}: these weights are for model {meta['model']!r}, not {name!r}")
        labels = json.loads(meta["labels"]) if meta.get("labels") else None
        preprocessing = metadata_preprocessing(str(path), meta)     # the weights' own, if any
    elif weights is not None and not isinstance(weights, dict):
        raise InputError(f"weights must be None, a path or a dict of arrays, got {type(weights).__name__}")
    if getattr(config, "task", "classification") != "classification":
        from .dense import build_dense
        model = build_dense(config, num_classes, weights)
    else:
        if num_classes is None:
            fc = (weights or {}).get("classifier.weight")
            num_classes = int(np.shape(fc)[0]) if fc is not None and np.ndim(fc) == 2 else 1000
        model = MobileViT(config, num_classes)
    model.load_state_dict(random_init(model) if weights is None else weights)
    model.labels = labels
    model.preprocessing = (Preprocessing(**preprocessing) if preprocessing
                           else getattr(config, "preprocessing", None))
    model.metadata = meta
    return model


__all__ = ["list_models", "create_model", "get_config", "random_init", "BUFFERS"]
