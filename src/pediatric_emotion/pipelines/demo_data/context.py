"""What every layout writer shares: the look, a source's context, and helpers that draw people,
poses and scenes or encode files."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from pediatric_emotion.images import decode_image, encode_image

from . import faces
from .faces import Expression, Identity, PlacedFace, Pose
from .scenes import Rendered, Scene, random_scene, render

UNREADABLE_BYTES = 100  # an unreadable image keeps only this many leading bytes of its file


@dataclass(frozen=True)
class Look:
    """Expression strength and nuisance ranges shared by all sources (``demo_data.faces``)."""

    intensity: tuple[float, float] = (0.35, 1.0)
    roll: float = 12.0
    yaw: float = 15.0
    light: float = 0.4
    blur: float = 1.0
    noise: float = 6.0
    jpeg_quality: tuple[int, int] = (70, 95)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Look:
        """Build from the ``faces`` parameters."""
        low, high = params["intensity"]
        q_low, q_high = params["jpeg_quality"]
        return cls(
            intensity=(float(low), float(high)),
            roll=float(params["roll_deg"]),
            yaw=float(params["yaw_deg"]),
            light=float(params["light"]),
            blur=float(params["blur"]),
            noise=float(params["noise"]),
            jpeg_quality=(int(q_low), int(q_high)),
        )

    def studio(self) -> Look:
        """The calmer look of posed, studio-lit sets: less roll, turn, blur and noise."""
        return replace(
            self,
            roll=self.roll * 0.3,
            yaw=self.yaw * 0.3,
            light=self.light * 0.5,
            blur=self.blur * 0.4,
            noise=self.noise * 0.4,
        )


@dataclass(frozen=True)
class WrittenImage:
    """An image a writer saved: its path (relative to the source root), file bytes, the emotion
    shown, its JPEG quality and its face box (x, y, w, h)."""

    path: str
    data: bytes
    emotion: str
    quality: int
    box: tuple[int, int, int, int] | None = None


@dataclass
class SourceFiles:
    """What a writer returns: files by relative path, and images other sources may copy."""

    files: dict[str, bytes] = field(default_factory=dict)
    shared: list[WrittenImage] = field(default_factory=list)


@dataclass
class SourceContext:
    """A source's parameters, the shared look and the source's own random generator."""

    name: str
    params: Mapping[str, Any]
    look: Look
    scale: float
    rng: np.random.Generator
    seed: int = 0  # the run's seed, for side generators (``side_rng``)

    def side_rng(self, purpose: str) -> np.random.Generator:
        """A generator of its own for one ``purpose`` (e.g. ``planted``): drawing from it leaves
        the source's main stream, and so every other file, unchanged."""
        keys = (zlib.crc32(self.name.encode("utf-8")), zlib.crc32(purpose.encode("utf-8")))
        return np.random.default_rng([int(self.seed), *keys])

    def count(self, key: str) -> int:
        """A count from ``counts``, multiplied by ``scale`` (at least 1 unless it is 0)."""
        value = int(self.params["counts"][key])
        return 0 if value <= 0 else max(1, int(round(value * self.scale)))

    def drops(self, key: str) -> int:
        """How many of a deliberate drop case to plant (``drop_cases``; not scaled)."""
        return int(self.params.get("drop_cases", {}).get(key, 0))

    def size(self, key: str = "size") -> tuple[int, int]:
        """An image size (width, height) parameter; a single number means a square."""
        value = self.params[key]
        if isinstance(value, (int, float)):
            return int(value), int(value)
        return int(value[0]), int(value[1])

    def option(self, key: str) -> Any:
        """Any other parameter of the source."""
        return self.params[key]

    def intensity(self, low: float | None = None) -> float:
        """An expression intensity from the look's range (or from ``low`` up)."""
        lo, hi = self.look.intensity
        return float(self.rng.uniform(lo if low is None else max(low, lo), hi))

    def quality(self) -> int:
        """A JPEG quality from the look's range."""
        lo, hi = self.look.jpeg_quality
        return int(self.rng.integers(lo, hi + 1))

    def jpeg(self, image: np.ndarray, quality: int | None = None) -> bytes:
        """JPEG bytes of an RGB (or gray) image."""
        return encode_image(image, ".jpg", self.quality() if quality is None else quality)


