"""Read what TFLite's ``benchmark_model`` prints (tensorflow/lite/tools/benchmark).

Handled, on the binary's stdout/stderr, on ``adb logcat`` lines (threadtime ``12-01 10:00:00.000
123 456 I tflite  : ...`` and brief ``I/tflite  ( 123): ...``) and with or without the
``INFO:``/``VERBOSE:``/``ERROR:`` level prefixes of newer builds:

* the summary: ``Inference timings in us: Init: ..., First inference: ..., Warmup (avg): ...,
  Inference (avg): ...`` and the older ``Average inference timings in us: Warmup: ..., Init: ...,
  Inference: ...`` (or ``no stats:``);
* the two stats lines, warm-up then timed runs: ``count= first= curr= min= max= avg= std=`` with
  ``p5= median= p95=`` where the build has percentiles, ``count=1 curr=...`` and ``(all same)``,
  and the older ``curr=`` first order;
* memory: ``Memory footprint delta from the start of the tool (MB): init= overall=`` (older:
  ``Peak memory footprint (MB): init= overall=``), ``Overall peak memory footprint (MB) via
  periodic monitoring: ...`` and the ``VmRSS`` line after it;
* delegates: ``Created TensorFlow Lite ... delegate for ...``, ``Explicitly applied X delegate,
  and the model graph will be completely / partially executed ...``, ``Though X delegate is
  explicitly applied, the model graph will not be executed by the delegate.``, ``Failed to apply X
  delegate.``, ``X acceleration is unsupported on this platform.`` and ``Replacing N out of M
  node(s) with delegate (Kernel) node, yielding K partitions``;
* the op profile's ``Summary by node type`` table (``--enable_op_profiling=true``).

Numbers may be in scientific notation (C++ streams print ``1.23457e+06``). Times stay in
microseconds here; callers convert. A failed run (``Benchmarking failed.``, a ``Failed to ...``
error) or output without a summary raises :class:`BenchmarkOutputError`, which keeps the raw text.
"""

from __future__ import annotations

import math
import re
from typing import Any

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
_NUMBER = re.compile(rf"^(?:{NUMBER})$", re.IGNORECASE)

_LOGCAT_THREADTIME = re.compile(
    r"^\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*?\s*:\s?"
)
_LOGCAT_BRIEF = re.compile(r"^[VDIWEF]/[^(:]+\(\s*\d+\)\s*:\s?")
_LEVEL = re.compile(r"^(INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG|FATAL)\s*:\s?")

_SUMMARY = re.compile(
    rf"^Inference timings in us: Init: (?P<init>{NUMBER}), First inference: (?P<first>{NUMBER}), "
    rf"Warmup \(avg\): (?P<warmup>{NUMBER}), Inference \(avg\): (?P<inference>{NUMBER})",
    re.IGNORECASE,
)
_LEGACY_SUMMARY = re.compile(r"^Average inference timings in us: (?P<fields>.*)$")
_LEGACY_FIELDS = {
    "warmup": "warmup",
    "init": "init",
    "inference": "inference",
    "no stats": "inference",
    "with stats": "inference_with_stats",
}
_STATS_KEY = re.compile(rf"(?P<key>[a-z0-9]+)=(?P<value>{NUMBER})", re.IGNORECASE)
_STATS_LINE = re.compile(r"^(?:count|curr)=", re.IGNORECASE)
_MEMORY_DELTA = re.compile(
    rf"^(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init=(?P<init>{NUMBER}) overall=(?P<overall>{NUMBER})",
    re.IGNORECASE,
)
_PEAK_MEMORY = re.compile(
    rf"^Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{NUMBER})",
    re.IGNORECASE,
)
_VM_RSS = re.compile(rf"^- VmRSS\s*:\s*(?P<rss>{NUMBER}) MB")
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\): (?P<size>{NUMBER})")
_THREADS = re.compile(r"^(?:Num threads|#threads used for CPU inference): \[(?P<threads>-?\d+)\]")
_CREATED = re.compile(
    r"^Created TensorFlow Lite (?:(?P<before>\w+) delegate for (?P<device>\w+)|"
    r"delegate for (?P<name>[\w-]+))\.?$"
)
_APPLIED = re.compile(
    r"^Explicitly applied (?P<name>[\w-]+) delegate, and the model graph will be "
    r"(?P<how>completely|partially) executed by the delegate"
    r"(?: w/ (?P<kernels>\d+) delegate kernels)?"
)
_NOT_APPLIED = re.compile(
    r"^Though (?P<name>[\w-]+) delegate is explicitly applied, the model graph will not be "
    r"executed by the delegate"
)
_FAILED_DELEGATE = re.compile(r"^Failed to apply (?P<name>[\w-]+) delegate")
_UNSUPPORTED = re.compile(r"^(?P<name>[\w-]+) acceleration is unsupported on this platform")
_REPLACING = re.compile(
    r"^Replacing (?P<replaced>\d+) out of (?P<total>\d+) node\(s\) with delegate "
    r"\((?P<kernel>\w+)\) node, yielding (?P<partitions>\d+) partitions"
)
_ACCELERATORS = re.compile(r"^NNAPI accelerators available: \[(?P<names>[^\]]*)\]")
_FAILED_RUN = re.compile(r"^Benchmarking failed")
_FAILURES = (
    _FAILED_RUN,
    re.compile(r"^Failed to (?:mmap model|allocate tensors|invoke|apply|create)"),
    re.compile(r"^Could not open '"),
    re.compile(r"^Disallowed CPU fallback detected"),
)
_NODE_TYPE_HEADER = re.compile(r"^=+ Summary by node type =+$")

