"""Optional face alignment: rotate the face so its eyes are level and scale it so they lie a fixed
fraction of the crop apart (``face_crop.align``, ``face_crop.eye_distance``).

One similarity transform (rotation, uniform scale, shift) maps the picture onto the
``size`` x ``size`` crop: the eye line becomes horizontal, the eyes ``eye_distance * size``
pixels apart, and their midpoint lands at the crop's horizontal centre, at the height where the
eyes sit in an upright square crop with the same margin (:data:`EYE_LINE` of the face box's
height below its top). Pixels outside the picture repeat its border, as :func:`crop_face` pads.

:func:`crop_detected_face` is the one entry point every cropper uses (harmonization, predict,
the robustness stage): aligned when ``face_crop.align`` is true and the box has both eyes, else
exactly :func:`crop_face`. The TFLite spec records the settings (:func:`crop_spec`) so predict and
the app crop as training did.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from pediatric_emotion.faces.crop import crop_face
from pediatric_emotion.faces.detection import FaceBox

logger = logging.getLogger(__name__)

DEFAULT_EYE_DISTANCE = 0.31
"""Eye distance as a fraction of the crop side when ``face_crop.eye_distance`` is not given."""
EYE_LINE = 0.28
"""Where BlazeFace puts the eyes in its box on an upright face: this fraction of the box's height
below its top (measured on upright and tilted photos, 0.25 to 0.29)."""

Point = tuple[float, float]


def eye_angle(left_eye: Point, right_eye: Point) -> float:
    """Angle of the eye line in degrees, from the left eye (viewer's) to the right one, in image
    coordinates (y down): 0 when level, positive when the right eye is lower."""
    return math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))


def eye_position(size: int, margin: float, eye_line: float = EYE_LINE) -> Point:
    """Where the eyes' midpoint goes in a ``size`` crop: the horizontal centre, and the height of
    the eye line in an upright square crop with ``margin`` (continuous pixel coordinates)."""
    return size / 2.0, size * (margin + eye_line) / (1.0 + 2.0 * margin)


def alignment_matrix(
    left_eye: Point,
    right_eye: Point,
    *,
    size: int,
    margin: float,
    eye_distance: float,
    eye_line: float = EYE_LINE,
) -> np.ndarray:
    """The 2 x 3 similarity transform from picture to crop, in continuous pixel coordinates
    (a pixel's centre at index + 0.5, as BlazeFace's keypoints): eyes level, ``eye_distance *
    size`` apart, their midpoint at :func:`eye_position`."""
    distance = math.hypot(right_eye[0] - left_eye[0], right_eye[1] - left_eye[1])
    if distance <= 0:
        raise ValueError(f"the eyes must be apart, got {left_eye} and {right_eye}")
    scale = eye_distance * size / distance
    angle = math.radians(eye_angle(left_eye, right_eye))
    a, b = scale * math.cos(angle), scale * math.sin(angle)
    rotation = np.array([[a, b], [-b, a]])  # rotates the eye line onto the x axis, scaled
    midpoint = np.array([(left_eye[0] + right_eye[0]) / 2, (left_eye[1] + right_eye[1]) / 2])
    target = np.array(eye_position(size, margin, eye_line))
    return np.hstack([rotation, (target - rotation @ midpoint)[:, np.newaxis]])


def aligned_crop(
    image: np.ndarray,
    box: FaceBox,
    *,
    size: int,
    margin: float,
    eye_distance: float,
    eye_line: float = EYE_LINE,
) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``box``'s face with its eyes level and ``eye_distance *
    size`` pixels apart (:func:`alignment_matrix`), border replicated. A shrinking transform is
    warped at an integer multiple of ``size`` and area-averaged down, as :func:`crop_face`
    shrinks, so fine detail does not alias. ``box`` must carry both eyes."""
    if box.left_eye is None or box.right_eye is None:
        raise ValueError(f"aligned_crop needs a box with both eyes; this {box.method} box has none")
    matrix = alignment_matrix(
        box.left_eye,
        box.right_eye,
        size=size,
        margin=margin,
        eye_distance=eye_distance,
        eye_line=eye_line,
    )
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    factor = max(1, math.ceil(1.0 / scale - 1e-9))  # intermediate pixels per output pixel
    matrix = matrix * factor
    # cv2 indexes pixel centres at whole numbers: shift the continuous transform by half a pixel.
    matrix[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
    side = size * factor
    warped = cv2.warpAffine(
        image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if factor == 1:
        return warped
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


def alignment_settings(face_crop: Mapping[str, Any]) -> dict[str, float] | None:
    """``{"eye_distance", "eye_line"}`` when ``face_crop.align`` is true, None when it is false or
    absent. A non-boolean ``align`` or a fraction outside (0, 1) is a ValueError naming it."""
    align = face_crop.get("align", False)
    if align is None:
        return None
    if not isinstance(align, bool | np.bool_):
        raise ValueError(f"face_crop.align must be true or false, got {align!r}")
    if not align:
        return None
    settings = {}
    for key, default in (("eye_distance", DEFAULT_EYE_DISTANCE), ("eye_line", EYE_LINE)):
        value = face_crop.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ValueError(
                f"face_crop.{key} must be a fraction of the crop side in (0, 1), got {value!r}"
            )
        settings[key] = float(value)
    return settings


def crop_spec(face_crop: Mapping[str, Any]) -> dict[str, Any]:
    """What a TFLite spec records about cropping: ``size``, ``margin``, ``align``, with
    ``eye_distance`` and ``eye_line`` when aligned, and the recipe in words."""
    alignment = alignment_settings(face_crop)
    spec: dict[str, Any] = {
        "size": int(face_crop["size"]),
        "margin": float(face_crop["margin"]),
        "align": alignment is not None,
        "shape": "square around the detected face box, margin on each side as a fraction of "
        "the box's longer side, replicate padding outside the image",
    }
    if alignment is not None:
        spec.update(alignment)
        spec["shape"] = (
            "with both eyes found (BlazeFace keypoints 0 and 1, the viewer's left and right "
            "eye): a similarity transform (rotation, uniform scale, shift) that makes the eye "
            "line horizontal, puts the eyes eye_distance * size pixels apart and their midpoint "
            "at x = size / 2, y = size * (margin + eye_line) / (1 + 2 * margin); replicate "
            "padding outside the image. Without eyes (another detector): " + spec["shape"]
        )
    return spec


def crop_detected_face(image: np.ndarray, box: FaceBox, face_crop: Mapping[str, Any]) -> np.ndarray:
    """The crop of ``box`` as ``face_crop`` says (``size``, ``margin``, ``align``,
    ``eye_distance``): aligned when ``align`` is true and the box has both eyes, else
    :func:`crop_face` (the same bytes as before alignment existed when ``align`` is off)."""
    size, margin = int(face_crop["size"]), float(face_crop["margin"])
    alignment = alignment_settings(face_crop)
    if alignment is not None and box.left_eye is not None and box.right_eye is not None:
        return aligned_crop(image, box, size=size, margin=margin, **alignment)
    if alignment is not None:
        logger.debug("A %s box has no eyes: cropped without alignment", box.method)
    return crop_face(image, (box.x, box.y, box.w, box.h), size=size, margin=margin)
