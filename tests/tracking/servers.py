"""Real MLflow processes for the tests: ``mlflow server`` (SQLite backend, artifacts served,
in a temporary folder) and ``mlflow models serve``, on free localhost ports. Argument lists,
time-outs, and each process group killed in ``finally``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
MLFLOW = str(BIN / "mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    """This environment, the venv's bin first on PATH (``--env-manager local`` runs its
    ``mlflow``/``uvicorn`` from PATH), MLflow's telemetry and job runner off."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
    )
    env.update(extra)
    return env


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def post_json(url: str, payload: object, timeout: float = 60.0) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def _wait(process: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if get(url, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not up after {timeout_s} s: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (the server's workers), SIGKILL after 10 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@contextmanager
def _process(args: list[str], url: str, log: Path, env: dict, timeout_s: float) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait(process, url, log, timeout_s)
        yield
    finally:
        _stop(process)


@contextmanager
def mlflow_server(folder: Path, timeout_s: float = 120.0) -> Iterator[str]:
    """A tracking server with a SQLite store and served artifacts in ``folder``; its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        MLFLOW, "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    with _process(args, f"{uri}/health", folder / "server.log", environment(), timeout_s):
        yield uri


@contextmanager
def model_server(
    model_uri: str, tracking_uri: str, folder: Path, timeout_s: float = 180.0
) -> Iterator[str]:
    """``mlflow models serve`` of ``model_uri`` in this environment; its base URL."""
    port = free_port()
    args = [
        MLFLOW, "models", "serve", "-m", model_uri, "--env-manager", "local",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = environment(MLFLOW_TRACKING_URI=tracking_uri)
    with _process(args, f"{url}/ping", folder / "serve.log", env, timeout_s):
        yield url
