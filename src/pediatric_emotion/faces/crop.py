"""Square face crops with a margin, padded at the image border, resized to the model's input."""

from __future__ import annotations

import cv2
import numpy as np


def square_box(x: float, y: float, w: float, h: float, margin: float) -> tuple[int, int, int]:
    """Square around a box: (left, top, side), the box's longer side plus ``margin`` on each side.

    ``margin`` is a fraction of the longer side added on every side (0.2: the square is 1.4 times
    the box). The square may extend past the image; ``crop_face`` pads it.
    """
    if w <= 0 or h <= 0:
        raise ValueError(f"face box must have a positive size, got w={w}, h={h}")
    side = max(w, h) * (1.0 + 2.0 * margin)
    center_x, center_y = x + w / 2.0, y + h / 2.0
    side_px = max(1, round(side))
    return round(center_x - side_px / 2.0), round(center_y - side_px / 2.0), side_px


def crop_face(
    image: np.ndarray, box: tuple[float, float, float, float], size: int, margin: float
) -> np.ndarray:
    """Crop the square around ``box`` (x, y, w, h), replicate-pad past the border, resize to
    ``size`` x ``size``. Returns an array with the image's channels."""
    left, top, side = square_box(*box, margin=margin)
    height, width = image.shape[:2]
    pad_left, pad_top = max(0, -left), max(0, -top)
    pad_right, pad_bottom = max(0, left + side - width), max(0, top + side - height)
    if pad_left or pad_top or pad_right or pad_bottom:
        image = cv2.copyMakeBorder(
            image, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE
        )
        left, top = left + pad_left, top + pad_top
    square = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)
