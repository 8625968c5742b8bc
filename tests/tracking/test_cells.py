"""Per-cell child runs (tracking/cells.py): tags, leaderboard figures, per-epoch history, and the
same cell found across two runs with one query. Tiny fake tables, a SQLite store in tmp_path."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

pytest.importorskip("kedro_mlflow")

from mlflow import MlflowClient  # noqa: E402

from pediatric_emotion.tracking.cells import (  # noqa: E402
    CELL_TAG,
    catalog_loader,
    cells_of,
    file_metrics,
    file_tags,
    history_steps,
    log_cell_runs,
    log_run_tables,
    produced_only,
)
from pediatric_emotion.tracking.hooks import TrackingHook  # noqa: E402


def _leaderboard(accuracy: float) -> pd.DataFrame:
    rows = [
        ("mobilenet_v2", "fer", "keras", "float32", accuracy, 9_000_000, math.nan, math.nan),
        ("mobilenet_v2", "fer", "baseline", "int8", accuracy - 0.02, 2_400_000, 0.0, 3.1),
        ("mobilenet_v2", "fer", "pruning", "int8", accuracy - 0.05, 2_400_000, 0.5, 2.9),
        ("resnet50", "cafe", "baseline", "float16", accuracy + 0.01, 48_000_000, 0.0, 40.2),
    ]
    columns = [
        "architecture", "variant", "technique", "quantization",
        "test_balanced_accuracy", "size_bytes", "sparsity", "latency_ms",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    table["test_balanced_accuracy_ci_low"] = table["test_balanced_accuracy"] - 0.05
    table["test_balanced_accuracy_ci_high"] = table["test_balanced_accuracy"] + 0.05
    table["test_macro_f1"] = table["test_balanced_accuracy"] - 0.01
    table["gzip_bytes"] = table["size_bytes"] // 2
    table["status"] = "ok"
    table["latency_target"] = ["", "Test CPU", "Test CPU", None]
    return table


SUMMARY = pd.DataFrame(
    {
        "architecture": ["mobilenet_v2", "resnet50"],
        "variant": ["fer", "cafe"],
        "params": [2_200_000, 23_500_000],
        "epochs": [3, 2],
        "weights": ["imagenet", "imagenet"],  # text: not a metric
    }
)


def _history(scores: list[float]) -> dict[str, list]:
    return {
        "epoch": list(range(1, len(scores) + 1)),
        "phase": ["head"] * len(scores),
        "val_balanced_accuracy": scores,
        "val_loss": [1.0 / (i + 1) for i in range(len(scores))],
    }


@pytest.fixture
def client(tmp_path: Path, monkeypatch) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(tracking_uri=uri)


def _experiment(client: MlflowClient, tmp_path: Path) -> str:
    return client.create_experiment("cells", artifact_location=(tmp_path / "art").as_uri())


def test_file_metrics_names_and_skips_missing():
    rows = _leaderboard(0.6)
    metrics = file_metrics(rows[rows["variant"] == "fer"])
    assert metrics["baseline.int8.test_balanced_accuracy"] == pytest.approx(0.58)
    assert metrics["pruning.int8.sparsity"] == 0.5
    assert "keras.float32.sparsity" not in metrics and "keras.float32.latency_ms" not in metrics
    assert metrics["keras.float32.size_bytes"] == 9_000_000


def test_a_distilled_file_logs_its_gap_closed_and_teacher():
    rows = _leaderboard(0.6)
    rows = pd.concat([rows, rows.iloc[[1]].assign(technique="distilled")], ignore_index=True)
    rows["gap_closed"] = [math.nan] * 4 + [0.6]
    rows["teacher"] = [None] * 4 + ["resnet50.fer"]
    fer = rows[rows["variant"] == "fer"]
    assert file_metrics(fer)["distilled.int8.gap_closed"] == pytest.approx(0.6)
    assert not any(
        name.endswith("gap_closed") and "distilled" not in name for name in file_metrics(fer)
    )
    tags = file_tags(fer)
    assert tags["distilled.int8.teacher"] == "resnet50.fer"
    assert not any(name.endswith(".teacher") for name in tags if "distilled" not in name)


def test_history_steps_by_epoch():
    steps = history_steps(_history([0.3, 0.5]))
    assert ("val_balanced_accuracy", 0.5, 2) in steps
    assert history_steps(None) == [] and history_steps({"loss": [1.0]}) == []


def test_cells_of_union_of_tables():
    extra = pd.DataFrame({"architecture": ["efficientnet"], "variant": ["raf"]})
    assert cells_of(_leaderboard(0.5), extra, None) == [
        "efficientnet.raf",
        "mobilenet_v2.fer",
        "resnet50.cafe",
    ]


def test_child_runs_tagged_with_metrics_and_history(client, tmp_path):
    experiment = _experiment(client, tmp_path)
    parent = client.create_run(experiment).info.run_id
    histories = {"mobilenet_v2.fer": _history([0.3, 0.5, 0.45]), "resnet50.cafe": None}
    runs = log_cell_runs(client, parent, _leaderboard(0.6), SUMMARY, histories)
    assert set(runs) == {"mobilenet_v2.fer", "resnet50.cafe"}
    run = client.get_run(runs["mobilenet_v2.fer"])
    tags = run.data.tags
    assert tags[CELL_TAG] == "mobilenet_v2.fer" and tags["mlflow.parentRunId"] == parent
    assert (tags["architecture"], tags["variant"]) == ("mobilenet_v2", "fer")
    assert run.info.status == "FINISHED"
    assert tags["baseline.int8.latency_target"] == "Test CPU"
    assert "keras.float32.latency_target" not in tags
    metrics = run.data.metrics
    assert metrics["pruning.int8.test_balanced_accuracy_ci_high"] == pytest.approx(0.6)
    assert metrics["baseline.int8.gzip_bytes"] == 1_200_000
    assert metrics["training.params"] == 2_200_000 and "training.weights" not in metrics
    history = client.get_metric_history(run.info.run_id, "val_balanced_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.3), (2, 0.5), (3, 0.45)]
    assert not client.get_metric_history(runs["resnet50.cafe"], "val_balanced_accuracy")


def test_same_cell_across_runs_is_one_query(client, tmp_path):
    experiment = _experiment(client, tmp_path)
    for accuracy in (0.6, 0.7):
        parent = client.create_run(experiment).info.run_id
        log_cell_runs(client, parent, _leaderboard(accuracy), SUMMARY, {})
        client.set_terminated(parent)
    found = client.search_runs([experiment], filter_string=f"tags.{CELL_TAG} = 'resnet50.cafe'")
    assert len(found) == 2
    values = sorted(r.data.metrics["baseline.float16.test_balanced_accuracy"] for r in found)
    assert values == pytest.approx([0.61, 0.71])


class _Catalog:
    """The two calls catalog_loader makes of a Kedro catalog."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def exists(self, name: str) -> bool:
        if name == "broken":
            raise RuntimeError("unreadable")
        return name in self.data

    def load(self, name: str):
        return self.data[name]


