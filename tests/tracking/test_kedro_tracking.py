"""`kedro run --pipelines=label_harmonization` through Kedro with tracking on: one MLflow run
per `kedro run` holding the flattened parameters its nodes used; two runs with different
settings are told apart by their parameters."""

from __future__ import annotations

import pytest
from kedro.framework.startup import bootstrap_project

from tests.conftest import make_project_copy, project_with_demo_data, run_pipelines

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.slow


def test_two_runs_are_told_apart_by_their_parameters(tmp_path, demo_raw, monkeypatch):
    root = project_with_demo_data(tmp_path / "project", demo_raw)
    (root / "conf/local/mlflow.yml").unlink()  # the shipped setting: tracking on
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # conf/base/mlflow.yml reads it
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        run_pipelines(root, ["label_harmonization"])
        run_pipelines(root, ["label_harmonization"], {"deduplication": {"max_distance": 6}})
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)

    client = mlflow.MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "pediatric_emotion"]
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert {r.info.run_name for r in runs} == {"label_harmonization"}
    first, second = (r.data.params for r in runs)
    assert first["deduplication.max_distance"] == "8"
    assert second["deduplication.max_distance"] == "6"
    assert {k for k in first if first[k] != second.get(k)} == {"deduplication.max_distance"}
    assert len(first) > 100  # every node's parameters, flattened
    found = client.search_runs(
        [experiment.experiment_id], "params.`deduplication.max_distance` = '6'"
    )
    assert [r.info.run_id for r in found] == [runs[1].info.run_id]
    others = [e for e in client.search_experiments() if e.name != "pediatric_emotion"]
    assert all(not client.search_runs([e.experiment_id]) for e in others)  # no stray runs
    assert not (root / "mlruns").exists()


def test_a_failed_run_is_marked_failed_and_left_closed(tmp_path, monkeypatch):
    root = make_project_copy(tmp_path / "project")
    bootstrap_project(root)
    (root / "conf/local/mlflow.yml").unlink()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    missing = {"sources": {"ferplus": {"path": "data/01_raw/nowhere"}}}
    try:
        with pytest.raises(Exception, match="nowhere"):
            run_pipelines(root, ["label_harmonization"], missing)
        assert mlflow.active_run() is None
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("pediatric_emotion")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["sources.ferplus.path"] == "data/01_raw/nowhere"
