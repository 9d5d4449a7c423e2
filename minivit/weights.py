"""Reading and writing weight files, safely.

- `save_weights` / `load_weights`: minivit's own format, a .safetensors file of
  float32 arrays in minivit's naming plus string metadata:
    model           the preset name, e.g. "mobilevit_xxs"
    source          where the weights came from (a checkpoint name, "random", ...)
    channels        "rgb" or "bgr": the channel order the weights expect. minivit
                    models always take RGB, so converted weights say "rgb".
    labels          optional: a JSON list of class names, in logit order
    preprocessing   optional: a JSON object {"resize": int, "crop": int, "interpolation":
                    "pil_bicubic" | "cv2_bilinear"} that replaces the model config's
                    preprocessing for these weights (e.g. a model trained at 64x64)
    minivit_version optional: the version that wrote the file
- `read_checkpoint`: a foreign checkpoint (.safetensors, or a PyTorch pickle read
  only through `torch.load(weights_only=True)`), as a flat dict of NumPy arrays in
  its own naming. Renaming keys is `minivit.convert`'s job, not this module's.

Every safetensors header is checked here before the safetensors library sees the
file (sizes, JSON, offsets, shapes, dtypes), so a damaged or hostile file gives a
`WeightsError` naming the file and the tensor, never a crash or a huge allocation.
Arrays come back as float32 (float16, bfloat16 and float64 are converted), except
integer `*.num_batches_tracked` buffers (int64). NaN or inf anywhere is refused.
"""
import json
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError, WeightsError

MAX_HEADER_BYTES = 100_000_000      # the safetensors library's own limit on the JSON header
REQUIRED_METADATA = ("model", "source", "channels")
CHANNEL_ORDERS = ("rgb", "bgr")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")

