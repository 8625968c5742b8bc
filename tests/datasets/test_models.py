"""Keras model datasets: a model file saved whole or not at all, or no file when a node made no
model; every model entry of the catalog saves through the atomic class."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tf_keras as keras
import yaml
from kedro.io import DatasetError
from kedro.utils import load_obj

from pediatric_emotion.datasets.models import (
    AtomicTensorFlowModelDataset,
    NoModel,
    OptionalTensorFlowModelDataset,
)
from tests.conftest import PROJECT_ROOT

MODEL_DATASETS = [AtomicTensorFlowModelDataset, OptionalTensorFlowModelDataset]


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def _assert_same_weights(ours: keras.Model, theirs: keras.Model) -> None:
    for mine, other in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, other)


def test_a_model_round_trips_and_no_model_removes_the_file(tmp_path):
    path = tmp_path / "models" / "cell.pruned.keras"
    dataset = OptionalTensorFlowModelDataset(filepath=str(path))
    assert dataset.load() is None  # never saved
    model = _model()
    dataset.save(model)
    assert path.is_file()
    _assert_same_weights(dataset.load(), model)
    dataset.save(NoModel("pruning.frequency exceeds the fine-tuning steps"))
    assert not path.exists()  # no stale model from an earlier run
    assert dataset.load() is None


def test_none_is_still_refused(tmp_path):
    dataset = OptionalTensorFlowModelDataset(filepath=str(tmp_path / "m.keras"))
    with pytest.raises(DatasetError, match="None"):
        dataset.save(None)


@pytest.mark.parametrize("dataset_class", MODEL_DATASETS)
def test_a_save_replaces_the_model_and_round_trips(tmp_path, dataset_class):
    path = tmp_path / "06_models" / "cell.keras"
    dataset = dataset_class(filepath=str(path))
    dataset.save(_model(0))
    newer = _model(1)
    dataset.save(newer)
    _assert_same_weights(dataset.load(), newer)
    assert [p.name for p in path.parent.iterdir()] == ["cell.keras"]


@pytest.mark.parametrize("dataset_class", MODEL_DATASETS)
def test_a_save_failing_midway_keeps_the_previous_file_and_no_partial_one(
    tmp_path, monkeypatch, dataset_class
):
    path = tmp_path / "06_models" / "cell.keras"
    dataset = dataset_class(filepath=str(path))
    dataset.save(_model(0))
    before = path.read_bytes()

    def write_half_then_fail(filepath: str, *args, **kwargs) -> None:
        Path(filepath).write_bytes(before[: len(before) // 2])
        raise OSError("disk full")

    model = _model(1)
    monkeypatch.setattr(model, "save", write_half_then_fail)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(model)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["cell.keras"]


@pytest.mark.parametrize("dataset_class", MODEL_DATASETS)
def test_an_interrupted_save_never_leaves_a_truncated_model(tmp_path, monkeypatch, dataset_class):
    """Ctrl-C while the model is being copied or moved into place: the target holds the previous
    model or the new one, whole (the stock dataset copies onto the target and truncates it)."""
    path = tmp_path / "06_models" / "cell.keras"
    dataset = dataset_class(filepath=str(path))
    dataset.save(_model(0))
    before = path.read_bytes()

    def copy_half_then_interrupt(source: str, destination: str, **kwargs) -> str:
        Path(destination).write_bytes(Path(source).read_bytes()[:100])
        raise KeyboardInterrupt

    newer = _model(1)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(shutil, "copyfile", copy_half_then_interrupt)
            dataset.save(newer)
    except KeyboardInterrupt:
        assert path.read_bytes() == before
    else:
        _assert_same_weights(dataset.load(), newer)
    assert [p.name for p in path.parent.iterdir()] == ["cell.keras"]


def test_a_versioned_save_writes_its_version_folder(tmp_path):
    from kedro.io import Version

    path = tmp_path / "06_models" / "cell.keras"
    dataset = AtomicTensorFlowModelDataset(filepath=str(path), version=Version(None, None))
    model = _model()
    dataset.save(model)
    saved = list(path.glob("*/cell.keras"))
    assert len(saved) == 1 and [p.name for p in saved[0].parent.iterdir()] == ["cell.keras"]
    _assert_same_weights(dataset.load(), model)


def test_every_model_entry_of_the_catalog_saves_atomically():
    entries = {}
    for catalog in sorted((PROJECT_ROOT / "conf").glob("*/catalog*.yml")):
        entries.update(yaml.safe_load(catalog.read_text()) or {})
    models = {
        name: entry
        for name, entry in entries.items()
        if isinstance(entry, dict) and str(entry.get("filepath", "")).endswith((".keras", ".h5"))
    }
    assert models  # the training models and the stripped pruned / clustered ones
    for name, entry in models.items():
        dataset_type = entry["type"]
        if "." in dataset_type and not dataset_type.startswith("pediatric_emotion"):
            dataset_type = f"kedro_datasets.{dataset_type}"
        assert issubclass(load_obj(dataset_type), AtomicTensorFlowModelDataset), name
