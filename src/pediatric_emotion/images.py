"""Reading, decoding and encoding images: the one place the project touches image bytes (the
harmonization's crops, evaluation's TFLite feed, predict, the demo data). The one exception is
the tf.data stream of crops (modeling/inputs.py), which decodes the PNG crops harmonization wrote
inside TensorFlow's graph, as tf.data must.

Every image leaves these functions as an RGB ``uint8`` array of shape (height, width, 3).
Errors name the file and never include pixel content (children's faces are sensitive data).
An image is decoded only after its header says it has at most ``max_pixels`` pixels; an animated
or multi-page image gives its first frame, with a warning naming the file. File names that are not
UTF-8 are shown (in errors, logs, tables) as :func:`printable` writes them, and
:func:`read_image` reads the real file from either form.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Largest image decoded unless told otherwise (width x height; 150 MB as RGB): the shipped
``face_crop.max_image_pixels``."""

_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_PIL_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class UnreadableImageError(ValueError):
    """An image file or buffer that cannot be decoded."""


class ImageTooLargeError(UnreadableImageError):
    """An image whose header gives more pixels than the limit: it is never decoded."""


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` (a path, a file name or a message naming one) with every byte of a file name that
    is not UTF-8 (Python's surrogate escape) written as ``\\xNN``: safe in any UTF-8 log, table or
    file, and unchanged for UTF-8 names. :func:`real_path` finds the file again."""
    text = os.fspath(text)
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def real_path(path: str | os.PathLike[str]) -> str:
    """The file that ``path`` (a real path or its :func:`printable` form) names: the path itself
    when it exists or has no ``\\xNN`` escape, else the path with the escapes as the bytes they
    stand for."""
    text = os.fspath(path)
    if "\\x" not in text or os.path.lexists(text):
        return text
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match[1], 16)]), os.fsencode(text))
    return os.fsdecode(raw)


def check_header(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """Raise ``ImageTooLargeError`` when the header of the encoded image ``data`` gives more than
    ``max_pixels`` pixels, and warn, naming the file, when it holds several frames (only the first
    is decoded). Reads the header only; a header PIL cannot parse is left to the decoder."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                (width, height), frames = header.size, 1
                if getattr(header, "is_animated", False):
                    frames = int(getattr(header, "n_frames", 2))
    except Image.DecompressionBombError as error:  # over PIL's own limit: the size is in words
        found = _PIL_BOMB_PIXELS.search(str(error))
        pixels = int(found[1]) if found else None
        if pixels is None or pixels > max_pixels:
            size = f"{pixels:,} pixels" if pixels else "more pixels than PIL opens"
            raise ImageTooLargeError(
                f"{name}: {size}, over the limit of {max_pixels:,} (max_image_pixels); not decoded"
            ) from error
        return
    except Exception:  # noqa: BLE001 - not a header PIL knows: the decoder says what is wrong
        return
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} pixels = {width * height:,}, over the limit of "
            f"{max_pixels:,} (max_image_pixels); not decoded"
        )
    if frames > 1:
        logger.warning(
            "%s: %d frames (an animated or multi-page image); only the first is used", name, frames
        )


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


def decode_image(
    data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, TIFF, BMP...) to RGB uint8, once the header says
    the image has at most ``max_pixels`` pixels (:func:`check_header`)."""
    if not data:
        raise UnreadableImageError(f"{name}: empty file")
    check_header(data, name, max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise UnreadableImageError(f"{name}: not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file (its real path or the :func:`printable` one) to RGB uint8; raise
    ``UnreadableImageError`` naming the file (``ImageTooLargeError`` over ``max_pixels``)."""
    name = printable(path)
    try:
        data = Path(real_path(path)).read_bytes()
    except OSError as err:
        raise UnreadableImageError(f"{name}: {err.strerror or err}") from err
    return decode_image(data, name, max_pixels)


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
