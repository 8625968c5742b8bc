"""Phone-camera corruptions of a picture, ImageNet-C style, for the robustness evaluation.

Hendrycks & Dietterich (2019, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ImageNet-C) corrupt every test image with 15 corruptions at five severities and
report the mean corruption error (mCE). This module keeps their recipe (five fixed severities per
corruption, one exact setting each, seeded randomness) and picks the corruptions a phone camera
pointed at a child's face meets:

==================  ===================================================================
corruption          phone-camera condition
==================  ===================================================================
gaussian_blur       hand shake, a soft lens, a smudged front camera
motion_blur         a moving child or phone (horizontal streak)
defocus_blur        the camera focused off the face
jpeg                compression of the app's frame pipeline
low_light           an indoor room at night: dark (gamma) with high-ISO sensor noise
gaussian_noise      sensor noise
brightness          overexposure, a window behind the phone
contrast            haze, glare, a flat low-contrast exposure
rotation            head tilt or camera roll (the whole picture rotated about its centre)
small_face          a face far from the camera: downscaled then upscaled to the same size
occlusion_mouth     a hand or a dummy over the mouth (skin-coloured ellipse)
occlusion_eyes      hair, sunglasses, a hand over the eyes (dark band)
==================  ===================================================================

:data:`CORRUPTIONS` keeps this order (the order of the tables and plots). Severities 1..5 go from
mild to severe; :attr:`Corruption.levels` holds the parameter of each (ImageNet-C's own values
where the corruption is one of theirs: Gaussian/defocus blur, JPEG, Gaussian noise, brightness,
contrast). Pixel quantities (blur sigma, streak length, disk radius) are stated for a 224-px
picture and scaled by the image's shorter side / 224, so the same severity looks alike on a 64-px
crop and on a whole photograph; kernels stay odd and at least 3 px. The pixel operations come from
albumentations 2.0.8 (fixed ``min == max`` ranges, seeded through ``Compose(seed=...)``); the
occlusions are plain OpenCV drawing inside the face box.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

SEVERITIES = (1, 2, 3, 4, 5)
"""ImageNet-C's five severities, mild to severe."""

REFERENCE_SIDE = 224
"""The shorter side (px) that pixel quantities in :attr:`Corruption.levels` are stated for."""


@dataclass(frozen=True)
class Corruption:
    """One corruption: its five severity parameters and where they come from."""

    name: str
    description: str  # one line, for docs and the report
    levels: tuple  # the parameter of severity 1..5 (mild -> severe)
    needs_face_box: bool  # the occlusions are placed in the face box
    library: str  # "albumentations", or "opencv" where it is plain drawing


_ALBU = "albumentations"

CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian_blur",
            "Gaussian blur, sigma 1-6 px at 224 px (ImageNet-C)",
            (1.0, 2.0, 3.0, 4.0, 6.0),
            False,
            _ALBU,
        ),
        Corruption(
            "motion_blur",
            "horizontal motion blur, streak length 7-29 px at 224 px",
            (7, 11, 15, 21, 29),
            False,
            _ALBU,
        ),
        Corruption(
            "defocus_blur",
            "defocus (disk) blur, radius 3-10 px at 224 px (ImageNet-C)",
            (3, 4, 6, 8, 10),
            False,
            _ALBU,
        ),
        Corruption(
            "jpeg",
            "JPEG compression, quality 25-7 (ImageNet-C)",
            (25, 18, 15, 10, 7),
            False,
            _ALBU,
        ),
        Corruption(
            "low_light",
            "low light, gamma 1.5-3.5 darkening plus sensor noise of std 0.01 x gamma",
            (1.5, 2.0, 2.5, 3.0, 3.5),
            False,
            _ALBU,
        ),
        Corruption(
            "gaussian_noise",
            "Gaussian sensor noise, std 0.08-0.38 of the full range (ImageNet-C)",
            (0.08, 0.12, 0.18, 0.26, 0.38),
            False,
            _ALBU,
        ),
        Corruption(
            "brightness",
            "brightness, +0.1-0.5 of the full range added (ImageNet-C amounts)",
            (0.1, 0.2, 0.3, 0.4, 0.5),
            False,
            _ALBU,
        ),
        Corruption(
            "contrast",
            "contrast scaled about the grey mean by 0.4-0.05 (ImageNet-C)",
            (0.4, 0.3, 0.2, 0.1, 0.05),
            False,
            _ALBU,
        ),
        Corruption(
            "rotation",
            "in-plane rotation about the centre, 5-30 degrees counter-clockwise, borders reflected",
            (5.0, 10.0, 15.0, 22.0, 30.0),
            False,
            _ALBU,
        ),
        Corruption(
            "small_face",
            "far face: downscaled by 0.5-0.1 (area) and upscaled back (bilinear)",
            (0.5, 0.35, 0.25, 0.15, 0.1),
            False,
            _ALBU,
        ),
        Corruption(
            "occlusion_mouth",
            "skin-coloured ellipse over the mouth, 0.4-1.0 of the face box's width",
            (0.4, 0.55, 0.7, 0.85, 1.0),
            True,
            "opencv",
        ),
        Corruption(
            "occlusion_eyes",
            "dark band over the eyes, 0.4-1.0 of the face box's width",
            (0.4, 0.55, 0.7, 0.85, 1.0),
            True,
            "opencv",
        ),
    )
}
"""Every corruption by name, in the documented order (module docstring)."""


