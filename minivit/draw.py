"""Pictures a person can check: a class mask over its image, boxes with labels.

Pillow only. Images are uint8 (H, W, 3) RGB arrays or PIL images; masks are
(H, W) class indices at the image's size; boxes are (n, 4) corner form
(x0, y0, x1, y1) in pixels. Every function returns a PIL image; `save_*` write PNGs.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError


def palette(n):
    """(n, 3) uint8 colours, the PASCAL VOC colour map: class k's bits, interleaved over
    R, G, B from the most significant bit down (0 black, 1 dark red, 2 dark green, ...)."""
    k = np.arange(n)
    out = np.zeros((n, 3), np.int64)
    for shift in range(8):
        for c in range(3):
            bit = (k >> (3 * shift + c)) & 1          # bits c, c+3, c+6, ... of the index
            out[:, c] |= bit << (7 - shift)
    return out.astype(np.uint8)


def _rgb(image):
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"draw: image must be a uint8 (H, W, 3) RGB array or a PIL image, "
                         f"got {a.dtype} {a.shape}")
    return a


def _legend(draw, entries, font):
    """Colour swatches with names in the top-left corner, one line each."""
    y = 4
    for name, colour in entries:
        w = int(draw.textlength(name, font=font)) if hasattr(draw, "textlength") else 6 * len(name)
        draw.rectangle([4, y, 4 + 18 + w + 8, y + 16], fill=(255, 255, 255))
        draw.rectangle([6, y + 2, 18, y + 14], fill=tuple(int(c) for c in colour), outline=(0, 0, 0))
        draw.text((22, y + 2), name, fill=(0, 0, 0), font=font)
        y += 18


def overlay_mask(image, mask, names=None, alpha=0.5, ignore=(0,)):
    """The image with each class's pixels tinted in its palette colour (class 0, background,
    left untinted), and a legend of the classes present."""
    img = _rgb(image)
    mask = np.asarray(mask)
    if mask.shape != img.shape[:2]:
        raise InputError(f"draw: mask shape {mask.shape} does not match the image's {img.shape[:2]}")
    present = [int(k) for k in np.unique(mask)]
    colours = palette(max(present) + 1)
    tint = colours[mask].astype(np.float32)                       # (H, W, 3)
    keep = np.isin(mask, list(ignore))[..., None]                 # pixels left as they are
    out = np.where(keep, img, (1 - alpha) * img + alpha * tint)
    pil = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    entries = [((names[k] if names else f"class {k}"), colours[k]) for k in present if k not in ignore]
    _legend(draw, entries, ImageFont.load_default())
    return pil


def draw_boxes(image, boxes, scores=None, labels=None, names=None, width=2):
    """The image with a rectangle per box, coloured by class, captioned "name 0.87"."""
    pil = Image.fromarray(_rgb(image).copy())
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels)
    colours = palette(int(labels.max()) + 1 if labels.size else 1)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        colour = tuple(int(c) for c in colours[labels[i]])
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        caption = names[labels[i]] if names else str(int(labels[i]))
        if scores is not None:
            caption += f" {float(scores[i]):.2f}"
        ty = max(y0 - 12, 0)
        draw.rectangle([x0, ty, x0 + 6 * len(caption) + 4, ty + 12], fill=colour)
        draw.text((x0 + 2, ty), caption, fill=(255, 255, 255), font=font)
    return pil


def save_overlay(path, image, mask, names=None, alpha=0.5):
    """Write `overlay_mask(...)` as a PNG at path; returns the path."""
    overlay_mask(image, mask, names, alpha).save(path, format="PNG")
    return path


def save_boxes(path, image, boxes, scores=None, labels=None, names=None):
    """Write `draw_boxes(...)` as a PNG at path; returns the path."""
    draw_boxes(image, boxes, scores, labels, names).save(path, format="PNG")
    return path
