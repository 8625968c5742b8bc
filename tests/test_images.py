import numpy as np
import pytest

from pediatric_emotion.images import (
    UnreadableImageError,
    decode_image,
    encode_image,
    image_to_pixels,
    pixels_to_image,
    read_image,
    to_rgb,
)


def test_pixels_round_trip_fer2013_style():
    gray = np.arange(48 * 48, dtype=np.int64).reshape(48, 48) % 256
    pixels = image_to_pixels(gray.astype(np.uint8))
    assert len(pixels.split()) == 2304
    image = pixels_to_image(pixels)
    assert image.shape == (48, 48, 3)
    assert np.array_equal(image[..., 0], gray)


@pytest.mark.parametrize(
    "pixels, message",
    [("1 2 3", "square"), ("", "no pixel"), ("1 2 x 4", "integers"), ("0 1 2 300", "0-255")],
)
def test_bad_pixel_rows_raise(pixels, message):
    with pytest.raises(UnreadableImageError, match=message):
        pixels_to_image(pixels)


def test_png_round_trip_is_lossless_and_rgb():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_image(image, ".png")), image)


def test_gray_and_rgba_become_rgb():
    assert to_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)


def test_read_image_names_the_file(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(UnreadableImageError, match="nope.jpg"):
        read_image(missing)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(UnreadableImageError, match="corrupt.jpg: not a decodable image"):
        read_image(corrupt)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty file"):
        read_image(empty)


def _png_claiming(width: int, height: int) -> bytes:
    """A small real PNG whose header (IHDR) claims ``width`` x ``height``."""
    import struct
    import zlib

    data = bytearray(encode_image(np.zeros((8, 8, 3), np.uint8), ".png"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    from pediatric_emotion import images

    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(12000, 12000))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image over the limit")

    monkeypatch.setattr(images.cv2, "imdecode", no_decoding)
    with pytest.raises(images.ImageTooLargeError, match=r"huge\.png: 12000x12000 pixels"):
        read_image(path)  # the default limit: 50 megapixels
    (tmp_path / "bomb.png").write_bytes(_png_claiming(40000, 40000))  # over PIL's own limit
    with pytest.raises(images.ImageTooLargeError, match=r"bomb\.png: .*limit of 50,000,000"):
        read_image(tmp_path / "bomb.png")
    monkeypatch.undo()
    small = tmp_path / "small.png"
    small.write_bytes(encode_image(np.zeros((30, 40, 3), np.uint8), ".png"))
    assert read_image(small, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(images.ImageTooLargeError, match="40x30 pixels"):
        read_image(small, max_pixels=1199)


def test_an_animated_image_gives_its_first_frame_and_a_warning(tmp_path, caplog):
    from PIL import Image

    frames = [Image.fromarray(np.full((16, 16, 3), value, np.uint8)) for value in (10, 200)]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING", logger="pediatric_emotion.images"):
        image = read_image(tmp_path / "clip.gif")
    assert image.shape == (16, 16, 3) and int(image.mean()) < 50
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'clip.gif'}: 2 frames (an animated or multi-page image); "
        "only the first is used"
    ]


def test_a_file_name_that_is_not_utf8_is_shown_printably_and_read_by_that_name(tmp_path):
    import os

    from pediatric_emotion.images import printable

    real = tmp_path / os.fsdecode(b"caf\xe9.png")
    real.write_bytes(encode_image(np.zeros((5, 6, 3), np.uint8), ".png"))
    shown = printable(str(real))
    assert shown == f"{tmp_path}/caf\\xe9.png"
    shown.encode("utf-8")  # writable anywhere
    assert read_image(shown).shape == (5, 6, 3)  # the printable name leads to the real file
    assert read_image(real).shape == (5, 6, 3)
    assert printable("plain é.png") == "plain é.png"
    assert printable("\ud800") == "\\ud800"
    with pytest.raises(UnreadableImageError) as info:
        read_image(tmp_path / os.fsdecode(b"gone\xff.png"))
    assert "gone\\xff.png" in str(info.value)
    str(info.value).encode("utf-8")