# safetensors dtype -> bytes per element. Floats are converted to float32 on reading.
_FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
_INT_DTYPES = {"I8": 1, "U8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8, "U64": 8}
_OTHER_DTYPES = {"BOOL", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}


def _is_counter(key: str) -> bool:
    """BatchNorm's step counter: the one tensor allowed to be an integer."""
    return key.endswith("num_batches_tracked")


def as_weight(where: str, key: str, a: np.ndarray) -> np.ndarray:
    """Check one array and return it as float32 (or int64 for a counter); copies."""
    if _is_counter(key) and a.dtype.kind in "iu":
        return a.astype(np.int64, order="C")
    if a.dtype.kind != "f":
        raise WeightsError(f"{where}: tensor {key!r} has dtype {a.dtype}; expected floating point "
                           f"(integers are allowed only for *.num_batches_tracked)")
    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(np.float32, order="C")                       # float64 beyond float32 range -> inf
    bad = out.size - int(np.count_nonzero(np.isfinite(out)))
    if bad:
        note = " after conversion to float32" if a.dtype.itemsize > 4 else ""
        raise WeightsError(f"{where}: tensor {key!r} holds {bad} NaN or infinite value(s){note}")
    return out


# ---- the safetensors header, checked by hand ------------------------------------------------

def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _is_count(v) -> bool:
    """A non-negative JSON integer (JSON true/false are not counts)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _read_header(p: Path):
    """Validate the header of safetensors file `p`.

    Returns (entries, metadata, data_start): entries maps tensor name to
    (dtype, shape, begin, end), offsets relative to the data region at byte data_start.
    """
    if not p.exists():
        raise WeightsError(f"{p}: no such file")
    if p.is_dir():
        raise WeightsError(f"{p}: is a directory, not a weights file")
    size = p.stat().st_size
    if size < 8:
        raise WeightsError(f"{p}: {size} bytes is too short for a safetensors file (at least 8)")
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER_BYTES:
            raise WeightsError(f"{p}: header length {n} bytes is absurd (limit {MAX_HEADER_BYTES}); "
                               f"not a safetensors file")
        if 8 + n > size:
            raise WeightsError(f"{p}: header length {n} bytes runs past the end of the "
                               f"{size}-byte file (truncated, or not a safetensors file)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WeightsError(f"{p}: header is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{p}: header is a JSON {type(header).__name__}, expected an object")

    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"{p}: __metadata__ must be an object of strings")

    data_len = size - 8 - n
    entries = {}
    for key, info in header.items():
        where = f"{p}: tensor {key!r}"
        if not isinstance(info, dict):
            raise WeightsError(f"{where}: header entry is a {type(info).__name__}, expected an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise WeightsError(f"{where}: dtype {dtype!r} is not a string")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise WeightsError(f"{where}: shape {shape!r} is not a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise WeightsError(f"{where}: data_offsets {offsets!r} is not a pair [begin, end] "
                               f"with 0 <= begin <= end")
        begin, end = offsets
        if end > data_len:
            raise WeightsError(f"{where}: data_offsets [{begin}, {end}] run past the end of the "
                               f"{data_len}-byte data region (truncated file?)")
        if dtype in _FLOAT_DTYPES:
            itemsize = _FLOAT_DTYPES[dtype]
        elif dtype in _INT_DTYPES and _is_counter(key):
            itemsize = _INT_DTYPES[dtype]
        elif dtype in _INT_DTYPES or dtype in _OTHER_DTYPES:
            raise WeightsError(f"{where}: dtype {dtype} where floating point belongs "
                               f"(integers are allowed only for *.num_batches_tracked)")
        else:
            raise WeightsError(f"{where}: unknown dtype {dtype!r}")
        nbytes = math.prod(shape) * itemsize
        if nbytes != end - begin:
            raise WeightsError(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes, "
                               f"but data_offsets [{begin}, {end}] hold {end - begin}")
        entries[key] = (dtype, tuple(shape), begin, end)

    # The tensors must tile the data region exactly: no overlap, no gap, nothing left over.
    expected, previous = 0, None
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin < expected:
            raise WeightsError(f"{p}: tensor {key!r} at bytes [{begin}, {end}] overlaps tensor {previous!r}")
        if begin > expected:
            raise WeightsError(f"{p}: tensor {key!r} starts at byte {begin}, leaving a gap after byte "
                               f"{expected}; offsets must be contiguous")
        expected, previous = end, key
    if expected != data_len:
        raise WeightsError(f"{p}: the tensors cover {expected} bytes but the data region holds "
                           f"{data_len}; offsets must be contiguous and cover the whole file")
    return entries, metadata, 8 + n


def _check_metadata(where: str, metadata: dict, err):
    """Values of the keys minivit defines must make sense; `err` is the error class to raise."""
    if "channels" in metadata and metadata["channels"] not in CHANNEL_ORDERS:
        raise err(f"{where}: metadata 'channels' is {metadata['channels']!r}, expected 'rgb' or 'bgr'")
    if "labels" in metadata:
        try:
            labels = json.loads(metadata["labels"])
        except ValueError:
            labels = None
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise err(f"{where}: metadata 'labels' must be a JSON list of strings")
    if "preprocessing" in metadata:
        metadata_preprocessing(where, metadata, err)


PREPROCESSING_KEYS = ("resize", "crop", "interpolation")


def metadata_preprocessing(where: str, metadata: dict, err=WeightsError):
    """The "preprocessing" metadata as a checked dict (keys PREPROCESSING_KEYS), or None if absent."""
    if "preprocessing" not in metadata:
        return None
    from .preprocess import INTERPOLATIONS
    try:
        p = json.loads(metadata["preprocessing"])
    except ValueError:
        p = None
    expected = (f'a JSON object {{"resize": int, "crop": int, "interpolation": '
                f'{" or ".join(map(repr, INTERPOLATIONS))}}} with crop <= resize')
    if not isinstance(p, dict) or sorted(p) != sorted(PREPROCESSING_KEYS):
        raise err(f"{where}: metadata 'preprocessing' must be {expected}; got {metadata['preprocessing']!r}")
    sizes_ok = all(isinstance(p[k], int) and not isinstance(p[k], bool) and p[k] >= 1 for k in ("resize", "crop"))
    if not sizes_ok or p["crop"] > p["resize"] or p["interpolation"] not in INTERPOLATIONS:
        raise err(f"{where}: metadata 'preprocessing' must be {expected}; got {metadata['preprocessing']!r}")
    return {k: p[k] for k in PREPROCESSING_KEYS}


# ---- minivit's format ----------------------------------------------------------------------

def load_weights(path):
    """Read a .safetensors file: returns (weights, metadata), both dicts.

    weights: name -> float32 array (int64 for *.num_batches_tracked), in header order.
    """
    from safetensors import safe_open

    p = Path(path)
    entries, metadata, data_start = _read_header(p)
    _check_metadata(str(p), metadata, WeightsError)
    weights = {}
    try:
        with safe_open(str(p), framework="np") as f:
            for key, (dtype, shape, begin, end) in entries.items():
                if dtype == "BF16":
                    # NumPy has no bfloat16: it is the upper half of a float32's bits.
                    u16 = np.fromfile(p, dtype="<u2", count=(end - begin) // 2, offset=data_start + begin)
                    a = (u16.astype(np.uint32) << 16).view(np.float32).reshape(shape)
                else:
                    a = f.get_tensor(key)
                weights[key] = as_weight(str(p), key, a)
    except WeightsError:
        raise
    except Exception as e:  # a last line of defence: our header checks should catch everything first
        raise WeightsError(f"{p}: the safetensors library refused the file ({type(e).__name__}: {e})") from None
    return weights, dict(metadata)


def read_metadata(path) -> dict:
    """The checked metadata of a .safetensors file, without reading its tensors."""
    p = Path(path)
    _, metadata, _ = _read_header(p)
    _check_metadata(str(p), metadata, WeightsError)
    return dict(metadata)


def save_weights(path, weights: dict, metadata: dict):
    """Write `weights` (name -> float array) and `metadata` (str -> str) to a .safetensors file.

    metadata must hold "model", "source" and "channels"; floats are stored as float32.
    The file is written to a temporary name first and renamed, so it is never half-written.
    """
    from safetensors.numpy import save_file

    p = Path(path)
    if not isinstance(weights, dict) or not weights:
        raise InputError(f"{p}: weights must be a non-empty dict of name -> array")
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise InputError(f"{p}: metadata must be a dict of str -> str")
    missing = [k for k in REQUIRED_METADATA if not metadata.get(k)]
    if missing:
        raise InputError(f"{p}: metadata lacks {', '.join(missing)} (required: {', '.join(REQUIRED_METADATA)})")
    _check_metadata(str(p), metadata, InputError)
    if not p.parent.is_dir():
        raise InputError(f"{p}: the folder {p.parent} does not exist")
    tensors = {}
    for key, a in weights.items():
        if not isinstance(key, str) or not key or key == "__metadata__":
            raise InputError(f"{p}: weight name {key!r} is not a usable name")
        if not isinstance(a, np.ndarray):
            raise InputError(f"{p}: weight {key!r} is a {type(a).__name__}, expected a NumPy array")
        try:
            tensors[key] = as_weight(str(p), key, a)           # float32 / int64, C order
        except WeightsError as e:
            raise InputError(str(e)) from None
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=dict(metadata))
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---- foreign checkpoints -------------------------------------------------------------------

_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model_state", "model")


def _unwrap(where: str, obj, torch):
    """Find the dict of tensors inside a checkpoint ({"state_dict": ...} and the like)."""
    for _ in range(4):
        if not isinstance(obj, dict):
            break
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            bad = next((k for k in obj if not isinstance(k, str)), None)
            if bad is not None:
                raise WeightsError(f"{where}: key {bad!r} is a {type(bad).__name__}, expected a string")
            return obj
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            bad = next((k for k, v in obj.items() if not torch.is_tensor(v)), None)
            if bad is None:
                raise WeightsError(f"{where}: the checkpoint holds no tensors")
            raise WeightsError(f"{where}: entry {bad!r} is a {type(obj[bad]).__name__}, not a tensor, "
                               f"and no {'/'.join(_CONTAINER_KEYS)} entry holds the weights")
        obj = inner
    raise WeightsError(f"{where}: expected a dict of tensors (a state_dict), found a {type(obj).__name__}")


def _read_torch(p: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise WeightsError(f"{p}: reading a PyTorch checkpoint needs PyTorch: pip install torch "
                           f"(minivit never unpickles a file itself)") from None
    import pickle
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\n\n|$)", str(e), re.S)
        detail = " ".join((detail.group(1) if detail else str(e).splitlines()[0]).split())
        raise WeightsError(f"{p}: refused by torch.load(weights_only=True): not a pickle of plain "
                           f"tensors, and unpickling it in full could run code ({detail})") from None
    except Exception as e:
        raise WeightsError(f"{p}: cannot read as a PyTorch checkpoint ({type(e).__name__}: {e})") from None
    state = _unwrap(str(p), obj, torch)
    if all(k.startswith("module.") for k in state):          # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    out = {}
    for key, t in state.items():
        if t.layout != torch.strided or t.is_quantized:
            raise WeightsError(f"{p}: tensor {key!r} is sparse or quantized; expected a dense tensor")
        t = t.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()                                     # exact; NumPy has no bfloat16
        try:
            a = t.contiguous().numpy()
        except (TypeError, RuntimeError):
            raise WeightsError(f"{p}: tensor {key!r} has dtype {t.dtype}, which has no NumPy "
                               f"equivalent; expected floating point") from None
        out[key] = as_weight(str(p), key, a)
    return out


def read_checkpoint(path) -> dict:
    """Read a foreign checkpoint into a flat dict of NumPy arrays (its own key names).

    .safetensors: read without PyTorch, with the same checks as `load_weights`.
    .pt/.pth/.bin/.ckpt: only through torch.load(weights_only=True); needs PyTorch.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: no such file")
    if p.is_dir():
        raise WeightsError(f"{p}: is a directory, not a checkpoint file")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return load_weights(p)[0]
    if suffix in PICKLE_SUFFIXES:
        return _read_torch(p)
    raise WeightsError(f"{p}: unknown checkpoint type {suffix or '(no suffix)'!r}; "
                       f"expected .safetensors or one of {', '.join(PICKLE_SUFFIXES)}")
