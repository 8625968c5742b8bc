"""Tests of the source adapters on tiny layouts written in tmp_path (no committed data)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import pytest

from pediatric_emotion.pipelines.label_harmonization.adapters import (
    ADAPTERS,
    DropReason,
    SourceAdapter,
    SourceLayoutError,
    SourceRecord,
    make_adapter,
)

PIXELS_48 = " ".join(["7"] * 48 * 48)
FERPLUS_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
)
AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
    "valence,arousal"
)


def write_image(path: Path) -> Path:
    """A tiny real image file (adapters never decode it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((4, 4), 128, np.uint8))
    return path


def write_text(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def adapter_for(fmt: str, root: Path, vocabulary: Iterable[str] = (), **options) -> SourceAdapter:
    return make_adapter(
        f"my_{fmt}", {"format": fmt, "path": str(root), "options": options}, vocabulary
    )


def by_id(adapter: SourceAdapter) -> dict[str, SourceRecord]:
    adapter.check()
    records = list(adapter.records())
    ids = [record.record_id for record in records]
    assert len(ids) == len(set(ids)), "record ids must be unique"
    return {record.record_id: record for record in records}


def assert_dropped(record: SourceRecord, reason: str, *mentions: str) -> None:
    assert record.drop_reason == reason, (record.drop_reason, record.detail)
    for text in mentions:
        assert text in record.detail, (text, record.detail)


def assert_layout_error(adapter: SourceAdapter, *mentions: str) -> None:
    with pytest.raises(SourceLayoutError) as info:
        adapter.check()
    message = str(info.value)
    assert adapter.source in message
    for text in mentions:
        assert text in message, (text, message)


# make_adapter and the registry --------------------------------------------------------------


EXPECTED_OPTIONS = {
    "fer2013": {"csv": "fer2013.csv", "image_size": 48},
    "ferplus": {"csv": "fer2013new.csv", "fer2013_csv": "fer2013.csv", "images_dir": None},
    "ckplus": {
        "images_dir": "cohn-kanade-images",
        "labels_dir": "Emotion",
        "peak_frames": 1,
        "neutral_first_frame": True,
    },
    "jaffe": {},
    "kdef": {"angles": ["S", "HL", "HR"]},
    "rafd": {"angles": ["045", "090", "135"], "child_markers": ["Kid", "Kids"]},
    "affectnet": {
        "csv_files": ["training.csv", "validation.csv"],
        "images_dir": "Manually_Annotated_Images",
    },
    "expw": {
        "label_file": "label/label.lst",
        "images_dir": "image/origin",
        "min_box_confidence": 0,
    },
    "rafdb": {
        "label_file": "EmoLabel/list_patition_label.txt",
        "aligned": True,
        "images_dir": None,
    },
    "cafe": {"images_dir": None, "metadata_csv": None, "subject_pattern": None},
    "nimh_chefs": {"images_dir": None, "metadata_csv": None, "subject_pattern": None},
    "dartmouth": {"images_dir": None, "metadata_csv": None, "subject_pattern": None},
    "liris_cse": {"subject_pattern": None},
    "folder": {"subject_pattern": None},
    "csv": {
        "csv": "labels.csv",
        "path_column": "path",
        "label_column": "label",
        "subject_column": "subject",
    },
}


def test_registry_has_every_format_with_the_documented_defaults() -> None:
    assert set(ADAPTERS) == set(EXPECTED_OPTIONS)
    for fmt, adapter in ADAPTERS.items():
        assert adapter.format == fmt
        assert dict(adapter.default_options) == EXPECTED_OPTIONS[fmt], fmt


def test_make_adapter_builds_the_format_adapter_and_ignores_stage_keys(tmp_path: Path) -> None:
    config = {
        "format": "kdef",
        "path": str(tmp_path),
        "population": "adult",
        "role": "train",
        "face_box": "detect",
        "label_map": "kdef",
        "options": {"angles": ["S"]},
    }
    adapter = make_adapter("kdef_local", config, vocabulary=["AN"])
    assert type(adapter) is ADAPTERS["kdef"]
    assert adapter.source == "kdef_local"
    assert adapter.root == tmp_path
    assert adapter.options == {"angles": ["S"]}
    assert adapter.vocabulary == ["AN"]


@pytest.mark.parametrize(
    ("config", "mentions"),
    [
        ({"format": "nope", "path": "x"}, ["src1", "'nope'", "fer2013", "liris_cse"]),
        ({"path": "x"}, ["src1", "format"]),
        ({"format": "jaffe"}, ["src1", "path"]),
        ({"format": "jaffe", "path": ""}, ["src1", "path"]),
        ({"format": "kdef", "path": "x", "options": {"angle": ["S"]}}, ["src1", "angle"]),
        ({"format": "ckplus", "path": "x", "options": {"peak_frames": 0}}, ["src1", "peak_frames"]),
        ({"format": "folder", "path": "x", "options": {"subject_pattern": "(x"}}, ["src1"]),
        ({"format": "folder", "path": "x", "options": {"subject_pattern": "P\\d+"}}, ["subject"]),
    ],
)
def test_make_adapter_rejects_bad_configs(config: dict, mentions: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        make_adapter("src1", config, vocabulary=[])
    for text in mentions:
        assert text in str(info.value), (text, str(info.value))


def test_missing_root_fails_fast_naming_the_source_and_path(tmp_path: Path) -> None:
    for fmt in ADAPTERS:
        assert_layout_error(adapter_for(fmt, tmp_path / "absent"), "absent")


# FER2013 / FER+ -----------------------------------------------------------------------------


def test_fer2013_records_and_drops(tmp_path: Path) -> None:
    write_text(
        tmp_path / "fer2013.csv",
        [
            "emotion,pixels,Usage",
            f"3,{PIXELS_48},Training",  # line 2, row 0
            f"0,{' '.join(['7'] * 2303)},PublicTest",
            f"x,{PIXELS_48},PrivateTest",
            f",{PIXELS_48},Training",
            "5",
            f"6.0000000e+00,{PIXELS_48},PrivateTest",
            f"2,{PIXELS_48.replace('7', 'a', 1)},Training",
        ],
    )
    records = by_id(adapter_for("fer2013", tmp_path))
    assert list(records) == [f"row{i:05d}" for i in range(7)]
    first = records["row00000"]
    assert (first.original_label, first.pixels, first.image_path) == ("3", PIXELS_48, None)
    assert first.metadata == {"source_split": "Training"}
    assert first.drop_reason is None and first.subject_id is None
    assert records["row00005"].original_label == "6"
    assert records["row00005"].drop_reason is None
    assert_dropped(records["row00001"], DropReason.MALFORMED_ROW, "fer2013.csv line 3", "2303")
    assert_dropped(records["row00002"], DropReason.MALFORMED_ROW, "line 4", "'x'")
    assert_dropped(records["row00003"], DropReason.UNLABELLED, "line 5")
    assert_dropped(records["row00004"], DropReason.MALFORMED_ROW, "line 6", "1 fields")
    assert_dropped(records["row00006"], DropReason.MALFORMED_ROW, "line 8", "integers")
    for record in records.values():
        assert "7 7" not in record.detail  # never pixel values in a detail
        assert record.pixels is None or record.drop_reason is None


def test_fer2013_image_size_option_and_layout_checks(tmp_path: Path) -> None:
    write_text(tmp_path / "faces.csv", ["emotion,pixels,Usage", "1,1 2 3 4,Training"])
    records = by_id(adapter_for("fer2013", tmp_path, csv="faces.csv", image_size=2))
    assert records["row00000"].pixels == "1 2 3 4"
    assert_layout_error(adapter_for("fer2013", tmp_path), "fer2013.csv")
    write_text(tmp_path / "fer2013.csv", ["emotion,Usage", "1,Training"])
    assert_layout_error(adapter_for("fer2013", tmp_path), "fer2013.csv", "'pixels'")


def write_ferplus(root: Path) -> None:
    write_text(
        root / "fer2013new.csv",
        [
            FERPLUS_HEADER,
            "Training,fer0000000.png,0,8,1,0,0,0,0,1,0,0",  # line 2: happiness
            "Training,fer0000001.png,4,4,0,0,0,0,0,2,0,0",  # tie
            "Training,,0,0,0,0,0,0,0,0,0,10",  # blank name
            "PublicTest,fer0000003.png,0,0,0,0,0,0,0,9,1,0",  # contempt; its pixels are broken
            "Training,fer0000004.png,a,0,0,0,0,0,0,0,0,0",  # votes do not parse
            "PrivateTest,fer0000005.png,10,0,0,0,0,0,0,0,0,0",  # no fer2013.csv row 5
        ],
    )
    pixels = [PIXELS_48] * 5
    pixels[3] = "1 2 3"
    write_text(root / "fer2013.csv", ["emotion,pixels,Usage", *(f"0,{p},Training" for p in pixels)])


def test_ferplus_majority_vote_with_fer2013_pixels(tmp_path: Path) -> None:
    write_ferplus(tmp_path)
    records = by_id(adapter_for("ferplus", tmp_path))
    assert list(records) == [f"row{i:05d}" for i in range(6)]
    first = records["row00000"]
    assert (first.original_label, first.pixels, first.drop_reason) == ("happiness", PIXELS_48, None)
    assert first.metadata == {"source_split": "Training"}
    assert_dropped(records["row00001"], DropReason.TIE_VOTE, "line 3", "neutral", "happiness")
    assert_dropped(records["row00002"], DropReason.UNLABELLED, "line 4", "Image name")
    assert records["row00003"].original_label == "contempt"
    assert_dropped(records["row00003"], DropReason.MALFORMED_ROW, "line 5", "fer2013.csv line 5")
    assert_dropped(records["row00004"], DropReason.MALFORMED_ROW, "line 6", "votes")
    assert_dropped(records["row00005"], DropReason.MALFORMED_ROW, "line 7", "no data row 5")


def test_ferplus_with_images_dir(tmp_path: Path) -> None:
    write_ferplus(tmp_path)
    (tmp_path / "fer2013.csv").unlink()  # not needed with images_dir
    write_image(tmp_path / "images" / "fer0000000.png")
    records = by_id(adapter_for("ferplus", tmp_path, images_dir="images"))
    first = records["row00000"]
    assert first.image_path == str(tmp_path / "images" / "fer0000000.png")
    assert (first.pixels, first.drop_reason) == (None, None)
    assert_dropped(records["row00003"], DropReason.MISSING_IMAGE, "line 5", "fer0000003.png")
    assert_dropped(records["row00005"], DropReason.MISSING_IMAGE, "fer0000005.png")


def test_ferplus_layout_checks(tmp_path: Path) -> None:
    write_ferplus(tmp_path)
    (tmp_path / "fer2013.csv").unlink()
    assert_layout_error(adapter_for("ferplus", tmp_path), "fer2013.csv")
    assert_layout_error(adapter_for("ferplus", tmp_path, images_dir="images"), "images")
    write_text(tmp_path / "fer2013new.csv", ["Usage,Image name,neutral", "Training,a.png,1"])
    write_text(tmp_path / "fer2013.csv", ["emotion,pixels,Usage"])
    assert_layout_error(adapter_for("ferplus", tmp_path), "fer2013new.csv", "'NF'", "'contempt'")


# CK+ ----------------------------------------------------------------------------------------


def write_ckplus(root: Path) -> None:
    images, emotion = root / "cohn-kanade-images", root / "Emotion"
    for subject, sequence, frames in [("S005", "001", 4), ("S010", "002", 3), ("S011", "001", 3)]:
        for frame in range(1, frames + 1):
            write_image(images / subject / sequence / f"{subject}_{sequence}_{frame:08d}.png")
    write_text(emotion / "S005" / "001" / "S005_001_00000004_emotion.txt", ["   3.0000000e+00"])
    write_text(emotion / "S011" / "001" / "S011_001_00000003_emotion.txt", ["three"])
    write_image(images / "stray.png")


def test_ckplus_peak_first_and_other_frames(tmp_path: Path) -> None:
    write_ckplus(tmp_path)
    records = by_id(adapter_for("ckplus", tmp_path))
    assert len(records) == 11

    def frame(subject: str, sequence: str, number: int) -> SourceRecord:
        name = f"{subject}_{sequence}_{number:08d}.png"
        return records[f"cohn-kanade-images/{subject}/{sequence}/{name}"]

    peak = frame("S005", "001", 4)
    assert (peak.original_label, peak.drop_reason) == ("3", None)
    assert (peak.subject_id, peak.metadata) == ("S005", {"session": "001"})
    assert peak.image_path == str(tmp_path / "cohn-kanade-images/S005/001/S005_001_00000004.png")
    assert (frame("S005", "001", 1).original_label, frame("S005", "001", 1).drop_reason) == (
        "0",
        None,
    )
    for number in (2, 3):
        assert_dropped(frame("S005", "001", number), DropReason.NOT_PEAK_FRAME, f"{number:08d}")
    # a sequence without an Emotion file: first frame neutral, the rest unlabelled
    assert frame("S010", "002", 1).original_label == "0"
    for number in (2, 3):
        assert_dropped(frame("S010", "002", number), DropReason.UNLABELLED, "S010/002")
    # an Emotion file that does not parse
    assert_dropped(
        frame("S011", "001", 3), DropReason.MALFORMED_ROW, "S011_001_00000003_emotion.txt", "three"
    )
    assert frame("S011", "001", 1).original_label == "0"
    assert_dropped(frame("S011", "001", 2), DropReason.NOT_PEAK_FRAME)
    assert_dropped(records["cohn-kanade-images/stray.png"], DropReason.MALFORMED_ROW, "stray.png")


def test_ckplus_options_and_layout_checks(tmp_path: Path) -> None:
    write_ckplus(tmp_path)
    adapter = adapter_for("ckplus", tmp_path, peak_frames=2, neutral_first_frame=False)
    records = by_id(adapter)
    labels = {
        number: records[f"cohn-kanade-images/S005/001/S005_001_{number:08d}.png"]
        for number in range(1, 5)
    }
    assert [labels[n].original_label for n in (3, 4)] == ["3", "3"]
    assert_dropped(labels[1], DropReason.NOT_PEAK_FRAME)
    assert_dropped(records["cohn-kanade-images/S010/002/S010_002_00000001.png"], "unlabelled")
    shutil.rmtree(tmp_path / "Emotion")
    assert_layout_error(adapter_for("ckplus", tmp_path), "Emotion")


# JAFFE / KDEF / RaFD ------------------------------------------------------------------------


def test_jaffe(tmp_path: Path) -> None:
    for name in ("KA.AN1.39.tiff", "jaffe/KM.NE2.155.tiff", "KA_AN1.tiff", "README.tiff"):
        write_image(tmp_path / name)
    write_text(tmp_path / "README.txt", ["not an image"])
    records = by_id(adapter_for("jaffe", tmp_path))
    assert set(records) == {"KA.AN1.39.tiff", "jaffe/KM.NE2.155.tiff", "KA_AN1.tiff", "README.tiff"}
    first = records["KA.AN1.39.tiff"]
    assert (first.original_label, first.subject_id, first.drop_reason) == ("AN", "KA", None)
    assert first.image_path == str(tmp_path / "KA.AN1.39.tiff")
    assert (
        records["jaffe/KM.NE2.155.tiff"].original_label,
        records["jaffe/KM.NE2.155.tiff"].subject_id,
    ) == ("NE", "KM")
    assert_dropped(records["KA_AN1.tiff"], DropReason.MALFORMED_ROW, "KA_AN1.tiff")
    assert_dropped(records["README.tiff"], DropReason.MALFORMED_ROW, "README.tiff")


def test_kdef(tmp_path: Path) -> None:
    for name in ("AF01/AF01ANS.JPG", "BM23/BM23HAFR.JPG", "AM05/AM05DIHL.JPG", "AF01/AF01XX.JPG"):
        write_image(tmp_path / name)
    records = by_id(adapter_for("kdef", tmp_path))
    first = records["AF01/AF01ANS.JPG"]
    assert (first.original_label, first.subject_id, first.drop_reason) == ("AN", "F01", None)
    assert first.metadata == {"session": "A", "sex": "female", "angle": "S"}
    third = records["AM05/AM05DIHL.JPG"]
    assert (third.original_label, third.subject_id, third.metadata["sex"]) == ("DI", "M05", "male")
    side = records["BM23/BM23HAFR.JPG"]
    assert (side.original_label, side.subject_id, side.metadata["session"]) == ("HA", "M23", "B")
    assert_dropped(side, DropReason.EXCLUDED_ANGLE, "BM23HAFR.JPG", "FR")
    assert_dropped(records["AF01/AF01XX.JPG"], DropReason.MALFORMED_ROW, "AF01XX.JPG")
    only_fr = by_id(adapter_for("kdef", tmp_path, angles=["FR"]))
    assert only_fr["BM23/BM23HAFR.JPG"].drop_reason is None
    assert only_fr["AF01/AF01ANS.JPG"].drop_reason == DropReason.EXCLUDED_ANGLE


def test_rafd(tmp_path: Path) -> None:
    names = [
        "Rafd090_01_Caucasian_female_angry_frontal.jpg",
        "Rafd045_49_Kid_male_happy_left.jpg",
        "Rafd180_01_Caucasian_female_sad_right.jpg",
        "Rafd090_bad.jpg",
    ]
    for name in names:
        write_image(tmp_path / name)
    records = by_id(adapter_for("rafd", tmp_path))
    adult = records[names[0]]
    assert (adult.original_label, adult.subject_id, adult.population) == ("angry", "01", None)
    assert adult.metadata == {
        "ethnicity": "Caucasian",
        "sex": "female",
        "angle": "090",
        "gaze": "frontal",
    }
    kid = records[names[1]]
    assert (kid.original_label, kid.subject_id, kid.population) == ("happy", "49", "child")
    assert kid.metadata == {"sex": "male", "angle": "045", "gaze": "left"}
    assert kid.drop_reason is None
    assert_dropped(records[names[2]], DropReason.EXCLUDED_ANGLE, names[2], "180")
    assert_dropped(records[names[3]], DropReason.MALFORMED_ROW, names[3])
    yaml_ints = by_id(adapter_for("rafd", tmp_path, angles=[180]))  # unquoted YAML numbers
    assert yaml_ints[names[2]].drop_reason is None
    assert yaml_ints[names[0]].drop_reason == DropReason.EXCLUDED_ANGLE


# AffectNet / ExpW / RAF-DB ------------------------------------------------------------------


def write_affectnet(root: Path) -> None:
    images = root / "Manually_Annotated_Images"
    for name in ("689/a.jpg", "689/b.jpg", "689/c.jpg", "12/d.jpg", "12/e.jpg"):
        write_image(images / name)
    write_text(
        root / "training.csv",
        [
            AFFECTNET_HEADER,
            "689/a.jpg,10,20,100,120,1.5;2.5;3.5,1,0.5,-0.1",  # line 2
            "689/missing.jpg,10,20,100,120,,2,0,0",
            "689/b.jpg,x,20,100,120,,2,0,0",
            "689/c.jpg,10,20,0,50,,2,0,0",
            ",1,2,3,4,,1,0,0",  # line 6
            "689/a2.jpg,10,20,100,120,,happy,0,0",
        ],
    )
    write_text(
        root / "validation.csv",
        [AFFECTNET_HEADER, "12/d.jpg,0,0,5,5,,7,0,0", "12/e.jpg,0,0,5,5,,,0,0"],
    )


def test_affectnet(tmp_path: Path) -> None:
    write_affectnet(tmp_path)
    records = by_id(adapter_for("affectnet", tmp_path))
    assert len(records) == 8
    first = records["689/a.jpg"]
    assert (first.original_label, first.bbox, first.drop_reason) == ("1", (10, 20, 100, 120), None)
    assert first.image_path == str(tmp_path / "Manually_Annotated_Images/689/a.jpg")
    assert first.metadata == {"source_split": "training"}
    assert (records["12/d.jpg"].original_label, records["12/d.jpg"].metadata) == (
        "7",
        {"source_split": "validation"},
    )
    assert_dropped(records["689/missing.jpg"], DropReason.MISSING_IMAGE, "training.csv line 3")
    assert_dropped(records["689/b.jpg"], DropReason.MALFORMED_ROW, "training.csv line 4", "box")
    assert_dropped(records["689/c.jpg"], DropReason.MALFORMED_ROW, "line 5", "0x50")
    assert_dropped(records["training:line6"], DropReason.MALFORMED_ROW, "subDirectory_filePath")
    assert_dropped(records["689/a2.jpg"], DropReason.MALFORMED_ROW, "line 7", "'happy'")
    assert_dropped(records["12/e.jpg"], DropReason.UNLABELLED, "validation.csv line 3")


def test_affectnet_options_and_layout_checks(tmp_path: Path) -> None:
    write_affectnet(tmp_path)
    records = by_id(adapter_for("affectnet", tmp_path, csv_files="validation.csv"))
    assert set(records) == {"12/d.jpg", "12/e.jpg"}
    (tmp_path / "validation.csv").unlink()
    assert_layout_error(adapter_for("affectnet", tmp_path), "validation.csv")
    write_text(tmp_path / "validation.csv", ["subDirectory_filePath,face_x,face_y"])
    assert_layout_error(
        adapter_for("affectnet", tmp_path), "validation.csv", "'face_width'", "'expression'"
    )


def write_expw(root: Path) -> None:
    write_image(root / "image" / "origin" / "a.jpg")
    write_text(
        root / "label" / "label.lst",
        [
            "a.jpg 0 28 113 226 141 22.9362 3",  # line 1
            "a.jpg 1 10 10 50 60 -1.5 6",  # low confidence
            "b.jpg 0 10 10 50 60 5.0 2",  # missing image
            "a.jpg 2 10 60 50 70 1 0",  # right < left
            "",
            "garbage line",  # line 6
            "a.jpg 3 10 10 50 60 1 x",
        ],
    )


def test_expw(tmp_path: Path) -> None:
    write_expw(tmp_path)
    records = by_id(adapter_for("expw", tmp_path))
    assert list(records) == ["a.jpg#0", "a.jpg#1", "b.jpg#0", "a.jpg#2", "line6", "a.jpg#3"]
    first = records["a.jpg#0"]
    assert (first.original_label, first.bbox, first.drop_reason) == ("3", (113, 28, 113, 113), None)
    assert first.image_path == str(tmp_path / "image/origin/a.jpg")
    assert_dropped(records["a.jpg#1"], DropReason.LOW_BOX_CONFIDENCE, "label.lst line 2", "-1.5")
    assert_dropped(records["b.jpg#0"], DropReason.MISSING_IMAGE, "line 3", "b.jpg")
    assert_dropped(records["a.jpg#2"], DropReason.MALFORMED_ROW, "line 4", "-10x60")
    assert_dropped(records["line6"], DropReason.MALFORMED_ROW, "label.lst line 6", "2 fields")
    assert_dropped(records["a.jpg#3"], DropReason.MALFORMED_ROW, "line 7", "'x'")
    lenient = by_id(adapter_for("expw", tmp_path, min_box_confidence=-5))
    assert (lenient["a.jpg#1"].original_label, lenient["a.jpg#1"].drop_reason) == ("6", None)
    assert_layout_error(adapter_for("expw", tmp_path, images_dir="image/aligned"), "image/aligned")
    assert_layout_error(adapter_for("expw", tmp_path / "image"), "label.lst")


def test_rafdb(tmp_path: Path) -> None:
    for name in ("train_00001_aligned.jpg", "test_0001_aligned.jpg"):
        write_image(tmp_path / "Image" / "aligned" / name)
    write_image(tmp_path / "Image" / "original" / "train_00001.jpg")
    write_text(
        tmp_path / "EmoLabel" / "list_patition_label.txt",
        ["train_00001.jpg 5", "test_0001.jpg 1", "train_00002.jpg 4", "train_00003.jpg", "x.jpg y"],
    )
    records = by_id(adapter_for("rafdb", tmp_path))
    first = records["train_00001.jpg"]
    assert (first.original_label, first.metadata) == ("5", {"source_split": "train"})
    assert first.image_path == str(tmp_path / "Image/aligned/train_00001_aligned.jpg")
    assert first.drop_reason is None
    assert records["test_0001.jpg"].metadata == {"source_split": "test"}
    assert_dropped(records["train_00002.jpg"], DropReason.MISSING_IMAGE, "line 3", "aligned")
    assert_dropped(records["line4"], DropReason.MALFORMED_ROW, "list_patition_label.txt line 4")
    assert_dropped(records["x.jpg"], DropReason.MALFORMED_ROW, "line 5", "'y'")
    original = by_id(adapter_for("rafdb", tmp_path, aligned=False))
    assert original["train_00001.jpg"].image_path == str(
        tmp_path / "Image/original/train_00001.jpg"
    )
    assert original["train_00001.jpg"].drop_reason is None
    assert_dropped(original["test_0001.jpg"], DropReason.MISSING_IMAGE, "Image/original")
    assert_layout_error(adapter_for("rafdb", tmp_path, images_dir="Image/other"), "Image/other")
    (tmp_path / "EmoLabel" / "list_patition_label.txt").unlink()
    assert_layout_error(adapter_for("rafdb", tmp_path), "list_patition_label.txt")


# children's sets named by words, folders, generic CSV ---------------------------------------


VOCABULARY = ["angry", "happy", "neutral", "sad", "AN"]


@pytest.mark.parametrize("fmt", ["cafe", "nimh_chefs", "dartmouth"])
def test_named_files_from_words(tmp_path: Path, fmt: str) -> None:
    names = ["Angry/F-AA-01_open.jpg", "happy_F-AB-02.jpg", "misc/F-AC-03.jpg", "sad/neutral_x.jpg"]
    for name in names:
        write_image(tmp_path / name)
    adapter = adapter_for(fmt, tmp_path, VOCABULARY, subject_pattern=r"F-(?P<subject>[A-Z]{2})")
    records = by_id(adapter)
    assert set(records) == set(names)
    folder_word = records["Angry/F-AA-01_open.jpg"]
    assert (folder_word.original_label, folder_word.subject_id) == ("angry", "AA")
    assert folder_word.image_path == str(tmp_path / "Angry/F-AA-01_open.jpg")
    assert records["happy_F-AB-02.jpg"].original_label == "happy"
    assert records["sad/neutral_x.jpg"].original_label == "neutral"  # the file name wins
    assert records["sad/neutral_x.jpg"].subject_id is None
    assert_dropped(records["misc/F-AC-03.jpg"], DropReason.UNLABELLED, "misc/F-AC-03.jpg")


def test_named_files_from_metadata_csv(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        write_image(tmp_path / "images" / name)
    write_image(tmp_path / "elsewhere" / "f.jpg")  # outside images_dir: not read
    write_text(
        tmp_path / "meta.csv",
        [
            "file,emotion,subject,age,sex,agreement,ethnicity,mouth,extra",
            "images/a.jpg,angry,C01,5,female,0.75,Asian,open,x",  # line 2
            "./images/b.jpg,happy,,4.5,male,80%,,,",
            "images/missing.jpg,sad,C03,,,,,,",
            "images/c.jpg,,C04,,,,,,",
            "images/a.jpg,sad,C01,,,,,,",  # line 6: duplicate
            "images/d.jpg,neutral,C05,five,,,,,",
        ],
    )
    adapter = adapter_for(
        "cafe",
        tmp_path,
        VOCABULARY,
        images_dir="images",
        metadata_csv="meta.csv",
        subject_pattern=r"(?P<subject>[a-z])\.jpg",
    )
    records = by_id(adapter)
    assert set(records) == {
        "images/a.jpg",
        "images/b.jpg",
        "images/missing.jpg",
        "images/c.jpg",
        "line6",
        "line7",
        "images/e.jpg",
    }
    first = records["images/a.jpg"]
    assert (first.original_label, first.subject_id, first.drop_reason) == ("angry", "C01", None)
    assert first.metadata == {
        "age": 5,
        "agreement": 0.75,
        "ethnicity": "Asian",
        "mouth": "open",
        "sex": "female",
    }
    assert first.image_path == str(tmp_path / "images/a.jpg")
    second = records["images/b.jpg"]
    assert (second.original_label, second.subject_id) == ("happy", "b")  # from subject_pattern
    assert second.metadata == {"age": 4.5, "agreement": pytest.approx(0.8), "sex": "male"}
    assert_dropped(records["images/missing.jpg"], DropReason.MISSING_IMAGE, "meta.csv line 4")
    assert_dropped(records["images/c.jpg"], DropReason.UNLABELLED, "meta.csv line 5")
    assert_dropped(records["line6"], DropReason.MALFORMED_ROW, "line 6", "line 2")
    assert_dropped(records["line7"], DropReason.MALFORMED_ROW, "line 7", "age", "'five'")
    assert_dropped(records["images/e.jpg"], DropReason.UNLABELLED, "images/e.jpg", "meta.csv")


def test_named_files_layout_checks(tmp_path: Path) -> None:
    assert_layout_error(adapter_for("dartmouth", tmp_path, images_dir="images"), "images")
    assert_layout_error(adapter_for("cafe", tmp_path, metadata_csv="meta.csv"), "meta.csv")
    write_text(tmp_path / "meta.csv", ["file,label", "a.jpg,angry"])
    assert_layout_error(adapter_for("cafe", tmp_path, metadata_csv="meta.csv"), "'emotion'")


@pytest.mark.parametrize("fmt", ["folder", "liris_cse"])
def test_folder_per_label(tmp_path: Path, fmt: str) -> None:
    for name in ("happy/P01_s1/f001.png", "sad/x.png", "loose.png", "happy/.hidden/y.png"):
        write_image(tmp_path / name)
    pattern = r"(?P<subject>P\d+)_(?P<session>s\d+)"
    records = by_id(adapter_for(fmt, tmp_path, subject_pattern=pattern))
    assert set(records) == {"happy/P01_s1/f001.png", "sad/x.png", "loose.png"}
    frame = records["happy/P01_s1/f001.png"]
    assert (frame.original_label, frame.subject_id, frame.metadata) == (
        "happy",
        "P01",
        {"session": "s1"},
    )
    assert frame.image_path == str(tmp_path / "happy/P01_s1/f001.png")
    assert (records["sad/x.png"].original_label, records["sad/x.png"].subject_id) == ("sad", None)
    assert_dropped(records["loose.png"], DropReason.UNLABELLED, "loose.png")


def test_csv_format(tmp_path: Path) -> None:
    for name in ("imgs/a.png", "imgs/b.png"):
        write_image(tmp_path / name)
    write_text(
        tmp_path / "labels.csv",
        [
            "path,label,subject,session,age",
            "imgs/a.png,happy,kid1,s1,7",  # line 2
            "imgs/missing.png,sad,kid2,,",
            "imgs/b.png,,kid3,,",
            ",happy,kid4,,",
            "imgs/b.png,sad,kid3,,,surplus",
        ],
    )
    records = by_id(adapter_for("csv", tmp_path))
    assert set(records) == {"imgs/a.png", "imgs/missing.png", "imgs/b.png", "line5", "line6"}
    first = records["imgs/a.png"]
    assert (first.original_label, first.subject_id, first.drop_reason) == ("happy", "kid1", None)
    assert first.metadata == {"session": "s1", "age": 7}
    assert first.image_path == str(tmp_path / "imgs/a.png")
    assert_dropped(records["imgs/missing.png"], DropReason.MISSING_IMAGE, "labels.csv line 3")
    assert_dropped(records["imgs/b.png"], DropReason.UNLABELLED, "labels.csv line 4", "label")
    assert_dropped(records["line5"], DropReason.MALFORMED_ROW, "line 5", "path")
    assert_dropped(records["line6"], DropReason.MALFORMED_ROW, "line 6", "6 fields")


def test_csv_format_options_and_layout_checks(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    write_text(tmp_path / "frames.csv", ["file,emotion", "a.png,calm"])
    adapter = adapter_for(
        "csv",
        tmp_path,
        csv="frames.csv",
        path_column="file",
        label_column="emotion",
        subject_column="child",
    )
    record = by_id(adapter)["a.png"]
    assert (record.original_label, record.subject_id, record.drop_reason) == ("calm", None, None)
    assert_layout_error(adapter_for("csv", tmp_path), "labels.csv")
    assert_layout_error(adapter_for("csv", tmp_path, csv="frames.csv"), "'path'", "'label'")


def test_csv_with_bom_crlf_and_an_unbalanced_quote(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name)
    text = '\ufeffpath,label\r\na.png,happy\r\n\r\nb.png,"sad\r\nc.png,angry\r\n'
    (tmp_path / "labels.csv").write_bytes(text.encode("utf-8"))
    records = by_id(adapter_for("csv", tmp_path))
    assert list(records) == ["a.png", "line4"]
    assert (records["a.png"].original_label, records["a.png"].drop_reason) == ("happy", None)
    assert_dropped(records["line4"], DropReason.MALFORMED_ROW, "labels.csv line 4", "quote")


def test_image_paths_are_absolute_for_a_relative_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_image(tmp_path / "data" / "happy" / "a.png")
    monkeypatch.chdir(tmp_path)
    record = next(adapter_for("folder", Path("data")).records())
    assert os.path.isabs(record.image_path)
    assert record.image_path == str(tmp_path / "data" / "happy" / "a.png")


# bad inputs: links that lead nowhere, headers that are data, pixels out of range, a file root --


def test_dangling_and_looping_links_are_broken_link_records(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_image(root / "happy" / "real.png")
    (root / "happy" / "annexed.png").symlink_to(tmp_path / "objects" / "ab12")
    (root / "sad").mkdir()
    (root / "sad" / "loop.png").symlink_to(root / "sad" / "loop.png")
    (root / "sad" / "ok_link.png").symlink_to(root / "happy" / "real.png")
    records = {r.record_id: r for r in adapter_for("folder", root).checked_records()}
    assert set(records) == {
        "happy/real.png",
        "happy/annexed.png",
        "sad/loop.png",
        "sad/ok_link.png",
    }
    assert records["happy/real.png"].drop_reason is None
    assert records["sad/ok_link.png"].drop_reason is None
    assert_dropped(
        records["happy/annexed.png"],
        DropReason.BROKEN_LINK,
        "happy/annexed.png: broken symbolic link -> ",
        "objects/ab12",
    )
    assert_dropped(records["sad/loop.png"], DropReason.BROKEN_LINK, "symbolic link loop")

    write_text(root / "labels.csv", ["path,label", "happy/annexed.png,happy", "nowhere.png,sad"])
    listed = {r.record_id: r for r in adapter_for("csv", root).checked_records()}
    assert_dropped(
        listed["happy/annexed.png"], DropReason.BROKEN_LINK, "labels.csv line 2", "objects/ab12"
    )
    assert_dropped(listed["nowhere.png"], DropReason.MISSING_IMAGE, "line 3", "not found")


def test_a_header_row_that_is_data_is_never_shown(tmp_path: Path) -> None:
    write_text(tmp_path / "fer2013.csv", [f"3,{PIXELS_48},Training"])
    with pytest.raises(SourceLayoutError) as info:
        adapter_for("fer2013", tmp_path).check()
    message = str(info.value)
    assert "7 7" not in message and len(message) < 300, message
    assert "fer2013.csv" in message
    assert "the first row looks like data, not a header (3 fields)" in message
    write_text(tmp_path / "fer2013.csv", ["emotion,pixel,Usage", f"3,{PIXELS_48},Training"])
    assert_layout_error(
        adapter_for("fer2013", tmp_path), "['pixels']", "header: ['emotion', 'pixel', 'Usage']"
    )


def test_fer2013_pixel_values_out_of_range_are_malformed_with_the_line(tmp_path: Path) -> None:
    write_text(
        tmp_path / "fer2013.csv",
        [
            "emotion,pixels,Usage",
            f"3,{PIXELS_48},Training",
            f"3,300 {' '.join(['7'] * 2303)},Training",
            f"3,{' '.join(['7'] * 2303)} 0255,Training",  # leading zero: still 255
            f"3,{' '.join(['7'] * 2303)} 1000,Training",
        ],
    )
    records = by_id(adapter_for("fer2013", tmp_path))
    assert records["row00000"].drop_reason is None
    assert_dropped(records["row00001"], DropReason.MALFORMED_ROW, "line 3", "outside 0-255")
    assert records["row00002"].drop_reason is None
    assert_dropped(records["row00003"], DropReason.MALFORMED_ROW, "line 5", "outside 0-255")
    assert not any("7 7" in r.detail or "300" in r.detail for r in records.values())


def test_a_root_that_is_a_file_is_named_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "kdef.zip").write_bytes(b"PK\x03\x04")
    assert_layout_error(adapter_for("kdef", tmp_path / "kdef.zip"), "is a file, not a folder")
