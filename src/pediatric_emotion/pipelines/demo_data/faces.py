"""Synthetic faces: drawn, anti-aliased cartoon faces whose expression cues can be learned.

A face is drawn in its own coordinates: ``u`` across the face (-1 left edge, 1 right edge), ``v``
down the face (-1 top of the forehead, 1 chin) and a depth ``z`` used to turn the head (yaw).
Then it is scaled to pixels and rotated in the image plane (roll); ``scenes`` puts it in an
image. Expressions move the brows, eyelids and mouth (``expression_shape``); ``intensity`` blends
a shape from neutral (0) to its full form (1), so weak expressions are ambiguous. Children get
rounder faces, larger eyes and features set lower. Randomness comes only from the generators and
seeds they carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .drawing import coverage, ellipse, fill, scaled, stroke

# Emotions the renderer draws: the 7 target classes and contempt (a drop case in several sources).
EMOTIONS = ("neutral", "fear", "happy", "sad", "surprise", "anger", "disgust")
ALL_EXPRESSIONS = (*EMOTIONS, "contempt")

# Mouth variants: CAFE-style open/closed mouths and disgust with/without tongue.
MOUTH_VARIANTS = ("open", "closed", "tongue", "notongue")

_SKIN_PALETTE = np.array(
    [
        (246, 214, 192),
        (232, 190, 160),
        (204, 150, 112),
        (160, 108, 74),
        (112, 72, 48),
        (78, 50, 36),
    ],
    dtype=np.float32,
)
_HAIR_COLOURS = {
    "black": (28, 24, 24),
    "dark_brown": (62, 42, 30),
    "brown": (112, 76, 46),
    "blond": (206, 170, 108),
    "red": (150, 70, 36),
    "grey": (150, 148, 146),
}
_IRIS_COLOURS = ((70, 45, 30), (40, 28, 22), (70, 110, 150), (80, 110, 70), (110, 84, 50))
_HAIR_STYLES_BY_SEX = {
    "F": ("long", "long", "bun", "short", "curly"),
    "M": ("short", "short", "curly", "crop"),
}

# Expression shapes at full intensity, as offsets from the neutral face (face units). Keys:
# brow_y: brows up (+) or down (-); brow_inner / brow_outer: raise of the inner / outer brow end;
# brow_arch: extra arch; eye_open: upper lid opening (x); lower_lid: lower lid raised (squint, 0-1);
# mouth_w: width (x); curve: lift of the mouth corners (+ smile, - down-turned); open: lip gap;
# upper_raise: upper lip raised; press: lips pressed thin (0-1); asym: one corner lifted (contempt);
# teeth: upper/lower teeth shown; wrinkle: nose wrinkle; cheek: raised cheeks and folds; frown:
# vertical lines between the brows.
NEUTRAL_SHAPE: dict[str, float] = {
    "brow_y": 0.0,
    "brow_inner": 0.0,
    "brow_outer": 0.0,
    "brow_arch": 0.0,
    "eye_open": 1.0,
    "lower_lid": 0.0,
    "mouth_w": 1.0,
    "curve": 0.0,
    "open": 0.0,
    "upper_raise": 0.0,
    "press": 0.0,
    "asym": 0.0,
    "upper_teeth": 0.0,
    "lower_teeth": 0.0,
    "tongue": 0.0,
    "wrinkle": 0.0,
    "cheek": 0.0,
    "frown": 0.0,
}
_FULL_SHAPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {
        "curve": 0.11,
        "mouth_w": 1.28,
        "eye_open": 0.75,
        "lower_lid": 0.55,
        "cheek": 1.0,
        "brow_y": 0.01,
    },
    "sad": {
        "brow_inner": 0.11,
        "brow_outer": -0.05,
        "brow_y": 0.0,
        "curve": -0.09,
        "mouth_w": 0.88,
        "eye_open": 0.72,
        "press": 0.3,
    },
    "fear": {
        "brow_inner": 0.1,
        "brow_y": 0.07,
        "brow_arch": -0.03,
        "eye_open": 1.6,
        "mouth_w": 1.3,
        "open": 0.09,
        "curve": -0.03,
        "lower_teeth": 1.0,
    },
    "surprise": {"brow_y": 0.15, "brow_arch": 0.08, "eye_open": 1.75, "mouth_w": 0.6, "open": 0.24},
    "anger": {
        "brow_inner": -0.12,
        "brow_y": -0.04,
        "brow_outer": 0.02,
        "eye_open": 0.62,
        "lower_lid": 0.25,
        "mouth_w": 0.86,
        "curve": -0.03,
        "press": 1.0,
        "frown": 1.0,
    },
    "disgust": {
        "upper_raise": 0.06,
        "wrinkle": 1.0,
        "eye_open": 0.68,
        "lower_lid": 0.35,
        "brow_inner": -0.06,
        "brow_y": -0.03,
        "curve": -0.05,
        "asym": 0.025,
        "cheek": 0.4,
    },
    "contempt": {"asym": 0.14, "eye_open": 0.85, "press": 0.5, "brow_outer": 0.02},
}
# Cartoon emphasis: the geometric cues (brows, lids, mouth) move this many times as far as the
# table above says, so that expressions still read in a 32-64 px crop (a real face at that size
# shows them as a few pixels). Amounts in 0..1 (press, cheek, wrinkle, frown, teeth) are not scaled.
_EMPHASIS: dict[str, float] = {
    "brow_y": 1.2,  # higher and the raised brows vanish under a low fringe
    "brow_inner": 2.0,
    "brow_outer": 2.0,
    "brow_arch": 1.5,
    "eye_open": 1.5,
    "mouth_w": 1.5,
    "curve": 2.5,
    "open": 1.6,
    "upper_raise": 2.0,
    "asym": 2.0,
}
# Mouth variants change the full shape: open/closed mouths, disgust with the tongue out.
_VARIANT_SHAPES: dict[tuple[str, str], dict[str, float]] = {
    ("happy", "open"): {"open": 0.09, "upper_teeth": 1.0},
    ("happy", "closed"): {"open": 0.0},
    ("anger", "open"): {"open": 0.08, "press": 0.0, "upper_teeth": 1.0, "lower_teeth": 1.0},
    ("anger", "closed"): {"open": 0.0},
    ("fear", "closed"): {"open": 0.012, "lower_teeth": 0.0},
    ("sad", "open"): {"open": 0.06, "press": 0.0},
    ("neutral", "open"): {"open": 0.04},
    ("disgust", "tongue"): {"open": 0.07, "tongue": 1.0},
    ("disgust", "notongue"): {"open": 0.0},
    ("surprise", "closed"): {"open": 0.05},
}


@dataclass(frozen=True)
class Identity:
    """What stays the same across one person's images."""

    childness: float  # 0 adult .. 1 toddler: rounder face, bigger eyes, features lower
    skin: tuple[float, float, float]  # RGB
    hair: tuple[float, float, float]
    hair_style: str  # long | bun | short | curly | crop | bald
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothing: tuple[float, float, float]
    aspect: float  # face height / width
    eye_size: float  # multiplier
    eye_spacing: float  # multiplier
    mouth_width: float  # multiplier
    nose_length: float  # multiplier
    brow_weight: float  # brow thickness multiplier
    feature_shift: float = 0.0  # eyes, nose and mouth moved down (+) or up (-), face units
    hairline: float = -0.6  # where the fringe ends (face units, -1 top of the forehead)
    fringe_tilt: float = 0.0  # side-swept fringe: the hairline's slope across the face
    curtain: float = 0.0  # long hair falling over the sides of the face (0 none .. 0.3)
    glasses: bool = False
    beard: float = 0.0  # 0 none .. 1 full beard (adult men)
    hair_seed: int = 0  # draws the fringe's wave and parting, the same in every image
    resting: dict[str, float] = field(default_factory=dict)  # personal offsets of the neutral face


