"""Anti-aliased, sub-pixel drawing on float32 RGB canvases (values 0-255), with OpenCV.

Shapes are polygons of float pixel coordinates, shape (N, 2) as (x, y). Every fill works on the
polygon's bounding box only, so that many small shapes on one image stay cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

Colour = tuple[float, float, float] | Sequence[float] | np.ndarray

_SHIFT = 4  # sub-pixel bits for cv2.fillPoly


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    """Polygon of an axis-aligned ellipse."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def stroke(points: np.ndarray, widths: np.ndarray | float) -> np.ndarray:
    """Polygon of a polyline drawn with a (per-point) width: both offset sides joined."""
    points = np.asarray(points, np.float64)
    widths = np.broadcast_to(np.asarray(widths, np.float64), (len(points),))
    tangent = np.gradient(points, axis=0)
    tangent = tangent / np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = (widths / 2.0)[:, None]
    return np.concatenate([points + normal * half, (points - normal * half)[::-1]])


def scaled(colour: Colour, factor: float) -> tuple[float, float, float]:
    """A colour darkened (factor < 1) or lightened (> 1), clipped to 0-255."""
    r, g, b = (float(np.clip(c * factor, 0, 255)) for c in colour)
    return r, g, b


def _box_mask(
    shape: tuple[int, int], polygon: np.ndarray
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Coverage (0-1) of a polygon over its bounding box clipped to the image, and that box."""
    height, width = shape
    x0 = max(int(math.floor(polygon[:, 0].min())) - 2, 0)
    y0 = max(int(math.floor(polygon[:, 1].min())) - 2, 0)
    x1 = min(int(math.ceil(polygon[:, 0].max())) + 3, width)
    y1 = min(int(math.ceil(polygon[:, 1].max())) + 3, height)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    points = np.round((polygon - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return mask.astype(np.float32) / 255.0, (x0, y0, x1, y1)


def coverage(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Image-sized anti-aliased coverage (0-1) of a polygon, e.g. to clip other fills to it."""
    full = np.zeros(shape, np.float32)
    found = _box_mask(shape, polygon)
    if found is not None:
        mask, (x0, y0, x1, y1) = found
        full[y0:y1, x0:x1] = mask
    return full


def fill(
    canvas: np.ndarray,
    polygon: np.ndarray,
    colour: Colour,
    alpha: float = 1.0,
    clip: np.ndarray | None = None,
) -> None:
    """Blend a filled polygon into the canvas, in place; ``clip`` (image-sized 0-1) limits it."""
    found = _box_mask(canvas.shape[:2], polygon)
    if found is None:
        return
    mask, (x0, y0, x1, y1) = found
    weight = mask * alpha
    if clip is not None:
        weight = weight * clip[y0:y1, x0:x1]
    roi = canvas[y0:y1, x0:x1]
    roi += (np.asarray(colour, np.float32) - roi) * weight[..., None]
