"""From a checkpoint to a minivit weights file: the job behind `minivit convert`.

    read      a .safetensors file (no torch needed), a .pt/.pth/.bin through
              torch.load(weights_only=True) (`minivit.weights.read_checkpoint`), or a
              Hugging Face Hub repository (timm/mobilevit_*, apple/mobilevit-*) through
              huggingface_hub, which is optional and imported only here
    tell      the naming and the variant from the keys and shapes, when not given
              (`minivit.convert.detect_source`, `detect_model`)
    rename    strictly, folding a BGR-trained stem into RGB (`convert_state_dict`)
    save      float32 tensors plus metadata: model, source, channels ("rgb": what the
              converted weights take), checkpoint, and optional labels and preprocessing

Foreign key names are not here: they live in `minivit.convert`.
"""
import json
import os
import re
import socket
from pathlib import Path

from .convert import SOURCES, convert_state_dict, detect_model, detect_source
from .errors import InputError, WeightsError
from .weights import CHANNEL_ORDERS, read_checkpoint, save_weights

HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")     # owner/name
HUB_FILES = ("model.safetensors", "pytorch_model.bin")     # tried in this order


def is_hub_name(checkpoint) -> bool:
    """True for an "owner/name" string that is not an existing file or folder."""
    return isinstance(checkpoint, str) and bool(HUB_NAME.match(checkpoint)) and not Path(checkpoint).exists()


def _hub_reachable(endpoint: str, timeout=3.0) -> bool:
    """One quick TCP connection to the Hub (instead of huggingface_hub's minute of retries)."""
    host = re.sub(r"^\w+://", "", endpoint).split("/")[0]
    host, _, port = host.partition(":")
    try:
        socket.create_connection((host, int(port or 443)), timeout=timeout).close()
        return True
    except OSError:
        return False


def download(repo: str) -> Path:
    """The weights file of Hub repository `repo` (from the local cache if it is there)."""
    try:
        import huggingface_hub
        from huggingface_hub import constants
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
    except ImportError:
        raise WeightsError(f"{repo}: fetching from the Hugging Face Hub needs huggingface_hub: "
                           f"pip install huggingface_hub (or download the file and pass its path)") from None
    for filename in HUB_FILES:                     # already downloaded: no network needed
        try:
            return Path(huggingface_hub.hf_hub_download(repo, filename, local_files_only=True))
        except (EntryNotFoundError, OSError, ValueError):
            pass
    if constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT):
        raise WeightsError(f"{repo}: cannot reach the Hugging Face Hub (offline) and it is not in the local "
                           f"cache; download {' or '.join(HUB_FILES)} elsewhere and pass its path")
    for filename in HUB_FILES:
        try:
            return Path(huggingface_hub.hf_hub_download(repo, filename))
        except RepositoryNotFoundError:
            raise WeightsError(f"{repo}: no such repository on the Hugging Face Hub (or it is private)") from None
        except EntryNotFoundError:
            continue
        except (HfHubHTTPError, OSError) as e:
            raise WeightsError(f"{repo}: download failed ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    raise WeightsError(f"{repo}: the repository holds none of {', '.join(HUB_FILES)}")


def _labels(labels, num_classes, where):
    """Class names: a list of strings, or a text file with one name per line."""
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        p = Path(labels)
        try:
            labels = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as e:
            raise InputError(f"{p}: cannot read the class names ({e.strerror or e})") from None
    if not isinstance(labels, (list, tuple)) or not all(isinstance(s, str) for s in labels):
        raise InputError(f"{where}: labels must be a list of strings or a file of names, one per line")
    if len(labels) != num_classes:
        raise InputError(f"{where}: {len(labels)} class names for a classifier of {num_classes} classes")
    return list(labels)


def _preprocessing(p, where):
    """A Preprocessing / Preprocess object or a dict -> the metadata JSON string (or None)."""
    if p is None:
        return None
    if not isinstance(p, dict):
        p = {k: getattr(p, k, None) for k in ("resize", "crop", "interpolation")}
    from .weights import metadata_preprocessing
    text = json.dumps(p, sort_keys=True)
    metadata_preprocessing(where, {"preprocessing": text}, InputError)      # checks it
    return text


def convert_checkpoint(checkpoint, model=None, source="auto", channels=None, out=None,
                       labels=None, preprocessing=None, metadata=None) -> dict:
    """Convert a checkpoint file (or Hub repository) into a minivit .safetensors file.

    model: the preset name (None: told from the shapes). source: "auto", "cvnets",
    "timm" or "hf". channels: "rgb" or "bgr", the order the checkpoint was trained
    on (None: what that source's released checkpoints use). out: the file to write
    (default "<model>.safetensors" in the current folder). labels: class names (a list
    or a file, one per line); preprocessing: a dict or Preprocessing that replaces the
    config's for these weights; metadata: more str -> str entries to store.
    Returns a summary dict (out, model, source, channels, num_classes, tensors).
    """
    if source not in ("auto",) + SOURCES:
        raise InputError(f"source must be 'auto' or one of {', '.join(SOURCES)}, got {source!r}")
    if channels is not None and channels not in CHANNEL_ORDERS:
        raise InputError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    hub = is_hub_name(checkpoint)
    path = download(checkpoint) if hub else Path(checkpoint)
    where = checkpoint if hub else str(path)
    state = read_checkpoint(path)
    if source == "auto":
        source = detect_source(state, where)

    fits = detect_model(state, source)
    if model is None:
        if len(fits) != 1:
            found = f"it fits {' and '.join(fits)}" if fits else "no registered variant fits its shapes"
            raise WeightsError(f"{where}: cannot tell the variant ({found}); give the model name")
        model = fits[0]
    elif fits and model not in fits:
        raise WeightsError(f"{where}: a checkpoint of {' or '.join(fits)} (its keys and shapes fit that), "
                           f"not {model}; use model {fits[0]}")

    from .convert import DEFAULT_CHANNELS
    from .models.registry import get_config
    block = getattr(get_config(model), "block", None)
    trained_on = channels or DEFAULT_CHANNELS.get((source, block), "rgb")
    weights = convert_state_dict(state, model, source, checkpoint_channels=trained_on)

    num_classes = int(weights["classifier.weight"].shape[0]) if "classifier.weight" in weights else None
    out = Path(out) if out is not None else Path(f"{model}.safetensors")
    if not hub and out.exists() and out.resolve() == path.resolve():
        raise InputError(f"{out}: the output would overwrite the checkpoint itself; choose another -o")
    meta = {"model": model, "source": source, "channels": "rgb",
            "checkpoint": checkpoint if hub else path.name, "checkpoint_channels": trained_on}
    from . import __version__
    meta["minivit_version"] = __version__
    names = _labels(labels, num_classes, where)
    if names is not None:
        meta["labels"] = json.dumps(names)
    prep = _preprocessing(preprocessing, where)
    if prep is not None:
        meta["preprocessing"] = prep
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    save_weights(out, weights, meta)
    return {"out": out, "model": model, "source": source, "channels": trained_on,
            "num_classes": num_classes, "tensors": len(weights)}
