"""benchmark_model's output read line by line: every format variant the recorded outputs in
fixtures/ show (current and older summaries, stats with and without percentiles, memory lines,
delegates applied, partially applied or not applied, logcat and level prefixes, scientific
notation, op profiles) and the failures, which raise with the raw output kept."""

import math

import pytest

from pediatric_emotion.pipelines.device_profiling.benchmark_output import (
    BenchmarkOutputError,
    benchmark_figures,
    delegate_outcome,
    parse_benchmark_output,
    parse_stats,
)
from tests.pipelines.device_profiling.conftest import FIXTURES


def _parse(name: str) -> dict:
    return parse_benchmark_output((FIXTURES / name).read_text())


def test_current_summary_stats_with_percentiles_and_peak_memory():
    parsed = _parse("phone_cpu.txt")
    assert parsed["format"] == "current"
    assert parsed["summary"] == {
        "init": 148312.0,
        "first": 131207.0,
        "warmup": 100338.0,
        "inference": 90954.2,
    }
    assert parsed["warmup"]["count"] == 5 and parsed["warmup"]["median"] == 93012
    assert parsed["inference"] == {
        "count": 30,
        "first": 92418,
        "curr": 90671,
        "min": 88932,
        "max": 97805,
        "avg": 90954.2,
        "std": 1871,
        "p5": 89120,
        "median": 90512,
        "p95": 95260,
    }
    assert parsed["memory"] == {
        "init_mb": 27.1445,
        "overall_mb": 33.8711,
        "peak_mb": 41.3047,
        "vm_rss_mb": 40.0,
    }
    assert parsed["threads"] == 4 and parsed["model_size_mb"] == 12.0195
    assert parsed["replaced_nodes"]["TfLiteXNNPackDelegate"] == {
        "replaced": 126,
        "total": 126,
        "partitions": 1,
    }
    figures = benchmark_figures(parsed, "cpu")
    assert figures["avg_ms"] == pytest.approx(90.9542)
    assert figures["p50_ms"] == pytest.approx(90.512)
    assert figures["p95_ms"] == pytest.approx(95.26)
    assert figures["init_ms"] == pytest.approx(148.312)
    assert figures["first_ms"] == pytest.approx(131.207)
    assert figures["warmup_avg_ms"] == pytest.approx(100.338)
    assert math.isnan(figures["p90_ms"])  # benchmark_model prints p5/median/p95 only
    assert figures["mem_mb"] == 41.3047  # the monitored peak wins over the footprint delta
    assert figures["runs"] == 30
    assert figures["delegate_applied"] and figures["delegated_nodes"] == "126/126"


def test_without_peak_monitoring_mem_is_the_overall_footprint_delta():
    figures = benchmark_figures(_parse("phone_int8_cpu.txt"), "cpu")
    assert figures["mem_mb"] == 12.4961
    assert figures["delegated_nodes"] == "124/126"


def test_gpu_delegate_completely_applied():
    parsed = _parse("phone_gpu_applied.txt")
    assert parsed["delegates"]["gpu"] == {"name": "GPU", "created": True, "status": "complete"}
    assert delegate_outcome(parsed, "gpu") == (True, "126/126")


def test_gpu_delegate_not_applied_is_recorded_so_the_cpu_run_is_not_called_gpu():
    parsed = _parse("phone_gpu_not_applied.txt")
    assert parsed["delegates"]["gpu"]["status"] == "not_applied"
    assert delegate_outcome(parsed, "gpu") == (False, "")
    assert benchmark_figures(parsed, "gpu")["avg_ms"] == pytest.approx(49.1408)


def test_nnapi_not_applied_and_partially_applied():
    parsed = _parse("phone_nnapi_not_applied.txt")
    assert parsed["accelerators"] == ["nnapi-reference"]
    assert delegate_outcome(parsed, "nnapi") == (False, "")
    partial = _parse("phone_nnapi_partial.txt")
    assert partial["delegates"]["nnapi"]["status"] == "partial"
    assert partial["delegates"]["nnapi"]["kernels"] == 2
    assert delegate_outcome(partial, "nnapi") == (True, "62/65")


def test_a_delegate_no_line_mentions_counts_as_not_applied():
    # a GPU run requested but the output only shows the CPU's default XNNPACK delegate
    assert delegate_outcome(_parse("phone_cpu.txt"), "gpu") == (False, "")
    assert delegate_outcome(_parse("phone_cpu.txt"), "xnnpack") == (False, "126/126")


