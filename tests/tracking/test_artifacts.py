"""Reporting artifacts (tracking/cells.py): the report, leaderboard, model cards and plots go to
the run; no face crop ever does, even beside them or linked from the reporting folder."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("kedro_mlflow")

from mlflow import MlflowClient  # noqa: E402

from pediatric_emotion.tracking.cells import (  # noqa: E402
    ARTIFACT_PNG_PREFIXES,
    REPORTING,
    log_reporting_artifacts,
    reporting_artifacts,
)
from pediatric_emotion.tracking.hooks import TrackingHook  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def _write(path: Path, content: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the reporting outputs and, around them, face crops."""
    root = tmp_path / "project"
    reporting = root / REPORTING
    _write(reporting / "report.html", b"<html></html>")
    _write(reporting / "leaderboard.csv", b"architecture,variant\n")
    _write(reporting / "recommendation.json", b"{}")
    _write(reporting / "model_cards/mobilenet_v2.fer/baseline/int8.md", b"# card")
    _write(reporting / "training/mobilenet_v2.fer.learning_curve.png", PNG)
    _write(reporting / "evaluation/mobilenet_v2.fer/test/baseline.int8.png", PNG)
    _write(reporting / "evaluation/confusion_matrices.csv", b"true,predicted\n")
    crop = root / "data/03_primary/face_crops/cafe/child01_happy.png"
    _write(crop, PNG)
    _write(reporting / "face_crops/child02_sad.png", PNG)  # a crop where it does not belong
    _write(reporting / "class_distribution.png", PNG)  # a plot this run does not log
    link = reporting / "evaluation/mobilenet_v2.fer/test/linked.png"
    link.symlink_to(crop)  # a link out of the reporting folder
    return root


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact file of the run, recursively."""
    files = []
    for info in client.list_artifacts(run_id, path):
        files += _artifacts(client, run_id, info.path) if info.is_dir else [info.path]
    return files


@pytest.fixture
def client_and_run(tmp_path: Path, monkeypatch) -> tuple[MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("art", artifact_location=(tmp_path / "art").as_uri())
    return client, client.create_run(experiment).info.run_id


def _assert_no_face_crop(files: list[str]) -> None:
    for path in files:
        assert "face_crops" not in path.split("/"), path
        assert "child" not in Path(path).name, path  # the crops' naming
        if path.lower().endswith((".png", ".jpg", ".jpeg")):
            assert path.startswith(ARTIFACT_PNG_PREFIXES), path
            assert path.endswith(".learning_curve.png") or path.startswith("evaluation/"), path


def test_reporting_files_logged_and_no_face_crop(client_and_run, project):
    client, run_id = client_and_run
    assert log_reporting_artifacts(client, run_id, project / REPORTING) == 6
    files = _artifacts(client, run_id)
    assert sorted(files) == [
        "evaluation/mobilenet_v2.fer/test/baseline.int8.png",
        "leaderboard.csv",
        "model_cards/mobilenet_v2.fer/baseline/int8.md",
        "recommendation.json",
        "report.html",
        "training/mobilenet_v2.fer.learning_curve.png",
    ]
    _assert_no_face_crop(files)


def test_hook_logs_artifacts_to_the_parent_run(client_and_run, project):
    client, run_id = client_and_run
    hook = TrackingHook()
    hook.enabled, hook.run_id = True, run_id

    class _Empty:
        def exists(self, name: str) -> bool:
            return False

    hook._log_outputs(_Empty(), {"project_path": str(project)})
    files = _artifacts(client, run_id)
    assert "report.html" in files and len(files) == 6
    _assert_no_face_crop(files)


def test_missing_reporting_folder_logs_nothing(client_and_run, tmp_path):
    client, run_id = client_and_run
    assert log_reporting_artifacts(client, run_id, tmp_path / "nowhere") == 0
    assert _artifacts(client, run_id) == []


def test_only_the_files_of_datasets_this_run_wrote(project):
    reporting = project / REPORTING
    files = reporting_artifacts(reporting, {"mobilenet_v2.fer.learning_curve", "report_html"})
    assert sorted(p.relative_to(reporting).as_posix() for p, _ in files) == [
        "report.html",
        "training/mobilenet_v2.fer.learning_curve.png",
    ]
    confusion = reporting_artifacts(reporting, {"mobilenet_v2.fer.evaluation_confusion_plots"})
    assert [folder for _, folder in confusion] == ["evaluation/mobilenet_v2.fer/test"]
    assert reporting_artifacts(reporting, set()) == []
