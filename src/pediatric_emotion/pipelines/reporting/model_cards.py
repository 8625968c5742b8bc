"""A model card (markdown) for each exported TFLite file: the file, the data it was trained and
tested on, its metrics with their intervals, its subgroup gaps, its latency and where it was
measured, intended use and limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.grid import TECHNIQUES
from pediatric_emotion.pipelines.reporting.leaderboard import model_name, numbers, of_file


def card_key(row: Mapping[str, Any]) -> str:
    """``{architecture}.{variant}/{technique}/{quantization}``: the card's path under
    model_cards/."""
    return f"{row['architecture']}.{row['variant']}/{row['technique']}/{row['quantization']}"


def _number(value: Any, digits: int = 3) -> str:
    value = numbers(pd.Series([value]))[0]
    return "n/a" if np.isnan(value) else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    value = numbers(pd.Series([value]))[0]
    return "n/a" if np.isnan(value) else f"{int(value):,}"


def _with_ci(row: Mapping[str, Any], column: str) -> str:
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    interval = f" (95% CI {_number(low)}-{_number(high)})" if _number(low) != "n/a" else ""
    return _number(row.get(column)) + interval


def _copy(variant: str, variants: Mapping[str, Any]) -> str:
    config = variants.get(variant) or {}
    parts = [f"{key}: {', '.join(map(str, value))}" for key, value in config.items() if value]
    return f"`{variant}` ({'; '.join(parts)})" if parts else f"`{variant}`"


def _gaps(subgroups: pd.DataFrame, row: Mapping[str, Any], split: str) -> str:
    rows = subgroups[
        (subgroups["split"] == split)
        & subgroups["group"].astype(str).str.startswith("gap")
        & of_file(subgroups, row)
    ]
    if rows.empty:
        return "No subgroup metrics for this file (no test-set metadata, or not evaluated).\n"
    lines = ["| grouping | metric | gap (best - worst) | best and worst |", "|---|---|---|---|"]
    for gap in rows.sort_values(["grouping", "metric"]).itertuples():
        note = "" if pd.isna(gap.note) else str(gap.note)
        lines.append(f"| {gap.grouping} | {gap.metric} | {_number(gap.value)} | {note} |")
    return "\n".join(lines) + "\n"


def model_card(
    row: Mapping[str, Any],
    subgroups: pd.DataFrame,
    *,
    reporting: Mapping[str, Any],
    variants: Mapping[str, Any],
    demo: bool,
) -> str:
    """The markdown card of one leaderboard row (a TFLite file)."""
    split = str(reporting.get("split", "test"))
    budget = reporting.get("latency_budget_ms")
    technique = str(row["technique"])
    how = (
        TECHNIQUES[technique].description if technique in TECHNIQUES else "see docs/optimization.md"
    )
    lines = [f"# Model card: {model_name(row)}", ""]
    if demo:
        lines += [
            "> **Demo data.** Trained and tested on the project's synthetic demo faces: these "
            "numbers say nothing about real performance and are not the study's.",
            "",
        ]
    if row.get("recommended"):
        lines += [f"**Recommended** file of this run (within {budget} ms, most accurate).", ""]
    lines += [
        "## File",
        "",
        f"- path: `{row['tflite_path']}` (its preprocessing spec is embedded and beside it as "
        f"`{row['quantization']}.json`; labels in `{row['quantization']}.labels.txt`)",
        f"- size: {_count(row.get('size_bytes'))} bytes, gzip {_count(row.get('gzip_bytes'))} "
        f"bytes ({_number(row.get('size_vs_baseline_float32'))} of the float32 baseline)",
        f"- architecture `{row['architecture']}`, {_count(row.get('params'))} parameters; "
        f"{technique}: {how}; "
        f"quantization {row['quantization']}, input {row.get('input_dtype', 'n/a')}",
        "",
        "## Data",
        "",
        f"- data copy {_copy(str(row['variant']), variants)}: "
        f"{_count(row.get('train_images'))} training and {_count(row.get('val_images'))} "
        "validation face crops (training_summary)",
        f"- test set: {reporting.get('test_set_label', 'the test role')}, "
        f"{_count(row.get('test_n_images'))} images of {_count(row.get('test_n_subjects'))} "
        "subjects",
        "",
        "## Metrics",
        "",
        "| metric | test | validation |",
        "|---|---|---|",
        f"| balanced accuracy | {_with_ci(row, 'test_balanced_accuracy')} | "
        f"{_with_ci(row, 'val_balanced_accuracy')} |",
        f"| macro F1 | {_with_ci(row, 'test_macro_f1')} | {_with_ci(row, 'val_macro_f1')} |",
        f"| accuracy | {_number(row.get('test_accuracy'))} | {_number(row.get('val_accuracy'))} |",
        f"| expected calibration error | {_number(row.get('test_ece'))} | "
        f"{_number(row.get('val_ece'))} |",
        "",
        "Intervals: 95% bootstrap by subject (docs/evaluation.md).",
        "",
        f"## Subgroup gaps ({split} split)",
        "",
        _gaps(subgroups, row, split),
        "## Latency",
        "",
        f"- {reporting.get('latency', {}).get('column', 'p50_ms')}: "
        f"{_number(row.get('latency_ms'), 2)} ms (p50 {_number(row.get('p50_ms'), 2)}, mean "
        f"{_number(row.get('avg_ms'), 2)}), measured on {row.get('latency_target') or 'n/a'}",
        "- host figures do not predict a phone's; see docs/device_profiling.md",
        "",
        "## Intended use",
        "",
        "An aid in children's autism screening and therapy apps (for example the GuessWhat game): "
        "recognising one of seven expressions (neutral, fear, happy, sad, surprise, anger, "
        "disgust) on a face cropped as the spec says, on the phone, with a person in the loop. "
        "**Not a diagnosis**, and not for judging any one child's emotional state or ability.",
        "",
        "## Limits",
        "",
        "- trained on posed and game-frame expressions; spontaneous expressions, occluded or "
        "turned faces and poor light are harder; a face the detector misses is never classified",
        "- the children in the test set are aged 2-8 (CAFE); other ages and populations are "
        "untested, and accuracy differs between groups (the gaps above; the study found up to "
        "about 11.6 points between CAFE's ethnic groups)",
        "- seven classes only; a single frame at a time, no temporal context",
    ]
    if demo:
        lines.append(
            "- this run used synthetic demo data: retrain on the real, licensed data sets "
            "(README, adding a real data set) before drawing any conclusion"
        )
    return "\n".join(lines) + "\n"
