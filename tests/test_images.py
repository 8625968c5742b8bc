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
