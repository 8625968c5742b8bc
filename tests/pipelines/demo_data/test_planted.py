"""Planted robustness cases of the CAFE-like test set: tilted heads and a hand over the mouth."""

from __future__ import annotations

import copy
import csv
import io
import math
from typing import Any

import numpy as np
import pytest

from pediatric_emotion.datasets import FileTreeDataset
from pediatric_emotion.images import decode_image
from pediatric_emotion.pipelines.demo_data import faces
from pediatric_emotion.pipelines.demo_data.faces import Expression, Hand, PlacedFace, Pose
from pediatric_emotion.pipelines.demo_data.nodes import generate_demo_data
from pediatric_emotion.pipelines.demo_data.planted import (
    HAND_OVER_MOUTH,
    HEAD_TILT,
    PLANTED_KINDS,
    PlantedCases,
    Planting,
)
from pediatric_emotion.pipelines.demo_data.scenes import Scene, render
from pediatric_emotion.pipelines.demo_data.vocabularies import CAFE_COLUMNS, CAFE_WORDS
from pediatric_emotion.pipelines.label_harmonization.adapters import make_adapter
from pediatric_emotion.pipelines.label_harmonization.adapters.base import METADATA_KEYS

from .conftest import base_params, files_of

SUBJECTS = 8  # about 68 pictures: 10 tilted heads, 7 hands with the conf/base shares
STUDIO_ROLL = 12 * 0.3  # conf/base faces.roll_deg, times the studio's 0.3


def cafe_params(**planted: Any) -> dict[str, Any]:
    """conf/base's parameters with CAFE alone, ``SUBJECTS`` children, ``planted`` overriding."""
    params = copy.deepcopy(base_params())
    cafe = params["sources"]["cafe"]
    cafe["counts"]["subjects"] = SUBJECTS
    cafe["planted"].update(planted)
    params["sources"] = {"cafe": cafe}
    return params


def metadata(files: dict[str, bytes]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files["cafe/cafe_metadata.csv"].decode("utf-8"))))


@pytest.fixture(scope="module")
def planted_files() -> dict[str, bytes]:
    return generate_demo_data(cafe_params())


@pytest.fixture(scope="module")
def plain_files() -> dict[str, bytes]:
    """The same parameters with nothing planted."""
    return generate_demo_data(cafe_params(head_tilt_share=0.0, hand_over_mouth_share=0.0))


@pytest.fixture(scope="module")
def detector():
    from pediatric_emotion.faces import FaceDetector

    return FaceDetector(detector="blazeface", fallback="none")  # BlazeFace alone


def test_conf_base_plants_both_cases():
    planted = base_params()["sources"]["cafe"]["planted"]
    cases = PlantedCases.from_params(planted)
    assert cases.head_tilt_share > 0 and cases.hand_over_mouth_share > 0
    assert 0 < cases.tilt_degrees[0] <= cases.tilt_degrees[1] <= 30


def test_shares_come_out_as_configured(planted_files):
    rows = metadata(planted_files)
    kinds = [row["planted"] for row in rows]
    planted = base_params()["sources"]["cafe"]["planted"]
    n = len(rows)
    assert n > 50
    assert kinds.count(HEAD_TILT) == math.floor(planted["head_tilt_share"] * n + 0.5)
    assert kinds.count(HAND_OVER_MOUTH) == math.floor(planted["hand_over_mouth_share"] * n + 0.5)
    assert set(kinds) <= set(PLANTED_KINDS)


def test_tilts_are_within_range_with_both_signs_and_other_heads_keep_the_studio_roll(
    planted_files,
):
    low, high = base_params()["sources"]["cafe"]["planted"]["tilt_degrees"]
    tilts, others = [], []
    for row in metadata(planted_files):
        (tilts if row["planted"] == HEAD_TILT else others).append(float(row["head_roll_deg"]))
    assert all(low - 0.05 <= abs(roll) <= high + 0.05 for roll in tilts)
    assert min(tilts) < 0 < max(tilts)
    assert all(abs(roll) <= STUDIO_ROLL + 0.05 for roll in others)


