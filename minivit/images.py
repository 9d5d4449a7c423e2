"""Reading image files into 8-bit RGB Pillow images.

This module decodes (with Pillow) and normalises colour; it does not resize,
crop or scale to floats: that is `minivit.preprocess`.

What every image becomes, whatever its file holds:
- EXIF orientation is applied (a phone photo taken upright comes out upright).
- Animated GIF / PNG / WebP, multi-page TIFF: the first frame only.
- Transparency (RGBA, LA, PA, palette or colour-key transparency) is composited
  onto a white background, the way a browser shows the image on a white page.
  Dropping alpha instead would expose whatever colour the transparent pixels
  happen to store (often black), which a classifier would then see.
- 16-bit samples are scaled, not clipped: v16 -> round(v16 * 255 / 65535).
  Pillow's own 16-bit RGB(A) PNG decoder keeps the high byte (v16 >> 8), which is
  within 1 of that; grayscale 16-bit ("I;16*") is scaled here.
- Mode "I" (32-bit integer, how some TIFF and older PNG decoders deliver 16-bit
  grayscale) is read as 16-bit data: clipped to [0, 65535], then scaled as above.
- Mode "F" (32-bit float) is read on Pillow's own 0..255 scale (as `convert("L")`
  does): rounded and clipped; NaN becomes 0.
- CMYK, YCbCr, 1-bit and palette images go through Pillow's `convert("RGB")`
  (no ICC colour management).

Decompression bombs: an image whose header declares more than `MAX_PIXELS`
pixels is refused before any pixel is decoded. Every failure is an `ImageError`
naming the file and the cause.

Pillow is imported at the first image, not with minivit: a program that feeds
arrays to a model does not pay for it (about 15 ms of `import minivit`).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ImageError, InputError

if TYPE_CHECKING:
    from PIL import Image

# Largest width * height we decode: Pillow's default warning threshold
# (1024 * 1024 * 1024 // 4 // 3 pixels, about 268 MB as RGB), as our own constant.
MAX_PIXELS = 89_478_485

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def is_pil_image(x) -> bool:
    """True if `x` is a Pillow image. Does not import Pillow: if Pillow was never loaded,
    nothing can be one of its images."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(x, module.Image)


def _gray_to_uint8(im: Image.Image) -> np.ndarray:
    """Gray modes with more than 8 bits ("I;16*", "I", "F") -> (H, W) uint8."""
    a = np.asarray(im)
    if im.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0)
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    a = np.clip(a.astype(np.int64), 0, 65535)
    # round(v * 255 / 65535) == round(v / 257); no ties since 257 is odd.
    return ((a + 128) // 257).astype(np.uint8)


def _on_white(im: Image.Image) -> Image.Image:
    """Composite an image with transparency onto an opaque white background."""
    from PIL import Image
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(im: Image.Image, name: str = "<image>") -> Image.Image:
    """Return `im` as a new 8-bit RGB image, by the rules in the module header.

    `name` is used in error messages (a file name, or "<image>").
    """
    if not is_pil_image(im):
        raise InputError(f"{name}: expected a PIL.Image.Image, got {type(im).__name__}")
    from PIL import Image
    mode = im.mode
    try:
        if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
            return Image.fromarray(_gray_to_uint8(im), mode="L").convert("RGB")
        if mode in _ALPHA_MODES or "transparency" in im.info:
            return _on_white(im)
        if mode == "RGB":
            return im.copy()
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageError(f"{name}: cannot convert Pillow mode {mode!r} to RGB ({e})") from None


def load_image(path) -> Image.Image:
    """Decode the image file at `path` into an 8-bit RGB `PIL.Image.Image`."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_image: expected a file path (str or Path), got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image file")
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            # We refuse large images ourselves (below), at Pillow's warning threshold.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
    except Image.DecompressionBombError as e:
        raise ImageError(f"{p}: refused as a possible decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file Pillow can read") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot open ({e.strerror or e})") from None

    with im:
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ImageError(f"{p}: {w}x{h} = {w * h} pixels is more than the limit of "
                             f"{MAX_PIXELS} (minivit.images.MAX_PIXELS); refused as a "
                             f"possible decompression bomb")
        fmt = im.format or "image"
        try:
            im.load()  # the first frame; raises on truncated or corrupt data
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error ...
            raise ImageError(f"{p}: cannot decode {fmt} data ({type(e).__name__}: {e})") from None
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception:
            # Unreadable EXIF must not make a decodable image unreadable: keep it as stored.
            upright = im.copy()
        return to_rgb(upright, name=str(p))


def load_images(paths) -> list:
    """Decode several image files (one path or an iterable of paths) into RGB images."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [load_image(p) for p in paths]
