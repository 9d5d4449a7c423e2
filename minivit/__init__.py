"""minivit: a small NumPy + Numba inference engine for the MobileViT family.

    import minivit
    model = minivit.create_model("mobilevit_xxs", weights="mobilevit_xxs.safetensors")
    logits = model(x)            # x: float32 (N, 3, H, W), RGB in [0, 1]
    stages = model.trace(x)      # named intermediate arrays
    minivit.predict("digit_7.png")   # top-5 (label, probability) per image; the shipped digit model
"""
from .convert import convert_state_dict
from .errors import ImageError, InputError, MinivitError, WeightsError
from .models.registry import create_model, list_models
from .predict import predict
from .warmup import warmup

__version__ = "0.1.0"

__all__ = ["list_models", "create_model", "predict", "warmup", "convert_state_dict", "save_weights", "load_weights",
           "segment", "detect", "MinivitError", "WeightsError", "ImageError", "InputError", "__version__"]


def save_weights(path, weights, metadata=None):
    """Write minivit weights to a .safetensors file with metadata (model, source, channels)."""
    from .weights import save_weights as _save
    return _save(path, weights, metadata or {})


def load_weights(path):
    """Read a minivit .safetensors file: (weights dict, metadata dict)."""
    from .weights import load_weights as _load
    return _load(path)


def segment(image, model="deeplabv3_mobilevit_xxs", weights=None, size=None):
    """Per-pixel classes of an image: (mask (H, W), logits (K, h, w)). See minivit.tasks."""
    from .tasks import segment as _segment
    return _segment(image, model, weights, size)


def detect(image, model="ssd_mobilevit_xxs", weights=None, score_threshold=None, iou_threshold=None):
    """Objects in an image: (boxes (n, 4) in pixels, scores (n,), labels (n,)). See minivit.tasks."""
    from .tasks import detect as _detect
    return _detect(image, model, weights, score_threshold, iou_threshold)
