"""`pediatric-emotion predict`: a demo-data face through the evaluation tests' tiny TFLite file,
cropped as harmonization crops training faces; a folder with a face-less picture, a text file and
a corrupt PNG; a video written here; a missing path; a model without its spec."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from pediatric_emotion.__main__ import main
from pediatric_emotion.datasets import TFLiteModelDataset
from pediatric_emotion.images import encode_image, read_image
from pediatric_emotion.pipelines.demo_data import faces
from pediatric_emotion.pipelines.demo_data.faces import Expression, PlacedFace, Pose
from pediatric_emotion.pipelines.demo_data.scenes import Scene, render
from pediatric_emotion.predict import BASE_COLUMNS, PredictError, load_model, predict
from tests.conftest import PROJECT_ROOT
from tests.pipelines.evaluation.conftest import (  # noqa: F401  (fixtures reused here)
    EMOTIONS,
    crop_paths,
    crops_root,
    tiny_model,
    tiny_tflite,
)

SCENE = Scene(background="plain", colours=((190.0, 200.0, 210.0),))
PROB_COLUMNS = [f"prob_{label}" for label in EMOTIONS]


def face_detection() -> dict:
    """The project's face_detection parameters (conf/base), as harmonization uses them."""
    path = PROJECT_ROOT / "conf" / "base" / "parameters_label_harmonization.yml"
    return yaml.safe_load(path.read_text())["face_detection"]


@pytest.fixture(scope="module")
def demo_face() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A demo-data child's face on a plain background, and the box it was drawn in."""
    rng = np.random.default_rng(5)
    who = faces.random_identity(rng, 0.8)
    pose = Pose(cx=0.5, cy=0.5, height=0.5)
    rendered = render((240, 200), [PlacedFace(who, Expression("happy", 0.9), pose)], SCENE)
    return rendered.image, rendered.boxes[0]


@pytest.fixture(scope="module")
def tiny_models(request) -> dict:
    """The evaluation tests' tiny classifiers at 32 px: quantization -> TFLiteModel."""
    return request.getfixturevalue("tiny_tflite")


@pytest.fixture(scope="module")
def model_path(tiny_models, tmp_path_factory) -> Path:
    """The tiny int8 classifier saved as the pipelines save theirs (.tflite + spec .json)."""
    path = tmp_path_factory.mktemp("model") / "int8.tflite"
    TFLiteModelDataset(filepath=str(path)).save(tiny_models["int8"])
    return path


@pytest.fixture
def pictures(tmp_path, demo_face) -> Path:
    """A folder: the demo face, a face-less picture, a text file, a corrupt PNG, a hidden file."""
    folder = tmp_path / "pictures"
    (folder / "more").mkdir(parents=True)
    (folder / "child.png").write_bytes(encode_image(demo_face[0], ".png"))
    empty = render((240, 200), [], SCENE).image
    (folder / "more" / "empty.jpg").write_bytes(encode_image(empty, ".jpg"))
    (folder / "notes.txt").write_text("not a picture\n")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    return folder


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def test_demo_face_is_cropped_as_in_training_and_classified(
    model_path, tiny_models, demo_face, tmp_path
):
    from pediatric_emotion.modeling.tflite_runner import tflite_probabilities
    from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces

    image, drawn_box = demo_face
    picture = tmp_path / "child.png"
    picture.write_bytes(encode_image(image, ".png"))
    rows, written = predict(
        model_path, [picture], out=tmp_path / "out", face_detection=face_detection()
    )

    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "ok" and row["face_index"] == 0 and row["frame"] is None
    assert iou((row["x"], row["y"], row["w"], row["h"]), drawn_box) > 0.3
    probabilities = np.array([row[column] for column in PROB_COLUMNS])
    assert probabilities.sum() == pytest.approx(1.0, abs=0.02)
    assert row["emotion"] == EMOTIONS[int(np.argmax(probabilities))]

    # Harmonization's own crop of the same picture, fed as evaluation feeds test crops, gives the
    # same scores: same detector, same crop, same input recipe.
    records = pd.DataFrame(
        [
            {
                "image_id": "child",
                "record_id": "child",
                "source": "demo",
                "image_path": str(picture),
                "pixels": None,
                "face_box": "detect",
                "drop_reason": None,
                "detail": None,
            }
        ]
    )
    spec_crop = tiny_models["int8"].spec["face_crop"]
    crops, cropped = crop_faces(
        records,
        face_detection(),
        {**spec_crop, "image_format": "png"},
        {"hash_size": 8},
    )
    assert cropped.loc[0, "bbox_x"] == pytest.approx(row["x"], abs=0.06)
    crop_file = tmp_path / "training_crop.png"
    crop_file.write_bytes(next(iter(crops.values())))
    model = tiny_models["int8"]
    expected = tflite_probabilities(model.content, model.spec, [crop_file], where="test")[0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)

    assert [p.name for p in written] == ["predictions.csv", "predictions.json"]
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert list(table.columns) == BASE_COLUMNS + PROB_COLUMNS
    document = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert document["labels"] == EMOTIONS
    assert document["summary"]["classified"] == 1
    assert list(document["predictions"][0]["probabilities"]) == EMOTIONS
    assert document["predictions"][0]["box"]["w"] == row["w"]


