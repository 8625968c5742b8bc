"""The host: latency of a TFLite file on this machine, with the LiteRT interpreter
(``ai_edge_litert.interpreter``) and with a host build of benchmark_model when one is configured.

The LiteRT loop does what benchmark_model does: random inputs set once, ``warmup_runs`` invokes,
then ``runs`` timed invokes; init is interpreter creation plus ``allocate_tensors``. Memory is the
peak resident set growth from before the interpreter is created to the last run (Linux: the
``VmHWM`` high-water mark, reset through ``/proc/self/clear_refs`` after freed heap pages are
handed back with glibc's ``malloc_trim``; NaN elsewhere). The model bytes are already in memory
and do not count.

Host timings do not predict phone timings: x86 runs int8 through other kernels than an ARM phone
(int8 can be slower than float32 here).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib.metadata
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pediatric_emotion.pipelines.device_profiling.benchmark_output import (
    BenchmarkOutputError,
    run_record,
)
from pediatric_emotion.pipelines.device_profiling.commands import (
    BenchmarkSettings,
    CommandTimeoutError,
    run_command,
)


@dataclass(frozen=True)
class HostSettings:
    """``device_profiling.host`` and the shared run settings, checked."""

    litert: bool
    benchmark_model: Path | None
    benchmark: BenchmarkSettings
    timeout: float

    @classmethod
    def from_config(cls, profiling: Mapping[str, Any]) -> HostSettings:
        """Read ``device_profiling`` (its ``host`` section and ``timeouts_s.benchmark``). The host
        runs the runtime's default CPU path only: delegates are phone settings."""
        host = dict(profiling.get("host") or {})
        if str(host.get("delegate", "cpu")).lower() != "cpu":
            raise ValueError("device_profiling.host.delegate: the host profiles the CPU only")
        binary = host.get("benchmark_model")
        settings = cls(
            litert=bool(host.get("litert", True)),
            benchmark_model=Path(binary).expanduser() if binary else None,
            benchmark=BenchmarkSettings.from_config(profiling, host, "device_profiling.host"),
            timeout=float((profiling.get("timeouts_s") or {}).get("benchmark", 300)),
        )
        if not settings.litert and settings.benchmark_model is None:
            raise ValueError(
                "device_profiling.host: litert is false and no benchmark_model is set: nothing "
                "would profile on the host"
            )
        return settings


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_description() -> tuple[str, str]:
    """The host's name (its CPU model) and details (logical CPUs, machine, OS, LiteRT)."""
    try:
        litert = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        litert = "not installed"
    details = (
        f"host, {os.cpu_count()} logical CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}, LiteRT {litert}"
    )
    return _cpu_model(), details


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB; NaN where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return float(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def _reset_peak_rss() -> bool:
    """Hand freed heap pages back (glibc ``malloc_trim``), so what the next interpreter allocates
    shows as growth, then reset the high-water mark to the current RSS."""
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _random_input(detail: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = [int(v) for v in detail["shape"]]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _summary(times_ms: np.ndarray) -> dict[str, float]:
    return {
        "avg_ms": float(times_ms.mean()),
        "std_ms": float(times_ms.std()),  # population std, as benchmark_model prints it
        "min_ms": float(times_ms.min()),
        "max_ms": float(times_ms.max()),
        "p50_ms": float(np.percentile(times_ms, 50)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "p95_ms": float(np.percentile(times_ms, 95)),
    }


def litert_timings(content: bytes, settings: BenchmarkSettings, *, seed: int = 0) -> dict[str, Any]:
    """One file through the LiteRT interpreter: ``figures`` (init, first, warm-up average, mean,
    std, min, max, p50/p90/p95 in ms, peak RSS growth in MB) and every run's ``timings_ms``."""
    import ai_edge_litert.interpreter  # noqa: F401  (imported before the clock and RSS mark start)

    from pediatric_emotion.modeling.tflite_runner import litert_interpreter

    reset = _reset_peak_rss()
    rss_before = _status_mb("VmRSS")
    started = time.perf_counter()
    interpreter = litert_interpreter(content, settings.threads)
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - started) * 1000.0
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _random_input(detail, rng))

    def timed(count: int) -> np.ndarray:
        times = np.empty(count, dtype=np.float64)
        for run in range(count):
            start = time.perf_counter()
            interpreter.invoke()
            times[run] = (time.perf_counter() - start) * 1000.0
        return times

    warmup, runs = timed(settings.warmup_runs), timed(settings.runs)
    peak_rss = _status_mb("VmHWM") if reset else float("nan")
    figures = {
        "init_ms": init_ms,
        "first_ms": float((warmup if len(warmup) else runs)[0]),
        "warmup_avg_ms": float(warmup.mean()) if len(warmup) else float("nan"),
        **_summary(runs),
        "mem_mb": peak_rss - rss_before,
    }
    figures = {key: round(value, 4) for key, value in figures.items()}  # 0.1 us, 0.1 kB
    figures.update(runs=settings.runs, delegate_applied=True, delegated_nodes="")
    return {
        "figures": figures,
        "timings_ms": [round(float(t), 4) for t in np.concatenate([warmup, runs])],
        "peak_rss_mb": peak_rss,
    }


def host_benchmark_model(
    binary: Path, content: bytes, settings: BenchmarkSettings, *, label: str, timeout: float
) -> dict[str, Any]:
    """One file through a host benchmark_model binary: command, exit status, raw output, parsed
    figures. BenchmarkOutputError (raw output kept) on a failed, unreadable or timed-out run."""
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise FileNotFoundError(
            f"device_profiling.host.benchmark_model: {binary} is not an executable file"
        )
    with tempfile.TemporaryDirectory() as folder:
        graph = Path(folder) / f"{label}.tflite"
        graph.write_bytes(content)
        command = [str(binary), *settings.flags(str(graph))]
        started = time.perf_counter()
        try:
            returncode, output = run_command(command, timeout=timeout, what=f"{binary.name}")
        except CommandTimeoutError as error:
            raise BenchmarkOutputError(f"{label}: {error}", error.output) from None
        seconds = time.perf_counter() - started
    return run_record(command, returncode, output, seconds, label=label, delegate=settings.delegate)
