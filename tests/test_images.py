"""Tests for minivit.images: every colour mode to 8-bit RGB, EXIF, frames, refusals.

Test images are made here with Pillow (or written byte by byte where Pillow cannot
write the format, e.g. 16-bit RGB PNG); expected pixels are computed independently
with NumPy from the values written.
"""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from minivit import images
from minivit.errors import ImageError, InputError
from minivit.images import MAX_PIXELS, load_image, load_images, to_rgb


def _rgb(im):
    assert im.mode == "RGB"
    return np.asarray(im).astype(np.int64)


def _png_bytes(width, height, bit_depth, color_type, raw=b""):
    """A PNG file written by hand: IHDR, one IDAT holding `raw` (filter bytes included), IEND."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _assert_clean_error(excinfo, path, *words):
    """The error names the file, says why, and hides the Pillow traceback."""
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg.lower(), msg
    err = excinfo.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


# ---- colour modes ------------------------------------------------------------------------

def test_rgb_png_roundtrip_is_exact(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    np.testing.assert_array_equal(_rgb(load_image(tmp_path / "a.png")), a)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_gray_and_bilevel_replicate_into_three_channels(tmp_path, mode):
    a = np.random.default_rng(1).integers(0, 256, (6, 9), dtype=np.uint8)
    if mode == "1":
        a = np.where(a > 127, 255, 0).astype(np.uint8)
    Image.fromarray(a).convert(mode).save(tmp_path / "g.png")
    out = _rgb(load_image(tmp_path / "g.png"))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], a)


def test_gray_16bit_png_is_scaled_not_clipped(tmp_path):
    v = np.array([[0, 1, 128, 129, 257], [30000, 32767, 32768, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    expect = np.floor(v.astype(np.float64) * 255.0 / 65535.0 + 0.5)   # round half up; no ties occur
    out = _rgb(load_image(tmp_path / "g16.png"))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expect)
    assert out[1, 0, 0] == 117                                         # Pillow's convert would clip to 255


def test_gray_16bit_big_endian_tiff(tmp_path):
    v = np.array([[0, 1000, 40000, 65535]], dtype=">u2")
    Image.frombytes("I;16B", (4, 1), v.tobytes()).save(tmp_path / "g16b.tif")
    out = _rgb(load_image(tmp_path / "g16b.tif"))
    np.testing.assert_array_equal(out[0, :, 1], np.floor(v[0].astype(np.float64) * 255 / 65535 + 0.5))


def test_mode_I_is_read_as_16bit_and_clipped(tmp_path):
    v = np.array([[-5, 0, 257, 65535, 70000]], dtype=np.int32)
    Image.fromarray(v, mode="I").save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_array_equal(_rgb(load_image(tmp_path / "i.tif"))[0, :, 2], [0, 0, 1, 255, 255])


def test_mode_F_uses_pillow_0_255_scale(tmp_path):
    v = np.array([[-3.0, 0.4, 0.6, 127.5, 254.6, 300.0, np.nan]], dtype=np.float32)
    Image.fromarray(v, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(_rgb(load_image(tmp_path / "f.tif"))[0, :, 0],
                                  [0, 0, 1, 128, 255, 255, 0])


def test_rgb_16bit_png_is_scaled(tmp_path):
    # Pillow cannot write 16-bit RGB, so the PNG is written by hand (filter byte 0 per row).
    v = np.array([[[0, 30000, 65535], [257, 32768, 12345]]], dtype=">u2")   # (H=1, W=2, 3)
    raw = b"\x00" + v.tobytes()
    (tmp_path / "rgb16.png").write_bytes(_png_bytes(2, 1, 16, 2, raw))
    out = _rgb(load_image(tmp_path / "rgb16.png"))
    exact = v.astype(np.float64) * 255 / 65535
    assert np.abs(out - exact).max() <= 1.0                            # a scale, not a clip
    assert out[0, 0, 1] in (116, 117)


def test_palette_without_and_with_transparency(tmp_path):
    pal = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    idx = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    p = Image.fromarray(idx, mode="P")
    p.putpalette(pal)
    p.save(tmp_path / "p.png")
    expect = np.array(pal[:9]).reshape(3, 3)[idx]
    np.testing.assert_array_equal(_rgb(load_image(tmp_path / "p.png")), expect)

    p.save(tmp_path / "pt.png", transparency=1)                       # index 1 (green) is transparent
    out = _rgb(load_image(tmp_path / "pt.png"))
    expect[idx == 1] = 255
    np.testing.assert_array_equal(out, expect)


def test_rgba_and_la_are_composited_on_white(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    a[0, 0, 3], a[0, 1, 3] = 0, 255
    Image.fromarray(a, mode="RGBA").save(tmp_path / "rgba.png")
    alpha = a[..., 3:].astype(np.float64) / 255
    expect = a[..., :3] * alpha + 255 * (1 - alpha)
    out = _rgb(load_image(tmp_path / "rgba.png"))
    assert np.abs(out - expect).max() <= 1.0                          # Pillow rounds in 8-bit integer
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], a[0, 1, :3])

    la = a[..., [0, 3]]
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    expect = la[..., :1] * alpha + 255 * (1 - alpha)
    out = _rgb(load_image(tmp_path / "la.png"))
    assert np.abs(out - expect).max() <= 1.0


def test_cmyk_jpeg_and_tiff(tmp_path):
    # Pure inks with k = 0 and pure black give the same RGB under every CMYK -> RGB formula.
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0],
                      [0, 0, 0, 255], [100, 50, 25, 0]]], dtype=np.uint8)
    expect = 255 - cmyk[..., :3].astype(np.int64)
    expect[0, 4] = 0
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    np.testing.assert_array_equal(_rgb(load_image(tmp_path / "c.tif")), expect)
    Image.fromarray(np.repeat(np.repeat(cmyk, 16, 0), 16, 1), mode="CMYK").save(tmp_path / "c.jpg", quality=100)
    out = _rgb(load_image(tmp_path / "c.jpg"))[8::16, 8::16]          # block centres: JPEG-lossy, flat blocks
    assert np.abs(out - expect).max() <= 3


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    im = load_image(tmp_path / "one.png")
    assert im.size == (1, 1) and im.getpixel((0, 0)) == (10, 20, 30)


def test_to_rgb_accepts_images_and_rejects_other_things():
    im = Image.new("LA", (2, 2), (100, 0))
    assert to_rgb(im).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(InputError, match="PIL.Image.Image"):
        to_rgb(np.zeros((2, 2, 3)))


# ---- orientation and frames ----------------------------------------------------------------

def _left_red_right_blue(w=40, h=20):
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:, : w // 2, 0] = 255
    a[:, w // 2:, 2] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_exif_orientation_is_applied(tmp_path, ext):
    exif = Image.Exif()
    exif[0x0112] = 6                # stored image must be turned 90 degrees clockwise for display
    _left_red_right_blue().save(tmp_path / f"o.{ext}", exif=exif.tobytes(), quality=95)
    out = _rgb(load_image(tmp_path / f"o.{ext}"))
    assert out.shape == (40, 20, 3)                                    # (H, W, 3): now portrait
    # Turning clockwise puts the stored left edge (red) at the top.
    assert np.abs(out[5, 10] - [255, 0, 0]).max() <= 4
    assert np.abs(out[35, 10] - [0, 0, 255]).max() <= 4


def test_animated_gif_and_png_give_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 4), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    for ext in ["gif", "png"]:
        frames[0].save(tmp_path / f"anim.{ext}", save_all=True, append_images=frames[1:], duration=50)
        assert Image.open(tmp_path / f"anim.{ext}").n_frames == 3
        out = _rgb(load_image(tmp_path / f"anim.{ext}"))
        assert out.shape == (4, 6, 3)
        np.testing.assert_array_equal(out.reshape(-1, 3), np.tile([255, 0, 0], (24, 1)))


# ---- refusals and errors -------------------------------------------------------------------

def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    # 10000 x 10000 = 1e8 pixels declared (above MAX_PIXELS, below Pillow's own error limit),
    # no pixel data at all: the refusal must come from the header alone.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(10000, 10000, 8, 2))
    with pytest.raises(ImageError) as e:
        load_image(path)
    _assert_clean_error(e, path, "decompression bomb")
    assert str(MAX_PIXELS) in str(e.value) and "10000x10000" in str(e.value)


def test_bomb_beyond_pillows_own_limit_is_an_image_error(tmp_path):
    path = tmp_path / "bigbomb.png"
    path.write_bytes(_png_bytes(100000, 100000, 8, 2))
    with pytest.raises(ImageError) as e:
        load_image(path)
    _assert_clean_error(e, path, "decompression bomb")


def test_pixel_limit_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 110)
    Image.new("RGB", (10, 11)).save(tmp_path / "ok.png")
    Image.new("RGB", (11, 11)).save(tmp_path / "big.png")
    assert load_image(tmp_path / "ok.png").size == (10, 11)
    with pytest.raises(ImageError, match="121 pixels"):
        load_image(tmp_path / "big.png")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError) as e:
        load_image(tmp_path / "nope.jpg")
    _assert_clean_error(e, tmp_path / "nope.jpg", "no such file")
    with pytest.raises(ImageError) as e:
        load_image(tmp_path)
    _assert_clean_error(e, tmp_path, "directory")


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", b"\x89PNG\r\n\x1a\n"])
def test_non_images(tmp_path, content):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as e:
        load_image(path)
    _assert_clean_error(e, path, "not an image")


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_files(tmp_path, ext):
    a = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / f"full.{ext}")
    data = (tmp_path / f"full.{ext}").read_bytes()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as e:
        load_image(path)
    _assert_clean_error(e, path, "cannot decode")


def test_load_images_takes_one_path_or_many(tmp_path):
    Image.new("L", (3, 2), 7).save(tmp_path / "a.png")
    Image.new("RGB", (2, 3), (1, 2, 3)).save(tmp_path / "b.png")
    ims = load_images([tmp_path / "a.png", str(tmp_path / "b.png")])
    assert [im.size for im in ims] == [(3, 2), (2, 3)] and all(im.mode == "RGB" for im in ims)
    assert len(load_images(tmp_path / "a.png")) == 1
    with pytest.raises(InputError):
        load_image(123)


def test_import_minivit_does_not_load_pillow():
    """Pillow loads at the first image, not with `import minivit` (arrays-only programs start faster)."""
    import subprocess
    import sys
    code = "import sys, minivit; assert not any(m == 'PIL' or m.startswith('PIL.') for m in sys.modules), 'PIL loaded'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_is_pil_image():
    from minivit.images import is_pil_image
    assert is_pil_image(Image.new("RGB", (2, 2)))
    assert not is_pil_image(np.zeros((2, 2, 3), np.uint8))
    assert not is_pil_image("a.png")
