"""The TFLite pyfunc: logged to a SQLite-backed local store, loaded back, it gives the classes
of the LiteRT runner evaluation uses on the same crops."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from pediatric_emotion.datasets import load_tflite
from pediatric_emotion.modeling.tflite_runner import tflite_probabilities
from tests.pipelines.evaluation.conftest import EMOTIONS

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def local_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(tmp_path / "art").as_uri())
    yield experiment
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _frame(paths) -> pd.DataFrame:
    return pd.DataFrame({"image": [base64.b64encode(p.read_bytes()).decode() for p in paths]})


def test_logged_pyfunc_gives_the_litert_classes(local_store, tflite_path, crop_files):
    from pediatric_emotion.tracking.pyfunc import log_tflite_model

    with mlflow.start_run(experiment_id=local_store):
        info = log_tflite_model(
            tflite_path, registered_model_name="tiny", tags={"balanced_accuracy": 0.5}
        )
    assert str(info.registered_model_version) == "1"  # int locally, str via a server
    version = mlflow.MlflowClient().get_model_version("tiny", "1")
    assert version.tags["balanced_accuracy"] == "0.5"

    loaded = mlflow.pyfunc.load_model("models:/tiny/1")
    output = loaded.predict(_frame(crop_files))

    model = load_tflite(tflite_path)
    scores = tflite_probabilities(model.content, model.spec, crop_files, where="reference")
    assert list(output.columns) == ["emotion", *(f"p_{e}" for e in EMOTIONS)]
    assert len(set(scores.argmax(axis=1))) > 1  # the crops are told apart
    assert output["emotion"].tolist() == [EMOTIONS[i] for i in scores.argmax(axis=1)]
    np.testing.assert_allclose(output.iloc[:, 1:].to_numpy(), scores, atol=1e-6)


def test_bad_input_names_the_row(local_store, tflite_path, crop_files):
    from pediatric_emotion.tracking.pyfunc import log_tflite_model

    with mlflow.start_run(experiment_id=local_store):
        info = log_tflite_model(tflite_path)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    with pytest.raises(Exception, match="row 1"):
        loaded.predict(pd.DataFrame({"image": [_frame(crop_files[:1]).iloc[0, 0], "%%"]}))
