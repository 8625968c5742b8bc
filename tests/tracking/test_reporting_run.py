"""`kedro run --pipelines=reporting` with tracking on, on the reporting tests' hand-made tables,
against a SQLite store (tests/test_end_to_end_default_run.py does the same against a real
`mlflow server`, on a real grid): the session's run gets the reporting artifacts
(and no face crop), one child run per cell with the leaderboard's figures and the cell's
per-epoch history, and the recommended file registered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kedro.framework.startup import bootstrap_project

from tests.conftest import make_project_copy, run_pipelines
from tests.pipelines.reporting.conftest import FOLDER, make_tables
from tests.tracking.test_artifacts import PNG, _artifacts, _assert_no_face_crop

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.slow

INPUT_FILES = {  # as tests/pipelines/reporting/test_pipeline.py writes them
    "training_summary": "data/08_reporting/training_summary.csv",
    "optimization_summary": "data/08_reporting/optimization_summary.csv",
    "evaluation_metrics": "data/08_reporting/evaluation_metrics.csv",
    "profiling_results": "data/08_reporting/profiling_results.csv",
    "subgroup_metrics": "data/08_reporting/subgroup_metrics.csv",
    "confusion_matrices": "data/08_reporting/evaluation/confusion_matrices.csv",
    "robustness_metrics": "data/08_reporting/robustness_metrics.csv",
    "robustness_summary": "data/08_reporting/robustness_summary.csv",
    "distillation_teachers": "data/08_reporting/distillation_teachers.csv",
}
HISTORY = {"epoch": [1, 2], "phase": ["head", "head"], "val_balanced_accuracy": [0.3, 0.45]}


def test_reporting_run_logs_cells_artifacts_and_model(tmp_path, tflite_path, monkeypatch):
    root = make_project_copy(tmp_path / "project")
    (root / "conf/local/mlflow.yml").unlink()  # the shipped setting: tracking on
    for name, path in INPUT_FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        make_tables()[name].to_csv(root / path, index=False)
    history = root / "data/07_model_output/training/net.demo.history.json"
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps(HISTORY))
    (root / FOLDER).mkdir(parents=True)
    shutil.copyfile(tflite_path, root / FOLDER / "float32.tflite")
    crop = root / "data/03_primary/face_crops/demo/child01.png"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(PNG)
    _run_and_check(root, f"sqlite:///{tmp_path / 'mlflow.db'}", monkeypatch)


def _run_and_check(root: Path, uri: str, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    bootstrap_project(root)
    try:
        run_pipelines(root, ["reporting"])
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "pediatric_emotion"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    files = _artifacts(client, parent.info.run_id)
    assert {"report.html", "leaderboard.csv", "recommendation.json"} <= set(files)
    assert any(f.startswith("model_cards/") for f in files)
    _assert_no_face_crop(files)
    assert parent.info.status == "FINISHED"

    net = client.search_runs([experiment.experiment_id], "tags.cell = 'net.demo'")
    assert [r.data.tags["mlflow.parentRunId"] for r in net] == [parent.info.run_id]
    assert net[0].data.metrics["baseline.int8.test_balanced_accuracy"] == pytest.approx(0.48)
    steps = client.get_metric_history(net[0].info.run_id, "val_balanced_accuracy")
    assert sorted((m.step, m.value) for m in steps) == [(1, 0.3), (2, 0.45)]
    assert client.search_runs([experiment.experiment_id], "tags.cell = 'big.demo'")

    (version,) = client.search_model_versions("name = 'pediatric_emotion'")
    assert version.run_id == parent.info.run_id
    assert version.tags["quantization"] == "float32"