# ------------------------------------------------------------------------------------------------
# helpers


def pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    """One item, uniformly."""
    return items[int(rng.integers(0, len(items)))]


def balanced(rng: np.random.Generator, labels: Sequence[str], n: int) -> list[str]:
    """``n`` labels, as even as possible over ``labels``, shuffled."""
    out = [labels[i % len(labels)] for i in range(n)]
    return [out[i] for i in rng.permutation(n)]


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A CSV file (comma-separated, ``\\n`` line ends, quoted only where needed), UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def gray(image: np.ndarray) -> np.ndarray:
    """An RGB image as one gray channel."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def age_childness(age: float) -> float:
    """Child proportions by age: 1 at 2 years, fading to about 0 at 18."""
    return float(np.clip((18.0 - age) / 16.0, 0.0, 1.0))


def unreadable(data: bytes) -> bytes:
    """A truncated copy of an image file that no decoder can read."""
    return data[:UNREADABLE_BYTES]


def studio_scene(
    ctx: SourceContext, colour: tuple[float, float, float], look: Look, jitter: float = 6.0
) -> Scene:
    """A studio backdrop: one colour (slightly tinted per photo), the look's light and defects."""
    tinted = tuple(
        float(c) for c in np.clip(np.asarray(colour) + ctx.rng.normal(0, jitter, 3), 0, 255)
    )
    return random_scene(
        ctx.rng, "plain", (tinted,), light=look.light, blur=look.blur, noise=look.noise
    )


def wild_scene(ctx: SourceContext, look: Look) -> Scene:
    """An in-the-wild background: a random gradient or clutter, the look's light and defects."""
    kind = pick(ctx.rng, ("gradient", "clutter", "clutter"))
    return random_scene(ctx.rng, kind, light=look.light, blur=look.blur, noise=look.noise)


def random_pose(
    ctx: SourceContext,
    look: Look,
    height: tuple[float, float],
    *,
    base_yaw: float = 0.0,
    centre_jitter: float = 0.05,
    cy: float = 0.5,
) -> Pose:
    """A pose with the look's roll and turn (around ``base_yaw``), face height in ``height``."""
    return faces.random_pose(
        ctx.rng,
        height,
        roll=look.roll,
        yaw=look.yaw,
        base_yaw=base_yaw,
        centre_jitter=centre_jitter,
        cy=cy,
    )


def render_one(
    size: tuple[int, int], identity: Identity, expression: Expression, pose: Pose, scene: Scene
) -> Rendered:
    """An image of one face."""
    return render(size, [PlacedFace(identity, expression, pose)], scene)


def person(ctx: SourceContext, child_share: float = 0.0, **kwargs: Any) -> Identity:
    """A random adult, or with probability ``child_share`` a child of any age."""
    level = float(ctx.rng.uniform(0.3, 1.0)) if ctx.rng.random() < child_share else 0.0
    return faces.random_identity(ctx.rng, level, **kwargs)


def unique_ids(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    """``n`` distinct sorted integers in [low, high] (the range grows when too small)."""
    high = max(high, low + n - 1)
    return sorted(int(v) for v in rng.choice(np.arange(low, high + 1), size=n, replace=False))


def choose(rng: np.random.Generator, items: Sequence[Any], n: int) -> list[Any]:
    """``n`` distinct items (all of them when there are fewer)."""
    n = min(n, len(items))
    return [items[int(i)] for i in rng.choice(len(items), size=n, replace=False)] if n else []


COPY_QUALITIES = (97, 98, 99)  # JPEG qualities of planted copies: another quality, same pixels


def reencode(ctx: SourceContext, original: WrittenImage) -> bytes:
    """The same picture as new JPEG bytes: decoded and encoded again at another (high) quality,
    so that the copy's pixels, and so its detected face box and crop, stay those of the original.
    """
    image = decode_image(original.data)
    qualities = [q for q in COPY_QUALITIES if q != original.quality]
    out = encode_image(image, ".jpg", int(pick(ctx.rng, qualities)))
    if out == original.data:  # not seen in practice: JPEG re-encoding changes the bytes
        raise ValueError(f"{ctx.name}: re-encoding {original.path} gave the same bytes")
    return out
