"""Each source folder parsed back as docs/data_sets.md describes it, with its planted drop cases."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from pediatric_emotion.images import UnreadableImageError, decode_image, pixels_to_image

from .conftest import files_of

FERPLUS_VOTES = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)


def read_csv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def lines(data: bytes) -> list[str]:
    return [line for line in data.decode("utf-8").splitlines() if line.strip()]


def images(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: d for p, d in files.items() if p.lower().endswith((".jpg", ".png", ".tiff"))}


def drops(params, source: str, key: str) -> int:
    count = params["sources"][source]["drop_cases"][key]
    assert count > 0, f"conf/base plants no {source} {key}"
    return count


def same_picture(a: bytes, b: bytes) -> bool:
    """Both decode to nearly the same pixels (a JPEG re-encode of the same image)."""
    first, second = decode_image(a), decode_image(b)
    if first.shape != second.shape:
        return False
    return float(np.abs(first.astype(int) - second.astype(int)).mean()) < 4.0


# --- FER2013 / FER+ -------------------------------------------------------------------------------


def test_fer2013_rows_and_the_short_pixel_row(demo_files, demo_params):
    files = files_of(demo_files, "fer2013")
    header, rows = read_csv(files["fer2013.csv"])
    assert header == ["emotion", "pixels", "Usage"]
    assert {row["Usage"] for row in rows} <= {"Training", "PublicTest", "PrivateTest"}
    assert {int(row["emotion"]) for row in rows} <= set(range(7))
    counts = Counter(len(row["pixels"].split()) for row in rows)
    assert counts[2303] == drops(demo_params, "fer2013", "wrong_pixel_count")
    assert counts[2304] == len(rows) - counts[2303]
    good = next(row["pixels"] for row in rows if len(row["pixels"].split()) == 2304)
    assert pixels_to_image(good).shape == (48, 48, 3)


def test_ferplus_votes_match_fer2013_rows_and_plant_every_drop(demo_files, demo_params):
    files = files_of(demo_files, "fer2013")
    header, rows = read_csv(files["fer2013new.csv"])
    _, fer_rows = read_csv(files["fer2013.csv"])
    assert header == ["Usage", "Image name", *FERPLUS_VOTES]
    assert len(rows) == len(fer_rows)
    assert [r["Usage"] for r in rows] == [r["Usage"] for r in fer_rows]
    winners, ties = Counter(), 0
    for index, row in enumerate(rows):
        votes = {column: int(row[column]) for column in FERPLUS_VOTES}
        assert sum(votes.values()) == 10
        assert row["Image name"] in ("", f"fer{index:07d}.png")
        best = max(votes.values())
        top = [column for column, count in votes.items() if count == best]
        if len(top) > 1:
            ties += 1
        else:
            winners[top[0]] += 1
    assert ties == drops(demo_params, "fer2013", "ferplus_tie")
    assert winners["contempt"] == drops(demo_params, "fer2013", "ferplus_contempt")
    assert winners["unknown"] == drops(demo_params, "fer2013", "ferplus_unknown")
    assert winners["NF"] == drops(demo_params, "fer2013", "ferplus_not_face")
    blank = sum(row["Image name"] == "" for row in rows)
    assert blank == drops(demo_params, "fer2013", "ferplus_blank_name")


# --- CK+ ------------------------------------------------------------------------------------------

CK_FRAME = re.compile(r"cohn-kanade-images/(S\d{3})/(\d{3})/\1_\2_(\d{8})\.png")
CK_LABEL = re.compile(r"Emotion/(S\d{3})/(\d{3})/\1_\2_(\d{8})_emotion\.txt")


def test_ckplus_sequences_labels_and_drops(demo_files, demo_params):
    files = files_of(demo_files, "ckplus")
    frames: dict[tuple[str, str], list[int]] = defaultdict(list)
    labels: dict[tuple[str, str], tuple[int, float]] = {}
    for path, data in files.items():
        if match := CK_FRAME.fullmatch(path):
            frames[match[1], match[2]].append(int(match[3]))
        elif match := CK_LABEL.fullmatch(path):
            labels[match[1], match[2]] = (int(match[3]), float(data.decode("ascii")))
        else:
            pytest.fail(f"unexpected CK+ file {path}")
    for sequence, numbers in frames.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)) and len(numbers) >= 3
        if sequence in labels:
            last, code = labels[sequence]
            assert last == len(numbers) and code.is_integer() and 1 <= code <= 7
    assert set(labels) <= set(frames)
    codes = Counter(int(code) for _, code in labels.values())
    assert codes[2] == drops(demo_params, "ckplus", "contempt_sequences")
    unlabelled = len(frames) - len(labels)
    assert unlabelled == drops(demo_params, "ckplus", "unlabelled_sequences")
    first = decode_image(files[next(iter(sorted(p for p in files if p.endswith(".png"))))])
    assert (first[..., 0] == first[..., 1]).all() and (first[..., 1] == first[..., 2]).all()


# --- JAFFE, KDEF, RaFD ----------------------------------------------------------------------------


def test_jaffe_names_and_gray_tiffs(demo_files):
    files = files_of(demo_files, "jaffe")
    pattern = re.compile(r"([A-Z]{2})\.(AN|DI|FE|HA|NE|SA|SU)(\d)\.(\d+)\.tiff")
    matches = [pattern.fullmatch(path) for path in files]
    assert files and all(matches)
    assert len({m[4] for m in matches}) == len(matches), "image ids are unique"
    assert {m[2] for m in matches} == {"AN", "DI", "FE", "HA", "NE", "SA", "SU"}
    image = decode_image(next(iter(files.values())))
    assert (image[..., 0] == image[..., 2]).all()


def test_kdef_names_angles_sessions_and_the_unreadable_file(demo_files, demo_params):
    files = files_of(demo_files, "kdef")
    pattern = re.compile(r"([AB])([FM])(\d{2})/\1\2\3(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)\.JPG")
    matches = {path: pattern.fullmatch(path) for path in files}
    assert files and all(matches.values())
    assert {m[5] for m in matches.values()} == {"FL", "HL", "S", "HR", "FR"}
    assert {m[1] for m in matches.values()} == {"A", "B"}
    unreadable = []
    for path, data in files.items():
        try:
            decode_image(data, path)
        except UnreadableImageError:
            unreadable.append(path)
    assert len(unreadable) == drops(demo_params, "kdef", "unreadable_images")
    assert all(matches[path][5] == "S" for path in unreadable), "an angle that is kept"


def test_rafd_names_angles_kids_and_contempt(demo_files, demo_params):
    files = files_of(demo_files, "rafd")
    pattern = re.compile(
        r"Rafd(000|045|090|135|180)_(\d{2})_(Caucasian|Moroccan|Kid)_(female|male)_"
        r"(angry|contemptuous|disgusted|fearful|happy|neutral|sad|surprised)_"
        r"(frontal|left|right)\.jpg"
    )
    matches = [pattern.fullmatch(path) for path in files]
    assert files and all(matches)
    angles = Counter(m[1] for m in matches)
    assert {"045", "090", "135"} <= set(angles)
    assert angles["000"] + angles["180"] == drops(demo_params, "rafd", "profile_images")
    assert "Kid" in {m[3] for m in matches} and "contemptuous" in {m[5] for m in matches}


# --- AffectNet, ExpW, RAF-DB ----------------------------------------------------------------------

AFFECTNET_COLUMNS = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
]


def test_affectnet_tables_boxes_codes_and_drops(demo_files, demo_params):
    files = files_of(demo_files, "affectnet")
    rows = []
    for name in ("training.csv", "validation.csv"):
        header, table = read_csv(files[name])
        assert header == AFFECTNET_COLUMNS and table
        rows += table
    codes = Counter(int(row["expression"]) for row in rows)
    assert set(codes) <= set(range(11)) and all(codes[c] > 0 for c in range(11))
    malformed = missing = 0
    for row in rows:
        image_path = f"Manually_Annotated_Images/{row['subDirectory_filePath']}"
        assert re.fullmatch(r"\d+/[0-9a-f]{56}\.jpg", row["subDirectory_filePath"])
        assert len(row["facial_landmarks"].split(";")) == 136
        try:
            x, y, w, h = (float(row[c]) for c in AFFECTNET_COLUMNS[1:5])
        except ValueError:
            malformed += 1
            continue
        if image_path not in files:
            missing += 1
            continue
        height, width = decode_image(files[image_path]).shape[:2]
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height and w > 0 and h > 0
    assert malformed == drops(demo_params, "affectnet", "malformed_box")
    assert missing == drops(demo_params, "affectnet", "missing_image")
    for key, code in (("contempt", 7), ("none", 8), ("uncertain", 9), ("no_face", 10)):
        assert codes[code] == drops(demo_params, "affectnet", key)


def test_expw_lines_two_faces_malformed_line_and_affectnet_copies(demo_files, demo_params):
    files = files_of(demo_files, "expw")
    label_lines = lines(files["label/label.lst"])
    faces_per_image, short = Counter(), 0
    boxes = {}
    for line in label_lines:
        fields = line.split()
        if len(fields) != 8:
            short += 1
            continue
        name, face_id, top, left, right, bottom, confidence, label = fields
        assert f"image/origin/{name}" in files and 0 <= int(label) <= 6
        assert int(left) < int(right) and int(top) < int(bottom) and float(confidence) > 0
        faces_per_image[name] += 1
        boxes[name] = (int(left), int(top), int(right) - int(left), int(bottom) - int(top))
    assert short == drops(demo_params, "expw", "too_few_fields")
    assert 2 in faces_per_image.values()
    assert {p for p in files if p.startswith("image/origin/")} == {
        f"image/origin/{n}" for n in faces_per_image
    }
    affectnet = files_of(demo_files, "affectnet")
    given = {}  # AffectNet image path -> its face box
    for name in ("training.csv", "validation.csv"):
        for row in read_csv(affectnet[name])[1]:
            path = f"Manually_Annotated_Images/{row['subDirectory_filePath']}"
            values = [row[c] for c in AFFECTNET_COLUMNS[1:5]]
            if path in affectnet and all(v.isdigit() for v in values):
                given[path] = tuple(int(v) for v in values)
    copies = 0
    for name, box in boxes.items():
        data = files[f"image/origin/{name}"]
        for path, affectnet_box in given.items():
            if same_picture(affectnet[path], data):
                assert data != affectnet[path], "re-encoded, not copied byte for byte"
                assert box == affectnet_box
                copies += 1
    assert copies == drops(demo_params, "expw", "affectnet_duplicates")


def test_rafdb_list_and_aligned_faces(demo_files):
    files = files_of(demo_files, "rafdb")
    listed = lines(files["EmoLabel/list_patition_label.txt"])
    pattern = re.compile(r"((?:train_\d{5})|(?:test_\d{4}))\.jpg ([1-7])")
    stems = []
    for line in listed:
        match = pattern.fullmatch(line)
        assert match, line
        stems.append(match[1])
    assert {s.split("_")[0] for s in stems} == {"train", "test"}
    assert set(images(files)) == {f"Image/aligned/{s}_aligned.jpg" for s in stems}
    assert decode_image(files[f"Image/aligned/{stems[0]}_aligned.jpg"]).shape == (100, 100, 3)


# --- children: CAFE, GuessWhat, NIMH-ChEFS, Dartmouth, LIRIS-CSE ----------------------------------

CAFE_WORDS = {"angry", "disgust", "fearful", "happy", "neutral", "sad", "surprise"}
CAFE_ETHNICITIES = {"African American", "Asian", "Caucasian", "Latino", "South Asian"}


def test_cafe_files_and_metadata(demo_files):
    files = files_of(demo_files, "cafe")
    header, rows = read_csv(files["cafe_metadata.csv"])
    assert header == [
        "file",
        "emotion",
        "subject",
        "ethnicity",
        "age",
        "sex",
        "mouth",
        "agreement",
        "planted",  # demo-only columns: the planted robustness cases (test_planted.py)
        "head_roll_deg",
    ]
    assert {row["file"] for row in rows} == set(images(files))
    pattern = re.compile(r"images/(\w+)/([a-z]\d+)_(\w+)_(open|closed|tongue|notongue)\.jpg")
    for row in rows:
        match = pattern.fullmatch(row["file"])
        assert match and match[1] == match[3] == row["emotion"] and match[2] == row["subject"]
        assert row["emotion"] in CAFE_WORDS and row["ethnicity"] in CAFE_ETHNICITIES
        assert (match[4] in ("tongue", "notongue")) == (row["emotion"] == "disgust")
        assert 2 <= int(row["age"]) <= 8 and row["mouth"] in ("open", "closed")
        assert 0.0 <= float(row["agreement"]) <= 1.0


def test_guesswhat_folders_frames_and_cafe_copies(demo_files, demo_params):
    files = files_of(demo_files, "guesswhat")
    folders = Counter(path.split("/")[0] for path in files)
    words = {"happy", "sad", "surprised", "scared", "disgust", "mad", "neutral"}
    assert set(folders) <= words | {"unknown"}
    assert folders["unknown"] == drops(demo_params, "guesswhat", "unknown_frames")
    assert all(re.fullmatch(r"[a-z]+/gw\d{4}_f\d{4}\.jpg", path) for path in files)
    cafe = images(files_of(demo_files, "cafe"))
    copies = [
        (path, source)
        for path, data in files.items()
        for source, original in cafe.items()
        if same_picture(data, original)
    ]
    assert len(copies) == drops(demo_params, "guesswhat", "cafe_copies")
    to_folder = {"angry": "mad", "fearful": "scared", "surprise": "surprised"}
    for path, source in copies:
        word = source.split("/")[1]
        assert path.split("/")[0] == to_folder.get(word, word)
        assert files[path] != cafe[source], "re-encoded, not copied byte for byte"
    frame = decode_image(files[next(p for p in files if all(p != c for c, _ in copies))])
    assert frame.shape[1] > frame.shape[0], "landscape phone frames"


def test_nimh_chefs_names(demo_files):
    files = images(files_of(demo_files, "nimh_chefs"))
    pattern = re.compile(r"ch\d{3}_(fear|anger|happy|sad|neutral)_(direct|averted)\.jpg")
    assert files and all(pattern.fullmatch(path) for path in files)
    _, rows = read_csv(files_of(demo_files, "nimh_chefs")["nimh_chefs_metadata.csv"])
    assert {row["file"] for row in rows} == set(files)
    assert all(10 <= int(row["age"]) <= 17 for row in rows)


def test_dartmouth_names_include_contempt(demo_files):
    files = images(files_of(demo_files, "dartmouth"))
    words = "neutral|happy|sad|angry|afraid|surprised|disgusted|contempt"
    pattern = re.compile(rf"dm\d{{2}}_({words})_(front|left|right)\.jpg")
    matches = [pattern.fullmatch(path) for path in files]
    assert files and all(matches)
    assert len({m[1] for m in matches}) == 8
    _, rows = read_csv(files_of(demo_files, "dartmouth")["dartmouth_metadata.csv"])
    assert {row["file"] for row in rows} == set(files)
    assert all(6 <= int(row["age"]) <= 16 for row in rows)


def test_liris_cse_clips_of_frames(demo_files):
    files = files_of(demo_files, "liris_cse")
    pattern = re.compile(
        r"(happy|sad|surprise|disgust|fear|anger)/(child\d{2})_clip\d{2}/(\d{4})\.jpg"
    )
    clips: dict[str, list[int]] = defaultdict(list)
    for path in files:
        match = pattern.fullmatch(path)
        assert match, path
        clips[path.rsplit("/", 1)[0]].append(int(match[3]))
    assert clips and all(sorted(v) == list(range(1, len(v) + 1)) for v in clips.values())
