"""The phone-camera corruptions (pediatric_emotion.corruptions): deterministic, shape-keeping, and
each one changing the picture the way its description says."""

from __future__ import annotations

import math
import os
import warnings

import cv2
import numpy as np
import pytest

from pediatric_emotion.corruptions import (
    CORRUPTIONS,
    REFERENCE_SIDE,
    SEVERITIES,
    check_corruptions,
    corrupt,
)

NAMES = (
    "gaussian_blur",
    "motion_blur",
    "defocus_blur",
    "jpeg",
    "low_light",
    "gaussian_noise",
    "brightness",
    "contrast",
    "rotation",
    "small_face",
    "occlusion_mouth",
    "occlusion_eyes",
)
BOX = (62.0, 30.0, 100.0, 150.0)  # a face box (x, y, w, h) in the 224-px picture


def _synthetic_picture(side: int = REFERENCE_SIDE) -> np.ndarray:
    """A textured RGB picture: stripes, a gradient and smoothed noise (edges at all scales)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    base = 100 + 60 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + 40 * (xx / side)
    noise = cv2.GaussianBlur(rng.normal(0, 30, (side, side, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A 224-px RGB photograph (skimage's astronaut), or a synthetic textured one."""
    try:
        from skimage.data import astronaut
    except ImportError:  # pragma: no cover (skimage is in the test extra)
        return _synthetic_picture()
    return cv2.resize(astronaut(), (REFERENCE_SIDE, REFERENCE_SIDE), interpolation=cv2.INTER_AREA)


def _sharpness(image: np.ndarray) -> float:
    """High-frequency energy: the variance of the grey image's Laplacian."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _run(image: np.ndarray, name: str, severity: int, seed: int = 11, **kwargs) -> np.ndarray:
    box = BOX if CORRUPTIONS[name].needs_face_box else None
    return corrupt(image, name, severity, seed=seed, face_box=kwargs.pop("face_box", box), **kwargs)


def test_catalogue_is_the_documented_twelve_in_order():
    assert tuple(CORRUPTIONS) == NAMES
    assert SEVERITIES == (1, 2, 3, 4, 5)
    for name, corruption in CORRUPTIONS.items():
        assert corruption.name == name
        assert len(corruption.levels) == 5
        assert corruption.description and "\n" not in corruption.description
        assert corruption.needs_face_box == name.startswith("occlusion_")
        assert corruption.library == ("opencv" if corruption.needs_face_box else "albumentations")
    check_corruptions({"corruptions": list(NAMES), "severities": list(SEVERITIES)})


def test_package_import_keeps_albumentations_offline():
    assert os.environ.get("NO_ALBUMENTATIONS_UPDATE") == "1"


@pytest.mark.parametrize("severity", [1, 5])
@pytest.mark.parametrize("name", NAMES)
def test_each_corruption_is_deterministic_and_keeps_shape(picture, name, severity):
    before = picture.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = _run(picture, name, severity)
    again = _run(picture, name, severity)
    assert first.dtype == np.uint8 and first.shape == picture.shape
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, picture)
    np.testing.assert_array_equal(picture, before)  # the input is left alone
    assert not np.shares_memory(first, picture)


@pytest.mark.parametrize("name", NAMES)
def test_small_and_non_square_pictures_keep_their_shape(name):
    image = _synthetic_picture(96)[:64, :80]
    out = corrupt(image, name, 5, seed=1, face_box=(20, 5, 40, 50))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    sliver = _synthetic_picture(8)[:1, :5]  # 1 x 5 px: no error, same shape
    out = corrupt(sliver, name, 5, seed=1, face_box=(0, 0, 5, 1))
    assert out.shape == sliver.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", ["gaussian_noise", "low_light"])
def test_different_seeds_give_different_noise(picture, name):
    a, b = _run(picture, name, 3, seed=1), _run(picture, name, 3, seed=2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ["gaussian_blur", "motion_blur", "defocus_blur", "small_face"])
def test_blurs_and_small_face_remove_detail_more_at_higher_severity(picture, name):
    clean = _sharpness(picture)
    mild, severe = _sharpness(_run(picture, name, 1)), _sharpness(_run(picture, name, 5))
    assert severe < mild < clean
    assert severe < 0.3 * clean


def test_pixel_quantities_scale_with_the_shorter_side():
    """A motion-blurred dot is a streak of the stated length at 224 px, scaled elsewhere."""
    for side, expected in ((224, 29), (448, 59), (64, 9)):
        dot = np.zeros((side, side + 30, 3), np.uint8)
        dot[side // 2, (side + 30) // 2] = 255
        streak = corrupt(dot, "motion_blur", 5, seed=0)
        assert np.count_nonzero(streak[..., 0]) == expected, side


def test_jpeg_severe_is_further_from_the_original_and_blockier(picture):
    def error(image: np.ndarray) -> float:
        return float(np.mean((image.astype(np.float64) - picture) ** 2))

    def blockiness(image: np.ndarray) -> float:
        """Mean jump across 8-px block borders over the mean jump elsewhere."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        jumps = np.abs(np.diff(grey, axis=1)).mean(axis=0)
        at_border = np.arange(jumps.size) % 8 == 7
        return float(jumps[at_border].mean() / jumps[~at_border].mean())

    mild, severe = _run(picture, "jpeg", 1), _run(picture, "jpeg", 5)
    assert error(severe) > error(mild) > 0
    assert blockiness(severe) > blockiness(mild) > blockiness(picture)