@dataclass(frozen=True)
class Expression:
    """One expression: an emotion (or contempt) at an intensity, with a mouth variant and a gaze."""

    emotion: str
    intensity: float = 1.0  # 0 neutral .. 1 full
    variant: str | None = None  # open | closed | tongue | notongue
    gaze: tuple[float, float] = (0.0, 0.0)  # pupil shift, -1..1 (x right, y down)


@dataclass(frozen=True)
class Pose:
    """Where the face sits in the image and how the head is turned."""

    cx: float  # face centre, fraction of the image width
    cy: float  # face centre, fraction of the image height
    height: float  # face height (forehead to chin), fraction of the image's shorter side
    roll: float = 0.0  # in-plane rotation, degrees
    yaw: float = 0.0  # head turn, degrees (+: the face turns towards the image's right)
    body_roll: float | None = None  # roll of the neck and shoulders; None: ``roll`` (all turns)


@dataclass(frozen=True)
class Hand:
    """A hand held over the mouth (palm on the mouth, fingers across the other cheek)."""

    side: int = 1  # the hand comes from the face's right (+1, image right) or left (-1)
    angle: float = 0.0  # fingers tilted from level, degrees (+: tips up)
    size: float = 1.0  # multiplier of the hand's size


@dataclass(frozen=True)
class PlacedFace:
    """A face to draw in a scene."""

    identity: Identity
    expression: Expression
    pose: Pose
    hand: Hand | None = None  # a hand over the mouth, drawn last


# --------------------------------------------------------------------------------------------
# random draws


