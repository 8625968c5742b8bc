"""The face renderer: each expression changes the face, intensity blends it from neutral."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pediatric_emotion.pipelines.demo_data import faces
from pediatric_emotion.pipelines.demo_data.faces import (
    ALL_EXPRESSIONS,
    EMOTIONS,
    NEUTRAL_SHAPE,
    Expression,
    PlacedFace,
    Pose,
)
from pediatric_emotion.pipelines.demo_data.scenes import Scene, random_scene, render

SIZE = (120, 150)
POSE = Pose(cx=0.5, cy=0.5, height=0.6)
SCENE = Scene("plain", ((190.0, 190.0, 200.0),))


def identity(childness: float = 0.0, seed: int = 3) -> faces.Identity:
    return faces.random_identity(np.random.default_rng(seed), childness)


def draw(expression: Expression, who: faces.Identity | None = None, pose: Pose = POSE):
    return render(SIZE, [PlacedFace(who or identity(), expression, pose)], SCENE)


def test_each_expression_draws_a_different_face():
    pictures = {e: draw(Expression(e, 1.0)).image.astype(float) for e in ALL_EXPRESSIONS}
    for first, second in itertools.combinations(ALL_EXPRESSIONS, 2):
        difference = np.abs(pictures[first] - pictures[second]).mean()
        assert difference > 0.3, f"{first} and {second} look the same"


def test_intensity_zero_is_the_neutral_face_and_intensity_grows_the_change():
    neutral = draw(Expression("neutral", 1.0)).image.astype(float)
    for emotion in EMOTIONS:
        assert (draw(Expression(emotion, 0.0)).image == neutral).all()
        weak = np.abs(draw(Expression(emotion, 0.35)).image - neutral).mean()
        full = np.abs(draw(Expression(emotion, 1.0)).image - neutral).mean()
        assert emotion == "neutral" or full > weak


def test_expression_shape_blends_from_neutral():
    for emotion in ALL_EXPRESSIONS:
        assert faces.expression_shape(Expression(emotion, 0.0)) == NEUTRAL_SHAPE
    happy = faces.expression_shape(Expression("happy", 1.0))
    sad = faces.expression_shape(Expression("sad", 1.0))
    surprise = faces.expression_shape(Expression("surprise", 1.0))
    anger = faces.expression_shape(Expression("anger", 1.0))
    assert happy["curve"] > 0 > sad["curve"]  # smile up, sad corners down
    assert sad["brow_inner"] > 0 > anger["brow_inner"]  # inner brows raised / lowered
    assert surprise["eye_open"] > 1 > anger["eye_open"] and surprise["open"] > 0.1


def test_unknown_expression_or_mouth_variant_is_refused():
    with pytest.raises(ValueError, match="grumpy"):
        faces.expression_shape(Expression("grumpy", 1.0))
    with pytest.raises(ValueError, match="sideways"):
        faces.expression_shape(Expression("happy", 1.0, "sideways"))


def test_same_inputs_same_pixels_and_the_box_holds_the_face():
    first, second = draw(Expression("fear", 0.7)), draw(Expression("fear", 0.7))
    assert (first.image == second.image).all() and first.boxes == second.boxes
    ((x, y, w, h),) = first.boxes
    assert first.image.shape == (SIZE[1], SIZE[0], 3) and first.image.dtype == np.uint8
    assert abs(h - POSE.height * SIZE[0]) <= 2  # face height: a share of the shorter side
    assert abs((x + w / 2) - SIZE[0] / 2) <= 2 and abs((y + h / 2) - SIZE[1] / 2) <= 2


def test_children_are_drawn_with_rounder_faces():
    adult, child = identity(0.0), identity(1.0)
    assert child.aspect < adult.aspect
    ((_, _, adult_w, adult_h),) = draw(Expression("neutral"), adult).boxes
    ((_, _, child_w, child_h),) = draw(Expression("neutral"), child).boxes
    assert child_w / child_h > adult_w / adult_h


def test_turning_and_rolling_the_head_moves_the_features():
    straight = draw(Expression("happy")).image.astype(float)
    turned = draw(Expression("happy"), pose=Pose(0.5, 0.5, 0.6, yaw=30)).image
    rolled = draw(Expression("happy"), pose=Pose(0.5, 0.5, 0.6, roll=10)).image
    assert np.abs(straight - turned).mean() > 1 and np.abs(straight - rolled).mean() > 1


def test_scenes_vary_and_a_scene_without_faces_has_no_box():
    rng = np.random.default_rng(0)
    scene = random_scene(rng, "clutter", light=0.4, blur=1.0, noise=6.0)
    empty = render(SIZE, [], scene)
    assert empty.boxes == () and empty.image.std() > 5
    with pytest.raises(ValueError, match="wallpaper"):
        random_scene(rng, "wallpaper", light=0.4, blur=1.0, noise=6.0)
