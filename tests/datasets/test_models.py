"""OptionalTensorFlowModelDataset: a model file, or no file when a node made no model."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras
from kedro.io import DatasetError

from pediatric_emotion.datasets.models import NoModel, OptionalTensorFlowModelDataset


def _model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_a_model_round_trips_and_no_model_removes_the_file(tmp_path):
    path = tmp_path / "models" / "cell.pruned.keras"
    dataset = OptionalTensorFlowModelDataset(filepath=str(path))
    assert dataset.load() is None  # never saved
    model = _model()
    dataset.save(model)
    assert path.is_file()
    loaded = dataset.load()
    for ours, theirs in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    dataset.save(NoModel("pruning.frequency exceeds the fine-tuning steps"))
    assert not path.exists()  # no stale model from an earlier run
    assert dataset.load() is None


def test_none_is_still_refused(tmp_path):
    dataset = OptionalTensorFlowModelDataset(filepath=str(tmp_path / "m.keras"))
    with pytest.raises(DatasetError, match="None"):
        dataset.save(None)