def skin_colour(tone: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """Skin colour for a tone in 0 (lightest) .. 1 (darkest), with a small random tint."""
    pos = float(np.clip(tone, 0.0, 1.0)) * (len(_SKIN_PALETTE) - 1)
    low = int(math.floor(pos))
    high = min(low + 1, len(_SKIN_PALETTE) - 1)
    base = _SKIN_PALETTE[low] + (_SKIN_PALETTE[high] - _SKIN_PALETTE[low]) * (pos - low)
    tint = rng.normal(0.0, 5.0, 3)
    return tuple(float(c) for c in np.clip(base + tint, 20, 255))


def random_identity(
    rng: np.random.Generator,
    childness: float = 0.0,
    sex: str | None = None,
    tone: float | None = None,
    hair: tuple[str, ...] | None = None,
) -> Identity:
    """Draw a person: skin tone, hair, eye colour and face proportions.

    ``sex`` is F or M (random when None), ``tone`` the skin tone in 0..1 (random when None) and
    ``hair`` the hair colours to choose from (names of ``_HAIR_COLOURS``; by skin tone when None).
    """
    sex = sex or str(rng.choice(["F", "M"]))
    tone = float(rng.uniform(0.0, 1.0)) if tone is None else tone
    dark = tone > 0.55
    hair_names = (
        ["black", "dark_brown"] if dark else ["black", "dark_brown", "brown", "blond", "red"]
    )
    if childness == 0.0 and rng.random() < 0.12:
        hair_names = ["grey"]
    if hair is not None:
        hair_names = list(hair)
    hair_rgb = np.asarray(_HAIR_COLOURS[str(rng.choice(hair_names))], dtype=np.float32)
    hair_rgb = np.clip(hair_rgb + rng.normal(0, 6, 3), 0, 255)
    styles = list(_HAIR_STYLES_BY_SEX.get(sex, _HAIR_STYLES_BY_SEX["F"]))
    if sex == "M" and childness == 0.0:
        styles.append("bald")
    skin = skin_colour(tone, rng)
    lips = np.asarray(skin) * np.array([0.86, 0.6, 0.6]) + np.array([18, 0, 4])
    iris = _IRIS_COLOURS[int(rng.integers(0, 2 if dark else len(_IRIS_COLOURS)))]
    clothing = rng.uniform(30, 230, 3)
    style = str(rng.choice(styles))
    hairline = {"crop": -0.72, "short": -0.6, "curly": -0.55, "bun": -0.66, "long": -0.56}.get(
        style, -0.6
    )
    if style in ("long", "short", "curly") and rng.random() < 0.35:  # bangs
        hairline = float(rng.uniform(-0.5, -0.36))
    curtain = float(rng.uniform(0.08, 0.3)) if style == "long" and rng.random() < 0.6 else 0.0
    beard = (
        float(rng.uniform(0.3, 1.0))
        if sex == "M" and childness == 0 and rng.random() < 0.25
        else 0.0
    )
    resting = {
        "curve": float(rng.normal(0, 0.012)),
        "brow_y": float(rng.normal(0, 0.015)),
        "brow_inner": float(rng.normal(0, 0.012)),
        "eye_open": float(rng.normal(0, 0.06)),
    }
    return Identity(
        childness=float(np.clip(childness, 0.0, 1.0)),
        skin=skin,
        hair=tuple(float(c) for c in hair_rgb),
        hair_style=style,
        iris=tuple(float(c) for c in iris),
        lips=tuple(float(c) for c in np.clip(lips, 0, 255)),
        clothing=tuple(float(c) for c in clothing),
        aspect=float(rng.uniform(1.22, 1.38) - 0.16 * childness),
        eye_size=float(rng.uniform(0.9, 1.1)),
        eye_spacing=float(rng.uniform(0.94, 1.06)),
        mouth_width=float(rng.uniform(0.9, 1.1)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        brow_weight=float(rng.uniform(0.8, 1.25)),
        feature_shift=float(rng.uniform(-0.05, 0.05)),
        hairline=hairline + float(rng.uniform(-0.06, 0.06)),
        fringe_tilt=float(rng.uniform(-0.2, 0.2)),
        curtain=curtain,
        glasses=bool(rng.random() < (0.12 if childness < 0.5 else 0.05)),
        beard=beard,
        hair_seed=int(rng.integers(0, 2**31 - 1)),
        resting=resting,
    )


def expression_shape(expression: Expression, identity: Identity | None = None) -> dict[str, float]:
    """Shape parameters of an expression: neutral blended towards the full shape by intensity."""
    if expression.emotion not in _FULL_SHAPES:
        raise ValueError(f"unknown expression {expression.emotion!r}; known: {ALL_EXPRESSIONS}")
    if expression.variant is not None and expression.variant not in MOUTH_VARIANTS:
        raise ValueError(f"unknown mouth variant {expression.variant!r}; known: {MOUTH_VARIANTS}")
    full = {**NEUTRAL_SHAPE, **_FULL_SHAPES[expression.emotion]}
    if expression.variant is not None:
        full.update(_VARIANT_SHAPES.get((expression.emotion, expression.variant), {}))
    k = float(np.clip(expression.intensity, 0.0, 1.0))
    shape = {
        key: NEUTRAL_SHAPE[key] + (full[key] - NEUTRAL_SHAPE[key]) * k * _EMPHASIS.get(key, 1.0)
        for key in NEUTRAL_SHAPE
    }
    for key in ("upper_teeth", "lower_teeth", "tongue"):  # shown or not, not half
        shape[key] = 1.0 if full[key] > 0 and k >= 0.45 else 0.0
    if identity is not None:
        for key, offset in identity.resting.items():
            shape[key] += offset
    return shape


# --------------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True)
class _Frame:
    """Maps face coordinates (u, v, depth) to pixels: yaw, scale, roll, translation."""

    cx: float
    cy: float
    a: float  # half width, pixels
    b: float  # half height, pixels
    roll: float  # radians
    yaw: float  # radians

    def _place(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        dx, dy = self.a * u, self.b * v
        cos_r, sin_r = math.cos(self.roll), math.sin(self.roll)
        return np.stack([self.cx + dx * cos_r - dy * sin_r, self.cy + dx * sin_r + dy * cos_r], 1)

    def project(self, u: Any, v: Any, z: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) of face points turned by the yaw, and their depth after the
        turn (<= 0: on the far side). ``z`` is the points' depth (default: on a sphere)."""
        u = np.atleast_1d(np.asarray(u, np.float64))
        v = np.broadcast_to(np.asarray(v, np.float64), u.shape)
        z = np.sqrt(np.clip(1.0 - u**2, 0.02, 1.0)) if z is None else z
        z = np.broadcast_to(np.asarray(z, np.float64), u.shape)
        cos_y, sin_y = math.cos(self.yaw), math.sin(self.yaw)
        return self._place(u * cos_y + z * sin_y, v), -u * sin_y + z * cos_y

    def points(self, u: Any, v: Any, z: Any = None) -> np.ndarray:
        """Pixel coordinates of face points turned by the yaw."""
        return self.project(u, v, z)[0]

    def flat(self, u: Any, v: Any) -> np.ndarray:
        """Pixel coordinates of points that do not turn with the head (outline, hair, body)."""
        u = np.atleast_1d(np.asarray(u, np.float64)) + 0.12 * math.sin(self.yaw)
        return self._place(u, np.broadcast_to(np.asarray(v, np.float64), u.shape))

    def rotated(self, polygon: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """A polygon drawn around the origin, rotated by the roll and moved to ``centre``."""
        cos_r, sin_r = math.cos(self.roll), math.sin(self.roll)
        return polygon @ np.array([[cos_r, sin_r], [-sin_r, cos_r]]) + centre


def _layout(identity: Identity) -> dict[str, float]:
    """Where the features sit, for an identity's proportions (face units)."""
    c, shift = identity.childness, identity.feature_shift
    return {
        "eye_v": -0.1 + 0.12 * c + shift,
        "eye_u": (0.4 + 0.02 * c) * identity.eye_spacing,
        "eye_w": (0.28 + 0.05 * c) * identity.eye_size,
        "eye_h": (0.08 + 0.03 * c) * identity.eye_size,
        "brow_gap": 0.19 - 0.01 * c,
        "nose_v": (0.3 + 0.06 * c) * identity.nose_length**0.3 + shift,
        "mouth_v": 0.56 + 0.04 * c + shift * 0.6,
        "mouth_w": (0.3 - 0.04 * c) * identity.mouth_width,
        "taper": 0.32 - 0.2 * c,
    }


_TURNED = math.radians(35)  # beyond this head turn the near ear shows on the side of the face
_EYE_WHITE = (240.0, 238.0, 232.0)
_LID = (30.0, 22.0, 20.0)
_MOUTH_INSIDE = (70.0, 22.0, 28.0)
_TEETH = (236.0, 234.0, 224.0)
_TONGUE = (214.0, 96.0, 110.0)


@dataclass
class _Painter:
    """Draws the parts of one face on a canvas."""

    canvas: np.ndarray
    frame: _Frame
    identity: Identity
    shape: dict[str, float]
    geo: dict[str, float]

    @property
    def line(self) -> float:
        """Base line width, pixels."""
        return max(self.frame.b * 0.02, 0.9)

    def skin(self, factor: float) -> tuple[float, float, float]:
        return scaled(self.identity.skin, factor)

    def outline(self, n: int = 64) -> np.ndarray:
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        x, y = np.cos(t), np.sin(t)
        x = x * np.where(y > 0, 1.0 - self.geo["taper"] * y**2, 1.0 - 0.04 * y**2)
        return self.frame.flat(x * (0.94 + 0.06 * math.cos(self.frame.yaw)), y)

    def hair_back(self) -> None:
        style, hair, flat = self.identity.hair_style, self.identity.hair, self.frame.flat
        if style == "bald":
            return
        top = {"crop": 0.05, "short": 0.12, "curly": 0.2, "bun": 0.12, "long": 0.14}[style]
        fill(self.canvas, flat(*ellipse(0, -0.18, 1.08 + top * 0.4, 0.9 + top).T), hair)
        if style == "long":
            poly = np.array([(-1.12, -0.3), (1.12, -0.3), (1.28, 1.35), (-1.28, 1.35)])
            fill(self.canvas, flat(poly[:, 0], poly[:, 1]), hair)
        elif style == "bun":
            fill(self.canvas, flat(*ellipse(0, -1.12, 0.38, 0.3).T), hair)
        elif style == "curly":
            for angle in np.linspace(-2.6, -0.5, 7):
                cu, cv = 1.02 * math.cos(angle), -0.15 + 0.95 * math.sin(angle)
                fill(self.canvas, flat(*ellipse(cu, cv, 0.3, 0.25).T), scaled(hair, 1.08))

    def hair_front(self) -> None:
        style = self.identity.hair_style
        if style == "bald":
            return
        identity = self.identity
        rng = np.random.default_rng(identity.hair_seed)
        u = np.linspace(-1.02, 1.02, 17)
        edge = identity.hairline + identity.fringe_tilt * u + rng.uniform(-0.05, 0.05, u.size)
        edge = edge - 0.16 * u**2
        if style == "long":
            edge = edge + 0.08 * (np.abs(u) > 0.8)
        edge = edge - 0.08 * np.exp(-(((u - rng.uniform(-0.4, 0.4)) / 0.12) ** 2))  # parting
        top_u = np.linspace(1.05, -1.05, 17)
        top_v = -0.22 - 0.98 * np.sqrt(np.clip(1 - (top_u / 1.06) ** 2, 0, 1))
        poly = np.concatenate([self.frame.flat(u, edge), self.frame.flat(top_u, top_v)])
        fill(self.canvas, poly, identity.hair)
        if identity.curtain > 0:  # long hair over the sides of the face
            for s in (-1, 1):
                inner = 1.02 - identity.curtain * (1.0 + 0.3 * s * identity.fringe_tilt)
                v = np.linspace(edge[0 if s < 0 else -1], 0.75, 9)
                side_u = s * (inner + 0.12 * (v - v[0]) ** 2)
                lock = np.concatenate(
                    [self.frame.flat(side_u, v), self.frame.flat(np.full(9, s * 1.15), v[::-1])]
                )
                fill(self.canvas, lock, identity.hair)

    def body(self, frame: _Frame | None = None) -> None:
        """Neck and shoulders, in ``frame`` (the face's own when None: they roll with it)."""
        frame = frame or self.frame
        neck = np.array([(-0.42, 0.5), (0.42, 0.5), (0.48, 1.6), (-0.48, 1.6)])
        fill(self.canvas, frame.flat(neck[:, 0], neck[:, 1]), self.skin(0.85))
        shoulders = ellipse(0, 2.45, 2.3, 1.05, 48)
        fill(self.canvas, frame.flat(*shoulders.T), self.identity.clothing)

    def ears(self, front: bool) -> None:
        """Both ears behind the face outline (``front`` False), or the near ear of a turned head
        on the side of the face (``front`` True)."""
        frame = self.frame
        ev = (self.geo["eye_v"] + self.geo["nose_v"]) / 2
        turned = abs(frame.yaw) > _TURNED
        if front != turned:
            return
        for s in (-1, 1):
            if not turned:
                fill(
                    self.canvas,
                    frame.flat(*ellipse(s * 0.97, ev, 0.13, 0.24, 24).T),
                    self.skin(0.93),
                )
                continue
            centre, depth = frame.project(s * 0.97, ev, -0.3)
            if depth[0] <= 0:
                continue
            width = (0.05 + 0.1 * abs(math.sin(frame.yaw))) * frame.a
            ear = frame.rotated(ellipse(0.0, 0.0, width, 0.24 * frame.b, 24), centre[0])
            fill(self.canvas, ear, self.skin(0.93))
            fill(self.canvas, stroke(ear[4:16], self.line), self.skin(0.7), 0.6)

    def cheeks(self) -> None:
        strength = min(self.shape["cheek"], 1.0)
        if strength <= 0.1:
            return
        for s in (-1, 1):
            c = self.frame.points(s * 0.5, self.geo["nose_v"] + 0.02)[0]
            blush = ellipse(c[0], c[1], self.frame.a * 0.2, self.frame.b * 0.1, 20)
            fill(self.canvas, blush, (226, 120, 120), 0.12 * strength)

    def brow(self, side: int) -> None:
        geo, shape, frame = self.geo, self.shape, self.frame
        base = geo["eye_v"] - geo["brow_gap"] - shape["brow_y"] - geo["eye_h"] * 0.3
        inner_u, outer_u = side * 0.13, side * (geo["eye_u"] + geo["eye_w"] * 0.62)
        inner_v = base - shape["brow_inner"]
        outer_v = base + 0.03 - shape["brow_outer"]
        t = np.linspace(0, 1, 13)
        arch = (0.05 + shape["brow_arch"]) * np.sin(math.pi * np.clip(t * 1.1, 0, 1))
        pts, depth = frame.project(
            inner_u + (outer_u - inner_u) * t, inner_v + (outer_v - inner_v) * t - arch
        )
        if depth.mean() < 0.15:
            return
        width = frame.b * 0.055 * self.identity.brow_weight * (1.15 - 0.6 * t)
        bald = self.identity.hair_style == "bald"
        colour = (60.0, 45.0, 38.0) if bald else scaled(self.identity.hair, 0.7)
        fill(self.canvas, stroke(pts, width), colour)

    def eye(self, side: int, gaze: tuple[float, float]) -> None:
        geo, shape, frame, canvas = self.geo, self.shape, self.frame, self.canvas
        eu, ev, ew, eh = side * geo["eye_u"], geo["eye_v"], geo["eye_w"] / 2, geo["eye_h"]
        if frame.project(eu, ev)[1][0] < 0.18:
            return  # turned away
        t = np.linspace(-1, 1, 15)
        lower_lid = float(np.clip(shape["lower_lid"], 0, 1))
        up = eh * max(shape["eye_open"], 0.15)
        low = eh * 0.62 * (1.0 - 0.55 * lower_lid)
        u = eu + ew * t
        upper_v = ev - up * (1 - t**2) ** 0.85 - 0.075 * shape["brow_inner"] * side * t
        lower_v = ev + low * (1 - t**2) - 0.35 * eh * shape["lower_lid"] * (1 - t**2) ** 2
        upper, lower = frame.points(u, upper_v), frame.points(u, lower_v)
        white = np.concatenate([upper, lower[::-1]])
        inside = coverage(canvas.shape[:2], white)
        fill(canvas, white, _EYE_WHITE)
        radius = eh * 1.05 * frame.b
        squash = max(math.cos(frame.yaw), 0.4)
        centre = frame.points(
            eu + ew * 0.45 * gaze[0] + 0.06 * math.sin(frame.yaw), ev + eh * 0.25 * gaze[1]
        )[0]
        x, y = centre
        fill(canvas, ellipse(x, y, radius * squash, radius, 28), self.identity.iris, clip=inside)
        fill(
            canvas,
            ellipse(x, y, radius * 0.45 * squash, radius * 0.45, 20),
            (12, 10, 10),
            clip=inside,
        )
        glint = ellipse(x - radius * 0.3, y - radius * 0.35, radius * 0.18, radius * 0.18, 12)
        fill(canvas, glint, (250, 250, 250), 0.8, clip=inside)
        lid = max(frame.b * 0.03, 1.0)
        fill(canvas, stroke(upper, lid * (0.6 + 0.6 * (1 - t**2))), _LID)
        fill(canvas, stroke(lower, lid * 0.45), self.skin(0.6), 0.7)
        fold = max(shape["cheek"], lower_lid)
        if fold > 0.2:  # the squint fold under the eye
            fold_pts = frame.points(u[2:-2], lower_v[2:-2] + eh * 0.55)
            fill(canvas, stroke(fold_pts, lid * 0.6), self.skin(0.7), 0.6 * min(fold, 1.0))

    def nose(self) -> None:
        geo, shape, frame, canvas = self.geo, self.shape, self.frame, self.canvas
        nv, top = geo["nose_v"], geo["eye_v"] + 0.02
        width = max(frame.b * 0.018, 0.8)
        side = 1 if math.sin(frame.yaw) <= 0 else -1  # the bridge line on the shadowed side
        t = np.linspace(0, 1, 8)
        bridge = frame.points(side * (0.09 + 0.02 * t), top + (nv - top - 0.02) * t, 1 + 0.15 * t)
        fill(canvas, stroke(bridge, width), self.skin(0.72), 0.45)
        k = np.linspace(-1, 1, 11)
        tip = frame.points(0.13 * k, nv + 0.035 * (1 - k**2), 1.12 - 0.1 * k**2)
        fill(canvas, stroke(tip, width * 1.3), self.skin(0.72), 0.7)
        for s in (-1, 1):
            centre, depth = frame.project(s * 0.075, nv + 0.005, 1.05)
            if depth[0] > 0.1:
                r = frame.a * 0.035
                fill(canvas, ellipse(*centre[0], r * 1.2, r * 0.7, 14), self.skin(0.45))
        if shape["wrinkle"] > 0.05:  # disgust: wrinkles across the bridge
            wu = np.linspace(-0.1, 0.1, 7)
            for row in range(3):
                pts = frame.points(wu, top + 0.05 + 0.035 * row - 0.02 * np.cos(wu * 15), 1.03)
                fill(canvas, stroke(pts, width), self.skin(0.6), min(shape["wrinkle"], 1.0))
        if shape["frown"] > 0.05:  # anger: vertical lines between the brows
            fv = np.linspace(geo["eye_v"] - 0.2, geo["eye_v"] - 0.08, 5)
            for s in (-1, 1):
                pts = frame.points(np.full_like(fv, s * 0.05), fv, 1.02)
                fill(canvas, stroke(pts, width), self.skin(0.6), 0.8 * min(shape["frown"], 1.0))

    def mouth(self) -> None:
        geo, shape, frame, canvas = self.geo, self.shape, self.frame, self.canvas
        mv, mw = geo["mouth_v"], geo["mouth_w"] * shape["mouth_w"]
        t = np.linspace(-1, 1, 25)
        lift = shape["curve"] + np.where(t < 0, shape["asym"], -0.2 * shape["asym"])
        mid = mv - lift * np.abs(t) ** 1.6  # the corners rise (smile) or drop
        bulge = 1 - t**2
        opening = max(shape["open"], 0.0)
        up_in = mid - opening * 0.45 * bulge**0.6 - shape["upper_raise"] * bulge**0.8
        low_in = mid + opening * 0.55 * bulge**0.6
        thin = 1.0 - 0.65 * np.clip(shape["press"], 0, 1)
        cupid = 1.0 - 0.35 * np.exp(-((t / 0.14) ** 2))
        up_out = up_in - 0.045 * thin * bulge**0.55 * cupid
        low_out = low_in + 0.06 * thin * bulge**0.5
        u = mw * t
        z = np.sqrt(np.clip(1 - u**2, 0.02, 1)) * 1.02

        def band(upper_v: np.ndarray, lower_v: np.ndarray) -> np.ndarray:
            return np.concatenate([frame.points(u, upper_v, z), frame.points(u, lower_v, z)[::-1]])

        fill(canvas, band(up_out, low_out), self.identity.lips)
        if opening > 0.015:
            hole = band(up_in, low_in)
            inside = coverage(canvas.shape[:2], hole)
            fill(canvas, hole, _MOUTH_INSIDE)
            if shape["upper_teeth"] > 0:
                fill(canvas, band(up_in - 0.01, up_in + opening * 0.45), _TEETH, clip=inside)
            if shape["lower_teeth"] > 0:
                fill(canvas, band(low_in - opening * 0.3, low_in + 0.01), _TEETH, clip=inside)
            if shape["tongue"] > 0:
                centre = frame.points(0.0, mv + opening * 0.5 + 0.05, 1.05)[0]
                fill(canvas, ellipse(*centre, mw * 0.5 * frame.a, 0.09 * frame.b, 24), _TONGUE)
        else:
            fill(
                canvas,
                stroke(frame.points(u, mid, z), self.line * (0.5 + 0.7 * bulge)),
                (80, 30, 32),
                0.9,
            )
        if shape["cheek"] > 0.1:  # smile folds from the nose wings to the mouth corners
            for s in (-1, 1):
                fold = frame.points(
                    s * np.linspace(0.16, mw + 0.06, 6),
                    np.linspace(geo["nose_v"] + 0.03, mid[0] - 0.01, 6),
                )
                fill(
                    canvas,
                    stroke(fold, self.line * 0.8),
                    self.skin(0.72),
                    0.7 * min(shape["cheek"], 1.0),
                )
        if shape["press"] > 0.5 and opening <= 0.015:  # pressed lips: a chin bulge line
            cu = np.linspace(-0.12, 0.12, 7)
            chin = frame.points(cu, mv + 0.16 + 0.02 * (cu / 0.12) ** 2)
            fill(canvas, stroke(chin, self.line * 0.7), self.skin(0.75), 0.5 * shape["press"])

    def beard(self) -> None:
        """Stubble or a beard over the jaw and upper lip (drawn before the mouth)."""
        amount = self.identity.beard
        if amount <= 0:
            return
        geo = self.geo
        t = np.linspace(0, math.pi, 25)
        taper = geo["taper"]
        jaw_v = np.sin(t) * 0.98
        jaw_u = np.cos(t) * (1.0 - taper * jaw_v**2) * 0.97
        top = geo["nose_v"] + 0.06 + 0.12 * (1 - np.abs(np.cos(t)))
        top_u = np.cos(t) * 0.9
        poly = np.concatenate(
            [self.frame.points(jaw_u, jaw_v), self.frame.points(top_u[::-1], top[::-1])]
        )
        fill(self.canvas, poly, scaled(self.identity.hair, 0.8), 0.25 + 0.55 * amount)

    def glasses(self) -> None:
        if not self.identity.glasses:
            return
        geo, frame = self.geo, self.frame
        for s in (-1, 1):
            centre, depth = frame.project(s * geo["eye_u"], geo["eye_v"] + 0.01)
            if depth[0] < 0.2:
                continue
            rim = ellipse(
                0.0,
                0.0,
                geo["eye_w"] * 0.72 * frame.a * max(math.cos(frame.yaw), 0.4),
                geo["eye_h"] * 2.3 * frame.b,
                32,
            )
            rim = frame.rotated(rim, centre[0])
            fill(self.canvas, np.concatenate([rim, rim[:1]]), (200, 210, 220), 0.12)
            loop = np.concatenate([rim, rim[:2]])
            fill(self.canvas, stroke(loop, self.line * 1.2), (35, 32, 30), 0.9)
        bridge = frame.points(
            np.linspace(-0.14, 0.14, 5), geo["eye_v"] - 0.02 + 0.0 * np.linspace(-1, 1, 5)
        )
        fill(self.canvas, stroke(bridge, self.line), (35, 32, 30), 0.9)

    def hand(self, hand: Hand) -> None:
        """A hand over the mouth: forearm from below, palm on the mouth, four fingers across the
        other cheek and a thumb above them; shadowed on the face, creases between the fingers."""
        geo, frame, canvas = self.geo, self.frame, self.canvas
        s, k = (1 if hand.side >= 0 else -1), hand.size
        centre = np.array([s * 0.42, geo["mouth_v"] + 0.06])
        turn = math.radians(hand.angle) * s  # + tips up, from either side
        cos_t, sin_t = math.cos(turn), math.sin(turn)

        def place(u: Any, v: Any) -> np.ndarray:
            """Hand points (face units, around the palm's centre) to pixels, before the face."""
            du, dv = np.asarray(u, np.float64) * k, np.asarray(v, np.float64) * k
            ru, rv = du * cos_t - dv * sin_t, du * sin_t + dv * cos_t
            return frame.points(centre[0] + ru, centre[1] + rv, np.full(np.shape(ru), 1.2))

        colour = scaled(self.identity.skin, 1.03)
        crease = self.skin(0.68)
        line = max(frame.b * 0.018, 0.8)
        rows = np.array([-0.2, -0.08, 0.04, 0.16])  # index .. little finger, face units
        lengths = np.array([0.95, 1.02, 0.95, 0.8])
        width = 0.125 * frame.b * k
        palm = ellipse(0.04 * s, 0.0, 0.36, 0.3, 32)
        arm = np.array([(0.1, 0.15), (0.38, 0.1), (0.75, 1.9), (0.05, 1.95)]) * (s, 1)
        shadow = ellipse(-0.3 * s, 0.04, 0.78, 0.34, 32) + (-0.04 * s, 0.05)  # under palm, fingers
        fill(canvas, place(*shadow.T), self.skin(0.6), 0.35)
        fill(canvas, place(*arm.T), scaled(colour, 0.97))
        fill(canvas, place(*palm.T), colour)
        for row, length in zip(rows, lengths, strict=True):
            t = np.linspace(0.0, 1.0, 9)
            fu = s * (0.05 - length * t)
            fv = row - 0.04 * t * (1 - t)
            finger = place(fu, fv)
            fill(canvas, stroke(finger, width * (1.0 - 0.15 * t)), colour)
            tip = finger[-1]
            fill(canvas, ellipse(tip[0], tip[1], width * 0.45, width * 0.45, 16), colour)
            nail = place(fu[-1] + s * 0.06, fv[-1])[0]
            nail_shape = ellipse(nail[0], nail[1], width * 0.22, width * 0.2, 12)
            fill(canvas, nail_shape, (238, 200, 196), 0.5)
        for row, length in zip((rows[:-1] + rows[1:]) / 2, lengths[1:], strict=True):
            t = np.linspace(0.0, 0.9, 7)
            between = place(s * (0.05 - length * t), np.full_like(t, row))
            fill(canvas, stroke(between, line), crease, 0.7)
        t = np.linspace(0.0, 1.0, 7)
        thumb = place(s * (0.22 - 0.42 * t), -0.24 - 0.1 * t)
        fill(canvas, stroke(thumb, width * 1.1 * (1.0 - 0.2 * t)), colour)
        fill(canvas, stroke(thumb[1:], line), crease, 0.35)

    def round_off(self, face: np.ndarray, light: float, strength: float) -> None:
        """Shade the face like a ball lit from the direction ``light`` (radians) at a height
        given by ``strength`` (0 frontal light .. 0.9 side light): darker towards its edges."""
        frame = self.frame
        ys, xs = np.nonzero(face > 0)
        if ys.size == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xx - frame.cx, yy - frame.cy
        cos_r, sin_r = math.cos(frame.roll), math.sin(frame.roll)
        nu = (dx * cos_r + dy * sin_r) / frame.a
        nv = (-dx * sin_r + dy * cos_r) / frame.b
        nz = np.sqrt(np.clip(1 - nu**2 - nv**2, 0, 1))
        lx, ly = math.cos(light) * strength, math.sin(light) * strength
        lit = np.clip(nu * lx + nv * ly + nz * math.sqrt(1 - lx**2 - ly**2), 0, 1)
        factor = 0.55 + 0.5 * lit
        self.canvas[y0:y1, x0:x1] *= (1 + (factor - 1) * face[y0:y1, x0:x1])[..., None]


FaceBox = tuple[int, int, int, int]


def _frame(face: PlacedFace, size: tuple[int, int]) -> _Frame:
    """The face's frame in an image of ``size`` (width, height)."""
    width, height = size
    pose = face.pose
    b = pose.height * min(width, height) / 2
    return _Frame(
        pose.cx * width,
        pose.cy * height,
        b / face.identity.aspect,
        b,
        math.radians(pose.roll),
        math.radians(pose.yaw),
    )


def feature_points(face: PlacedFace, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Where ``draw_face`` puts the face's features in an image of ``size`` (width, height):
    ``left_eye`` and ``right_eye`` (the image's left and right, for an unturned head) and
    ``mouth`` centres, ``chin`` and ``forehead``, each as pixel (x, y)."""
    frame, geo = _frame(face, size), _layout(face.identity)
    points = frame.points(
        [-geo["eye_u"], geo["eye_u"], 0.0, 0.0, 0.0],
        [geo["eye_v"], geo["eye_v"], geo["mouth_v"], 1.0, -1.0],
    )
    names = ("left_eye", "right_eye", "mouth", "chin", "forehead")
    return {name: points[i] for i, name in enumerate(names)}


def draw_face(
    canvas: np.ndarray,
    face: PlacedFace,
    light: float = 0.0,
    side_light: float = 0.5,
) -> FaceBox:
    """Draw one face (with hair, neck and shoulders) into a float32 RGB canvas, in place.

    ``light`` is the direction the light comes from (radians), ``side_light`` how far to the side
    (0 frontal .. 0.9).
    Returns the face box ``(x, y, w, h)`` in pixels: forehead to chin and cheek to cheek (hair
    and ears excluded), clipped to the image.
    """
    height, width = canvas.shape[:2]
    identity, pose = face.identity, face.pose
    frame = _frame(face, (width, height))
    painter = _Painter(
        canvas, frame, identity, expression_shape(face.expression, identity), _layout(identity)
    )
    painter.hair_back()
    if pose.body_roll is None:
        painter.body()
    else:  # the head rolls on an upright (or less rolled) neck
        painter.body(replace(frame, roll=math.radians(pose.body_roll)))
    painter.ears(front=False)
    outline = painter.outline()
    fill(canvas, outline, identity.skin)
    painter.ears(front=True)
    painter.cheeks()
    for side in (-1, 1):
        painter.brow(side)
        painter.eye(side, face.expression.gaze)
    painter.nose()
    painter.beard()
    painter.mouth()
    painter.glasses()
    painter.round_off(coverage(canvas.shape[:2], outline), light, side_light)
    painter.hair_front()
    if face.hand is not None:
        painter.hand(face.hand)
    x0, y0 = np.maximum(outline.min(axis=0), 0.0)
    x1, y1 = np.minimum(outline.max(axis=0), (width - 1.0, height - 1.0))
    return int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))


def random_pose(
    rng: np.random.Generator,
    height: tuple[float, float],
    *,
    roll: float,
    yaw: float = 0.0,
    base_yaw: float = 0.0,
    centre_jitter: float = 0.06,
    cy: float = 0.5,
) -> Pose:
    """A pose: face height drawn from ``height``, roll within +-``roll``, yaw within
    ``base_yaw`` +- ``yaw`` (degrees), centre within +-``centre_jitter`` of (0.5, ``cy``)."""
    return Pose(
        cx=0.5 + float(rng.uniform(-centre_jitter, centre_jitter)),
        cy=cy + float(rng.uniform(-centre_jitter, centre_jitter)),
        height=float(rng.uniform(*height)),
        roll=float(rng.uniform(-roll, roll)),
        yaw=base_yaw + float(rng.uniform(-yaw, yaw)),
    )
