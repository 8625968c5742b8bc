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
from filelock import FileLock
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

DEMO_SCALE = 0.15
"""The end-to-end tests' demo data: conf/base's demo_data at this scale (every planted case)."""


@pytest.fixture(autouse=True)
def no_mlflow_state_between_tests() -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs and active run, left as they were: a
    tracked Kedro session sets them (kedro-mlflow), and a test after it would log there."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


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


def kedro_cli(args: list[str], cwd: Path) -> str:
    """The ``kedro`` command of this environment with ``args``, run in ``cwd``; its stdout (the
    test fails with its stderr when it exits non-zero)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro = os.path.join(os.path.dirname(sys.executable), "kedro")
    result = subprocess.run(
        [kedro, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def make_project_copy(destination: Path) -> Path:
    """Copy conf/base and pyproject.toml (not conf/local, not data) into ``destination``, with an
    empty src/ for Kedro's bootstrap (the installed package is the one that runs), and tracking
    switched off in conf/local/mlflow.yml."""
    shutil.copytree(PROJECT_ROOT / "conf" / "base", destination / "conf" / "base")
    (destination / "conf" / "local").mkdir()
    # no experiment tracking in the copies (about 6 s per session): tests/tracking/ turn it on
    (destination / "conf" / "local" / "mlflow.yml").write_text("enabled: false\n")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", destination / ".telemetry")
    (destination / "src").mkdir()
    return destination


def run_pipelines(
    root: Path, pipelines: list[str], runtime_params: dict[str, Any] | None = None, **run_args: Any
) -> dict[str, Any]:
    """Run ``pipelines`` through a Kedro session of the project copy at ``root``, from ``root``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        with KedroSession.create(project_path=root, runtime_params=runtime_params) as session:
            return session.run(pipeline_names=pipelines, **run_args)


def shared_temp_dir(tmp_path_factory) -> Path:
    """A folder all the processes of this test session see (the xdist workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``shared_temp_dir/name``, built by ``build`` once per test session: by whichever xdist
    worker asks first, while the others wait on the lock and then reuse it."""
    shared = shared_temp_dir(tmp_path_factory)
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session", autouse=True)
def keras_cache_of_the_tests(tmp_path_factory) -> Iterator[Path]:
    """KERAS_HOME in a temporary folder shared by the test session's processes: what the tests'
    runs put in the Keras cache (the quick demo's MobileNetV2 converts torchvision's ImageNet
    weights there) never lands in the user's ~/.keras, and nothing the user has there is used."""
    folder = shared_temp_dir(tmp_path_factory) / "keras_home"
    previous = os.environ.get("KERAS_HOME")
    os.environ["KERAS_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("KERAS_HOME", None)
    else:
        os.environ["KERAS_HOME"] = previous


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """data/01_raw after `kedro run --pipelines=demo_data` at DEMO_SCALE, generated once per test
    session and copied into each end-to-end project by ``project_with_demo_data``."""

    def build(root: Path) -> None:
        make_project_copy(root)
        bootstrap_project(root)
        run_pipelines(root, ["demo_data"], {"demo_data": {"scale": DEMO_SCALE}})

    return built_once(tmp_path_factory, "demo_data_project", build) / "data" / "01_raw"


def project_with_demo_data(destination: Path, demo_raw: Path) -> Path:
    """A project copy (``make_project_copy``) holding the shared demo data in data/01_raw."""
    root = make_project_copy(destination)
    shutil.copytree(demo_raw, root / "data" / "01_raw")
    bootstrap_project(root)
    return root


@pytest.fixture(scope="session")
def harmonized_project(tmp_path_factory, demo_raw) -> Path:
    """A project copy after `kedro run --pipelines=label_harmonization` on the shared demo data,
    built once per test session: the harmonization tests read it, the training tests then train
    their grid in it (nothing they write is read by the harmonization tests)."""

    def build(root: Path) -> None:
        project_with_demo_data(root, demo_raw)
        run_pipelines(root, ["label_harmonization"])

    root = built_once(tmp_path_factory, "harmonized_project", build)
    bootstrap_project(root)
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of slow tests only (the end-to-end runs) first, the paper rehearsal (the
    longest) before them, each file's tests in their order: with pytest-xdist (--dist loadfile)
    the longest files start first and the short ones fill in around them, instead of one long
    file starting last."""
    all_slow: dict[Path, bool] = {}
    rehearsal: set[Path] = set()
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        all_slow[item.path] = all_slow.get(item.path, True) and slow
        if item.get_closest_marker("rehearsal") is not None:
            rehearsal.add(item.path)
    items.sort(key=lambda item: (item.path not in rehearsal, not all_slow[item.path]))


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory) -> Iterator[Callable[..., dict[str, Any]]]:
    """A project copy in a temporary folder and a function running pipelines in it."""
    root = make_project_copy(tmp_path_factory.mktemp("project"))
    bootstrap_project(root)

    def run(pipeline: str, runtime_params: dict[str, Any] | None = None) -> dict[str, Any]:
        return run_pipelines(root, [pipeline], runtime_params)

    run.root = root  # type: ignore[attr-defined]
    yield run
