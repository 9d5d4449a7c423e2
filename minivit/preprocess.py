"""Image -> model input, as the official ImageNet evaluation of each family does it.

Both official pipelines (ml-cvnets v0.1 for v1 and v3-on-v1, ml-cvnets v0.2 for v2
and v3-on-v2) evaluate with the same three steps:
1. Resize so that the shorter side is `resize` (288 for a 256 crop: crop + 32),
   keeping the aspect ratio. The longer side is `int(resize * long / short)`
   (truncated, computed in floating point); if the shorter side already equals
   `resize`, the image is left untouched.
2. Center-crop `crop` x `crop`, top-left corner at ((H - crop) // 2, (W - crop) // 2).
3. uint8 -> float32 divided by 255, HWC -> CHW. No mean/std normalisation.

The families differ in the resize:
- "pil_bicubic" (v0.2, v2 family): Pillow's BICUBIC resize of the 8-bit RGB image
  (torchvision's `F.resize` on a PIL image calls exactly this).
- "cv2_bilinear" (v0.1, v1 family): OpenCV's `cv2.resize(..., INTER_LINEAR)` on the
  uint8 image. Reproduced here in NumPy, bit for bit (checked against OpenCV 4.5.5,
  the version the v3 authors pinned, and 5.0): half-pixel centres, no antialias,
  11-bit fixed-point weights, and OpenCV's own vertical rounding (below).

Channel order: the output is always RGB. (cvnets v0.1 reads images with
`cv2.imread`, i.e. BGR; minivit flips that into the converted weights instead.)

Output: float32, C-contiguous, shape (N, 3, crop, crop), values in [0, 1].
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .images import MAX_PIXELS, is_pil_image, load_image, to_rgb

if TYPE_CHECKING:
    from PIL import Image

INTERPOLATIONS = ("pil_bicubic", "cv2_bilinear")


def resized_size(width: int, height: int, size: int) -> tuple:
    """(width, height) after resizing the shorter side to `size`, exactly as cvnets computes it."""
    if (width <= height and width == size) or (height <= width and height == size):
        return width, height                       # cvnets returns the image unchanged
    if width < height:
        return size, int(size * height / width)
    return int(size * width / height), size


# ---- OpenCV INTER_LINEAR for uint8, in NumPy -----------------------------------------------
# OpenCV computes, per axis, a source coordinate f = (d + 0.5) * scale - 0.5 in double,
# rounds it to float32, splits it into an integer tap i = floor(f) and a fraction, and
# stores the two weights as int16 fixed point: round((1 - frac) * 2048), round(frac * 2048).
# Horizontal pass (exact in int32):  H = S[i0] * w0 + S[i1] * w1           (up to 255 * 2048)
# Vertical pass (OpenCV's uint8 kernel, SIMD and scalar alike):
#     out = ((((H0 >> 4) * v0) >> 16) + (((H1 >> 4) * v1) >> 16) + 2) >> 2
# which is round(H / 2048^2) computed with two intermediate floors: it differs by one
# grey level from exact rounding on a few percent of pixels, which is why we copy it.
_COEF_ONE = 2048           # OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)


def _linear_taps(src: int, dst: int, clamp_fraction: bool):
    """OpenCV's two taps per output index along one axis: (i0, i1, w0, w1), all int32 (dst,)."""
    scale = 1.0 / (dst / src)                      # OpenCV: 1 / inv_scale, inv_scale = dst / src
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f)
    frac = (f - i0).astype(np.float32)
    i0 = i0.astype(np.int64)
    if clamp_fraction:
        # Horizontal axis only: outside the image, OpenCV takes the edge pixel with weight 1.
        frac[i0 < 0] = 0
        i0[i0 < 0] = 0
        frac[i0 >= src - 1] = 0
        i0[i0 >= src - 1] = src - 1
    # Vertical axis: the fraction is kept, but the rows are clamped into the image.
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    w0 = np.rint((np.float32(1) - frac) * np.float32(_COEF_ONE)).astype(np.int32)
    w1 = np.rint(frac * np.float32(_COEF_ONE)).astype(np.int32)
    return i0, i1, w0, w1


