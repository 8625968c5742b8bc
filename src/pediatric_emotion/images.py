"""Reading, decoding and encoding images: the one place the project touches image bytes.

Every image leaves these functions as an RGB ``uint8`` array of shape (height, width, 3).
Errors name the file and never include pixel content (children's faces are sensitive data).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class UnreadableImageError(ValueError):
    """An image file or buffer that cannot be decoded."""


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a 3-channel RGB uint8 array (gray and RGBA are converted)."""
    if image.dtype != np.uint8:
        raise UnreadableImageError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise UnreadableImageError(f"unsupported image shape {image.shape}")


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, TIFF, BMP...) to RGB uint8."""
    if not data:
        raise UnreadableImageError(f"{name}: empty file")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise UnreadableImageError(f"{name}: not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file to RGB uint8; raise ``UnreadableImageError`` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UnreadableImageError(f"{path}: {err.strerror or err}") from err
    return decode_image(data, str(path))


def encode_image(image: np.ndarray, extension: str = ".png", jpeg_quality: int = 95) -> bytes:
    """Encode an RGB (or gray) uint8 array to image bytes in the format named by ``extension``."""
    extension = extension if extension.startswith(".") else f".{extension}"
    if image.ndim == 3:
        image = cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if extension.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buffer = cv2.imencode(extension, image, params)
    if not ok:
        raise ValueError(f"could not encode image as {extension}")
    return buffer.tobytes()


def pixels_to_image(pixels: str, width: int | None = None) -> np.ndarray:
    """Decode a row of space-separated 0-255 gray values (FER2013 style) to an RGB image.

    The image is square unless ``width`` is given; raise ``UnreadableImageError`` when the count of
    values does not fit, or a value is not an integer in 0-255.
    """
    try:
        values = np.asarray(str(pixels).split(), dtype=np.int64)
    except ValueError as err:
        raise UnreadableImageError("pixel values are not all integers") from err
    if values.size == 0:
        raise UnreadableImageError("no pixel values")
    if values.min() < 0 or values.max() > 255:
        raise UnreadableImageError("pixel values outside 0-255")
    side = width or int(round(values.size**0.5))
    if side <= 0 or values.size % side or (width is None and side * side != values.size):
        raise UnreadableImageError(f"{values.size} pixel values do not form a square image")
    return to_rgb(values.astype(np.uint8).reshape(-1, side))


def image_to_pixels(image: np.ndarray) -> str:
    """Encode an image as FER2013's space-separated gray values (inverse of ``pixels_to_image``)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2GRAY)
    return " ".join(str(int(v)) for v in gray.reshape(-1))
