"""TFLiteModelDataset and the spec embedded in the flatbuffer's metadata."""

from __future__ import annotations

import json
from pathlib import Path

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset
from tensorflow.lite.tools import flatbuffer_utils

from pediatric_emotion.datasets import (
    TFLiteModel,
    TFLiteModelDataset,
    embed_spec,
    load_tflite,
    read_embedded_spec,
)
from pediatric_emotion.datasets.tflite import SPEC_METADATA_NAME

SPEC = {
    "labels": ["angry", "happy", "neutral", "sad"],
    "input": {"size": [32, 32], "channels": 3},
    "preprocessing": {"scale": 1 / 127.5, "offset": -1.0},
}


def _convert(use_buffer_offset: bool = False) -> bytes:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.DepthwiseConv2D(3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter._experimental_use_buffer_offset = use_buffer_offset
    return converter.convert()


@pytest.fixture(scope="module")
def content() -> bytes:
    return _convert()


def _run(content: bytes) -> np.ndarray:
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    image = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _strip_spec(content: bytes) -> bytes:
    """``content`` without the spec's metadata entry and buffer (the last ones)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    (entry,) = [m for m in model.metadata if m.name.decode() == SPEC_METADATA_NAME]
    assert entry is model.metadata[-1] and entry.buffer == len(model.buffers) - 1
    model.metadata.pop()
    model.buffers.pop()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_embedded_spec_reads_back_and_the_model_runs_identically(content):
    embedded = embed_spec(content, SPEC)
    assert read_embedded_spec(content) is None
    assert read_embedded_spec(embedded) == SPEC
    np.testing.assert_array_equal(_run(embedded), _run(content))
    assert _strip_spec(embedded) == content  # only the metadata entry and its buffer were added


def test_re_embedding_replaces_the_spec(content):
    first = embed_spec(content, SPEC)
    second = embed_spec(first, {"labels": ["a", "b"]})
    assert read_embedded_spec(second) == {"labels": ["a", "b"]}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(second))
    names = [m.name.decode() for m in model.metadata]
    assert names.count(SPEC_METADATA_NAME) == 1
    assert len(model.buffers) == len(flatbuffer_utils.read_model_from_bytearray(first).buffers)
    assert embed_spec(second, SPEC) == first
    assert _strip_spec(second) == content


def test_embedding_into_a_model_with_buffer_offsets():
    content = _convert(use_buffer_offset=True)
    embedded = embed_spec(content, SPEC)
    assert read_embedded_spec(embedded) == SPEC
    np.testing.assert_array_equal(_run(embedded), _run(content))


def test_embed_rejects_what_is_not_tflite():
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        embed_spec(b"PK\x03\x04 a zip file", SPEC)


def test_save_and_load_round_trip(tmp_path, content):
    dataset = TFLiteModelDataset(filepath=str(tmp_path / "models" / "net.tflite"))
    assert not dataset.exists()
    dataset.save(TFLiteModel(content=content, spec=SPEC))
    assert dataset.exists()
    folder = tmp_path / "models"
    assert _files(folder) == ["net.json", "net.labels.txt", "net.tflite"]
    assert (folder / "net.json").read_text() == json.dumps(SPEC, indent=2, sort_keys=True) + "\n"
    assert (folder / "net.labels.txt").read_text().splitlines() == SPEC["labels"]

    loaded = dataset.load()
    assert loaded.spec == SPEC
    assert loaded.content == embed_spec(content, SPEC)
    assert _strip_spec(loaded.content) == content
    assert read_embedded_spec(loaded.content) == SPEC
    assert load_tflite(str(folder / "net.tflite")) == loaded


def test_load_falls_back_to_the_embedded_spec(tmp_path, content):
    path = tmp_path / "net.tflite"
    TFLiteModelDataset(filepath=str(path)).save(TFLiteModel(content=content, spec=SPEC))
    (tmp_path / "net.json").unlink()
    assert load_tflite(path).spec == SPEC


def test_load_without_any_spec_names_the_file(tmp_path, content):
    path = tmp_path / "bare.tflite"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=r"bare\.tflite.*has no preprocessing spec"):
        TFLiteModelDataset(filepath=str(path)).load()


def test_spec_without_labels_is_rejected_on_save(tmp_path, content):
    dataset = TFLiteModelDataset(filepath=str(tmp_path / "net.tflite"))
    with pytest.raises(DatasetError, match="no 'labels'"):
        dataset.save(TFLiteModel(content=content, spec={"input": {"size": [32, 32]}}))
    with pytest.raises(DatasetError, match="non-empty list"):
        dataset.save(TFLiteModel(content=content, spec={"labels": []}))
    assert _files(tmp_path) == []


def test_failed_save_writes_nothing_and_keeps_the_previous_files(tmp_path, content, monkeypatch):
    dataset = TFLiteModelDataset(filepath=str(tmp_path / "net.tflite"))
    real_open = dataset._fs.open
    opened: list[str] = []

    def open_then_fail(path, mode="rb", **kwargs):
        if "w" in mode:
            opened.append(path)
            if len(opened) == 3:  # the .tflite and the .json are written, the labels are not
                raise OSError("disk full")
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(dataset._fs, "open", open_then_fail)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(TFLiteModel(content=content, spec=SPEC))
    assert _files(tmp_path) == []

    monkeypatch.setattr(dataset._fs, "open", real_open)
    dataset.save(TFLiteModel(content=content, spec=SPEC))
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    opened.clear()
    monkeypatch.setattr(dataset._fs, "open", open_then_fail)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(TFLiteModel(content=content, spec={**SPEC, "labels": ["x", "y", "z", "w"]}))
    assert {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)} == before


def test_partitioned_dataset_round_trip(tmp_path, content):
    path = str(tmp_path / "tflite")
    partitioned = PartitionedDataset(
        path=path,
        dataset="pediatric_emotion.datasets.TFLiteModelDataset",
        filename_suffix=".tflite",
    )
    other_spec = {**SPEC, "labels": ["a", "b", "c", "d"]}
    partitioned.save(
        {
            "mobilenet_v2/int8": TFLiteModel(content=content, spec=SPEC),
            "tiny": TFLiteModel(content=content, spec=other_spec),
        }
    )
    assert _files(tmp_path / "tflite") == [
        "mobilenet_v2/int8.json",
        "mobilenet_v2/int8.labels.txt",
        "mobilenet_v2/int8.tflite",
        "tiny.json",
        "tiny.labels.txt",
        "tiny.tflite",
    ]
    loaded = partitioned.load()
    assert sorted(loaded) == ["mobilenet_v2/int8", "tiny"]
    assert loaded["mobilenet_v2/int8"]().spec == SPEC
    assert loaded["tiny"]().spec == other_spec
    assert loaded["tiny"]().content == embed_spec(content, other_spec)
    assert "TFLiteModelDataset" in repr(partitioned)

    # Without the suffix filter the sidecars would be taken as partitions too.
    unfiltered = PartitionedDataset(path=path, dataset=TFLiteModelDataset).load()
    assert len(unfiltered) == 6
