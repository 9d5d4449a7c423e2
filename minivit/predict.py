"""Images in, top-k labels out: the job behind `minivit predict`, as functions.

    import minivit
    minivit.predict("minivit/data/digits/digit_7.png")          # the digit model that ships
    # -> [[("7", 0.97...), ("1", 0.00...), ...]]               one list per image, best first
    minivit.predict(["a.jpg", "b.jpg"], weights="mobilevit_xxs.safetensors")

Each image is decoded (`minivit.images`: EXIF, modes), preprocessed the way its
model was evaluated (`minivit.preprocess`; the weights file may override the
config's numbers), run in batches, and its logits turned into probabilities with
a softmax. Class names: the weights' own `labels` metadata, else the ImageNet-1k
names for a 1000-class model, else the class index as a string.

Not here: argument parsing, printing and the progress bar (`minivit.cli`).
"""
import os
from pathlib import Path

import numpy as np

from .errors import InputError, MinivitError
from .images import is_pil_image, load_image, to_rgb
from .preprocess import Preprocess

# The model that ships: mobilevitv3_xxs trained on MNIST digits (scripts/train_digits.py).
SHIPPED_WEIGHTS = Path(__file__).parent / "data" / "digits_mobilevitv3_xxs.safetensors"

# File suffixes a folder is searched for (files named on their own are tried whatever their suffix).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
DEFAULT_BATCH = 16


def load_model(model=None, weights=None):
    """A ready model from a name and/or weights.

    model: a preset name, a minivit model (returned as is), or None (the name the
    weights file's metadata gives). weights: a minivit .safetensors path, a dict,
    "random" (seeded untrained weights, for trying things out), or None.
    Neither given: the shipped digit model.
    """
    from .models.registry import create_model
    from .nn import Module

    if isinstance(model, Module):
        if weights is not None:
            raise InputError("predict: pass weights with a model name, not with a model object "
                             "(the model already holds its weights)")
        return model
    if model is not None and not isinstance(model, str):
        raise InputError(f"predict: model must be a name or a minivit model, got {type(model).__name__}")
    if model is None and weights is None:
        weights = SHIPPED_WEIGHTS
    if isinstance(weights, str) and weights == "random":
        if model is None:
            raise InputError("predict: weights='random' needs a model name")
        return create_model(model)
    if weights is None:
        raise InputError(f"predict: no weights for {model!r}: pass weights=<a minivit .safetensors file> "
                         f"(make one with `minivit convert`), or weights='random' for untrained weights")
    if model is None:
        if not isinstance(weights, (str, os.PathLike)):
            raise InputError("predict: weights given as a dict need a model name too")
        from .weights import read_metadata
        meta = read_metadata(weights)
        if not meta.get("model"):
            raise InputError(f"{weights}: the metadata does not name the model; pass the model name too")
        return create_model(meta["model"], weights=weights)
    return create_model(model, weights=weights)


def class_names(model) -> list:
    """The model's class names, in logit order (see the module header)."""
    n = model.num_classes
    labels = getattr(model, "labels", None)
    if labels:
        if len(labels) != n:
            raise InputError(f"{model.name}: {len(labels)} class names for {n} classes")
        return list(labels)
    if n == 1000:
        from .labels import imagenet_labels
        return imagenet_labels()
    return [str(i) for i in range(n)]


def preprocess_for(model, resize=None, crop=None, interpolation=None) -> Preprocess:
    """The model's preprocessing (its weights' override, else its config), with any of
    resize / crop / interpolation replaced."""
    p = getattr(model, "preprocessing", None) or model.config.preprocessing
    return Preprocess(resize=p.resize if resize is None else resize,
                      crop=p.crop if crop is None else crop,
                      interpolation=p.interpolation if interpolation is None else interpolation)


def find_images(inputs) -> list:
    """Paths, folders and PIL images -> a flat list of (name, path or image).

    A folder stands for the image files directly inside it (by suffix, sorted by name);
    a folder holding none becomes an entry whose loading fails, so it is reported.
    """
    if is_pil_image(inputs) or isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)):
        raise InputError(f"predict: expected an image, a path, a folder, or a list of them; "
                         f"got {type(inputs).__name__}")
    out = []
    for i, item in enumerate(inputs):
        if is_pil_image(item):
            out.append((f"image {i}", item))
        elif isinstance(item, (str, os.PathLike)):
            p = Path(item)
            if p.is_dir():
                files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
                out.extend((str(f), f) for f in files) if files else out.append((str(p), p))
            else:
                out.append((str(p), p))
        else:
            raise InputError(f"predict: item {i} is a {type(item).__name__}; "
                             f"expected a PIL image, a file or a folder path")
    return out


def _decode(item, name):
    """One entry of `find_images` -> an RGB PIL image (ImageError if it cannot be read)."""
    if is_pil_image(item):
        return to_rgb(item, name=name)
    if Path(item).is_dir():
        from .errors import ImageError
        raise ImageError(f"{item}: folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return load_image(item)


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N, K) float64 probabilities (computed in float64, max subtracted)."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def top_k(probs: np.ndarray, names: list, k: int) -> list:
    """(K,) probabilities -> [(name, probability)] of the k largest, best first (ties: lower index)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(names[j], float(probs[j])) for j in order]


def iter_predictions(inputs, model, topk=5, batch_size=DEFAULT_BATCH, preprocess=None):
    """Yield (name, top-k list or None, error or None) for every image, in input order.

    An image that cannot be decoded yields its error (a MinivitError) and is skipped;
    the rest still run. `model` must be a ready model (see `load_model`).
    """
    if not isinstance(topk, (int, np.integer)) or isinstance(topk, bool) or topk < 1:
        raise InputError(f"predict: topk must be a positive integer, got {topk!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    names = class_names(model)
    prep = preprocess or preprocess_for(model)
    k = min(int(topk), len(names))
    batch = []                                             # (name, (3, crop, crop) float32)

    def run(batch):
        x = np.stack([a for _, a in batch])                # (B, 3, crop, crop)
        probs = softmax(model(x))                          # (B, classes)
        return [(name, top_k(p, names, k), None) for (name, _), p in zip(batch, probs)]

    for name, item in find_images(inputs):
        try:
            a = prep.one(_decode(item, name))
        except MinivitError as e:
            if batch:
                yield from run(batch)
                batch = []
            yield name, None, e
            continue
        batch.append((name, a))
        if len(batch) == batch_size:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)


def predict(images, model=None, weights=None, topk=5, batch_size=DEFAULT_BATCH):
    """Top-k (label, probability) pairs for each image, best first: a list per image.

    images: a path, a folder, a PIL image, or a list of them. model / weights: see
    `load_model` (neither: the shipped digit model). Raises the first image error;
    `iter_predictions` reports bad images one by one instead.
    """
    m = load_model(model, weights)
    results = []
    for name, top, error in iter_predictions(images, m, topk=topk, batch_size=batch_size):
        if error is not None:
            raise error
        results.append(top)
    return results
