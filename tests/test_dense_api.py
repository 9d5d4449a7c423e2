"""Boxes (IoU, NMS), the dense registry, segment()/detect(), the drawing helpers and the
two commands. NMS is checked against a plain-Python greedy reference written from its
definition; the API against the models it wraps."""
import numpy as np
import pytest
from PIL import Image

import minivit
from minivit.boxes import batched_nms, box_iou, center_to_corner, decode, nms, ssd_anchors
from minivit.draw import draw_boxes, overlay_mask, palette
from minivit.errors import InputError
from minivit.models.registry import get_config


# ---- boxes ---------------------------------------------------------------------------------------

def iou_py(a, b):
    """IoU of two corner-form boxes, from the definition."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_py(boxes, scores, thr, top_k=None):
    """Greedy NMS: by decreasing score, keep a box unless it overlaps a kept one with IoU > thr."""
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(iou_py(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep[:top_k]


def random_boxes(rng, n, clusters=5):
    """Boxes around a few centres, so that many overlap."""
    centres = rng.uniform(0.2, 0.8, (clusters, 2))[rng.integers(0, clusters, n)]
    c = centres + rng.normal(0, 0.03, (n, 2))
    wh = rng.uniform(0.05, 0.3, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)


def test_box_iou_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [1, 1, 1, 1]], np.float32)
    want = [[1 / 7, 1, 0, 0], [0, 0.25, 0, 0]]
    np.testing.assert_allclose(box_iou(a, b), want, rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_reference(seed, thr):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 120)
    scores = rng.permutation(120).astype(np.float32) / 120      # distinct scores: one right order
    assert nms(boxes, scores, thr).tolist() == nms_py(boxes.tolist(), scores.tolist(), thr)
    assert nms(boxes, scores, thr, top_k=7).tolist() == nms_py(boxes.tolist(), scores.tolist(), thr, 7)


def test_nms_threshold_is_strict():
    """IoU exactly at the threshold is kept (suppression needs IoU > threshold)."""
    boxes = np.array([[0, 0, 2, 1], [1, 0, 3, 1]], np.float32)       # IoU 1/3
    assert nms(boxes, np.array([0.9, 0.8]), 1 / 3).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.33).tolist() == [0]


@pytest.mark.parametrize("top_k, pre, cap", [(10, None, None),      # cvnets v0.1: per class after NMS
                                             (None, 15, 12)])       # v0.2: per class before, per image after
def test_batched_nms_per_class(top_k, pre, cap):
    rng = np.random.default_rng(9)
    A, K = 200, 4
    boxes = random_boxes(rng, A)
    scores = rng.dirichlet(np.ones(K) * 0.3, A)                     # (A, K), rows sum to 1
    b, s, lab = batched_nms(boxes, scores, score_threshold=0.2, iou_threshold=0.5, top_k=top_k,
                            pre_nms_top_k=pre, max_detections=cap)
    want = []
    for k in range(1, K):                                           # class 0 is the background
        above = sorted((i for i in range(A) if scores[i, k] > 0.2), key=lambda i: -scores[i, k])
        assert len(above) > (pre or 0)                              # the cut matters
        idx = above[:pre]
        kept = nms_py([boxes[i].tolist() for i in idx], [scores[i, k] for i in idx], 0.5, top_k)
        want += [(scores[idx[j], k], k, idx[j]) for j in kept]
    want = sorted(want, key=lambda t: -t[0])[:cap]
    assert lab.tolist() == [k for _, k, _ in want]
    np.testing.assert_allclose(s, [v for v, _, _ in want], rtol=1e-6)
    np.testing.assert_array_equal(b, boxes[[i for _, _, i in want]])
    assert (np.diff(s) <= 0).all()


def test_batched_nms_nothing_above_threshold():
    b, s, lab = batched_nms(np.zeros((3, 4), np.float32), np.full((3, 5), 0.2), score_threshold=0.5)
    assert b.shape == (0, 4) and s.shape == (0,) and lab.shape == (0,)


def test_anchor_layout_and_decoding_identity():
    a = ssd_anchors([(2, 3), (1, 1)], [(2,), (3,)], 0.1, 0.9)
    assert a.shape == (2 * 3 * 4 + 4, 4) and a.dtype == np.float32
    small, big = 0.1, np.sqrt(0.1 * 0.5)                           # scales 0.1, 0.5, 0.9
    np.testing.assert_allclose(a[:4], [[1 / 6, 1 / 4, small, small], [1 / 6, 1 / 4, big, big],
                                       [1 / 6, 1 / 4, small * 2 ** .5, small / 2 ** .5],
                                       [1 / 6, 1 / 4, small / 2 ** .5, small * 2 ** .5]], rtol=1e-6)
    np.testing.assert_allclose(a[4, :2], [3 / 6, 1 / 4], rtol=1e-6)    # next cell: x moves first
    np.testing.assert_allclose(a[-4:, :2], 0.5)
    assert a.max() <= 1                                                 # clipped
    # zero offsets decode to the anchors themselves
    np.testing.assert_allclose(decode(np.zeros_like(a), a), a)
    np.testing.assert_allclose(center_to_corner(a[:1]), [[1 / 6 - .05, 1 / 4 - .05, 1 / 6 + .05, 1 / 4 + .05]],
                               rtol=1e-6)


# ---- registry --------------------------------------------------------------------------------------

def test_registry_keeps_classifiers_apart():
    classifiers = minivit.list_models()
    assert not any(n.startswith(("deeplabv3_", "ssd_")) for n in classifiers)
    seg, det = minivit.list_models("segmentation"), minivit.list_models("detection")
    assert all(n.startswith("deeplabv3_") for n in seg) and all(n.startswith("ssd_") for n in det)
    assert det == [f"ssd_{c}" for c in classifiers]
    v1, v2 = get_config("ssd_mobilevitv3_xxs"), get_config("ssd_mobilevitv2_050")      # official post-processing
    assert (v1.score_threshold, v1.top_k, v1.pre_nms_top_k, v1.max_detections) == (0.05, 200, None, None)
    assert (v2.score_threshold, v2.top_k, v2.pre_nms_top_k, v2.max_detections) == (0.01, None, 400, 200)
    assert "deeplabv3_mobilevit_xxs" in seg and "deeplabv3_mobilevitv2_050_ade20k" in seg
    assert minivit.list_models(None) == classifiers + seg + det
    with pytest.raises(InputError, match="unknown task"):
        minivit.list_models("depth")


def test_num_classes_from_weights_and_override():
    m = minivit.create_model("deeplabv3_mobilevit_xxs", num_classes=5)
    assert m.classifier.conv.weight.shape[0] == 5
    again = minivit.create_model("deeplabv3_mobilevit_xxs", weights=m.state_dict())
    assert again.config.num_classes == 5
    s = minivit.create_model("ssd_mobilevit_xxs", num_classes=3)
    assert minivit.create_model("ssd_mobilevit_xxs", weights=s.state_dict()).config.num_classes == 3


# ---- segment / detect --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deeplab():
    return minivit.create_model("deeplabv3_mobilevit_xxs")


@pytest.fixture(scope="module")
def ssd():
    return minivit.create_model("ssd_mobilevit_xxs")


def test_segment_model_input(deeplab):
    x = np.random.default_rng(0).uniform(0, 1, (3, 64, 96)).astype(np.float32)
    mask, logits = minivit.segment(x, deeplab)
    np.testing.assert_array_equal(logits, deeplab(x[None])[0])
    np.testing.assert_array_equal(mask, logits.argmax(0))
    assert mask.dtype == np.uint8 and mask.shape == (64, 96)


def test_segment_image_back_to_its_size(deeplab):
    img = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask, logits = minivit.segment(img, deeplab, size=64)
    assert logits.shape == (21, 64, 80)       # shorter side 64, 89.6 rounded down to a multiple of 16
    assert mask.shape == (50, 70)
    low = logits.argmax(0)
    # nearest neighbour: row i of the mask comes from row floor(i * 64 / 50)
    np.testing.assert_array_equal(mask[49], low[int(49 * 64 / 50)][(np.arange(70) * 80 / 70).astype(int)])


def test_detect_model_input(ssd):
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)
    boxes, scores, labels = minivit.detect(x, ssd, score_threshold=0.0123)
    out = ssd(x)
    p = np.exp(out.cls_logits[0].astype(np.float64))
    p /= p.sum(1, keepdims=True)
    b = center_to_corner(decode(out.locations[0], out.anchors))
    wb, ws, wl = batched_nms(b, p, 0.0123, 0.5, 200)
    assert len(boxes) > 0
    np.testing.assert_array_equal(labels, wl)
    np.testing.assert_allclose(scores, ws, rtol=1e-6)
    np.testing.assert_allclose(boxes, np.clip(wb * 128, 0, 128), rtol=1e-6)
    assert labels.min() >= 1 and (np.diff(scores) <= 0).all()


def test_detect_rejects_a_segmentation_model(deeplab):
    with pytest.raises(InputError, match="detection"):
        minivit.detect(np.zeros((3, 32, 32), np.float32), deeplab)
    with pytest.raises(InputError, match="image must be"):
        minivit.segment(np.zeros((32, 32), np.float32), deeplab)


# ---- drawing and commands ------------------------------------------------------------------------

def test_palette_is_the_voc_colour_map():
    p = palette(21)
    assert p[0].tolist() == [0, 0, 0] and p[1].tolist() == [128, 0, 0] and p[2].tolist() == [0, 128, 0]
    assert p[15].tolist() == [192, 128, 128] and p[20].tolist() == [0, 64, 128]


def test_overlay_and_boxes_pictures():
    img = np.full((40, 60, 3), 200, np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[20:, 30:] = 15
    out = np.asarray(overlay_mask(img, mask, alpha=0.5))
    assert out.shape == img.shape
    np.testing.assert_array_equal(out[39, 0], [200, 200, 200])          # background untouched
    np.testing.assert_array_equal(out[39, 59], [196, 164, 164])         # (200 + (192, 128, 128)) / 2
    pic = np.asarray(draw_boxes(img, [[10, 15, 50, 35]], [0.9], [2], names=["bg", "a", "b"]))
    np.testing.assert_array_equal(pic[35, 30], [0, 128, 0])             # bottom edge in class 2's colour
    np.testing.assert_array_equal(pic[25, 30], [200, 200, 200])         # inside stays


def test_commands_write_pictures(tmp_path, capsys):
    """`minivit segment` and `minivit detect`, through the command line's own parser."""
    from minivit.cli import main
    img_path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(img_path)
    assert main(["segment", str(img_path), "-o", str(tmp_path / "seg.png"), "--size", "32"]) == 0
    assert Image.open(tmp_path / "seg.png").size == (64, 48)
    assert main(["detect", str(img_path), "-o", str(tmp_path / "det.png"), "--score-threshold", "0.0123"]) == 0
    assert Image.open(tmp_path / "det.png").size == (64, 48)
    out = capsys.readouterr().out
    assert "untrained random weights" in out and "seg.png" in out and "boxes" in out
    assert main(["segment", str(img_path), "--model", "ssd_mobilevit_xxs"]) == 2      # a named error
    assert "not a segmentation model" in capsys.readouterr().err
