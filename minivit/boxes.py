"""Boxes for SSD detection: anchors, decoding, IoU and non-maximum suppression.

Plain NumPy on small arrays (a few thousand boxes): nothing here is hot enough
to jit. Boxes are float32, normalised to [0, 1] of the image, in one of two forms:
- centre form (cx, cy, w, h), which anchors and the SSD regression use;
- corner form (x0, y0, x1, y1), which IoU, NMS and drawing use.
Shape legend: A anchors (all feature maps, all cells, all anchors per cell), K classes.

What it reproduces: the official SSD anchor generator (cvnets SSDAnchorGenerator),
its box decoding (box_utils.convert_locations_to_boxes, center_form_to_corner_form)
and torchvision.ops.nms (area without +1, suppress IoU > threshold).
"""
import numpy as np


def anchor_scales(n_maps, min_scale=0.1, max_scale=1.05):
    """(min, max) anchor size of each feature map: scales spaced linearly over n_maps + 1 steps;
    map i has a small box of scales[i] and a big one of sqrt(scales[i] * scales[i + 1])."""
    s = np.linspace(min_scale, max_scale, n_maps + 1)
    return [(s[i], np.sqrt(s[i] * s[i + 1])) for i in range(n_maps)]


def anchors_per_cell(aspect_ratios):
    """Two square boxes (small, big) plus a wide and a tall box for each aspect ratio."""
    return 2 + 2 * len(aspect_ratios)


def ssd_anchors(map_sizes, aspect_ratios, min_scale=0.1, max_scale=1.05, clip=True):
    """Anchors of every feature map, concatenated: (A, 4) float32 centre form.

    map_sizes: [(h, w), ...] in head order; aspect_ratios: one tuple per map.
    Within a map: cells row by row, and in each cell the boxes
    [small, big, then (wide, tall) for each ratio r: small * sqrt(r) by small / sqrt(r)].
    Computed in float64, rounded to float32 and clipped to [0, 1] as the official code does.
    """
    out = []
    for (h, w), ratios, (small, big) in zip(map_sizes, aspect_ratios, anchor_scales(len(map_sizes), min_scale,
                                                                                      max_scale)):
        sizes = [(small, small), (big, big)]
        for r in ratios:
            r = np.sqrt(r)
            sizes += [(small * r, small / r), (small / r, small * r)]
        sizes = np.array(sizes)                                   # (a, 2): (w, h) of each box in a cell
        cy, cx = np.meshgrid((np.arange(h) + 0.5) * (1.0 / h), (np.arange(w) + 0.5) * (1.0 / w), indexing="ij")
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)     # (h*w, 2), row-major cells
        a = np.concatenate([np.repeat(centres, len(sizes), axis=0),  # (h*w*a, 2)
                            np.tile(sizes, (h * w, 1))], axis=1)      # (h*w*a, 4)
        out.append(a.astype(np.float32))
    anchors = np.concatenate(out, axis=0)
    return np.clip(anchors, 0.0, 1.0) if clip else anchors


def decode(locations, anchors, center_variance=0.1, size_variance=0.2):
    """SSD regression (..., A, 4) against anchors (A, 4) -> boxes (..., A, 4), centre form.

    centre = anchor centre + t_xy * center_variance * anchor size;
    size   = anchor size * exp(t_wh * size_variance).
    """
    loc = np.asarray(locations, np.float32)
    size = np.exp(loc[..., 2:] * np.float32(size_variance)) * anchors[..., 2:]
    centre = loc[..., :2] * np.float32(center_variance) * anchors[..., 2:] + anchors[..., :2]
    return np.concatenate([centre, size], axis=-1)


def center_to_corner(boxes):
    """(..., 4) centre form (cx, cy, w, h) -> corner form (x0, y0, x1, y1)."""
    half = boxes[..., 2:] * np.float32(0.5)
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def box_iou(a, b):
    """IoU of corner-form boxes a (n, 4) and b (m, 4) -> (n, m); empty boxes have area 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])            # (n, m, 2) top-left of the overlap
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])            # (n, m, 2) bottom-right
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes, scores, iou_threshold=0.5, top_k=None):
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    Visit boxes by decreasing score; keep one unless it overlaps an already kept
    box with IoU > iou_threshold. top_k: keep at most that many (None: all).
    """
    boxes = np.asarray(boxes, np.float64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size and (top_k is None or len(keep) < top_k):
        i, order = order[0], order[1:]
        keep.append(i)
        if order.size:
            order = order[box_iou(boxes[i:i + 1], boxes[order])[0] <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, score_threshold=0.05, iou_threshold=0.5, top_k=200, pre_nms_top_k=None,
                max_detections=None):
    """Per-class NMS over the softmax scores of one image, as the official SSD predicts.

    boxes (A, 4) corner form, scores (A, K) with class 0 the background.
    For each class k >= 1: the boxes whose score exceeds score_threshold (the best
    pre_nms_top_k of them, if given), NMS at iou_threshold, at most top_k kept (None: all).
    Returns (boxes (n, 4), scores (n,), labels (n,)), all classes together sorted by
    decreasing score, at most max_detections of them (None: all).
    cvnets v0.1: threshold 0.05, top_k 200; v0.2: threshold 0.01, pre_nms_top_k 400,
    max_detections 200.
    """
    out_boxes, out_scores, out_labels = [], [], []
    for k in range(1, scores.shape[1]):
        idx = np.flatnonzero(scores[:, k] > score_threshold)
        if pre_nms_top_k is not None and idx.size > pre_nms_top_k:
            idx = idx[np.argsort(-scores[idx, k], kind="stable")[:pre_nms_top_k]]
        if idx.size == 0:
            continue
        kept = idx[nms(boxes[idx], scores[idx, k], iou_threshold, top_k)]
        out_boxes.append(boxes[kept])
        out_scores.append(scores[kept, k])
        out_labels.append(np.full(kept.size, k, np.int64))
    if not out_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    b, s, lab = np.concatenate(out_boxes), np.concatenate(out_scores), np.concatenate(out_labels)
    order = np.argsort(-s, kind="stable")[:max_detections]
    return b[order].astype(np.float32), s[order].astype(np.float32), lab[order]
