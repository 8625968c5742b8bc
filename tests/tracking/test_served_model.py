"""A real ``mlflow server`` (SQLite, temporary folder): the TFLite pyfunc logged and registered
through it, served by ``mlflow models serve``, answers a face crop with LiteRT's class."""

from __future__ import annotations

import base64

import pytest

from pediatric_emotion.datasets import load_tflite
from pediatric_emotion.modeling.tflite_runner import tflite_probabilities
from tests.pipelines.evaluation.conftest import EMOTIONS
from tests.tracking.servers import mlflow_server, model_server, post_json

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.slow


def test_served_pyfunc_answers_with_the_litert_class(tmp_path, tflite_path, crop_files):
    from pediatric_emotion.tracking.pyfunc import log_tflite_model

    model = load_tflite(tflite_path)
    expected = tflite_probabilities(model.content, model.spec, crop_files, where="reference")
    crops = [base64.b64encode(p.read_bytes()).decode() for p in crop_files]

    with mlflow_server(tmp_path / "server") as uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            mlflow.set_experiment("served")
            with mlflow.start_run():
                info = log_tflite_model(
                    tflite_path, registered_model_name="tiny_emotion", tags={"technique": "base"}
                )
            assert str(info.registered_model_version) == "1"  # int locally, str via a server
            version = mlflow.MlflowClient().get_model_version("tiny_emotion", "1")
            assert version.tags["technique"] == "base"
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)

        with model_server("models:/tiny_emotion/1", uri, tmp_path) as url:
            answer = post_json(
                f"{url}/invocations",
                {"dataframe_split": {"columns": ["image"], "data": [[c] for c in crops]}},
            )
    predictions = answer["predictions"]
    assert [row["emotion"] for row in predictions] == [EMOTIONS[i] for i in expected.argmax(axis=1)]
    for row, scores in zip(predictions, expected, strict=True):
        assert [row[f"p_{e}"] for e in EMOTIONS] == pytest.approx(scores.tolist(), abs=1e-6)