def test_tables_read_through_the_catalog(client, tmp_path):
    experiment = _experiment(client, tmp_path)
    parent = client.create_run(experiment).info.run_id
    catalog = _Catalog(
        {
            "leaderboard": _leaderboard(0.6),
            "mobilenet_v2.fer.history": _history([0.2, 0.4]),
        }
    )  # no training_summary: a partial run
    load = catalog_loader(catalog)
    assert load("broken") is None
    runs = log_run_tables(client, parent, load)
    assert set(runs) == {"mobilenet_v2.fer", "resnet50.cafe"}
    steps = client.get_metric_history(runs["mobilenet_v2.fer"], "val_balanced_accuracy")
    assert [m.step for m in steps] == [1, 2]


def test_hook_logs_cells_and_never_raises(client, tmp_path, caplog):
    experiment = _experiment(client, tmp_path)
    parent = client.create_run(experiment).info.run_id
    hook = TrackingHook()
    hook.enabled, hook.run_id = True, parent
    hook._log_outputs(_Catalog({"training_summary": SUMMARY}), {"project_path": str(tmp_path)})
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.data.tags[CELL_TAG] for r in children) == ["mobilenet_v2.fer", "resnet50.cafe"]
    hook.run_id = "no-such-run"
    hook._log_outputs(
        _Catalog({"training_summary": SUMMARY}), {"project_path": str(tmp_path)}
    )  # logged, not raised
    assert "per-cell runs were not logged" in caplog.text


def test_partial_run_logs_only_what_it_wrote(client, tmp_path):
    experiment = _experiment(client, tmp_path)
    parent = client.create_run(experiment).info.run_id
    hook = TrackingHook()
    hook.enabled, hook.run_id = True, parent
    on_file = _Catalog({"leaderboard": _leaderboard(0.6), "training_summary": SUMMARY})
    harmonization = SimpleNamespace(all_outputs=lambda: {"face_manifest", "source_inventory"})
    hook._log_outputs(on_file, {"project_path": str(tmp_path)}, harmonization)
    assert not client.search_runs([experiment], f"tags.{CELL_TAG} != ''")  # an earlier run's
    training = SimpleNamespace(all_outputs=lambda: {"training_summary", "resnet50.cafe.history"})
    hook._log_outputs(on_file, {"project_path": str(tmp_path)}, training)
    found = client.search_runs([experiment], f"tags.{CELL_TAG} != ''")
    assert sorted(r.data.tags[CELL_TAG] for r in found) == ["mobilenet_v2.fer", "resnet50.cafe"]
    assert all("training.params" in r.data.metrics for r in found)
    assert not any("baseline.int8.size_bytes" in r.data.metrics for r in found)  # not this run's


def test_history_read_on_file_for_a_reporting_only_run(client, tmp_path):
    experiment = _experiment(client, tmp_path)
    parent = client.create_run(experiment).info.run_id
    on_file = catalog_loader(
        _Catalog({"leaderboard": _leaderboard(0.6), "mobilenet_v2.fer.history": _history([0.1])})
    )
    runs = log_run_tables(client, parent, produced_only(on_file, {"leaderboard"}), on_file)
    assert client.get_metric_history(runs["mobilenet_v2.fer"], "val_balanced_accuracy")
