"""Face detection and cropping, shared by harmonization (training data) and prediction."""

from pediatric_emotion.faces.crop import crop_face, square_box
from pediatric_emotion.faces.detection import FaceBox, FaceDetector

__all__ = ["FaceBox", "FaceDetector", "crop_face", "square_box"]
