"""Face cropping in parallel chunks on Dask gives exactly the sequential result: the same records
frame (rows, order, values, dtypes), the same crop files in the same order, the same drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pediatric_emotion.images import encode_image
from pediatric_emotion.parallel import map_chunks
from pediatric_emotion.pipelines.demo_data import faces
from pediatric_emotion.pipelines.demo_data.faces import Expression, PlacedFace, Pose
from pediatric_emotion.pipelines.demo_data.scenes import Scene, render
from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces
from tests.conftest import PROJECT_ROOT

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_label_harmonization.yml").read_text())
SCENE = Scene(background="plain", colours=((190.0, 200.0, 210.0),))


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> pd.DataFrame:
    """19 usable records of every kind (drawn faces to detect, given boxes, whole images, inline
    pixels, a face-less picture, a corrupt file, a box outside the image) and 2 dropped ones."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    rows = []

    def add(**row) -> None:
        number = len(rows)
        rows.append(
            {
                "image_id": f"src:r{number}",
                "record_id": f"r{number}",
                "source": "src" if number % 2 else "other",
                "image_path": None,
                "pixels": None,
                "face_box": "detect",
                "given_x": np.nan,
                "given_y": np.nan,
                "given_w": np.nan,
                "given_h": np.nan,
                "drop_reason": None,
                "detail": None,
                **row,
            }
        )

    def picture(image: np.ndarray) -> str:
        path = folder / f"p{len(rows)}.png"
        path.write_bytes(encode_image(image, ".png"))
        return str(path)

    for i in range(8):
        who = faces.random_identity(rng, 0.3 + 0.08 * i)
        pose = Pose(cx=0.5, cy=0.5, height=0.55)
        drawn = render((200, 180), [PlacedFace(who, Expression("happy", 0.8), pose)], SCENE)
        add(image_path=picture(drawn.image))
    for _ in range(4):
        add(image_path=picture(rng.integers(0, 255, (60, 50, 3), dtype=np.uint8)), face_box="given")
        rows[-1].update(given_x=5.0, given_y=4.0, given_w=30.0, given_h=40.0)
    for _ in range(3):
        image = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        add(image_path=picture(image), face_box="whole_image")
    add(pixels=" ".join(str(v) for v in rng.integers(0, 255, 48 * 48)), face_box="whole_image")
    add(image_path=picture(np.full((120, 120, 3), 200, np.uint8)))  # no face
    add(image_path=str(folder / "missing.png"), face_box="whole_image")  # unreadable
    add(image_path=picture(np.zeros((20, 20, 3), np.uint8)), face_box="given")  # box outside
    rows[-1].update(given_x=40.0, given_y=40.0, given_w=10.0, given_h=10.0)
    add(drop_reason="excluded_label", detail="contempt")
    add(drop_reason="malformed_row", detail="bad row")
    return pd.DataFrame(rows)


def crop(records: pd.DataFrame, parallel: dict | None) -> tuple[dict[str, bytes], pd.DataFrame]:
    return crop_faces(
        records, PARAMS["face_detection"], PARAMS["face_crop"], PARAMS["deduplication"], parallel
    )


@pytest.fixture(scope="module")
def sequential(records):
    return crop(records, None)


def assert_same(expected, actual) -> None:
    expected_crops, expected_records = expected
    crops, cropped = actual
    pd.testing.assert_frame_equal(cropped, expected_records)
    assert list(crops) == list(expected_crops)  # same files in the same order
    assert crops == expected_crops  # byte for byte


def test_the_records_cover_every_outcome(sequential):
    _, cropped = sequential
    reasons = cropped["drop_reason"].fillna("kept").value_counts().to_dict()
    assert set(reasons) == {
        "kept",
        "no_face_found",
        "unreadable_image",
        "malformed_row",
        "excluded_label",
    }
    assert set(cropped["box_source"].dropna()) >= {"given", "whole_image"}
    assert len(cropped["box_source"].dropna()) >= 15


@pytest.mark.parametrize(
    "parallel",
    [
        {"workers": 2, "chunk_size": 4, "scheduler": "processes"},
        {"workers": 3, "chunk_size": 5, "scheduler": "threads"},
        {"workers": 1, "chunk_size": 2},  # one worker: sequential whatever the chunk size
    ],
)
def test_parallel_chunks_give_the_sequential_result(records, sequential, parallel):
    assert_same(sequential, crop(records, parallel))


def test_bad_parallel_settings_are_refused(records):
    with pytest.raises(ValueError, match="workers and chunk_size"):
        crop(records, {"workers": 0})
    with pytest.raises(ValueError, match="scheduler"):
        crop(records, {"workers": 2, "chunk_size": 4, "scheduler": "cluster"})


def _square(chunk: list[int], offset: int) -> list[int]:
    return [value * value + offset for value in chunk]


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_map_chunks_keeps_chunk_order_and_reports_each_chunk(scheduler):
    chunks = [[1, 2], [3], [4, 5, 6], [7]]
    done: list[int] = []
    results = map_chunks(
        _square, chunks, args=(1,), workers=2, scheduler=scheduler, on_done=done.append
    )
    assert results == [[2, 5], [10], [17, 26, 37], [50]]
    assert sorted(done) == [0, 1, 2, 3]
