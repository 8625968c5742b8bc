"""The recommended TFLite file registered as a model version tagged with its leaderboard figures
(tracking/registry.py), directly and from TrackingHook after a pipeline run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("kedro_mlflow")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

from pediatric_emotion.tracking.hooks import TrackingHook  # noqa: E402
from pediatric_emotion.tracking.registry import (  # noqa: E402
    MODEL_NAME,
    RUN_TAG,
    file_digest,
    register_recommended,
)

TFLITE = "data/06_models/tflite/mobilenet_v2.fer/baseline/float32.tflite"
FILE = {
    "architecture": "mobilenet_v2",
    "variant": "fer",
    "technique": "baseline",
    "quantization": "float32",
}
RECOMMENDATION = {
    "status": "recommended",
    "recommended": {**FILE, "tflite_path": TFLITE, "test_balanced_accuracy": 0.61, "p50_ms": None},
    "reason": "the most accurate within budget",
}
LEADERBOARD = pd.DataFrame(
    [
        {**FILE, "test_balanced_accuracy": 0.61, "gzip_bytes": 1234, "latency_ms": 3.5},
        {**FILE, "quantization": "int8", "test_balanced_accuracy": 0.5, "gzip_bytes": 99},
    ]
)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield mlflow.create_experiment("registry", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def project(tmp_path, tflite_path) -> Path:
    root = tmp_path / "project"
    (root / TFLITE).parent.mkdir(parents=True)
    shutil.copyfile(tflite_path, root / TFLITE)
    return root


def test_recommended_file_registered_with_its_figures(store, project):
    with mlflow.start_run(experiment_id=store):
        number = register_recommended(project, RECOMMENDATION, LEADERBOARD)
    version = mlflow.MlflowClient().get_model_version(MODEL_NAME, number)
    tags = version.tags
    assert tags["sha256"] == file_digest(project / TFLITE)
    assert tags["test_balanced_accuracy"] == "0.61" and tags["gzip_bytes"] == "1234"
    assert tags["latency_ms"] == "3.5" and tags["technique"] == "baseline"
    assert "p50_ms" not in tags  # null in the record, absent from the leaderboard


def test_an_unchanged_file_is_not_registered_again(store, project):
    client = mlflow.MlflowClient()
    numbers = []
    for leaderboard in (LEADERBOARD, LEADERBOARD, LEADERBOARD.assign(gzip_bytes=1300)):
        with mlflow.start_run(experiment_id=store) as run:
            numbers.append(register_recommended(project, RECOMMENDATION, leaderboard))
        assert client.get_run(run.info.run_id).data.tags[RUN_TAG] == (
            f"models:/{MODEL_NAME}/{numbers[-1]}"
        )
    # the same file and figures: version 1 again; new figures (a new test set): a new version
    assert numbers == ["1", "1", "2"]
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == 2
    (project / TFLITE).write_bytes((project / TFLITE).read_bytes() + b"\0")
    with mlflow.start_run(experiment_id=store):
        assert register_recommended(project, RECOMMENDATION, LEADERBOARD) == "3"


def test_nothing_recommended_nothing_registered(store, project):
    none = {"status": "none_qualifies", "recommended": None}
    with mlflow.start_run(experiment_id=store):
        assert register_recommended(project, none, LEADERBOARD) is None
        missing = {**RECOMMENDATION, "recommended": {**FILE, "tflite_path": "data/nowhere.tflite"}}
        assert register_recommended(project, missing) is None
    assert not mlflow.MlflowClient().search_registered_models()


def test_hook_registers_in_the_session_run(store, project):
    client = mlflow.MlflowClient()
    run_id = client.create_run(store).info.run_id
    hook = TrackingHook()
    hook.enabled, hook.run_id = True, run_id

    class _Catalog:
        data = {"recommendation": RECOMMENDATION, "leaderboard": LEADERBOARD}

        def exists(self, name: str) -> bool:
            return name in self.data

        def load(self, name: str):
            return self.data[name]

    try:
        hook._log_outputs(_Catalog(), {"project_path": str(project)})
    finally:
        mlflow.end_run()
    (version,) = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert version.run_id == run_id and version.tags["gzip_bytes"] == "1234"
    cells = client.search_runs([store], "tags.cell = 'mobilenet_v2.fer'")
    assert len(cells) == 1