def test_metadata_keeps_cafe_columns_first_and_adds_the_planted_ones(planted_files):
    text = planted_files["cafe/cafe_metadata.csv"].decode("utf-8")
    header = text.splitlines()[0].split(",")
    assert header == [*CAFE_COLUMNS, "planted", "head_roll_deg"]
    images = {path for path in files_of(planted_files, "cafe") if path.endswith(".jpg")}
    assert {row["file"] for row in metadata(planted_files)} == images


def test_same_parameters_give_byte_identical_files(planted_files):
    again = generate_demo_data(cafe_params())
    assert again.keys() == planted_files.keys()
    assert all(again[path] == data for path, data in planted_files.items())


def test_a_planted_seed_of_its_own_leaves_the_other_pictures_byte_identical(
    planted_files, plain_files
):
    assert planted_files.keys() == plain_files.keys()
    planted = {f"cafe/{r['file']}" for r in metadata(planted_files) if r["planted"]}
    changed = {path for path, data in planted_files.items() if plain_files[path] != data}
    assert changed == planted | {"cafe/cafe_metadata.csv"}
    plain_rows = metadata(plain_files)
    assert all(row["planted"] == "" for row in plain_rows)
    for row, before in zip(metadata(planted_files), plain_rows, strict=True):
        assert {k: row[k] for k in CAFE_COLUMNS} == {k: before[k] for k in CAFE_COLUMNS}


def test_hand_pictures_change_below_the_eyes_and_not_above(planted_files, plain_files):
    for row in metadata(planted_files):
        if row["planted"] != HAND_OVER_MOUTH:
            continue
        path = f"cafe/{row['file']}"
        now = decode_image(planted_files[path]).astype(float)
        before = decode_image(plain_files[path]).astype(float)
        change = np.abs(now - before).max(axis=2)
        height = change.shape[0]
        assert change[: int(0.4 * height)].mean() < 0.5, f"{row['file']}: eyes and above changed"
        lower = change[int(0.5 * height) : int(0.75 * height)]
        assert (lower > 15).mean() > 0.05, f"{row['file']}: mouth band hardly changed"


# --- the drawing ----------------------------------------------------------------------------------

SIZE = (160, 200)
SCENE = Scene("plain", ((228.0, 226.0, 218.0),))


def child(seed: int = 4) -> PlacedFace:
    who = faces.random_identity(np.random.default_rng(seed), 0.8)
    return PlacedFace(who, Expression("happy", 0.9, "open"), Pose(0.5, 0.5, 0.56, roll=2.0))


def drawn(face: PlacedFace) -> np.ndarray:
    return render(SIZE, [face], SCENE).image.astype(float)


@pytest.mark.parametrize("roll", [-30.0, -12.0, 12.0, 30.0])
def test_a_tilt_rolls_the_head_and_its_eyes_line_not_the_picture(roll):
    face = child()
    tilted = Planting(HEAD_TILT, roll=roll).apply(face)
    assert tilted.pose.roll == roll and tilted.pose.body_roll == face.pose.roll
    eyes = faces.feature_points(tilted, SIZE)
    dx, dy = eyes["right_eye"] - eyes["left_eye"]
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(roll, abs=0.01)
    before, after = drawn(face), drawn(tilted)
    head = faces.feature_points(face, SIZE)
    y0, y1 = int(head["forehead"][1]), int(head["chin"][1])
    assert np.abs(after[y0:y1] - before[y0:y1]).mean() > 5
    assert np.abs(after[-12:] - before[-12:]).mean() < 1, (
        "shoulders stay, the picture is not rotated"
    )
    assert (after[:4] == before[:4]).all(), "background untouched"


