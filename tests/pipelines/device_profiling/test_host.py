"""Host profiling: the LiteRT interpreter's timing loop on the tiny TFLite files, and a host
benchmark_model binary (a stand-in script printing a recorded output) with its failures."""

import math
import os

import pytest

from pediatric_emotion.pipelines.device_profiling.benchmark_output import BenchmarkOutputError
from pediatric_emotion.pipelines.device_profiling.commands import BenchmarkSettings
from pediatric_emotion.pipelines.device_profiling.host import (
    HostSettings,
    host_benchmark_model,
    host_description,
    litert_timings,
)
from tests.pipelines.device_profiling.conftest import FIXTURES

SETTINGS = BenchmarkSettings(threads=1, warmup_runs=3, runs=12)


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_litert_timings_give_every_figure(tiny_tflite, quantization):
    result = litert_timings(tiny_tflite[quantization].content, SETTINGS)
    figures = result["figures"]
    assert len(result["timings_ms"]) == 3 + 12 and figures["runs"] == 12
    assert figures["first_ms"] == pytest.approx(result["timings_ms"][0], abs=1e-3)
    assert 0 < figures["min_ms"] <= figures["p50_ms"] <= figures["p90_ms"] <= figures["max_ms"]
    assert figures["p90_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert figures["init_ms"] > 0 and figures["std_ms"] >= 0
    assert figures["avg_ms"] == pytest.approx(sum(result["timings_ms"][3:]) / 12, abs=1e-4)
    assert figures["delegate_applied"] is True
    if os.path.exists("/proc/self/clear_refs"):
        assert math.isfinite(figures["mem_mb"]) and math.isfinite(result["peak_rss_mb"])


def test_host_is_described_by_its_cpu():
    target, details = host_description()
    assert target and f"{os.cpu_count()} logical CPUs" in details and "LiteRT" in details


def _host_binary(tmp_path, output: str, rc: int = 0):
    binary = tmp_path / "linux_x86-64_benchmark_model"
    args = tmp_path / "args.txt"
    binary.write_text(f'#!/bin/sh\necho "$@" > "{args}"\ncat "{FIXTURES / output}"\nexit {rc}\n')
    binary.chmod(0o755)
    return binary, args


def test_a_host_benchmark_model_binary_is_run_and_read(tmp_path, tiny_tflite):
    binary, args = _host_binary(tmp_path, "host_x86_cpu.txt")
    settings = BenchmarkSettings(threads=2, warmup_runs=5, runs=30)
    run = host_benchmark_model(
        binary, tiny_tflite["float32"].content, settings, label="tiny.float32", timeout=10
    )
    assert run["figures"]["avg_ms"] == pytest.approx(0.0389333)
    assert run["figures"]["p50_ms"] == pytest.approx(0.037)
    assert run["command"][0] == str(binary)
    passed = args.read_text().split()
    assert passed[0].startswith("--graph=") and passed[0].endswith("tiny.float32.tflite")
    assert {"--num_threads=2", "--warmup_runs=5", "--num_runs=30"} <= set(passed)


def test_a_failed_host_binary_raises_with_its_output(tmp_path, tiny_tflite):
    binary, _ = _host_binary(tmp_path, "phone_failed_op_version.txt", rc=1)
    with pytest.raises(BenchmarkOutputError, match="FULLY_CONNECTED") as caught:
        host_benchmark_model(binary, b"x", SETTINGS, label="tiny.int8", timeout=10)
    assert "Registration failed." in caught.value.raw
    binary, _ = _host_binary(tmp_path, "host_x86_cpu.txt", rc=3)
    with pytest.raises(BenchmarkOutputError, match="exited with 3"):
        host_benchmark_model(binary, b"x", SETTINGS, label="tiny.int8", timeout=10)
    slow = tmp_path / "slow_benchmark_model"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(BenchmarkOutputError, match="did not finish within 0.3 s"):
        host_benchmark_model(slow, b"x", SETTINGS, label="tiny.int8", timeout=0.3)
    with pytest.raises(FileNotFoundError, match="is not an executable file"):
        host_benchmark_model(tmp_path / "none", b"x", SETTINGS, label="tiny.int8", timeout=1)


def test_host_settings_are_checked(default_profiling):
    settings = HostSettings.from_config(default_profiling)
    assert settings.litert and settings.benchmark_model is None
    assert settings.benchmark.threads == 2 and settings.benchmark.runs == 30
    with pytest.raises(ValueError, match="the host profiles the CPU only"):
        HostSettings.from_config({**default_profiling, "host": {"delegate": "gpu"}})
    with pytest.raises(ValueError, match="nothing would profile on the host"):
        HostSettings.from_config({**default_profiling, "host": {"litert": False}})
