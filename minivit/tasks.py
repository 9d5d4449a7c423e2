"""Segmentation and detection on images: arrays out, and the two commands that draw them.

    import minivit
    mask, logits = minivit.segment("photo.jpg", model="deeplabv3_mobilevit_xxs", weights="w.safetensors")
    boxes, scores, labels = minivit.detect("photo.jpg", model="ssd_mobilevit_xxs", weights="w.safetensors")

What the image goes through (the official evaluation, as far as a single image goes):
- segment: shorter side resized to the model's training crop (512), both sides then
  rounded down to multiples of the output stride; the logits at that size; the class map
  = their argmax, brought back to the image size by nearest-neighbour (as the official
  evaluation does with its logits).
- detect: resized to 320 x 320 (aspect ratio not kept, as the official COCO evaluation);
  softmax scores, boxes decoded against the anchors, per-class NMS (with the post-processing
  of the family's official code); boxes scaled to the image's pixels and clipped to it.
Resizing: OpenCV-style bilinear for the v1 family (cvnets v0.1), Pillow bicubic for the
v2 family (cvnets v0.2). A float array (3, H, W) or (1, 3, H, W) in [0, 1] is taken as
a ready model input and run as given, with outputs at its size.
weights: a minivit .safetensors path, a dict in minivit naming, or None for seeded
untrained weights (the pictures then show mechanics, not meaning).
"""
import os
from collections import namedtuple

import numpy as np
from PIL import Image

from .boxes import batched_nms, center_to_corner, decode
from .dense_labels import dense_class_names
from .errors import InputError
from .images import load_image, to_rgb
from .preprocess import cv2_bilinear_resize

Segmentation = namedtuple("Segmentation", "mask logits")
Detection = namedtuple("Detection", "boxes scores labels")


def _model(model, weights, task):
    from .models.registry import create_model, get_config
    if isinstance(model, str):
        config = get_config(model)
        if getattr(config, "task", "classification") != task:
            raise InputError(f"model {model!r} is not a {task} model; see minivit.list_models(task={task!r})")
        return create_model(model, weights=weights)
    if getattr(getattr(model, "config", None), "task", None) != task:
        what = f"model {model.name!r}" if hasattr(model, "name") else f"a {type(model).__name__}"
        raise InputError(f"{what} is not a {task} model; see minivit.list_models(task={task!r})")
    if weights is not None:
        raise InputError("pass weights with a model name, not with a model object (it holds its weights)")
    return model


def _image(image):
    """-> ("image", uint8 (H, W, 3)) or ("input", float32 (1, 3, H, W))."""
    if isinstance(image, (str, os.PathLike)):
        return "image", np.asarray(load_image(image))
    if isinstance(image, Image.Image):
        return "image", np.asarray(to_rgb(image))
    a = np.asarray(image)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
        return "image", a
    if np.issubdtype(a.dtype, np.floating) and a.ndim in (3, 4) and a.shape[-3] == 3 and (a.ndim == 3 or
                                                                                         a.shape[0] == 1):
        return "input", np.ascontiguousarray(a.reshape(1, *a.shape[-3:]), dtype=np.float32)
    raise InputError(f"image must be a path, a PIL image, a uint8 (H, W, 3) RGB array or a float "
                     f"(3, H, W) / (1, 3, H, W) model input; got a {a.dtype} array of shape {a.shape}")


def _resize(img, width, height, family_v1):
    """uint8 (H, W, 3) -> (height, width, 3), the family's official resize."""
    if img.shape[:2] == (height, width):
        return img
    if family_v1:
        return cv2_bilinear_resize(img, width, height)
    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC))


def _to_input(img):
    # (H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]
    return (np.ascontiguousarray(img.transpose(2, 0, 1))[None].astype(np.float32) / np.float32(255))


def _is_v1_family(model):
    return model.encoder.config.block in ("v1", "v3_v1")


