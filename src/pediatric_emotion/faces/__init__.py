"""Face detection and cropping, shared by harmonization (training data) and prediction."""

from pediatric_emotion.faces.align import (
    aligned_crop,
    alignment_settings,
    crop_detected_face,
    crop_spec,
    eye_angle,
)
from pediatric_emotion.faces.crop import crop_face, square_box
from pediatric_emotion.faces.detection import FaceBox, FaceDetector

__all__ = [
    "FaceBox",
    "FaceDetector",
    "aligned_crop",
    "alignment_settings",
    "crop_detected_face",
    "crop_face",
    "crop_spec",
    "eye_angle",
    "square_box",
]
