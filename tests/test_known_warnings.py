"""The known warnings of the libraries underneath stay out of the log (known_warnings.py): in a
`kedro` command, and when a library shows them through ``simplefilter("once")`` as MLflow does."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

from pediatric_emotion.known_warnings import KnownWarningsFilter, ignore_known_warnings

MLFLOW_MESSAGE = "\x1b[33mAdd type hints to the `predict` method to enable data validation"


def test_a_known_warning_routed_to_logging_is_dropped(caplog):
    """What logging.captureWarnings does with a warning that MLflow's ``simplefilter("once")``
    lets through the warnings filters: a record of the ``py.warnings`` logger."""
    ignore_known_warnings()
    ignore_known_warnings()
    captured = logging.getLogger("py.warnings")
    assert sum(isinstance(f, KnownWarningsFilter) for f in captured.filters) == 1
    with caplog.at_level(logging.WARNING):
        captured.warning("%s:1: UserWarning: %s", "data_validation.py", MLFLOW_MESSAGE)
        captured.warning("%s:1: UserWarning: %s", "nodes.py", "a warning of the project's own")
    messages = [r.getMessage() for r in caplog.records if r.name == "py.warnings"]
    assert len(messages) == 1 and "the project's own" in messages[0]


def test_known_warnings_filtered_out_of_python_warnings():
    ignore_known_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn(MLFLOW_MESSAGE, UserWarning, stacklevel=1)
        warnings.warn("register_new_resolver is deprecated", UserWarning, stacklevel=1)
        warnings.warn("a warning of the project's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of the project's own"]


def test_the_kedro_command_does_not_show_them(project_root):
    """kedro-mlflow's CLI plugin defines its pyfunc model on every ``kedro`` command."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "--help"],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    assert "Usage: kedro" in result.stdout
    assert "type hints" not in result.stdout + result.stderr


def test_mlflow_telemetry_is_off_in_a_fresh_process_of_the_project(project_root):
    """MLflow sends usage data unless MLFLOW_DISABLE_TELEMETRY (or DO_NOT_TRACK=true) says no;
    the package sets it before MLflow is imported, whatever the caller's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "CI", "PYTEST_CURRENT_TEST"}
    }
    code = (
        "import pediatric_emotion, mlflow.telemetry.utils as t; "
        "print(t.MLFLOW_DISABLE_TELEMETRY.get())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert result.stdout.strip().splitlines()[-1] == "True"