# What a level of each corruption may be: (test, the rule in words), for conf overrides.
_LEVEL_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "gaussian_blur": (lambda v: 0 < v <= 100, "a sigma in (0, 100] px"),
    "motion_blur": (lambda v: 0 < v <= 500, "a streak length in (0, 500] px"),
    "defocus_blur": (lambda v: 0 < v <= 200, "a radius in (0, 200] px"),
    "jpeg": (lambda v: float(v).is_integer() and 1 <= v <= 100, "an integer quality in 1..100"),
    "low_light": (lambda v: 1 <= v <= 20, "a gamma in [1, 20]"),
    "gaussian_noise": (lambda v: 0 < v <= 1, "a std in (0, 1]"),
    "brightness": (lambda v: -1 <= v <= 1, "a shift in [-1, 1]"),
    "contrast": (lambda v: 0 <= v <= 10, "a factor in [0, 10]"),
    "rotation": (lambda v: -180 <= v <= 180, "an angle in [-180, 180] degrees"),
    "small_face": (lambda v: 0 < v <= 1, "a scale in (0, 1]"),
    "occlusion_mouth": (lambda v: 0 < v <= 1, "a fraction of the face width in (0, 1]"),
    "occlusion_eyes": (lambda v: 0 < v <= 1, "a fraction of the face width in (0, 1]"),
}

# Occluders, in fractions of the face box (x, y, w, h): vertical centre, height per unit of
# width fraction, shape, RGB colour. Eyes sit at ~0.4 of a forehead-to-chin box, the mouth at ~0.78.
_OCCLUDERS: dict[str, tuple[float, float, str, tuple[int, int, int]]] = {
    "occlusion_mouth": (0.78, 0.40, "ellipse", (205, 155, 130)),
    "occlusion_eyes": (0.42, 0.35, "rectangle", (35, 30, 30)),
}

_LOW_LIGHT_NOISE = 0.01  # sensor noise std (fraction of 255) per unit of gamma


