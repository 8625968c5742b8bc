"""The recommended file: the most accurate exported TFLite file whose latency is within the budget
and whose balanced accuracy reaches the minimum. When none qualifies the recommendation says why
(and names the closest files) instead of failing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.grid import FILE_COLUMNS
from pediatric_emotion.pipelines.reporting.leaderboard import is_tflite_file, model_name, numbers

SHOWN = [
    *FILE_COLUMNS,
    "tflite_path",
    "params",
    "size_bytes",
    "gzip_bytes",
    "latency_ms",
    "p50_ms",
    "avg_ms",
    "latency_target",
]


def criteria(reporting: Mapping[str, Any]) -> dict[str, Any]:
    """The configured budget, minimum, split and latency choice, checked."""
    latency = reporting.get("latency") or {}
    split = str(reporting.get("split", "test"))
    if split not in ("test", "val"):
        raise ValueError(f"reporting.split: {split!r} is not test or val")
    values = {
        "latency_budget_ms": reporting.get("latency_budget_ms"),
        "min_balanced_accuracy": reporting.get("min_balanced_accuracy"),
    }
    for key, value in values.items():
        if value is not None and not (isinstance(value, int | float) and value >= 0):
            raise ValueError(f"reporting.{key}: {value!r} is not a number >= 0 (or null)")
    return {
        **values,
        "split": split,
        "metric": "balanced_accuracy",
        "latency_column": str(latency.get("column", "p50_ms")),
        "latency_target": str(latency.get("target", "auto")),
    }


def _record(row: pd.Series, split: str) -> dict[str, Any]:
    """A leaderboard row as strict JSON (NaN as null)."""
    accuracy = f"{split}_balanced_accuracy"
    keep = [*SHOWN, accuracy, f"{accuracy}_ci_low", f"{accuracy}_ci_high", f"{split}_macro_f1"]
    return json.loads(row.reindex(keep).to_json())


def recommend(leaderboard: pd.DataFrame, reporting: Mapping[str, Any]) -> dict[str, Any]:
    """The recommendation: ``status`` recommended or none_qualifies, the chosen file (or null),
    the reason, the criteria, how many files passed each test, and the nearest alternatives."""
    settings = criteria(reporting)
    split = settings["split"]
    files = leaderboard[is_tflite_file(leaderboard)].copy()
    files["_accuracy"] = numbers(files[f"{split}_balanced_accuracy"])
    files["_latency"] = numbers(files["latency_ms"])
    files["_size"] = numbers(files["size_bytes"])
    budget, minimum = settings["latency_budget_ms"], settings["min_balanced_accuracy"]
    timed = files["_latency"].notna()
    scored = files["_accuracy"].notna()
    fast = timed & (files["_latency"] <= (np.inf if budget is None else float(budget)))
    good = scored & (files["_accuracy"] >= (-np.inf if minimum is None else float(minimum)))
    qualifying = files[fast & good].sort_values(
        ["_accuracy", "_latency", "_size"], ascending=[False, True, True], kind="stable"
    )
    counts = {
        "files": len(files),
        "with_latency": int(timed.sum()),
        "with_accuracy": int(scored.sum()),
        "within_budget": int(fast.sum()),
        "above_minimum": int(good.sum()),
        "qualifying": len(qualifying),
    }
    alternatives: dict[str, Any] = {}
    best_fast = files[fast & scored].sort_values("_accuracy", ascending=False, kind="stable")
    if len(best_fast):
        alternatives["most_accurate_within_budget"] = _record(best_fast.iloc[0], split)
    fastest_good = files[good & timed].sort_values("_latency", kind="stable")
    if len(fastest_good):
        alternatives["fastest_above_minimum"] = _record(fastest_good.iloc[0], split)
    result: dict[str, Any] = {
        "status": "recommended" if len(qualifying) else "none_qualifies",
        "recommended": None,
        "reason": "",
        "criteria": settings,
        "counts": counts,
        "alternatives": alternatives,
        "run_label": reporting.get("run_label"),
        "test_set_label": reporting.get("test_set_label"),
    }
    if len(qualifying):
        chosen = qualifying.iloc[0]
        result["recommended"] = _record(chosen, split)
        result["reason"] = (
            f"{model_name(chosen)}: the most accurate of {len(qualifying)} file(s) within "
            f"{budget} ms and at or above {minimum} {split} balanced accuracy "
            f"({chosen['_accuracy']:.3f}, {chosen['_latency']:.2f} ms on "
            f"{chosen['latency_target']})"
        )
    else:
        result["reason"] = _why_none(
            files, counts, timed=timed, scored=scored, fast=fast, settings=settings
        )
    return result


def _why_none(
    files: pd.DataFrame,
    counts: Mapping[str, int],
    *,
    timed: pd.Series,
    scored: pd.Series,
    fast: pd.Series,
    settings: Mapping[str, Any],
) -> str:
    split, budget = settings["split"], settings["latency_budget_ms"]
    minimum = settings["min_balanced_accuracy"]
    if not counts["files"]:
        return "no exported TFLite file in the leaderboard (optimization_summary has none with ok)"
    if not counts["with_latency"]:
        return (
            f"none of the {counts['files']} files has a latency ({settings['latency_column']}, "
            f"target {settings['latency_target']}): profiling_results has no row for them"
        )
    if not counts["with_accuracy"]:
        return f"none of the {counts['files']} files has a {split} balanced accuracy"
    reasons = []
    if not counts["within_budget"]:
        fastest = files[timed].sort_values("_latency").iloc[0]
        reasons.append(
            f"no file is within the {budget} ms budget (fastest: {model_name(fastest)}, "
            f"{fastest['_latency']:.2f} ms)"
        )
    if not counts["above_minimum"]:
        best = files[scored].sort_values("_accuracy", ascending=False).iloc[0]
        reasons.append(
            f"no file reaches {minimum} {split} balanced accuracy (best: {model_name(best)}, "
            f"{best['_accuracy']:.3f})"
        )
    if not reasons:
        best_fast = files[fast & scored].sort_values("_accuracy", ascending=False)
        detail = (
            f"; the most accurate within budget, {model_name(best_fast.iloc[0])}, has "
            f"{best_fast.iloc[0]['_accuracy']:.3f}"
            if len(best_fast)
            else ""
        )
        reasons.append(
            f"{counts['within_budget']} file(s) are within {budget} ms and "
            f"{counts['above_minimum']} reach {minimum}, but none both{detail}"
        )
    return "; ".join(reasons)


def flag_recommended(leaderboard: pd.DataFrame, recommendation: Mapping[str, Any]) -> pd.DataFrame:
    """``recommended`` True on the chosen file's row only."""
    table = leaderboard.copy()
    chosen = recommendation.get("recommended") or {}
    flags = pd.Series(bool(chosen), index=table.index)
    for key in FILE_COLUMNS:
        flags &= table[key] == chosen.get(key)
    table["recommended"] = flags.to_numpy(dtype=bool)
    return table