def test_a_hand_covers_the_mouth_and_leaves_the_eyes():
    face = child()
    for side in (-1, 1):
        covered = Planting(HAND_OVER_MOUTH, hand=Hand(side, 5.0)).apply(face)
        before, after = drawn(face), drawn(covered)
        points = faces.feature_points(face, SIZE)
        mx, my = points["mouth"].astype(int)
        mouth = np.abs(
            after[my - 4 : my + 5, mx - 10 : mx + 11] - before[my - 4 : my + 5, mx - 10 : mx + 11]
        )
        assert mouth.mean() > 10
        for eye in ("left_eye", "right_eye"):
            ex, ey = points[eye].astype(int)
            window = np.s_[ey - 4 : ey + 5, ex - 6 : ex + 7]
            assert np.abs(after[window] - before[window]).max() < 1
        skin = np.asarray(face.identity.skin)
        assert np.abs(after[my, mx] - skin).max() < 40, "skin-coloured over the mouth"


# --- the adapter and the detector -----------------------------------------------------------------


def test_the_cafe_adapter_reads_the_file_and_ignores_the_extra_columns(tmp_path, planted_files):
    FileTreeDataset(str(tmp_path / "demo")).save(planted_files)
    config = {
        "format": "cafe",
        "path": str(tmp_path / "demo" / "cafe"),
        "options": {"metadata_csv": "cafe_metadata.csv"},
    }
    adapter = make_adapter("cafe", config, vocabulary=list(CAFE_WORDS.values()))
    adapter.check()
    records = list(adapter.checked_records())
    rows = {row["file"]: row for row in metadata(planted_files)}
    assert len(records) == len(rows)
    for record in records:
        assert record.drop_reason is None, record.detail
        row = rows[record.record_id]
        assert record.original_label == row["emotion"] and record.subject_id == row["subject"]
        assert set(record.metadata) <= set(METADATA_KEYS)
        assert record.metadata["mouth"] == row["mouth"]


def test_blazeface_finds_every_planted_face_where_the_unplanted_one_is(
    detector, planted_files, plain_files
):
    for row in metadata(planted_files):
        if not row["planted"]:
            continue
        path = f"cafe/{row['file']}"
        found = detector.detect(decode_image(planted_files[path]))
        plain = detector.detect(decode_image(plain_files[path]))
        assert found is not None and found.method == "blazeface", row
        assert plain is not None
        ix = max(0.0, min(found.x + found.w, plain.x + plain.w) - max(found.x, plain.x))
        iy = max(0.0, min(found.y + found.h, plain.y + plain.h) - max(found.y, plain.y))
        iou = ix * iy / (found.area + plain.area - ix * iy)
        assert iou > 0.4, (row, iou)


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "planted, key",
    [
        ({"head_tilt_share": 1.5}, "head_tilt_share"),
        ({"head_tilt_share": -0.1}, "head_tilt_share"),
        ({"hand_over_mouth_share": "a lot"}, "hand_over_mouth_share"),
        ({"hand_over_mouth_share": True}, "hand_over_mouth_share"),
        ({"head_tilt_share": 0.7, "hand_over_mouth_share": 0.6}, "hand_over_mouth_share"),
        ({"tilt_degrees": [30, 12]}, "tilt_degrees"),
        ({"tilt_degrees": [-5, 12]}, "tilt_degrees"),
        ({"tilt_degrees": [12, 120]}, "tilt_degrees"),
        ({"tilt_degrees": 20}, "tilt_degrees"),
        ({"tilt_degrees": [10, 20, 30]}, "tilt_degrees"),
        ({"tilt_degree": [10, 20]}, "tilt_degree"),
    ],
)
def test_bad_planted_parameters_are_refused_naming_the_key(planted, key):
    params = cafe_params()
    params["sources"]["cafe"]["planted"] = {
        **params["sources"]["cafe"]["planted"],
        **planted,
    }
    with pytest.raises(ValueError, match=f"planted.*{key}"):
        generate_demo_data(params)


def test_no_planted_entry_plants_nothing():
    assert PlantedCases.from_params(None).counts(100) == (0, 0)
    cases = PlantedCases(head_tilt_share=0.5, hand_over_mouth_share=0.5)
    assert cases.counts(3) == (2, 1)  # rounded, never more than the pictures
    kinds = [p.kind for p in cases.assign(np.random.default_rng(0), 3)]
    assert sorted(kinds) == sorted([HEAD_TILT, HEAD_TILT, HAND_OVER_MOUTH])