# the delegate names benchmark_model prints and the kernels its "Replacing ..." lines name
DELEGATE_NAMES = {"xnnpack": "XNNPACK", "gpu": "GPU", "nnapi": "NNAPI", "hexagon": "Hexagon"}
DELEGATE_KERNELS = {
    "xnnpack": "TfLiteXNNPackDelegate",
    "gpu": "TfLiteGpuDelegateV2",
    "nnapi": "TfLiteNnapiDelegate",
    "hexagon": "TfLiteHexagonDelegate",
}


class BenchmarkOutputError(ValueError):
    """benchmark_model failed, or printed nothing this parser can read; ``raw`` is its output."""

    def __init__(self, message: str, raw: str) -> None:
        tail = "\n".join(raw.strip().splitlines()[-8:])
        text = f"{message}\n--- last lines of the output ---\n{tail}" if tail else message
        super().__init__(text)
        self.raw = raw


def _number(text: str) -> float:
    return float(text)


def _without_prefix(line: str) -> tuple[str, str]:
    """One output line without its logcat and log-level prefixes (inner tabs kept), and the level
    (``INFO``, ``ERROR``, ...; empty when the line has none)."""
    line = line.rstrip("\r\n")
    for pattern in (_LOGCAT_THREADTIME, _LOGCAT_BRIEF):
        line = pattern.sub("", line, count=1)
    level = _LEVEL.match(line)
    return (line[level.end() :], level[1].upper()) if level else (line, "")


def parse_stats(line: str) -> dict[str, float]:
    """A stats line (``count=50 first=... std=... p5=... median=... p95=...``) as floats; a run of
    identical timings (``count=1 curr=...``, ``(all same)``) fills first/min/max/avg with it and
    std with 0."""
    stats = {m["key"].lower(): _number(m["value"]) for m in _STATS_KEY.finditer(line)}
    if "count" not in stats:
        raise ValueError(f"not a benchmark_model stats line: {line!r}")
    if stats["count"] > 0 and "avg" not in stats and "curr" in stats:
        for key in ("first", "min", "max", "avg"):
            stats.setdefault(key, stats["curr"])
        stats.setdefault("std", 0.0)
    return stats


def _legacy_summary(fields: str) -> dict[str, float]:
    summary: dict[str, float] = {}
    for part in fields.split(","):
        key, _, value = (piece.strip() for piece in part.partition(":"))
        name = _LEGACY_FIELDS.get(key.lower())
        if name and _NUMBER.match(value):
            summary[name] = _number(value)
    return summary