def test_low_light_darkens(picture):
    clean = picture.mean()
    mild, severe = _run(picture, "low_light", 1).mean(), _run(picture, "low_light", 5).mean()
    assert severe < mild < clean


def test_gaussian_noise_raises_the_spread_of_a_flat_picture():
    flat = np.full((128, 128, 3), 128, np.uint8)
    stds = [corrupt(flat, "gaussian_noise", s, seed=3).astype(np.float64).std() for s in (1, 5)]
    assert stds[0] == pytest.approx(0.08 * 255, rel=0.1)  # ImageNet-C's std, of the full range
    assert stds[1] > stds[0]


def test_brightness_raises_the_mean_and_contrast_lowers_the_spread(picture):
    mean, std = picture.mean(), picture.astype(np.float64).std()
    brighter = [_run(picture, "brightness", s).mean() for s in (1, 5)]
    flatter = [_run(picture, "contrast", s).astype(np.float64).std() for s in (1, 5)]
    assert mean < brighter[0] < brighter[1]
    assert std > flatter[0] > flatter[1]
    assert flatter[0] == pytest.approx(0.4 * std, rel=0.05)  # scaled about the mean by 0.4
    assert _run(picture, "contrast", 5).mean() == pytest.approx(mean, abs=3)


def test_rotation_tilts_a_horizontal_line_by_the_stated_angle():
    side = REFERENCE_SIDE
    line = np.zeros((side, side, 3), np.uint8)
    line[side // 2 - 1 : side // 2 + 2, :] = 255
    for severity in (1, 3, 5):
        out = corrupt(line, "rotation", severity, seed=0)
        yy, xx = np.mgrid[0:side, 0:side]
        near = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 3) ** 2  # off the borders
        weight = out[..., 0].astype(np.float64) * near
        x0, y0 = np.average(xx, weights=weight), np.average(yy, weights=weight)
        cov = np.cov(np.stack([xx.ravel() - x0, yy.ravel() - y0]), aweights=weight.ravel())
        dx, dy = np.linalg.eigh(cov)[1][:, -1]
        angle = abs(math.degrees(math.atan2(-dy, dx)))  # y points down: counter-clockwise > 0
        angle = min(angle, 180 - angle)
        assert angle == pytest.approx(CORRUPTIONS["rotation"].levels[severity - 1], abs=0.5)


def test_rotation_is_opencvs_rotation_about_the_centre(picture):
    h, w = picture.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 15, 1.0)
    expected = cv2.warpAffine(
        picture, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    out = _run(picture, "rotation", 3)
    assert np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    ("name", "rows"),
    [("occlusion_mouth", (0.55, 1.0)), ("occlusion_eyes", (0.2, 0.62))],
)
def test_occlusions_change_only_their_band_of_the_face_box(picture, name, rows):
    x, y, w, h = BOX
    changed = []
    for severity in SEVERITIES:
        diff = np.any(_run(picture, name, severity) != picture, axis=2)
        ys, xs = np.nonzero(diff)
        assert ys.min() >= y + rows[0] * h - 1 and ys.max() <= y + rows[1] * h
        assert xs.min() >= x - 1 and xs.max() <= x + w
        changed.append(int(diff.sum()))
    assert changed == sorted(changed) and changed[0] < changed[-1]  # grows with severity
    assert changed[-1] > 0.15 * w * h


@pytest.mark.parametrize("name", ["occlusion_mouth", "occlusion_eyes"])
def test_occlusions_need_a_face_box_inside_the_picture(picture, name):
    with pytest.raises(ValueError, match=name):
        corrupt(picture, name, 3, seed=0)
    with pytest.raises(ValueError, match="outside"):
        corrupt(picture, name, 3, seed=0, face_box=(300, 300, 20, 20))
    with pytest.raises(ValueError, match="w, h > 0"):
        corrupt(picture, name, 3, seed=0, face_box=(10, 10, 0, 20))