def _nearest(mask, size):
    """(h, w) -> size, nearest neighbour: source index floor(i * h / H), as torch's "nearest"."""
    h, w = mask.shape
    H, W = size
    rows = np.minimum((np.arange(H) * (h / H)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(W) * (w / W)).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def segment(image, model="deeplabv3_mobilevit_xxs", weights=None, size=None):
    """Per-pixel classes of one image: Segmentation(mask (H, W) at the image size, uint8 class
    indices; logits (K, h, w) float32 at the size the model ran at). size: shorter side
    the image is resized to (default: the model's training crop)."""
    model = _model(model, weights, "segmentation")
    kind, a = _image(image)
    if kind == "input":
        x, orig = a, a.shape[2:]
    else:
        H, W = a.shape[:2]
        s = (size or model.config.input_size) / min(H, W)
        os_ = model.config.output_stride
        h, w = (max(os_, int(H * s) // os_ * os_), max(os_, int(W * s) // os_ * os_))
        x, orig = _to_input(_resize(a, w, h, _is_v1_family(model))), (H, W)
    logits = model(x)[0]                                          # (K, h, w)
    mask = logits.argmax(axis=0).astype(np.uint8 if logits.shape[0] <= 256 else np.int32)
    return Segmentation(_nearest(mask, orig) if mask.shape != tuple(orig) else mask, logits)


def detect(image, model="ssd_mobilevit_xxs", weights=None, score_threshold=None, iou_threshold=None,
           top_k=None):
    """Objects in one image: Detection(boxes (n, 4) float32 x0, y0, x1, y1 in pixels, scores (n,),
    labels (n,) int64 class indices, 0 being the background), best score first. Thresholds
    default to the model's: NMS IoU 0.5; score 0.05 and 200 boxes per class (v1 family) or
    score 0.01 and 200 boxes per image (v2 family), as the official code of each."""
    model = _model(model, weights, "detection")
    c = model.config
    kind, a = _image(image)
    if kind == "input":
        x, (H, W) = a, a.shape[2:]
    else:
        (H, W), n = a.shape[:2], c.input_size
        x = _to_input(_resize(a, n, n, _is_v1_family(model)))
    out = model(x)
    logits = out.cls_logits[0].astype(np.float64)                 # (A, K)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = e / e.sum(axis=1, keepdims=True)                      # softmax over classes
    boxes = center_to_corner(decode(out.locations[0], out.anchors, c.center_variance, c.size_variance))
    boxes, s, labels = batched_nms(boxes, scores,
                                   c.score_threshold if score_threshold is None else score_threshold,
                                   c.iou_threshold if iou_threshold is None else iou_threshold,
                                   c.top_k if top_k is None else top_k, c.pre_nms_top_k, c.max_detections)
    scale = np.array([W, H, W, H], np.float32)
    boxes = np.clip(boxes * scale, 0, scale)                       # [0, 1] -> pixels, inside the image
    return Detection(boxes.astype(np.float32), s, labels)


# ---- the `minivit segment` and `minivit detect` commands -------------------------------------

def add_commands(command):
    """Register both commands with the CLI's `command(name, func, help, example)` helper."""
    p = command("segment", segment_command, "segment an image (DeepLabv3) and write the class mask over it",
                ["minivit segment photo.jpg -o overlay.png --weights deeplab.safetensors"])
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-o", "--output", default="overlay.png", help="the PNG to write (default: overlay.png)")
    p.add_argument("--model", default="deeplabv3_mobilevit_xxs",
                   help="a name from `minivit list --task segmentation` (default: deeplabv3_mobilevit_xxs)")
    p.add_argument("--weights", help="a minivit .safetensors file (default: untrained random weights)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the mask colours (default 0.5)")
    p.add_argument("--size", type=int, default=None,
                   help="shorter side the image is resized to (default: the model's crop, 512)")
    p = command("detect", detect_command, "detect objects (SSDLite) and write the boxes over the image",
                ["minivit detect photo.jpg -o boxes.png --weights ssd.safetensors"])
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-o", "--output", default="boxes.png", help="the PNG to write (default: boxes.png)")
    p.add_argument("--model", default="ssd_mobilevit_xxs",
                   help="a name from `minivit list --task detection` (default: ssd_mobilevit_xxs)")
    p.add_argument("--weights", help="a minivit .safetensors file (default: untrained random weights)")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="default: the model's (0.05 v1 family, 0.01 v2 family)")
    p.add_argument("--iou-threshold", type=float, default=None, help="NMS IoU (default: the model's, 0.5)")


def segment_command(args):
    """`minivit segment IMAGE -o overlay.png`: prints the classes found and their share of pixels."""
    from .draw import save_overlay
    from .models.registry import create_model
    model = create_model(args.model, weights=args.weights)
    img = np.asarray(load_image(args.image))
    mask, _ = segment(img, model, size=args.size)
    names = dense_class_names(model)
    save_overlay(args.output, img, mask, names, args.alpha)
    print(f"{args.output}: {args.model} on {args.image} ({img.shape[1]}x{img.shape[0]})"
          + ("" if args.weights else ", untrained random weights"))
    counts = np.bincount(mask.ravel(), minlength=len(names))
    for k in np.argsort(-counts):
        if counts[k]:
            print(f"  {100 * counts[k] / mask.size:6.2f}%  {names[k]}")
    return 0


def detect_command(args):
    """`minivit detect IMAGE -o boxes.png`: prints one line per box."""
    from .draw import save_boxes
    from .models.registry import create_model
    model = create_model(args.model, weights=args.weights)
    img = np.asarray(load_image(args.image))
    boxes, scores, labels = detect(img, model, score_threshold=args.score_threshold,
                                   iou_threshold=args.iou_threshold)
    names = dense_class_names(model)
    save_boxes(args.output, img, boxes, scores, labels, names)
    print(f"{args.output}: {args.model} on {args.image}, {len(boxes)} boxes"
          + ("" if args.weights else " (untrained random weights)"))
    if not len(boxes) and not args.weights:
        print("  untrained scores sit near 1/81; try --score-threshold 0.015 to see boxes anyway")
    for b, s, k in zip(boxes, scores, labels):
        print(f"  {s:.3f}  {names[k]:<15} " + " ".join(f"{v:7.1f}" for v in b))
    return 0