def cv2_bilinear_resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """`cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)` for uint8 (H, W, C) arrays."""
    if a.dtype != np.uint8 or a.ndim != 3:
        raise InputError(f"cv2_bilinear_resize: expected a uint8 (H, W, C) array, got {a.dtype} {a.shape}")
    sh, sw, cn = a.shape
    if (sw, sh) == (width, height):
        return a.copy()
    if sw == 2 * width and sh == 2 * height:
        # OpenCV switches an exact 2x reduction to INTER_AREA: the rounded mean of each 2x2 block.
        s = a.astype(np.int32)
        total = s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2]
        return ((total + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _linear_taps(sw, width, clamp_fraction=True)
    y0, y1, b0, b1 = _linear_taps(sh, height, clamp_fraction=False)

    def horizontal(rows):                          # (height, sw, C) uint8 -> (height, width, C) int32
        r = rows.astype(np.int32)
        return r[:, x0, :] * a0[None, :, None] + r[:, x1, :] * a1[None, :, None]

    h0, h1 = horizontal(a[y0]), horizontal(a[y1])  # the two source rows of each output row
    v0, v1 = b0[:, None, None], b1[:, None, None]
    out = ((((h0 >> 4) * v0) >> 16) + (((h1 >> 4) * v1) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


# ---- the pipeline --------------------------------------------------------------------------

def _as_rgb_images(images) -> list:
    """One image or path, or a list/tuple of them -> list of RGB PIL images."""
    if is_pil_image(images) or isinstance(images, (str, os.PathLike)):
        images = [images]
    if not isinstance(images, (list, tuple)):
        raise InputError(f"Preprocess: expected a PIL image, a path, or a list of them; "
                         f"got {type(images).__name__}")
    if not images:
        raise InputError("Preprocess: no images given (an empty list)")
    out = []
    for i, im in enumerate(images):
        if isinstance(im, (str, os.PathLike)):
            out.append(load_image(im))
        elif is_pil_image(im):
            out.append(to_rgb(im, name=f"image {i}"))
        else:
            raise InputError(f"Preprocess: image {i} is a {type(im).__name__}; "
                             f"expected a PIL image or a file path")
    return out


@dataclass(frozen=True)
class Preprocess:
    """Shorter side to `resize`, center crop `crop`, to float32 NCHW RGB in [0, 1].

    interpolation: "pil_bicubic" (v2 family) or "cv2_bilinear" (v1 family).
    Call with a PIL image, a path, or a list of them: returns (N, 3, crop, crop) float32.
    """
    resize: int
    crop: int
    interpolation: str

    def __post_init__(self):
        for name in ("resize", "crop"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InputError(f"Preprocess: {name} must be a positive int, got {v!r}")
        if self.crop > self.resize:
            raise InputError(f"Preprocess: crop ({self.crop}) must not exceed resize ({self.resize})")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"Preprocess: interpolation must be one of {INTERPOLATIONS}, "
                             f"got {self.interpolation!r}")

    def one(self, im: Image.Image) -> np.ndarray:
        """One PIL image -> (3, crop, crop) float32."""
        if im.mode != "RGB":
            im = to_rgb(im)
        w, h = resized_size(im.width, im.height, self.resize)
        if w * h > MAX_PIXELS:
            raise InputError(f"Preprocess: a {im.width}x{im.height} image resized to shorter side "
                             f"{self.resize} would be {w}x{h} pixels (limit {MAX_PIXELS}): "
                             f"aspect ratio too extreme")
        if (w, h) == im.size:
            a = np.asarray(im)
        elif self.interpolation == "pil_bicubic":
            from PIL import Image
            a = np.asarray(im.resize((w, h), Image.Resampling.BICUBIC))
        else:
            a = cv2_bilinear_resize(np.asarray(im), w, h)
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        a = a[top:top + self.crop, left:left + self.crop]            # (crop, crop, 3) uint8
        # float32 / 255 as the official ToTensor does (correctly rounded, same as torch.div).
        return np.ascontiguousarray(a.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)  # (3, crop, crop)

    def __call__(self, images) -> np.ndarray:
        """PIL image(s) or path(s) -> (N, 3, crop, crop) float32."""
        return np.stack([self.one(im) for im in _as_rgb_images(images)])    # (N, 3, crop, crop)


# The official ImageNet evaluation settings at 256x256 (crop + 32 for the shorter side).
V1_EVAL = Preprocess(resize=288, crop=256, interpolation="cv2_bilinear")   # v1, v3 (v1-based)
V2_EVAL = Preprocess(resize=288, crop=256, interpolation="pil_bicubic")    # v2, v3 (v2-based)