def _node_type_rows(lines: list[str]) -> list[dict[str, Any]]:
    """The rows of a ``Summary by node type`` table (tab separated, ``[Node type] [count] ...``
    header), up to the first blank or ``=`` line."""
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    for line in lines:
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if not cells or cells[0].startswith("="):
            break
        if cells[0].startswith("["):
            header = [
                cell.strip("[] ").lower().replace("%", "pct").replace(" ", "_") for cell in cells
            ]
        elif len(cells) == len(header):
            rows.append(
                {
                    key: _number(cell.rstrip("%")) if _NUMBER.match(cell.rstrip("%")) else cell
                    for key, cell in zip(header, cells, strict=True)
                }
            )
    return rows


def _delegate(result: dict[str, Any], name: str) -> dict[str, Any]:
    return result["delegates"].setdefault(name.lower(), {"name": name})


def _read_line(result: dict[str, Any], line: str) -> None:
    """Record what one (prefix-free, stripped) line says about memory, delegates or the run."""
    if match := _MEMORY_DELTA.match(line):
        result["memory"]["init_mb"] = _number(match["init"])
        result["memory"]["overall_mb"] = _number(match["overall"])
    elif match := _PEAK_MEMORY.match(line):
        result["memory"]["peak_mb"] = _number(match["peak"])
    elif match := _VM_RSS.match(line):
        result["memory"]["vm_rss_mb"] = _number(match["rss"])
    elif match := _MODEL_SIZE.match(line):
        result["model_size_mb"] = _number(match["size"])
    elif match := _THREADS.match(line):
        result["threads"] = int(match["threads"])
    elif match := _CREATED.match(line):
        _delegate(result, match["before"] or match["name"])["created"] = True
    elif match := _APPLIED.match(line):
        record = _delegate(result, match["name"])
        record["status"] = "complete" if match["how"] == "completely" else "partial"
        if match["kernels"]:
            record["kernels"] = int(match["kernels"])
    elif match := _NOT_APPLIED.match(line):
        _delegate(result, match["name"])["status"] = "not_applied"
    elif match := _FAILED_DELEGATE.match(line):
        _delegate(result, match["name"])["status"] = "failed"
    elif match := _UNSUPPORTED.match(line):
        _delegate(result, match["name"])["status"] = "unsupported"
    elif match := _REPLACING.match(line):
        result["replaced_nodes"][match["kernel"]] = {
            key: int(match[key]) for key in ("replaced", "total", "partitions")
        }
    elif match := _ACCELERATORS.match(line):
        result["accelerators"] = [n.strip() for n in match["names"].split(",") if n.strip()]


def parse_benchmark_output(raw: str) -> dict[str, Any]:
    """The figures of one benchmark_model run (times in microseconds, memory in MB), JSON-able:
    ``summary`` (init, first, warmup, inference), ``warmup`` and ``inference`` stats, ``memory``
    (init_mb, overall_mb, peak_mb, vm_rss_mb), ``delegates`` (per delegate: created, status
    complete/partial/not_applied/failed/unsupported, kernels), ``replaced_nodes`` (per kernel),
    ``accelerators`` (NNAPI), ``threads``, ``model_size_mb``, ``op_profile`` (node-type summary
    of the timed runs, when profiled), ``errors`` and ``format`` (``current`` or ``legacy``).
    Raises :class:`BenchmarkOutputError` on a failed or unreadable run."""
    result: dict[str, Any] = {
        "format": None,
        "summary": {},
        "warmup": None,
        "inference": None,
        "memory": {},
        "delegates": {},
        "replaced_nodes": {},
        "accelerators": None,
        "threads": None,
        "model_size_mb": None,
        "op_profile": [],
        "errors": [],
    }
    lines = [_without_prefix(line) for line in raw.splitlines()]
    stats: list[dict[str, float]] = []
    expecting_stats = failed = False
    for index, (text, level) in enumerate(lines):
        line = text.strip()
        if level in ("ERROR", "FATAL") or any(pattern.match(line) for pattern in _FAILURES):
            result["errors"].append(line)
            failed = failed or bool(_FAILED_RUN.match(line))
        if match := _SUMMARY.match(line):
            result["format"] = "current"
            result["summary"] = {key: _number(value) for key, value in match.groupdict().items()}
        elif (match := _LEGACY_SUMMARY.match(line)) and result["format"] != "current":
            result["format"] = "legacy"
            result["summary"] = _legacy_summary(match["fields"])
        elif line.startswith("Running benchmark for"):
            expecting_stats = True
        elif expecting_stats and _STATS_LINE.match(line):
            stats.append(parse_stats(line))
            expecting_stats = False
        elif _NODE_TYPE_HEADER.match(line):  # the last table: the timed runs' profile
            result["op_profile"] = _node_type_rows([t for t, _ in lines[index + 1 :]])
        else:
            _read_line(result, line)
    if stats:
        result["inference"] = stats[-1]
        result["warmup"] = stats[0] if len(stats) > 1 else None
    if failed:
        causes = [e for e in result["errors"] if not _FAILED_RUN.match(e)] or result["errors"]
        raise BenchmarkOutputError(f"benchmark_model failed: {causes[0]}", raw)
    if "inference" not in result["summary"]:
        cause = f" ({result['errors'][0]})" if result["errors"] else ""
        raise BenchmarkOutputError(
            "no 'Inference timings in us' (or older 'Average inference timings in us') summary "
            f"line in the benchmark_model output{cause}",
            raw,
        )
    summary = result["summary"]
    if "first" not in summary:  # older summaries: the first warm-up run, where printed
        first = (result["warmup"] or {}).get("first")
        summary["first"] = math.nan if first is None else first
    return result