def test_every_face_of_a_picture_gets_its_row(model_path, tmp_path):
    rng = np.random.default_rng(11)
    placed = [
        PlacedFace(faces.random_identity(rng, 0.8), Expression(emotion, 0.9), Pose(cx, 0.5, 0.45))
        for emotion, cx in (("happy", 0.25), ("sad", 0.75))
    ]
    rendered = render((240, 440), placed, SCENE)
    picture = tmp_path / "two.png"
    picture.write_bytes(encode_image(rendered.image, ".png"))
    rows, _ = predict(
        model_path,
        [picture],
        out=tmp_path / "out",
        annotate=True,
        face_detection=face_detection(),
    )
    assert [row["face_index"] for row in rows] == [0, 1]
    assert {row["status"] for row in rows} == {"ok"}
    found = [(row["x"], row["y"], row["w"], row["h"]) for row in rows]
    for drawn in rendered.boxes:  # each drawn face found once
        assert sum(iou(box, drawn) > 0.3 for box in found) == 1
    assert rows[0]["face_score"] >= rows[1]["face_score"]
    assert len(list((tmp_path / "out" / "annotated").iterdir())) == 1  # one copy, both boxes


def test_folder_records_every_file_with_its_outcome_and_annotates(model_path, pictures, tmp_path):
    out = tmp_path / "out"
    rows, _ = predict(
        model_path,
        [pictures],
        out=out,
        annotate=True,
        output_format="csv",
        face_detection=face_detection(),
    )

    by_file = {Path(row["file"]).relative_to(pictures).as_posix(): row for row in rows}
    assert sorted(by_file) == ["child.png", "corrupt.png", "more/empty.jpg", "notes.txt"]
    assert by_file["child.png"]["status"] == "ok"
    assert by_file["more/empty.jpg"]["status"] == "no_face"
    assert by_file["more/empty.jpg"]["emotion"] is None
    assert by_file["more/empty.jpg"]["reason"] == "no face found by blazeface or the haar fallback"
    for name in ("corrupt.png", "notes.txt"):
        assert by_file[name]["status"] == "unreadable"
        assert f"{name}: not a decodable image" in by_file[name]["reason"]
    table = pd.read_csv(out / "predictions.csv")
    assert table["status"].value_counts().to_dict() == {"unreadable": 2, "ok": 1, "no_face": 1}
    assert not (out / "predictions.json").exists()
    annotated = sorted(p.relative_to(out / "annotated").as_posix() for p in out.rglob("*.*g"))
    assert annotated == ["child.png", "more/empty.jpg"]
    assert read_image(out / "annotated" / "child.png").shape == (200, 240, 3)


