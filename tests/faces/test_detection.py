"""The detector on a real photo that ships in a PyPI wheel: skimage's astronaut (public domain).

Eileen Collins' face in ``skimage.data.astronaut()`` (512x512) lies roughly within x 175-275,
y 70-180 px: the box must land there, whichever detector finds it.
"""

import numpy as np
import pytest
from skimage import data

from pediatric_emotion.faces import FaceDetector

FACE_REGION = (175, 70, 275, 180)  # x0, y0, x1, y1 of the astronaut's face (eyes to chin)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _iou(box, region) -> float:
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    ix = max(0.0, min(x1, region[2]) - max(x0, region[0]))
    iy = max(0.0, min(y1, region[3]) - max(y0, region[1]))
    inter = ix * iy
    union = box.w * box.h + (region[2] - region[0]) * (region[3] - region[1]) - inter
    return inter / union


@pytest.mark.parametrize("model", ["short", "full"])
def test_blazeface_box_lands_on_the_astronaut_face(astronaut, model):
    box = FaceDetector(blazeface_model=model, fallback="none").detect(astronaut)
    assert box is not None and box.method == "blazeface"
    assert box.score > 0.7
    assert _iou(box, FACE_REGION) > 0.5


def test_haar_box_lands_on_the_astronaut_face(astronaut):
    box = FaceDetector(detector="haar").detect(astronaut)
    assert box is not None and box.method == "haar"
    assert _iou(box, FACE_REGION) > 0.5


def test_no_face_in_a_plain_image():
    flat = np.full((256, 256, 3), 127, np.uint8)
    assert FaceDetector().detect(flat) is None


def test_detects_a_face_in_a_gray_photo_made_rgb(astronaut):
    gray = np.repeat(astronaut.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    box = FaceDetector(fallback="none").detect(gray)
    assert box is not None and _iou(box, FACE_REGION) > 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"detector": "yunet"}, "blazeface or haar"),
        ({"fallback": "mtcnn"}, "haar or none"),
        ({"blazeface_model": "huge"}, "blazeface_model"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceDetector(**kwargs)
