"""The profiling node on one technique's files: on the phone (stand-in adb, recorded outputs),
falling back to the host or failing as configured, and on the host when no phone is configured
or attached; rows carry the file's own size, raw records every run."""

import json
import math

import pytest

from pediatric_emotion.datasets import TFLiteModel
from pediatric_emotion.pipelines.device_profiling.nodes import (
    PROFILING_COLUMNS,
    connect_phone,
    profile_tflite,
)
from tests.pipelines.device_profiling.conftest import SERIAL, phone_profiling

CELL = {"architecture": "tiny", "variant": "demo"}
FAKE = {
    "float32": TFLiteModel(content=b"\x1c\x00\x00\x00TFL3" + bytes(100), spec={"labels": ["a"]}),
    "int8": TFLiteModel(content=b"\x1c\x00\x00\x00TFL3" + bytes(40), spec={"labels": ["a"]}),
}


def _files(models):
    return {quantization: (lambda m=model: m) for quantization, model in models.items()}


def _profile(models, profiling, technique="baseline"):
    return profile_tflite(files=_files(models), profiling=profiling, cell=CELL, technique=technique)


def test_on_the_phone_every_file_gets_a_row_and_a_raw_record(default_profiling, fake_adb):
    fake_adb.set(
        benchmark=[
            {"match": "int8", "output": "phone_int8_cpu.txt"},
            {"output": "phone_cpu.txt"},
        ]
    )
    table, records = _profile(FAKE, phone_profiling(default_profiling, fake_adb.binary))
    assert list(table.columns) == PROFILING_COLUMNS
    assert table["quantization"].tolist() == ["float32", "int8"]
    assert set(table["target"]) == {"moto g(6)"} and set(table["target_kind"]) == {"phone"}
    assert set(table["runner"]) == {"benchmark_model"} and set(table["threads"]) == {4}
    assert table["avg_ms"].tolist() == pytest.approx([90.9542, 48.2053])
    assert table["p50_ms"].tolist() == pytest.approx([90.512, 47.996])
    assert table["size_bytes"].tolist() == [108, 48]  # the files' bytes
    assert table["delegate_applied"].all() and (table["note"] == "").all()
    record = records["int8"]
    assert record["size_bytes"] == 48 and record["phone_error"] is None
    (run,) = record["runs"]
    assert run["device"]["serial"] == SERIAL and run["device"]["platform"] == "msm8953"
    assert run["device"]["abi"] == "armeabi-v7a" and run["device"]["android_version"] == "9"
    assert "Inference timings in us" in run["output"] and run["parsed"]["threads"] == 4
    assert run["figures"]["p90_ms"] is None  # NaN written as null: strict JSON
    json.dumps(records, allow_nan=False)
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]


def test_a_delegate_that_was_not_applied_is_flagged(default_profiling, fake_adb):
    fake_adb.set(benchmark=[{"output": "phone_gpu_not_applied.txt"}])
    profiling = phone_profiling(default_profiling, fake_adb.binary, phone={"delegate": "gpu"})
    table, _ = _profile({"int8": FAKE["int8"]}, profiling)
    row = table.iloc[0]
    assert row["delegate"] == "gpu" and not row["delegate_applied"]
    assert row["note"] == "gpu delegate not applied: the graph ran on the CPU"
    assert "--use_gpu=true" in fake_adb.shell_calls("_benchmark_model")[0]


def test_a_phone_failure_falls_back_to_the_host_with_the_error_kept(
    default_profiling, fake_adb, tiny_tflite
):
    fake_adb.set(
        benchmark=[
            {"match": "int8", "output": "phone_failed_nnapi.txt", "rc": 1},
            {"output": "phone_cpu.txt"},
        ]
    )
    table, records = _profile(tiny_tflite, phone_profiling(default_profiling, fake_adb.binary))
    by_file = table.set_index("quantization")
    assert by_file.loc["float32", "target_kind"] == "phone"
    assert by_file.loc["int8", "target_kind"] == "host"
    assert by_file.loc["int8", "runner"] == "litert"
    assert by_file.loc["int8", "note"] == "phone failed (benchmark failed); profiled on the host"
    error = records["int8"]["phone_error"]
    assert error["cause"] == "benchmark failed" and "ANEURALNETWORKS_BAD_DATA" in error["output"]
    assert math.isfinite(by_file.loc["int8", "p90_ms"])  # the host's loop has every percentile
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]


def test_on_phone_failure_fail_stops_naming_the_file_and_cause(default_profiling, fake_adb):
    fake_adb.set(exec_error="{binary}: not executable: 64-bit ELF file")
    profiling = phone_profiling(default_profiling, fake_adb.binary, on_phone_failure="fail")
    with pytest.raises(RuntimeError, match=r"tiny.demo/baseline/float32.tflite: .*not executable"):
        _profile(FAKE, profiling)
    assert len(fake_adb.shell_calls("_benchmark_model")) == 1  # stopped at the first file
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]


def test_an_unusable_phone_is_named_and_the_host_stands_in(
    default_profiling, fake_adb, tiny_tflite
):
    fake_adb.set(devices=f"List of devices attached\n{SERIAL}\tunauthorized\n\n")
    table, records = _profile(tiny_tflite, phone_profiling(default_profiling, fake_adb.binary))
    assert set(table["target_kind"]) == {"host"}
    assert records["int8"]["phone_error"]["cause"] == "unauthorized"
    with pytest.raises(RuntimeError, match=r"\(unauthorized\).*Allow USB debugging"):
        connect_phone(
            phone_profiling(default_profiling, fake_adb.binary, on_phone_failure="fail"), "x"
        )


def test_no_phone_configured_or_attached_profiles_on_the_host(
    default_profiling, fake_adb, tiny_tflite
):
    table, records = _profile(tiny_tflite, default_profiling)  # benchmark_model: null
    assert set(table["target_kind"]) == {"host"} and not fake_adb.calls()
    assert table["size_bytes"].tolist() == [
        len(tiny_tflite[q].content) for q in ("float32", "int8")
    ]
    assert all(records[q]["phone_error"] is None for q in records)
    fake_adb.set(devices="List of devices attached\n\n")
    phone, failure = connect_phone(phone_profiling(default_profiling, fake_adb.binary), "x")
    assert phone is None and failure is None  # auto: no device attached is no phone
    with pytest.raises(RuntimeError, match=r"\(no device\)"):
        connect_phone(
            phone_profiling(
                default_profiling, fake_adb.binary, target="phone", on_phone_failure="fail"
            ),
            "x",
        )
    phone, failure = connect_phone(
        phone_profiling(default_profiling, fake_adb.binary, target="host"), "x"
    )
    assert phone is None and failure is None and len(fake_adb.calls()) == 2


def test_settings_and_an_empty_technique(default_profiling, tmp_path):
    missing = phone_profiling(default_profiling, tmp_path / "no_such_benchmark_model")
    with pytest.raises(FileNotFoundError, match="phone.benchmark_model: no file .*no_such"):
        connect_phone(missing, "x")
    with pytest.raises(ValueError, match="target is phone but phone.benchmark_model is not set"):
        connect_phone({**default_profiling, "target": "phone"}, "x")
    with pytest.raises(ValueError, match="device_profiling.target: 'usb'"):
        connect_phone({**default_profiling, "target": "usb"}, "x")
    with pytest.raises(ValueError, match="on_phone_failure: 'retry'"):
        connect_phone({**default_profiling, "on_phone_failure": "retry"}, "x")
    table, records = _profile({}, default_profiling)  # every conversion refused: no files
    assert table.empty and list(table.columns) == PROFILING_COLUMNS and records == {}