def test_on_error_fail_stops_at_the_unreadable_file(model_path, pictures, tmp_path):
    with pytest.raises(PredictError, match=r"corrupt\.png: not a decodable image"):
        predict(model_path, [pictures], out=tmp_path / "out", on_error="fail", face_detection={})
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_video_frames_are_sampled_and_numbered(model_path, demo_face, tmp_path):
    image, _ = demo_face
    empty = render((240, 200), [], SCENE).image
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (240, 200))
    assert writer.isOpened()
    for index in range(6):
        frame = image if index < 4 else empty
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    rows, _ = predict(
        model_path,
        videos=[video],
        out=tmp_path / "out",
        every_n_frames=2,
        annotate=True,
        face_detection=face_detection(),
    )

    assert [(row["frame"], row["status"]) for row in rows] == [(0, "ok"), (2, "ok"), (4, "no_face")]
    assert {row["file"] for row in rows} == {str(video)}
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert table["frame"].tolist() == [0, 2, 4]
    assert (tmp_path / "out" / "annotated" / "clip" / "frame_000002.png").is_file()


def test_model_without_its_spec_is_refused_naming_the_file(tiny_models, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(tiny_models["float32"].content)  # the converter's bytes: no spec embedded
    with pytest.raises(PredictError, match=r"bare\.tflite: the model has no preprocessing spec"):
        load_model(bare)

    spec = {k: v for k, v in tiny_models["float32"].spec.items() if k != "face_crop"}
    no_crop = tmp_path / "no_crop.tflite"
    TFLiteModelDataset(filepath=str(no_crop)).save(
        type(tiny_models["float32"])(content=tiny_models["float32"].content, spec=spec)
    )
    with pytest.raises(PredictError, match=r"no_crop\.tflite: the spec has no face_crop"):
        load_model(no_crop)

    text = tmp_path / "text.tflite"
    text.write_text("hello")
    with pytest.raises(PredictError, match=r"text\.tflite: cannot read the model: not a TFLite"):
        load_model(text)


def test_a_spec_with_align_true_gets_aligned_crops(tiny_models, demo_face, tmp_path):
    """A file trained on aligned crops (its spec's face_crop says align: true) is fed aligned
    crops; a spec with a bad eye_distance is refused naming the file."""
    from pediatric_emotion.faces import FaceDetector, crop_detected_face, crop_face
    from pediatric_emotion.modeling.tflite_runner import tflite_probabilities

    base = tiny_models["int8"]
    face_crop = {**base.spec["face_crop"], "align": True, "eye_distance": 0.31}
    aligned = type(base)(content=base.content, spec={**base.spec, "face_crop": face_crop})
    path = tmp_path / "aligned.tflite"
    TFLiteModelDataset(filepath=str(path)).save(aligned)
    picture = tmp_path / "child.png"
    picture.write_bytes(encode_image(demo_face[0], ".png"))
    rows, _ = predict(path, [picture], out=tmp_path / "out", face_detection=face_detection())
    assert [row["status"] for row in rows] == ["ok"]

    image = read_image(picture)
    box = FaceDetector(**face_detection()).detect(image)
    assert box is not None and box.left_eye is not None
    crop = crop_detected_face(image, box, face_crop)
    size, margin = face_crop["size"], face_crop["margin"]
    assert not np.array_equal(crop, crop_face(image, (box.x, box.y, box.w, box.h), size, margin))
    crop_file = tmp_path / "aligned_crop.png"
    crop_file.write_bytes(encode_image(crop, ".png"))
    expected = tflite_probabilities(base.content, aligned.spec, [crop_file], where="test")[0]
    probabilities = np.array([rows[0][column] for column in PROB_COLUMNS])
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)

    bad = tmp_path / "bad.tflite"
    spec = {**base.spec, "face_crop": {**face_crop, "eye_distance": 1.5}}
    TFLiteModelDataset(filepath=str(bad)).save(type(base)(content=base.content, spec=spec))
    with pytest.raises(PredictError, match=r"bad\.tflite: the spec's face_crop\.eye_distance"):
        load_model(bad)


