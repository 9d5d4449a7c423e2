"""Tests for minivit.preprocess against independent references.

References: Pillow's own `Image.resize(BICUBIC)` called directly (the v2 evaluation),
and OpenCV's `cv2.resize(INTER_LINEAR)` (the v1 evaluation), both followed by the
crop and the /255 written out here by hand. Resized sizes and crop offsets are given
as literal numbers where the test image is fixed.

Tolerance: 0 (bitwise equality). Both pipelines are integer arithmetic up to the final
uint8 -> float32 / 255, and that division is correctly rounded in NumPy and PyTorch alike,
so any difference at all is a bug (a one-grey-level difference is 0.0039).
"""
import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from minivit.errors import InputError
from minivit.preprocess import V1_EVAL, V2_EVAL, Preprocess, cv2_bilinear_resize, resized_size

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)   # 512 x 600 JPEG


def _to_input(a_hwc_uint8, top, left, crop):
    """The official ToTensor by hand: crop, HWC -> CHW, float32 / 255."""
    a = a_hwc_uint8[top:top + crop, left:left + crop]
    return (a.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0))[None]


def _check_equal(mine, ref):
    assert mine.dtype == np.float32 and mine.flags.c_contiguous
    assert mine.shape == ref.shape, (mine.shape, ref.shape)
    diff = np.abs(mine.astype(np.float64) - ref)
    assert diff.max() == 0, f"max |diff| {diff.max():.3g} at {np.unravel_index(diff.argmax(), diff.shape)}"


# ---- the official size rule ----------------------------------------------------------------

@pytest.mark.parametrize("wh, size, expect", [
    ((500, 375), 288, (384, 288)),
    ((375, 500), 288, (288, 384)),
    ((333, 500), 288, (288, 432)),      # 432.43 truncated
    ((512, 600), 288, (288, 337)),      # 337.5 truncated
    ((300, 300), 288, (288, 288)),
    ((288, 1000), 288, (288, 1000)),    # shorter side already right: untouched
    ((1000, 288), 288, (1000, 288)),
    ((1, 1), 288, (288, 288)),
    ((1, 3), 5, (5, 15)),
])
def test_resized_size_follows_cvnets(wh, size, expect):
    assert resized_size(*wh, size) == expect


# ---- the real photo: the two official pipelines written out by hand --------------------------

def test_pil_bicubic_matches_pillow_on_grace_hopper():
    im = Image.open(GRACE_HOPPER).convert("RGB")
    assert im.size == (512, 600)
    resized = np.asarray(im.resize((288, 337), Image.Resampling.BICUBIC))       # (337, 288, 3)
    ref = _to_input(resized, top=(337 - 256) // 2, left=(288 - 256) // 2, crop=256)
    _check_equal(V2_EVAL(GRACE_HOPPER), ref)
    _check_equal(V2_EVAL(im), ref)


def test_cv2_bilinear_matches_official_v1_reading_on_grace_hopper():
    # cvnets v0.1: cv2.imread (BGR) -> cv2.resize INTER_LINEAR -> crop -> /255. We flip to RGB
    # here, because minivit feeds RGB and flips the converted weights instead.
    bgr = cv2.imread(str(GRACE_HOPPER), cv2.IMREAD_COLOR)
    resized = cv2.resize(bgr, (288, 337), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    ref = _to_input(resized, top=40, left=16, crop=256)
    _check_equal(V1_EVAL(GRACE_HOPPER), ref)
    # The resize alone, on the same decoded pixels:
    rgb = np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))
    np.testing.assert_array_equal(cv2_bilinear_resize(rgb, 288, 337),
                                  cv2.resize(rgb, (288, 337), interpolation=cv2.INTER_LINEAR))


# ---- odd sizes, synthetic images -----------------------------------------------------------

ODD = [  # (width, height), resize, crop
    ((1, 1), 288, 256), ((1, 7), 9, 9), ((13, 5), 37, 31), ((255, 257), 288, 256),
    ((300, 289), 288, 256), ((289, 300), 64, 63), ((288, 288), 288, 256), ((700, 576), 288, 256),
    ((144, 150), 288, 256), ((576, 577), 288, 287), ((2, 1000), 5, 5), ((1000, 2), 3, 1),
]


