"""Shared fixtures: a throw-away copy of the project (conf + pyproject) to run pipelines in, so
tests never write into the repository's data/ folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before any test imports TF)

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"  # tests never send usage data

TINY_TRAINING: dict[str, Any] = {
    "training": {
        "image_size": 32,
        "batch_size": 8,
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "early_stopping": {"patience": 5, "min_delta": 0.0},
    }
}
"""Runtime parameters training a grid cell in seconds: 32 px, one epoch of two steps."""


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


def heavy_modules_after(code: str, cwd: Path) -> tuple[bool, bool]:
    """Whether TensorFlow and LiteRT are imported after running ``code`` in a fresh Python."""
    modules = "('tensorflow', 'ai_edge_litert')"
    probe = f"{code}; import sys; print(*(m in sys.modules for m in {modules}))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=True,
    )
    tensorflow, litert = result.stdout.strip().splitlines()[-1].split()
    return tensorflow == "True", litert == "True"


def make_project_copy(destination: Path) -> Path:
    """Copy conf/base and pyproject.toml (not conf/local, not data) into ``destination``, with an
    empty src/ for Kedro's bootstrap (the installed package is the one that runs)."""
    shutil.copytree(PROJECT_ROOT / "conf" / "base", destination / "conf" / "base")
    (destination / "conf" / "local").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", destination / ".telemetry")
    (destination / "src").mkdir()
    return destination


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory) -> Iterator[Callable[..., dict[str, Any]]]:
    """A project copy in a temporary folder and a function running pipelines in it."""
    root = make_project_copy(tmp_path_factory.mktemp("project"))
    bootstrap_project(root)

    def run(pipeline: str, runtime_params: dict[str, Any] | None = None) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            with KedroSession.create(project_path=root, runtime_params=runtime_params) as session:
                return session.run(pipeline_names=[pipeline])

    run.root = root  # type: ignore[attr-defined]
    yield run