@pytest.fixture
def run_main(monkeypatch, tmp_path):
    """``pediatric-emotion ARGUMENTS`` in this process, in ``tmp_path`` (outside the project: the
    detector's defaults), returning the exit status. Kedro's
    configure_project is left out: it rebuilds the logging handlers on the test's captured
    streams (the slow subprocess test below runs the real entry point)."""
    monkeypatch.setattr("pediatric_emotion.__main__.configure_project", lambda name: None)
    monkeypatch.chdir(tmp_path)

    def run(*arguments: str) -> int:
        with pytest.raises(SystemExit) as exit_info:
            main(list(arguments))
        return exit_info.value.code

    return run


def test_command_line_missing_paths_fail_with_the_path_named(
    run_main, model_path, pictures, tmp_path, capsys
):
    assert run_main("predict", str(model_path), str(tmp_path / "nowhere.png")) == 1
    assert "nowhere.png: no such file or folder" in capsys.readouterr().err
    assert run_main("predict", str(tmp_path / "missing.tflite"), str(pictures)) == 1
    assert "missing.tflite: model file not found" in capsys.readouterr().err
    assert run_main("predict", str(model_path), "--video", str(tmp_path / "no.mp4")) == 1
    assert "no.mp4: video file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_main("predict", str(model_path), str(tmp_path / "empty")) == 1
    assert "empty: the folder holds no files" in capsys.readouterr().err
    assert run_main("predict", str(model_path)) == 1
    assert "give a picture, a folder of pictures or --video FILE" in capsys.readouterr().err
    assert not (tmp_path / "predictions").exists()


def test_command_line_writes_the_table(run_main, model_path, pictures, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pediatric_emotion"):
        code = run_main("predict", str(model_path), str(pictures), "--format", "json", "--out", "o")
    assert code == 0
    document = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert document["summary"]["pictures"] == 4
    assert document["summary"]["unreadable"] == 2
    assert not (tmp_path / "o" / "predictions.csv").exists()
    assert any("Predicted 4 pictures" in record.getMessage() for record in caplog.records)


def test_other_arguments_still_go_to_kedro_run(run_main, capsys):
    assert run_main("--help") == 0
    assert "--pipelines" in capsys.readouterr().out


@pytest.mark.slow
def test_python_dash_m_runs_predict(model_path, pictures, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pediatric_emotion", "predict", str(model_path), str(pictures)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "predictions" / "predictions.csv")
    assert len(table) == 4


def test_odd_file_names_and_oversized_pictures_keep_both_outputs(monkeypatch, tmp_path):
    """A picture whose name is not UTF-8 and one over the pixel limit each get their row, and
    predictions.csv and .json are both written (no TensorFlow: a stand-in model, no face)."""
    import os

    from pediatric_emotion.predict import Model, cli

    labels = ["happy", "sad"]
    model = Model(tmp_path / "m.tflite", b"", {"quantization": "int8"}, labels, 32, 0.2)
    monkeypatch.setattr(cli, "load_model", lambda path: model)  # where predict() looks it up
    folder = tmp_path / "pictures"
    folder.mkdir()
    blank = np.full((30, 30, 3), 128, np.uint8)
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes(encode_image(blank, ".png"))
    (folder / "big.png").write_bytes(encode_image(np.zeros((30, 40, 3), np.uint8), ".png"))

    rows, written = predict(
        "m.tflite", [folder], out=tmp_path / "out", face_detection={"detector": "haar"},
        max_image_pixels=1000,
    )  # fmt: skip

    by_name = {Path(row["file"]).name: row for row in rows}
    assert sorted(by_name) == ["big.png", "caf\\xe9.png"]
    assert by_name["caf\\xe9.png"]["status"] == "no_face"  # read from its real path
    assert by_name["big.png"]["status"] == "unreadable"
    assert "big.png: 40x30 pixels" in by_name["big.png"]["reason"]
    assert [p.name for p in written] == ["predictions.csv", "predictions.json"]
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert table["file"].str.endswith("caf\\xe9.png").sum() == 1
    document = json.loads((tmp_path / "out" / "predictions.json").read_text(encoding="utf-8"))
    assert {Path(p["file"]).name for p in document["predictions"]} == set(by_name)
