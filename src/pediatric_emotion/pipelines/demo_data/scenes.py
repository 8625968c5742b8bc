"""Whole images: a background, zero or more faces, then light, blur and noise like a camera's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .drawing import ellipse, fill
from .faces import FaceBox, PlacedFace, draw_face

BACKGROUNDS = ("plain", "gradient", "clutter")


@dataclass(frozen=True)
class Scene:
    """Everything around the faces: background, light and camera defects."""

    background: str = "plain"  # plain | gradient | clutter (blurred random shapes)
    colours: tuple[tuple[float, float, float], ...] = ((200.0, 200.0, 200.0),)
    light_angle: float = 0.0  # direction the light comes from, radians
    light_strength: float = 0.0  # 0 flat .. ~0.5 strong gradient across the image
    side_light: float = 0.5  # how far to the side the light on the faces is (0 frontal .. 0.9)
    unevenness: float = 0.0  # smooth, patchy light over the image (0 none .. ~0.1)
    blur: float = 0.0  # Gaussian blur sigma, pixels
    noise: float = 0.0  # Gaussian noise sigma, gray levels
    seed: int = 0  # draws the noise and the patchy light (and the clutter, see backdrop_seed)
    backdrop_seed: int | None = None  # draws the clutter; None: ``seed`` (one room, many frames)


@dataclass(frozen=True)
class Rendered:
    """A rendered image (RGB uint8) and the box (x, y, w, h) of each face in it."""

    image: np.ndarray
    boxes: tuple[FaceBox, ...]


def random_scene(
    rng: np.random.Generator,
    background: str,
    colours: tuple[tuple[float, float, float], ...] | None = None,
    *,
    light: float,
    blur: float,
    noise: float,
) -> Scene:
    """A scene: background colours (random when None), light direction, and light strength,
    blur and noise drawn up to the given maxima."""
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; known: {BACKGROUNDS}")
    if colours is None:
        count = 1 if background == "plain" else 2
        colours = tuple(tuple(float(c) for c in rng.uniform(40, 235, 3)) for _ in range(count))
    return Scene(
        background=background,
        colours=colours,
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, light)),
        side_light=float(rng.uniform(0.1, 0.85)),
        unevenness=float(rng.uniform(0.02, 0.08)),
        blur=float(rng.uniform(0.0, blur)),
        noise=float(rng.uniform(0.0, noise)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def draw_background(size: tuple[int, int], scene: Scene) -> np.ndarray:
    """A float32 RGB background of ``size`` (width, height)."""
    width, height = size
    first = np.asarray(scene.colours[0], np.float32)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = first
    if scene.background != "plain" and len(scene.colours) > 1:
        second = np.asarray(scene.colours[1], np.float32)
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        canvas[:] = first + (second - first) * ramp
    if scene.background == "clutter":
        rng = np.random.default_rng(
            scene.seed if scene.backdrop_seed is None else scene.backdrop_seed
        )
        for _ in range(int(rng.integers(3, 9))):
            colour = rng.uniform(20, 240, 3)
            if rng.random() < 0.5:
                x, y = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.2, 1.0) * height
                w, h = rng.uniform(0.1, 0.6) * width, rng.uniform(0.1, 0.6) * height
                shape = np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
            else:
                cx, cy = rng.uniform(0, width), rng.uniform(0, height)
                rx, ry = rng.uniform(0.04, 0.25) * width, rng.uniform(0.04, 0.25) * height
                shape = ellipse(cx, cy, rx, ry)
            fill(canvas, shape, colour, float(rng.uniform(0.5, 1.0)))
        canvas[:] = cv2.GaussianBlur(canvas, (0, 0), max(1.0, 0.01 * width))
    return canvas


def _finish(canvas: np.ndarray, scene: Scene) -> np.ndarray:
    """Light gradient, patchy light, blur and noise, then rounding to uint8."""
    height, width = canvas.shape[:2]
    if scene.light_strength > 0:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        along = (xx / width - 0.5) * math.cos(scene.light_angle) + (yy / height - 0.5) * math.sin(
            scene.light_angle
        )
        canvas *= (1.0 + scene.light_strength * 1.6 * along)[..., None]
    if scene.unevenness > 0:
        coarse = np.random.default_rng(scene.seed + 2).normal(0.0, 1.0, (4, 4)).astype(np.float32)
        patches = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        canvas *= (1.0 + scene.unevenness * patches)[..., None]
    if scene.blur > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), scene.blur)
    if scene.noise > 0:
        rng = np.random.default_rng(scene.seed + 1)
        canvas = canvas + rng.normal(0.0, scene.noise, canvas.shape).astype(np.float32)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def render(size: tuple[int, int], faces: Sequence[PlacedFace], scene: Scene) -> Rendered:
    """Render faces (possibly none) on a scene, at ``size`` (width, height)."""
    canvas = draw_background(size, scene)
    boxes = tuple(
        draw_face(canvas, face, light=scene.light_angle, side_light=scene.side_light)
        for face in faces
    )
    return Rendered(_finish(canvas, scene), boxes)