def test_levels_override_the_defaults(picture):
    levels = [3, 3, 3, 3, 40]
    out = _run(picture, "rotation", 5, levels=levels)
    assert not np.array_equal(out, _run(picture, "rotation", 5))  # 40 degrees, not 30
    np.testing.assert_array_equal(  # the default's severity-3 setting, 15 degrees
        _run(picture, "rotation", 1, levels=[15, 0, 0, 0, 0]), _run(picture, "rotation", 3)
    )
    np.testing.assert_array_equal(  # a face box and levels given as numpy arrays
        _run(picture, "occlusion_eyes", 2, face_box=np.array(BOX), levels=np.full(5, 0.5)),
        _run(picture, "occlusion_eyes", 2, levels=[0.5] * 5),
    )
    with pytest.raises(ValueError, match=r"jpeg.*integer quality"):
        _run(picture, "jpeg", 1, levels=[25, 18, 15, 10, 0.5])
    with pytest.raises(ValueError, match="list of 5"):
        _run(picture, "rotation", 1, levels=[5, 10])


def test_corrupt_rejects_unknown_names_severities_and_images(picture):
    with pytest.raises(ValueError, match=r"'fog'.*valid names: gaussian_blur, motion_blur"):
        corrupt(picture, "fog", 1, seed=0)
    for severity in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match="severity"):
            corrupt(picture, "jpeg", severity, seed=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        corrupt(picture.astype(np.float32), "jpeg", 1, seed=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        corrupt(picture[..., 0], "jpeg", 1, seed=0)
    with pytest.raises(ValueError, match="seed"):
        corrupt(picture, "jpeg", 1, seed=-1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"corruptions": ["jpeg", "fog"], "severities": [1]}, r"robustness\.corruptions.*'fog'"),
        ({"corruptions": "jpeg", "severities": [1]}, r"robustness\.corruptions.*'jpeg'"),
        ({"corruptions": [], "severities": [1]}, r"robustness\.corruptions.*\[\]"),
        ({"severities": [1]}, r"robustness\.corruptions.*None"),
        ({"corruptions": ["jpeg", "jpeg"], "severities": [1]}, r"robustness\.corruptions.*rep"),
        ({"corruptions": ["jpeg"], "severities": [0, 3]}, r"robustness\.severities.*0"),
        ({"corruptions": ["jpeg"], "severities": [6]}, r"robustness\.severities.*6"),
        ({"corruptions": ["jpeg"], "severities": ["3"]}, r"robustness\.severities.*'3'"),
        ({"corruptions": ["jpeg"], "severities": []}, r"robustness\.severities.*\[\]"),
        (
            {"corruptions": ["jpeg"], "severities": [1], "levels": {"fog": [1, 2, 3, 4, 5]}},
            r"robustness\.levels\.fog.*valid names",
        ),
        (
            {"corruptions": ["jpeg"], "severities": [1], "levels": {"rotation": [5, 10]}},
            r"robustness\.levels\.rotation.*\[5, 10\]",
        ),
        (
            {"corruptions": ["jpeg"], "severities": [1], "levels": {"jpeg": [25, 18, 15, 10, 0]}},
            r"robustness\.levels\.jpeg.*\b0\b",
        ),
        (
            {"corruptions": ["jpeg"], "severities": [1], "levels": [1, 2]},
            r"robustness\.levels.*\[1, 2\]",
        ),
    ],
)
def test_check_corruptions_names_the_key_and_the_bad_value(settings, message):
    with pytest.raises(ValueError, match=message):
        check_corruptions(settings)


def test_check_corruptions_accepts_conf_shaped_settings():
    check_corruptions(
        {
            "corruptions": ["rotation", "occlusion_eyes"],
            "severities": [1, 3, 5],
            "levels": {"rotation": [5, 10, 15, 22, 30]},
            "images_per_class": 4,
            "seed": 7,
        }
    )
    check_corruptions({"corruptions": ["jpeg"], "severities": [2], "levels": None})
    check_corruptions({"corruptions": np.array(["jpeg"]), "severities": np.array([1, 5])})


def test_every_corruption_has_one_family():
    from pediatric_emotion.corruptions import FAMILIES, corruption_family

    grouped = [name for names in FAMILIES.values() for name in names]
    assert sorted(grouped) == sorted(CORRUPTIONS)
    assert corruption_family("rotation") == "geometry"
    assert corruption_family("fog") == "other"