@pytest.mark.parametrize("wh, resize, crop", ODD)
@pytest.mark.parametrize("interpolation", ["pil_bicubic", "cv2_bilinear"])
def test_odd_sizes_match_the_reference(wh, resize, crop, interpolation):
    w, h = wh
    a = np.random.default_rng(w * 1000 + h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rw, rh = resized_size(w, h, resize)
    if (rw, rh) == (w, h):
        resized = a
    elif interpolation == "pil_bicubic":
        resized = np.asarray(Image.fromarray(a).resize((rw, rh), Image.Resampling.BICUBIC))
    else:
        resized = cv2.resize(a, (rw, rh), interpolation=cv2.INTER_LINEAR)
    ref = _to_input(resized, (rh - crop) // 2, (rw - crop) // 2, crop)
    _check_equal(Preprocess(resize, crop, interpolation)(Image.fromarray(a)), ref)


def test_cv2_bilinear_resize_is_bit_exact_on_random_sizes():
    rng = np.random.default_rng(0)
    pairs = [((2 * h, 2 * w), (h, w)) for h, w in [(1, 1), (3, 5), (37, 29)]]          # 2x down: INTER_AREA
    pairs += [((h, w), (2 * h, 2 * w)) for h, w in [(1, 1), (3, 5), (37, 29)]]          # 2x up
    pairs += [((h, w), (3 * h, 3 * w)) for h, w in [(2, 3), (17, 11)]]
    pairs += [((20, 7), (10, 7)), ((10, 14), (10, 7)), ((1, 9), (4, 2)), ((9, 1), (2, 4))]
    pairs += [(tuple(rng.integers(1, 120, 2)), tuple(rng.integers(1, 120, 2))) for _ in range(300)]
    for (sh, sw), (dh, dw) in pairs:
        for cn in (3, 1):
            a = rng.integers(0, 256, (sh, sw, cn), dtype=np.uint8)
            ref = cv2.resize(a, (int(dw), int(dh)), interpolation=cv2.INTER_LINEAR).reshape(dh, dw, cn)
            mine = cv2_bilinear_resize(a, int(dw), int(dh))
            diff = np.abs(ref.astype(int) - mine)
            assert diff.max() == 0, f"{sh}x{sw} -> {dh}x{dw}, {cn} channels: {np.count_nonzero(diff)} differ"


def test_opencv_rounding_is_not_plain_rounding():
    """Guard against a 'simplified' resize: exact rounding of the same weights differs from OpenCV."""
    a = np.random.default_rng(5).integers(0, 256, (97, 83, 3), dtype=np.uint8)
    ref = cv2.resize(a, (61, 53), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(cv2_bilinear_resize(a, 61, 53), ref)
    # The same resize in float64 with half-pixel centres, rounded once: not equal to OpenCV.
    def axis(src, dst):
        f = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
        i = np.minimum(np.floor(f).astype(int), src - 2 if src > 1 else 0)
        return i, np.minimum(i + 1, src - 1), f - i
    y0, y1, fy = axis(97, 53)
    x0, x1, fx = axis(83, 61)
    s = a.astype(np.float64)
    rows = s[y0] * (1 - fy)[:, None, None] + s[y1] * fy[:, None, None]
    plain = np.rint(rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None])
    assert 0 < np.count_nonzero(plain != ref) and np.abs(plain - ref).max() <= 1


# ---- inputs and arguments ------------------------------------------------------------------

def test_inputs_paths_images_and_lists(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "g.png")                          # grayscale file
    p = Preprocess(24, 20, "cv2_bilinear")
    one = p(tmp_path / "g.png")
    assert one.shape == (1, 3, 20, 20) and 0 <= one.min() and one.max() <= 1
    both = p([str(tmp_path / "g.png"), Image.fromarray(a)])             # path and "L" image
    assert both.shape == (2, 3, 20, 20)
    np.testing.assert_array_equal(both[0], both[1])
    np.testing.assert_array_equal(both[0, 0], both[0, 2])                # gray: R == G == B


@pytest.mark.parametrize("args, word", [
    ((288, 320, "pil_bicubic"), "crop"),
    ((288, 256, "bilinear"), "interpolation"),
    ((288.0, 256, "pil_bicubic"), "resize"),
    ((288, 0, "pil_bicubic"), "crop"),
    ((True, 1, "pil_bicubic"), "resize"),
])
def test_bad_arguments(args, word):
    with pytest.raises(InputError, match=word):
        Preprocess(*args)


def test_bad_inputs():
    with pytest.raises(InputError, match="no images"):
        V2_EVAL([])
    with pytest.raises(InputError, match="image 1"):
        V2_EVAL([Image.new("RGB", (4, 4)), np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(InputError, match="aspect ratio"):
        Preprocess(288, 256, "cv2_bilinear")(Image.new("RGB", (400000, 1)))


def test_preprocess_is_a_frozen_value():
    p = Preprocess(288, 256, "pil_bicubic")
    assert p == V2_EVAL and hash(p) == hash(V2_EVAL)
    with pytest.raises(AttributeError):
        p.crop = 224