def _valid_names() -> str:
    return ", ".join(CORRUPTIONS)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_sequence(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _levels_error(name: str, levels: Any) -> str | None:
    """Why ``levels`` cannot be the five levels of corruption ``name``, or None."""
    if not _is_sequence(levels) or len(levels) != len(SEVERITIES):
        return f"expected a list of {len(SEVERITIES)} numbers (severity 1..5), got {levels!r}"
    test, rule = _LEVEL_RULES[name]
    for value in levels:
        if not _is_number(value) or not test(float(value)):
            return f"each level must be {rule}, got {value!r} in {list(levels)!r}"
    return None


def _check_name(name: Any) -> Corruption:
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid names: {_valid_names()}")
    return CORRUPTIONS[name]


def check_corruptions(settings: Mapping) -> None:
    """Validate a ``robustness`` settings mapping before any heavy work.

    Keys: ``corruptions`` (non-empty list of names in :data:`CORRUPTIONS`, no repeats),
    ``severities`` (non-empty list of ints in 1..5, no repeats) and optional ``levels``
    (``{name: [5 levels]}``). Raises ValueError naming the key (``robustness.corruptions``,
    ``robustness.severities``, ``robustness.levels.<name>``) and the bad value.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"robustness: expected a mapping of settings, got {settings!r}")
    names = settings.get("corruptions")
    if not _is_sequence(names) or len(names) == 0:
        raise ValueError(
            f"robustness.corruptions: expected a non-empty list of corruption names, got "
            f"{names!r}; valid names: {_valid_names()}"
        )
    for name in names:
        if not isinstance(name, str) or name not in CORRUPTIONS:
            raise ValueError(
                f"robustness.corruptions: unknown corruption {name!r}; "
                f"valid names: {_valid_names()}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"robustness.corruptions: a name is repeated in {list(names)!r}")

    severities = settings.get("severities")
    if not _is_sequence(severities) or len(severities) == 0:
        raise ValueError(
            f"robustness.severities: expected a non-empty list of ints in 1..5, got {severities!r}"
        )
    for severity in severities:
        if not _is_severity(severity):
            raise ValueError(
                f"robustness.severities: {severity!r} is not a severity; expected ints in "
                f"1..5, got {list(severities)!r}"
            )
    if len(set(severities)) != len(severities):
        raise ValueError(f"robustness.severities: a severity is repeated in {list(severities)!r}")

    levels = settings.get("levels")
    if levels is None:
        levels = {}
    if not isinstance(levels, Mapping):
        raise ValueError(
            f"robustness.levels: expected a mapping {{corruption: [5 levels]}}, got {levels!r}"
        )
    for name, values in levels.items():
        if name not in CORRUPTIONS:
            raise ValueError(
                f"robustness.levels.{name}: unknown corruption {name!r}; "
                f"valid names: {_valid_names()}"
            )
        error = _levels_error(name, values)
        if error is not None:
            raise ValueError(f"robustness.levels.{name}: {error}")
    logger.debug(
        "robustness: %d corruptions x %d severities, levels overridden for %s",
        len(names),
        len(severities),
        sorted(levels) or "none",
    )


def _is_severity(severity: Any) -> bool:
    return (
        isinstance(severity, numbers.Integral)
        and not isinstance(severity, bool)
        and int(severity) in SEVERITIES
    )


def _odd(pixels: float) -> int:
    """The odd kernel size nearest ``pixels``, at least 3."""
    return max(3, 2 * math.floor(pixels / 2) + 1)


@cache
def _albumentations() -> ModuleType:
    """albumentations, imported on first use (half a second; kedro commands need not pay it)."""
    import albumentations

    return albumentations


# The albumentations transforms of each corruption at one level (p=1, fixed ``min == max``
# parameters): f(albumentations, level, scale, shorter side), ``scale`` = shorter side / 224
# applied to the pixel quantities.
_Builder = Callable[[ModuleType, float, float, int], list[Any]]


def _gaussian_blur(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    sigma = level * scale
    kernel = _odd(int(sigma * 3.5) * 2 + 1)  # PIL's size (albumentations' own default), >= 3
    return [albu.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(sigma, sigma), p=1)]


def _motion_blur(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    kernel = _odd(level * scale)
    return [
        albu.MotionBlur(
            blur_limit=(kernel, kernel),
            angle_range=(0, 0),
            direction_range=(0, 0),
            allow_shifted=False,
            p=1,
        )
    ]


def _defocus_blur(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    radius = max(1, round(level * scale))
    return [albu.Defocus(radius=(radius, radius), alias_blur=(0.5, 0.5), p=1)]


def _jpeg(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    quality = int(level)
    return [albu.ImageCompression(compression_type="jpeg", quality_range=(quality, quality), p=1)]


def _low_light(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    noise = _LOW_LIGHT_NOISE * level
    return [
        albu.RandomGamma(gamma_limit=(level * 100, level * 100), p=1),
        albu.GaussNoise(std_range=(noise, noise), mean_range=(0, 0), p=1),
    ]


def _gaussian_noise(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    return [albu.GaussNoise(std_range=(level, level), mean_range=(0, 0), per_channel=True, p=1)]


def _brightness(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    return [
        albu.RandomBrightnessContrast(
            brightness_limit=(level, level), contrast_limit=(0, 0), brightness_by_max=True, p=1
        )
    ]


def _contrast(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    # torchvision's contrast: about the mean of the grey image (RandomBrightnessContrast's
    # contrast scales about 0, which darkens instead)
    return [
        albu.ColorJitter(
            brightness=(1, 1), contrast=(level, level), saturation=(1, 1), hue=(0, 0), p=1
        )
    ]


def _rotation(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    return [
        albu.Rotate(
            limit=(level, level),
            interpolation=cv2.INTER_LINEAR,
            border_mode=cv2.BORDER_REFLECT_101,
            crop_border=False,
            p=1,
        )
    ]


def _small_face(albu: ModuleType, level: float, scale: float, side: int) -> list[Any]:
    factor = min(1.0, max(level, 2 / side))  # the small picture keeps at least 2 px
    return [
        albu.Downscale(
            scale_range=(factor, factor),
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
            p=1,
        )
    ]


_BUILDERS: dict[str, _Builder] = {
    "gaussian_blur": _gaussian_blur,
    "motion_blur": _motion_blur,
    "defocus_blur": _defocus_blur,
    "jpeg": _jpeg,
    "low_light": _low_light,
    "gaussian_noise": _gaussian_noise,
    "brightness": _brightness,
    "contrast": _contrast,
    "rotation": _rotation,
    "small_face": _small_face,
}


def _check_face_box(name: str, face_box: Any, shape: tuple[int, ...]) -> tuple[float, ...]:
    if face_box is None:
        raise ValueError(f"corruption {name!r} needs face_box=(x, y, w, h) in pixels")
    if (
        not _is_sequence(face_box)
        or len(face_box) != 4
        or not all(_is_number(v) for v in face_box)
        or face_box[2] <= 0
        or face_box[3] <= 0
    ):
        raise ValueError(
            f"corruption {name!r}: face_box must be (x, y, w, h) with w, h > 0, got {face_box!r}"
        )
    x, y, w, h = (float(v) for v in face_box)
    height, width = shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(
            f"corruption {name!r}: face_box {face_box!r} lies outside the {width}x{height} image"
        )
    return x, y, w, h


def _occlude(image: np.ndarray, name: str, level: float, box: tuple[float, ...]) -> np.ndarray:
    """A copy of ``image`` with the occluder of ``name`` drawn in the face ``box``."""
    x, y, w, h = box
    centre_y, height_ratio, shape, colour = _OCCLUDERS[name]
    half_w = level * w / 2
    half_h = level * height_ratio * h / 2
    cx, cy = x + w / 2, y + centre_y * h
    out = image.copy()
    if shape == "ellipse":
        cv2.ellipse(
            out,
            (round(cx), round(cy)),
            (max(1, round(half_w)), max(1, round(half_h))),
            0,
            0,
            360,
            colour,
            thickness=-1,
            lineType=cv2.LINE_8,
        )
    else:
        top, left = max(0, round(cy - half_h)), max(0, round(cx - half_w))
        bottom = max(top + 1, round(cy + half_h))  # at least one pixel
        right = max(left + 1, round(cx + half_w))
        out[top:bottom, left:right] = colour
    return out


def corrupt(
    image: np.ndarray,
    name: str,
    severity: int,
    *,
    seed: int,
    face_box: tuple[float, float, float, float] | None = None,
    levels: Sequence | None = None,
) -> np.ndarray:
    """``image`` (RGB uint8, HxWx3) with corruption ``name`` at ``severity`` (1..5).

    Deterministic for (image, name, severity, seed); the input is not modified. ``face_box``
    (x, y, w, h, pixels of ``image``) is required by the corruptions that need it; ``levels``
    replaces the corruption's five levels (from conf). Returns a new RGB uint8 array of the same
    shape.
    """
    corruption = _check_name(name)
    if not _is_severity(severity):
        raise ValueError(f"corruption {name!r}: severity must be an int in 1..5, got {severity!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"corruption {name!r}: seed must be an int >= 0, got {seed!r}")
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
        or min(image.shape[:2]) < 1
    ):
        raise ValueError(
            f"corruption {name!r}: expected an RGB uint8 image of shape (H, W, 3), got "
            f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        )
    if levels is None:
        levels = corruption.levels
    else:
        error = _levels_error(name, levels)
        if error is not None:
            raise ValueError(f"corruption {name!r}: levels: {error}")
    level = float(levels[int(severity) - 1])

    if corruption.needs_face_box:
        box = _check_face_box(name, face_box, image.shape)
        return _occlude(image, name, level, box)

    shorter_side = min(image.shape[:2])
    transforms = _BUILDERS[name](
        _albumentations(), level, shorter_side / REFERENCE_SIDE, shorter_side
    )
    pipeline = _albumentations().Compose(transforms, p=1, seed=int(seed))
    out = pipeline(image=np.ascontiguousarray(image))["image"]
    if np.shares_memory(out, image):  # an identity setting (e.g. contrast 1) returns the input
        out = out.copy()
    if out.shape != image.shape or out.dtype != np.uint8:  # pragma: no cover (a library change)
        raise RuntimeError(
            f"corruption {name!r} returned {out.dtype} {out.shape} for uint8 {image.shape}"
        )
    return out


FAMILIES: dict[str, tuple[str, ...]] = {
    "blur": ("gaussian_blur", "motion_blur", "defocus_blur"),
    "light and noise": ("low_light", "gaussian_noise", "brightness", "contrast"),
    "compression and resolution": ("jpeg", "small_face"),
    "geometry": ("rotation",),
    "occlusion": ("occlusion_mouth", "occlusion_eyes"),
}
"""The report's panels: corruptions grouped by what the camera or the child does."""


def corruption_family(name: str) -> str:
    """The family (``FAMILIES``) a corruption belongs to; ``other`` for a name outside them."""
    return next((family for family, names in FAMILIES.items() if name in names), "other")