def test_older_summary_without_prefixes_and_the_op_profile():
    parsed = _parse("legacy_op_profiling.txt")
    assert parsed["format"] == "legacy"
    assert parsed["summary"]["init"] == 38467 and parsed["summary"]["inference"] == 79760.9
    assert parsed["summary"]["warmup"] == 83235
    assert parsed["summary"]["first"] == 92451  # from the warm-up stats: older summaries lack it
    assert parsed["warmup"]["count"] == 7 and "median" not in parsed["inference"]
    # the op profiler's "Timings (microseconds): count=..." is not taken as the run's stats
    assert parsed["inference"]["avg"] == 79760.9
    assert [row["node_type"] for row in parsed["op_profile"]][:2] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
    ]
    assert parsed["op_profile"][0] == {
        "node_type": "CONV_2D",
        "count": 36.0,
        "avg_ms": 64.713,
        "avg_pct": 81.192,
        "cdf_pct": 81.192,
        "mem_kb": 0.0,
        "times_called": 36.0,
    }
    figures = benchmark_figures(parsed, "cpu")
    assert math.isnan(figures["p50_ms"]) and figures["std_ms"] == pytest.approx(1.929)
    assert math.isnan(figures["mem_mb"])


def test_older_summary_with_no_stats_field():
    raw = (
        "Initialized session in 0.896ms\n"
        "Running benchmark for at least 1 iterations and at least 0.5 seconds\n"
        "count=215 first=12231 curr=2106 min=2065 max=12231 avg=2331.42 std=746\n\n"
        "Running benchmark for at least 100 iterations and at least 1 seconds\n"
        "count=459 first=2143 curr=2101 min=2056 max=2656 avg=2177.1 std=124\n\n"
        "Average inference timings in us: Warmup: 2331.42, Init: 896, no stats: 2177.1\n"
    )
    parsed = parse_benchmark_output(raw)
    summary = {"warmup": 2331.42, "init": 896, "inference": 2177.1, "first": 12231}
    assert parsed["summary"] == summary


def test_logcat_prefixes_threadtime_and_brief():
    parsed = _parse("logcat_benchmark_app.txt")
    assert parsed["summary"]["inference"] == 14947.6 and parsed["inference"]["median"] == 14876
    assert parsed["memory"]["overall_mb"] == 7.42188
    brief = "\n".join(
        f"I/tflite  ( 9876): {line}"
        for line in (FIXTURES / "phone_int8_cpu.txt").read_text().splitlines()
    )
    assert parse_benchmark_output(brief)["summary"]["inference"] == 48205.3


def test_scientific_notation():
    parsed = _parse("phone_scientific.txt")
    assert parsed["summary"]["warmup"] == 1.332e06
    assert parsed["summary"]["inference"] == 1.26188e06
    assert parsed["inference"]["avg"] == 1.26188e06
    assert benchmark_figures(parsed, "cpu")["avg_ms"] == pytest.approx(1261.88)


def test_stats_lines_all_same_and_older_order():
    single = parse_stats("count=1 curr=670083 p5=670083 median=670083 p95=670083")
    assert single["min"] == single["max"] == single["avg"] == single["first"] == 670083
    assert single["std"] == 0
    same = parse_stats("count=50 curr=1234(all same)")
    assert same["count"] == 50 and same["avg"] == 1234
    older = parse_stats("curr=2106 count=215 min=2065 max=12231 avg=2331.42 std=746")
    assert older["count"] == 215 and older["avg"] == 2331.42 and "first" not in older
    with pytest.raises(ValueError, match="not a benchmark_model stats line"):
        parse_stats("Timings (microseconds): first=3")


@pytest.mark.parametrize(
    ("fixture", "cause"),
    [
        ("phone_failed_op_version.txt", "Didn't find op for builtin opcode 'FULLY_CONNECTED'"),
        ("phone_failed_nnapi.txt", "NN API returned error ANEURALNETWORKS_BAD_DATA"),
    ],
)
def test_a_failed_run_raises_with_its_cause_and_the_raw_output(fixture, cause):
    raw = (FIXTURES / fixture).read_text()
    with pytest.raises(BenchmarkOutputError, match="benchmark_model failed") as caught:
        parse_benchmark_output(raw)
    assert cause in str(caught.value)
    assert caught.value.raw == raw
    assert "Benchmarking failed." in str(caught.value)  # the output's last lines are shown


def test_unparsable_output_raises_with_the_raw_output():
    raw = "Segmentation fault\n"
    with pytest.raises(BenchmarkOutputError, match="no 'Inference timings in us'") as caught:
        parse_benchmark_output(raw)
    assert caught.value.raw == raw
    whole = (FIXTURES / "phone_cpu.txt").read_text()
    cut = whole.split("INFO: Running benchmark for at least 30")[0]
    with pytest.raises(BenchmarkOutputError):  # a run cut off before its summary
        parse_benchmark_output(cut)
