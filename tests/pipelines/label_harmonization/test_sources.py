import logging
import os

import cv2
import numpy as np
import pandas as pd
import pytest

from pediatric_emotion.pipelines.label_harmonization.adapters import SourceLayoutError
from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces
from pediatric_emotion.pipelines.label_harmonization.sources import (
    SourceConfigError,
    check_sources,
    read_sources,
)

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
LABEL_MAPS = {
    "words": {"happy": "happy", "mad": "anger", "contempt": None},
    "kdef": {"AF": "fear", "HA": "happy"},
}


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(path.suffix, np.zeros((8, 8, 3), np.uint8))[1].tobytes())


@pytest.fixture
def folder_source(tmp_path):
    root = tmp_path / "guesswhat"
    for name in (
        "happy/s1_f0001.png",
        "mad/s1_f0002.png",
        "contempt/s2_f0001.png",
        "bored/s2_f0002.png",
    ):
        _image(root / name)
    return {
        "format": "folder",
        "path": str(root),
        "population": "child",
        "role": "guesswhat",
        "label_map": "words",
        "options": {"subject_pattern": r"(?P<subject>[^/]+)_f\d+"},
    }


def test_records_get_mapped_labels_or_a_drop_reason(folder_source):
    sources = {"gw": folder_source}
    inventory = check_sources(sources, LABEL_MAPS, EMOTIONS)
    assert inventory.to_dict("records")[0]["face_box"] == "detect"
    records = read_sources(inventory, sources, LABEL_MAPS).set_index("record_id")
    assert records.loc["happy/s1_f0001.png", "emotion"] == "happy"
    assert records.loc["mad/s1_f0002.png", "emotion"] == "anger"
    assert records.loc["contempt/s2_f0001.png", "drop_reason"] == "excluded_label"
    assert records.loc["bored/s2_f0002.png", "drop_reason"] == "unknown_label"
    assert "'bored'" in records.loc["bored/s2_f0002.png", "detail"]
    assert set(records["subject_id"]) == {"gw:s1", "gw:s2"}
    assert set(records["population"]) == {"child"}
    assert records["image_id"].str.startswith("gw:").all()


def test_missing_root_fails_naming_source_and_path(folder_source, tmp_path):
    folder_source["path"] = str(tmp_path / "not_here")
    with pytest.raises(SourceLayoutError, match=r"source 'gw'.*not_here"):
        check_sources({"gw": folder_source}, LABEL_MAPS, EMOTIONS)


def test_missing_required_file_fails_before_reading(tmp_path):
    (tmp_path / "fer").mkdir()
    source = {
        "format": "fer2013",
        "path": str(tmp_path / "fer"),
        "population": "adult",
        "role": "train",
        "label_map": "words",
    }
    with pytest.raises(SourceLayoutError, match=r"'fer'.*fer2013\.csv"):
        check_sources({"fer": source}, LABEL_MAPS, EMOTIONS)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"role": "training"}, "role must be one of"),
        ({"population": "teen"}, "population must be one of"),
        ({"face_box": "guess"}, "face_box must be one of"),
        ({"label_map": "nope"}, "no label map 'nope'"),
        ({"path": None}, "`path` is required"),
    ],
)
def test_bad_source_config_is_named(folder_source, change, message):
    with pytest.raises(SourceConfigError, match=message):
        check_sources({"gw": {**folder_source, **change}}, LABEL_MAPS, EMOTIONS)


def test_label_map_targets_must_be_classes(folder_source):
    maps = {"words": {"happy": "joyful"}}
    with pytest.raises(SourceConfigError, match="joyful"):
        check_sources({"gw": folder_source}, maps, EMOTIONS)


def test_empty_sources_are_refused():
    with pytest.raises(SourceConfigError, match="empty"):
        check_sources({}, LABEL_MAPS, EMOTIONS)


def test_formats_with_boxes_default_to_given(tmp_path):
    root = tmp_path / "expw"
    (root / "label").mkdir(parents=True)
    (root / "image" / "origin").mkdir(parents=True)
    (root / "label" / "label.lst").write_text("")
    source = {
        "format": "expw",
        "path": str(root),
        "population": "adult",
        "role": "train",
        "label_map": "words",
    }
    inventory = check_sources({"expw": source}, LABEL_MAPS, EMOTIONS)
    assert inventory.loc[0, "face_box"] == "given"


def test_a_file_name_that_is_not_utf8_is_read_and_cropped_under_a_printable_name(tmp_path):
    root = tmp_path / "gw"
    _image(root / "happy" / os.fsdecode(b"caf\xe9_latin1.png"))
    source = {"format": "folder", "path": str(root), "population": "child", "role": "train"}
    sources = {"gw": {**source, "face_box": "whole_image"}}
    records = read_sources(check_sources(sources, {"folder": {"happy": "happy"}}, EMOTIONS),
                           sources, {"folder": {"happy": "happy"}})  # fmt: skip
    record = records.iloc[0]
    assert record["record_id"] == "happy/caf\\xe9_latin1.png"
    assert record["image_id"] == "gw:happy/caf\\xe9_latin1.png"
    assert record["image_path"] == f"{root}/happy/caf\\xe9_latin1.png"
    crops, cropped = crop_faces(
        records, {}, {"size": 16, "margin": 0.2, "image_format": "png"}, {"hash_size": 8}
    )
    assert cropped.loc[0, "drop_reason"] is None or pd.isna(cropped.loc[0, "drop_reason"])
    assert cropped.loc[0, "image_width"] == 8 and len(crops) == 1


def test_a_source_without_records_is_a_warning_naming_its_path(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    source = {"format": "folder", "path": str(tmp_path / "empty"), "population": "child",
              "role": "train", "label_map": "words"}  # fmt: skip
    sources = {"gw": source}
    with caplog.at_level(logging.WARNING):
        records = read_sources(check_sources(sources, LABEL_MAPS, EMOTIONS), sources, LABEL_MAPS)
    assert records.empty
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("gw" in m and "0 records read" in m and str(tmp_path / "empty") in m
               for m in messages), messages  # fmt: skip


def test_a_test_source_without_subjects_warns_once(tmp_path, caplog):
    root = tmp_path / "cafe"
    for name in ("happy_1.png", "happy_2.png", "mad_3.png"):
        _image(root / name)
    source = {"format": "cafe", "path": str(root), "population": "child", "role": "test",
              "label_map": "words"}  # fmt: skip
    sources = {"cafe": source}
    with caplog.at_level(logging.WARNING):
        read_sources(check_sources(sources, LABEL_MAPS, EMOTIONS), sources, LABEL_MAPS)
    warnings = [r.getMessage() for r in caplog.records if "own subject" in r.getMessage()]
    assert len(warnings) == 1
    assert "cafe" in warnings[0] and "3 of 3" in warnings[0] and "subject" in warnings[0]
    # with subjects from a pattern: no warning
    caplog.clear()
    source["options"] = {"subject_pattern": r"_(?P<subject>\d)"}
    with caplog.at_level(logging.WARNING):
        read_sources(check_sources(sources, LABEL_MAPS, EMOTIONS), sources, LABEL_MAPS)
    assert not [r for r in caplog.records if "own subject" in r.getMessage()]
