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

__version__ = "0.1.0"

__all__ = ["list_models", "create_model", "predict", "convert_state_dict", "save_weights", "load_weights",
           "MinivitError", "WeightsError", "ImageError", "InputError", "__version__"]


def save_weights(path, weights, metadata=None):
    """Write minivit weights to a .safetensors file with metadata (model, source, channels)."""
    from .weights import save_weights as _save
    return _save(path, weights, metadata or {})


def load_weights(path):
    """Read a minivit .safetensors file: (weights dict, metadata dict)."""
    from .weights import load_weights as _load
    return _load(path)