def delegate_outcome(parsed: dict[str, Any], delegate: str) -> tuple[bool, str]:
    """Whether the requested delegate ran the graph, and the replaced-node count ``N/M`` of its
    kernel (of XNNPACK's default delegate for ``cpu``). A delegate that no line says was applied
    counts as not applied, so a CPU run is never reported as a GPU or NNAPI run."""
    delegate = delegate.lower()
    kernel = DELEGATE_KERNELS.get("xnnpack" if delegate == "cpu" else delegate)
    replaced = parsed.get("replaced_nodes", {}).get(kernel)
    nodes = f"{replaced['replaced']}/{replaced['total']}" if replaced else ""
    if delegate == "cpu":
        return True, nodes
    record = parsed.get("delegates", {}).get(DELEGATE_NAMES.get(delegate, delegate).lower(), {})
    return record.get("status") in ("complete", "partial"), nodes


def _ms(value: float | None) -> float:
    return math.nan if value is None else float(value) / 1000.0


def benchmark_figures(parsed: dict[str, Any], delegate: str) -> dict[str, Any]:
    """The profiling_results figures of one parsed run, in milliseconds and MB: p50 is the timed
    runs' median where the build prints percentiles (benchmark_model prints no p90: NaN); mem_mb
    is the peak footprint when it was monitored, else the overall footprint delta."""
    summary, stats, memory = parsed["summary"], parsed.get("inference") or {}, parsed["memory"]
    applied, nodes = delegate_outcome(parsed, delegate)
    return {
        "init_ms": _ms(summary.get("init")),
        "first_ms": _ms(summary.get("first")),
        "warmup_avg_ms": _ms(summary.get("warmup")),
        "avg_ms": _ms(summary.get("inference")),
        "p50_ms": _ms(stats.get("median")),
        "p90_ms": math.nan,
        "p95_ms": _ms(stats.get("p95")),
        "std_ms": _ms(stats.get("std")),
        "min_ms": _ms(stats.get("min")),
        "max_ms": _ms(stats.get("max")),
        "runs": int(stats["count"]) if "count" in stats else None,
        "mem_mb": memory.get("peak_mb", memory.get("overall_mb", math.nan)),
        "delegate_applied": applied,
        "delegated_nodes": nodes,
    }


def run_record(
    command: list[str], returncode: int, output: str, seconds: float, *, label: str, delegate: str
) -> dict[str, Any]:
    """What is kept of one benchmark_model run: command, exit status, raw output, parsed output,
    figures, seconds. BenchmarkOutputError (raw output kept) on a failed or unreadable run."""
    parsed = parse_benchmark_output(output)
    if returncode != 0:
        raise BenchmarkOutputError(f"{label}: benchmark_model exited with {returncode}", output)
    return {
        "command": command,
        "returncode": returncode,
        "output": output,
        "parsed": parsed,
        "figures": benchmark_figures(parsed, delegate),
        "seconds": round(seconds, 3),
    }
