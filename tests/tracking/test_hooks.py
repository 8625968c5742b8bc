"""TrackingHook: the `enabled` switch, the fast fail on an unreachable server, the local store
made absolute against the project root."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

pytest.importorskip("kedro_mlflow")

from pediatric_emotion.config import ProjectConfigLoader  # noqa: E402
from pediatric_emotion.tracking.hooks import (  # noqa: E402
    TrackingHook,
    TrackingServerUnreachableError,
    check_server,
    local_sqlite_uri,
)
from tests.tracking.servers import free_port  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _context(tmp_path: Path, overrides: dict) -> SimpleNamespace:
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    shipped = (PROJECT_ROOT / "conf/base/mlflow.yml").read_text()
    (conf / "base/mlflow.yml").write_text(shipped)
    (conf / "local/mlflow.yml").write_text(yaml.safe_dump(overrides))
    loader = ProjectConfigLoader(conf_source=str(conf), base_env="base", default_run_env="local")
    return SimpleNamespace(config_loader=loader, project_path=tmp_path)


def test_switched_off_nothing_connects(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # unreachable
    hook = TrackingHook()
    context = _context(tmp_path, {"enabled": False})
    hook.after_context_created(context)
    assert hook.enabled is False
    assert "enabled" not in context.config_loader["mlflow"]  # kedro-mlflow refuses the key
    hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    hook.before_node_run(node=None, catalog=None, inputs={"params:x": 1}, is_async=False)
    assert not (tmp_path / "data").exists()


def test_unreachable_server_fails_at_once_naming_it(tmp_path, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # mlflow.yml reads it (oc.env)
    start = time.monotonic()
    with pytest.raises(TrackingServerUnreachableError, match=uri) as error:
        TrackingHook().after_context_created(_context(tmp_path, {}))
    assert time.monotonic() - start < 6
    assert "MLFLOW_TRACKING_URI" in str(error.value) and "enabled: false" in str(error.value)


def test_check_server_passes_local_stores():
    check_server("sqlite:///data/09_tracking/mlflow.db")
    check_server(None)


def test_relative_sqlite_store_is_under_the_project(tmp_path):
    uri = local_sqlite_uri("sqlite:///data/09_tracking/mlflow.db", tmp_path)
    assert uri == f"sqlite:///{tmp_path}/data/09_tracking/mlflow.db"
    assert (tmp_path / "data/09_tracking").is_dir()
    assert local_sqlite_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"


def test_relative_artifact_folder_is_under_the_project_or_the_servers(tmp_path):
    from pediatric_emotion.tracking.hooks import _local_artifact_location

    def conf(location):
        kwargs = {"artifact_location": location}
        return {"tracking": {"experiment": {"create_experiment_kwargs": kwargs}}}, kwargs

    local, kwargs = conf("data/09_tracking/artifacts")
    _local_artifact_location(local, tmp_path, server=False)
    assert kwargs["artifact_location"] == str(tmp_path / "data/09_tracking/artifacts")
    remote, kwargs = conf("data/09_tracking/artifacts")
    _local_artifact_location(remote, tmp_path, server=True)
    assert kwargs["artifact_location"] is None  # the server's artifact root
    given, kwargs = conf("s3://bucket/runs")
    _local_artifact_location(given, tmp_path, server=True)
    assert kwargs["artifact_location"] == "s3://bucket/runs"
