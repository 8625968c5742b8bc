"""Device profiling node: every TFLite file of one optimization technique of one cell, timed on the
phone (adb + benchmark_model) or on the host (LiteRT, and a host benchmark_model when configured).

``device_profiling.target``: ``auto`` profiles on the phone when ``phone.benchmark_model`` is set
and adb sees the device, else on the host; ``phone`` wants the phone; ``host`` never asks adb.
When the phone fails (no device for ``phone``, unauthorized, offline, several devices, a push, a
binary it cannot execute, a time-out, a failed run), ``on_phone_failure`` says what happens:
``host`` profiles that file on the host and keeps the phone's error (and raw output) in the file's
record; ``fail`` stops the run naming the file and the cause. Cleanup on the phone happens first.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from pediatric_emotion.datasets import TFLiteModel
from pediatric_emotion.grid import FILE_COLUMNS
from pediatric_emotion.pipelines.device_profiling.adb import (
    NO_DEVICE_CAUSES,
    AdbError,
    Phone,
    PhoneSettings,
)
from pediatric_emotion.pipelines.device_profiling.benchmark_output import BenchmarkOutputError
from pediatric_emotion.pipelines.device_profiling.host import (
    HostSettings,
    host_benchmark_model,
    host_description,
    litert_timings,
)

logger = logging.getLogger(__name__)

TARGETS = ("auto", "phone", "host")
ON_PHONE_FAILURE = ("host", "fail")
FIGURES = [
    "init_ms",
    "first_ms",
    "warmup_avg_ms",
    "avg_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "runs",
    "mem_mb",
]
RUN_COLUMNS = ("target_kind", "target", "target_details", "runner", "threads", "delegate")
PROFILING_COLUMNS = [
    *FILE_COLUMNS,
    "target_kind",  # phone | host
    "target",  # ro.product.model, or the host's CPU model
    "target_details",
    "runner",  # benchmark_model | litert
    "threads",
    "delegate",
    "delegate_applied",
    "delegated_nodes",
    *FIGURES,
    "size_bytes",
    "note",
]


def _choices(profiling: Mapping[str, Any]) -> tuple[str, str]:
    target = str(profiling.get("target", "auto"))
    on_failure = str(profiling.get("on_phone_failure", "host"))
    if target not in TARGETS:
        raise ValueError(f"device_profiling.target: {target!r} is not one of {list(TARGETS)}")
    if on_failure not in ON_PHONE_FAILURE:
        raise ValueError(
            f"device_profiling.on_phone_failure: {on_failure!r} is not one of "
            f"{list(ON_PHONE_FAILURE)}"
        )
    return target, on_failure


def _failure(error: Exception) -> dict[str, str]:
    """What is kept of a phone failure: its cause, message and the raw output."""
    if isinstance(error, AdbError):
        return {"cause": error.cause, "message": str(error), "output": error.output}
    if isinstance(error, BenchmarkOutputError):
        return {"cause": "benchmark failed", "message": str(error), "output": error.raw}
    return {"cause": type(error).__name__, "message": str(error), "output": ""}


def _stop(where: str, failure: Mapping[str, str]) -> RuntimeError:
    """The error that stops the run (``on_phone_failure: fail``), the raw output logged."""
    if failure["output"]:
        logger.error("%s: what the phone printed:\n%s", where, failure["output"])
    return RuntimeError(
        f"{where}: profiling on the phone failed ({failure['cause']}): {failure['message']}\n"
        "(device_profiling.on_phone_failure: host profiles on the host instead)"
    )


def connect_phone(profiling: Mapping[str, Any], where: str) -> tuple[Phone | None, dict | None]:
    """The phone to profile on, or None for the host, with the phone failure to record (if the
    host stands in for a phone that failed). Raises when the phone fails and
    ``on_phone_failure`` is ``fail``."""
    target, on_failure = _choices(profiling)
    if target == "host":
        return None, None
    settings = PhoneSettings.from_config(profiling)
    if settings.benchmark_model is None:
        if target == "phone":
            raise ValueError(
                "device_profiling.target is phone but phone.benchmark_model is not set: give the "
                "path of TFLite's benchmark_model for the phone's ABI"
            )
        return None, None
    if not settings.benchmark_model.is_file():
        raise FileNotFoundError(
            f"device_profiling.phone.benchmark_model: no file {settings.benchmark_model}"
        )
    try:
        phone = Phone.connect(settings)
        phone.properties()
    except AdbError as error:
        if target == "auto" and error.cause in NO_DEVICE_CAUSES:
            logger.info("%s: no phone (%s); profiling on the host", where, error)
            return None, None
        failure = _failure(error)
        if on_failure == "fail":
            raise _stop(where, failure) from error
        logger.warning("%s: %s; profiling on the host instead", where, error)
        return None, failure
    return phone, None


def _on_phone(
    phone: Phone, models: Mapping[str, TFLiteModel], labels: Mapping[str, str], stop_early: bool
) -> dict[str, tuple[dict[str, Any] | None, Exception | None]]:
    """quantization -> (run record, None) or (None, the error), for the files run before the
    first failure when ``stop_early``; the binary and every model are removed on the way out."""
    results: dict[str, tuple[dict[str, Any] | None, Exception | None]] = {}
    try:
        with phone.installed_binary() as binary:
            for quantization, model in tqdm(
                models.items(), desc="phone", unit="file", disable=None, leave=False
            ):
                try:
                    run = phone.benchmark(binary, model.content, labels[quantization])
                    results[quantization] = (run, None)
                except (AdbError, BenchmarkOutputError) as error:
                    results[quantization] = (None, error)
                    if stop_early:
                        break
    except AdbError as error:  # the binary could not be installed
        for quantization in models:
            results.setdefault(quantization, (None, error))
    return results


def _host_runs(model: TFLiteModel, host: HostSettings, label: str) -> list[dict[str, Any]]:
    target, details = host_description()
    base = {"target_kind": "host", "target": target, "target_details": details}
    base.update(threads=host.benchmark.threads, delegate="cpu")
    runs = []
    if host.litert:
        runs.append({**base, "runner": "litert", **litert_timings(model.content, host.benchmark)})
    if host.benchmark_model is not None:
        run = host_benchmark_model(
            host.benchmark_model, model.content, host.benchmark, label=label, timeout=host.timeout
        )
        runs.append({**base, "runner": "benchmark_model", **run})
    return runs


def _note(run: Mapping[str, Any], failure: Mapping[str, str] | None) -> str:
    notes = []
    if failure is not None:
        notes.append(f"phone failed ({failure['cause']}); profiled on the host")
    if not run["figures"]["delegate_applied"]:
        notes.append(f"{run['delegate']} delegate not applied: the graph ran on the CPU")
    return "; ".join(notes)


def _jsonable(value: Any) -> Any:
    """``value`` with NaN/inf as null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def profile_tflite(
    *,
    files: Mapping[str, Callable[[], TFLiteModel]],
    profiling: Mapping[str, Any],
    cell: Mapping[str, str],
    technique: str,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Latency, memory and size of every file of one technique (quantization -> file): one row
    per run (phone, or host LiteRT and host benchmark_model) and one raw record per file
    (device, command, raw output, parsed figures, the phone's error where the host stood in)."""
    arch, variant = cell["architecture"], cell["variant"]
    name = f"{arch}.{variant}/{technique}"
    models = {quantization: files[quantization]() for quantization in sorted(files)}
    if not models:
        logger.info("%s: no TFLite files to profile", name)
        return pd.DataFrame(columns=PROFILING_COLUMNS), {}
    host = HostSettings.from_config(profiling)
    _, on_failure = _choices(profiling)
    labels = {q: f"{arch}.{variant}.{technique}.{q}.tflite" for q in models}
    phone, phone_failure = connect_phone(profiling, name)
    results: dict[str, tuple[dict[str, Any] | None, Exception | None]] = {}
    if phone is not None:
        results = _on_phone(phone, models, labels, stop_early=on_failure == "fail")
        target, details = phone.describe()
        device = {"serial": phone.serial, **phone.properties()}
    records: dict[str, dict[str, Any]] = {}
    rows = []
    for quantization, model in tqdm(models.items(), desc=name, unit="file", disable=None):
        where = f"{name}/{quantization}.tflite"
        run, error = results.get(quantization, (None, None))
        failure = phone_failure if error is None else _failure(error)
        if error is not None and on_failure == "fail":
            raise _stop(where, failure) from error
        if error is not None:
            logger.warning("%s: %s; profiling on the host instead", where, failure["message"])
        if run is not None:
            settings = phone.settings.benchmark
            run = {"target_kind": "phone", "target": target, "target_details": details, **run}
            run.update(runner="benchmark_model", threads=settings.threads, device=device)
            runs = [{**run, "delegate": settings.delegate}]
        else:
            runs = _host_runs(model, host, labels[quantization])
        record = {
            "architecture": arch,
            "variant": variant,
            "technique": technique,
            "quantization": quantization,
            "size_bytes": len(model.content),
            "sha256": hashlib.sha256(model.content).hexdigest(),
            "phone_error": failure if run is None else None,
            "runs": runs,
        }
        records[quantization] = _jsonable(record)
        for each in runs:
            rows.append(
                {
                    **{k: record[k] for k in FILE_COLUMNS},
                    **{k: each[k] for k in RUN_COLUMNS},
                    **{k: each["figures"][k] for k in ("delegate_applied", "delegated_nodes")},
                    **{k: each["figures"][k] for k in FIGURES},
                    "size_bytes": record["size_bytes"],
                    "note": _note(each, record["phone_error"]),
                }
            )
            logger.info(
                "%s: %s %s, %.2f ms mean",
                where,
                each["target"],
                each["runner"],
                each["figures"]["avg_ms"],
            )
    return pd.DataFrame(rows, columns=PROFILING_COLUMNS), records
