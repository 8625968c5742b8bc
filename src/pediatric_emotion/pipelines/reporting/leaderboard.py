"""The leaderboard: one row per architecture, variant, technique and quantization, joining the
training summary (parameters, image counts), the optimization summary (file, size, gzip size,
status), the evaluation metrics (balanced accuracy with its interval, macro F1, per split) and the
profiling results (one latency per file, from the configured target and runner); optionally the
robustness summary and, on the ``distilled`` files, their teacher and how much of the gap between
the cell's baseline file and the teacher each closes.

Any input may lack rows (a cell not optimized, a file not profiled): those values are NaN. An input
missing a column this join reads fails, naming the table and the column.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.grid import CELL_COLUMNS, FILE_COLUMNS, KERAS

logger = logging.getLogger(__name__)

# metric in evaluation_metrics -> leaderboard column stem; CI columns for those in WITH_CI
METRICS = {
    "balanced_accuracy": "balanced_accuracy",
    "macro_f1": "macro_f1",
    "accuracy": "accuracy",
    "ece": "ece",
    "n_images": "n_images",
    "n_subjects": "n_subjects",
}
WITH_CI = ("balanced_accuracy", "macro_f1")
SPLITS = ("test", "val")
LATENCY_TARGETS = ("auto", "phone", "host")
LATENCY_FIGURES = ["p50_ms", "avg_ms", "p90_ms", "mem_mb"]

REQUIRED = {
    "training_summary": [*CELL_COLUMNS, "params"],
    "optimization_summary": [
        *FILE_COLUMNS,
        "tflite_path",
        "size_bytes",
        "gzip_bytes",
        "status",
        "reason",
    ],
    "evaluation_metrics": [*FILE_COLUMNS, "split", "metric", "value", "ci_low", "ci_high"],
    "profiling_results": [*FILE_COLUMNS, "target_kind", "target", "runner", "threads", "delegate"],
    "subgroup_metrics": [*FILE_COLUMNS, "split", "grouping", "group", "metric", "value", "note"],
    "confusion_matrices": [*FILE_COLUMNS, "split", "true", "predicted", "count"],
    "published_comparison": ["source", "model", "version", "copy", "metric", "value"],
    "robustness_summary": [*FILE_COLUMNS, "corrupted_balanced_accuracy", "mce", "worst_corruption"],
    "robustness_metrics": [*FILE_COLUMNS, "corruption", "severity", "balanced_accuracy"],
    "distillation_teachers": ["variant", "teacher", "params", "test_balanced_accuracy"],
}
# From robustness_summary: the mean balanced accuracy over the corruptions and severities, the
# mean corruption error against the cell's Keras model (ImageNet-C's mCE; 1.0 for the Keras model
# itself) and the corruption that costs the most.
ROBUSTNESS_COLUMNS = ["corrupted_balanced_accuracy", "mce", "worst_corruption"]
# From distillation_teachers, on the distilled files only: the teacher of the file's cell (one row
# per data copy, or per cell where the table has an ``architecture`` column), its test balanced
# accuracy and parameters, and the share of the baseline-to-teacher gap the file closes.
DISTILLED = ("distilled", "distilled_qat")
BASELINE = "baseline"
DISTILLATION_COLUMNS = ["teacher", "teacher_test_balanced_accuracy", "teacher_params", "gap_closed"]


def metric_columns(split: str) -> list[str]:
    """The leaderboard's metric columns of one split."""
    columns = []
    for stem in METRICS.values():
        columns.append(f"{split}_{stem}")
        if stem in WITH_CI:
            columns += [f"{split}_{stem}_ci_low", f"{split}_{stem}_ci_high"]
    return columns


# whole numbers, kept as such in the CSV (nullable: a missing value stays empty)
COUNTS = [
    "params",
    "train_images",
    "val_images",
    "size_bytes",
    "gzip_bytes",
    "teacher_params",
    *[f"{split}_{stem}" for split in SPLITS for stem in ("n_images", "n_subjects")],
]
LEADERBOARD_COLUMNS = [
    *FILE_COLUMNS,
    "status",
    "reason",
    "params",
    "train_images",
    "val_images",
    "size_bytes",
    "gzip_bytes",
    "size_vs_baseline_float32",
    "input_dtype",
    *metric_columns("test"),
    *metric_columns("val"),
    *ROBUSTNESS_COLUMNS,
    *DISTILLATION_COLUMNS,
    "latency_ms",
    *LATENCY_FIGURES,
    "latency_target",
    "latency_target_kind",
    "tflite_path",
    "recommended",
    "pareto_latency",
    "pareto_size",
]


def check_columns(table: pd.DataFrame, name: str, columns: Iterable[str] | None = None) -> None:
    """Fail naming the table and the first missing column."""
    wanted = list(REQUIRED[name] if columns is None else columns)
    missing = [column for column in wanted if column not in table.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column {missing[0]!r}"
            + (f" (and {missing[1:]})" if len(missing) > 1 else "")
            + f"; it has {list(table.columns)}"
        )


def _keyed(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``table`` with its key columns as strings (a CSV column of NaN reads as float)."""
    table = table.copy()
    for key in keys:
        table[key] = table[key].map(lambda v: None if pd.isna(v) else str(v)).astype("object")
    return table


def _unique(table: pd.DataFrame, keys: Sequence[str], name: str) -> pd.DataFrame:
    duplicated = table.duplicated(list(keys), keep=False)
    if duplicated.any():
        first = table.loc[duplicated, list(keys)].iloc[0].tolist()
        raise ValueError(f"{name}: {int(duplicated.sum())} rows share a key, e.g. {first}")
    return table


def _metrics_wide(evaluation_metrics: pd.DataFrame) -> pd.DataFrame:
    """evaluation_metrics (long) -> one row per model, ``{split}_{metric}[_ci_low|_ci_high]``."""
    rows = evaluation_metrics[
        evaluation_metrics["split"].isin(SPLITS)
        & evaluation_metrics["metric"].isin(list(METRICS))
        & (evaluation_metrics["technique"] != "peer")
    ]
    rows = _unique(rows, [*FILE_COLUMNS, "split", "metric"], "evaluation_metrics")
    wide = pd.DataFrame(columns=FILE_COLUMNS)
    if len(rows):
        values = rows.pivot_table(
            index=FILE_COLUMNS,
            columns=["split", "metric"],
            values=["value", "ci_low", "ci_high"],
            aggfunc="first",
        )
        flat = {}
        for kind, split, metric in values.columns:
            stem = f"{split}_{METRICS[metric]}"
            if kind == "value":
                flat[(kind, split, metric)] = stem
            elif metric in WITH_CI:
                flat[(kind, split, metric)] = f"{stem}_{kind}"
        values = values[list(flat)]
        values.columns = list(flat.values())
        wide = values.reset_index()
    columns = [*metric_columns("test"), *metric_columns("val")]
    return wide.reindex(columns=[*FILE_COLUMNS, *columns])


def _latency_kind(profiling: pd.DataFrame, target: str) -> str:
    if target not in LATENCY_TARGETS:
        raise ValueError(f"reporting.latency.target: {target!r} is not one of {LATENCY_TARGETS}")
    if target == "auto":
        return "phone" if (profiling["target_kind"] == "phone").any() else "host"
    return target


def select_latency(profiling_results: pd.DataFrame, latency: Mapping[str, Any]) -> pd.DataFrame:
    """One profiling row per file: the configured target kind (``auto``: the phone when the table
    has phone rows, else the host), the first runner in ``runners`` that timed it; its
    ``column`` as ``latency_ms`` and a ``latency_target`` description."""
    column = str(latency.get("column", "p50_ms"))
    check_columns(profiling_results, "profiling_results", [column])
    kind = _latency_kind(profiling_results, str(latency.get("target", "auto")))
    runners = list(latency.get("runners") or ["benchmark_model", "litert"])
    rows = profiling_results[profiling_results["target_kind"] == kind].copy()
    rows["_rank"] = rows["runner"].map({r: i for i, r in enumerate(runners)}).fillna(len(runners))
    rows = rows.sort_values("_rank", kind="stable").drop_duplicates(FILE_COLUMNS, keep="first")
    figures = rows.reindex(columns=[*FILE_COLUMNS, *LATENCY_FIGURES])
    figures["latency_ms"] = pd.to_numeric(rows[column], errors="coerce")
    figures["latency_target_kind"] = kind
    figures["latency_target"] = [
        f"{kind}: {r.target} ({r.runner}, {r.delegate}, {r.threads} threads)"
        for r in rows.itertuples()
    ]
    return figures


def join_leaderboard(
    training_summary: pd.DataFrame,
    optimization_summary: pd.DataFrame,
    evaluation_metrics: pd.DataFrame,
    profiling_results: pd.DataFrame,
    latency: Mapping[str, Any],
    *,
    robustness_summary: pd.DataFrame | None = None,
    distillation_teachers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The leaderboard without its flags: every model any table names (Keras models as
    technique ``keras``, quantization ``float32``), the cell's parameters on each of its rows
    (and, with ``robustness_summary``, each model's robustness columns; with
    ``distillation_teachers``, the distilled files' teacher columns and gap closed)."""
    for name, table in (
        ("training_summary", training_summary),
        ("optimization_summary", optimization_summary),
        ("evaluation_metrics", evaluation_metrics),
        ("profiling_results", profiling_results),
    ):
        check_columns(table, name)
    training = _keyed(training_summary, CELL_COLUMNS)
    training = _unique(training, CELL_COLUMNS, "training_summary")
    training = training.reindex(columns=[*CELL_COLUMNS, "params", "train_images", "val_images"])
    files = _keyed(optimization_summary, FILE_COLUMNS)
    files = _unique(files, FILE_COLUMNS, "optimization_summary")
    files = files.reindex(
        columns=[
            *FILE_COLUMNS,
            "status",
            "reason",
            "size_bytes",
            "gzip_bytes",
            "size_vs_baseline_float32",
            "input_dtype",
            "tflite_path",
        ]
    )
    metrics = _metrics_wide(_keyed(evaluation_metrics, FILE_COLUMNS))
    timing = select_latency(_keyed(profiling_results, FILE_COLUMNS), latency)
    if robustness_summary is None:
        robustness = pd.DataFrame(columns=[*FILE_COLUMNS, *ROBUSTNESS_COLUMNS])
    else:
        check_columns(robustness_summary, "robustness_summary")
        robustness = _unique(_keyed(robustness_summary, FILE_COLUMNS), FILE_COLUMNS, "robustness")
        robustness = robustness.reindex(columns=[*FILE_COLUMNS, *ROBUSTNESS_COLUMNS])
    keras = training[CELL_COLUMNS].assign(technique=KERAS[0], quantization=KERAS[1])
    keys = pd.concat(
        [keras, files[FILE_COLUMNS], metrics[FILE_COLUMNS], timing[FILE_COLUMNS]], ignore_index=True
    ).drop_duplicates()
    keys = keys[keys[CELL_COLUMNS].notna().all(axis=1)]
    table = (
        keys.merge(training, on=CELL_COLUMNS, how="left")
        .merge(files, on=FILE_COLUMNS, how="left")
        .merge(metrics, on=FILE_COLUMNS, how="left")
        .merge(timing, on=FILE_COLUMNS, how="left")
        .merge(robustness, on=FILE_COLUMNS, how="left")
    )
    table = with_distillation(table, distillation_teachers)
    is_keras = (table["technique"] == KERAS[0]) & (table["quantization"] == KERAS[1])
    table.loc[is_keras & table["status"].isna(), "status"] = "ok"
    table.loc[~is_keras & table["status"].isna(), "status"] = "not in optimization_summary"
    table["recommended"] = False
    table["pareto_latency"] = False
    table["pareto_size"] = False
    table = (
        table.assign(_file=~is_keras)
        .sort_values([*CELL_COLUMNS, "_file", "technique", "quantization"], kind="stable")
        .reindex(columns=LEADERBOARD_COLUMNS)
        .reset_index(drop=True)
    )
    for column in COUNTS:
        table[column] = pd.to_numeric(table[column], errors="coerce").round().astype("Int64")
    logger.info(
        "Leaderboard: %d rows (%d TFLite files, %d with a latency, %d with test metrics)",
        len(table),
        int(is_tflite_file(table).sum()),
        int(table["latency_ms"].notna().sum()),
        int(table["test_balanced_accuracy"].notna().sum()),
    )
    return table


def gap_closed(student: np.ndarray, baseline: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """(student - baseline) / (teacher - baseline), elementwise; NaN where a figure is missing or
    the teacher is no better than the baseline."""
    student, baseline, teacher = (
        np.asarray(a, dtype="float64") for a in (student, baseline, teacher)
    )
    room = teacher - baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (student - baseline) / room
    return np.where(room > 0, share, np.nan)


def _teachers(distillation_teachers: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """distillation_teachers as the leaderboard's teacher columns and the keys to join them on:
    the cell where the table names the architecture, else the data copy."""
    check_columns(distillation_teachers, "distillation_teachers")
    keys = CELL_COLUMNS if "architecture" in distillation_teachers.columns else ["variant"]
    teachers = _keyed(distillation_teachers, keys)
    teachers = _unique(teachers[teachers[keys].notna().all(axis=1)], keys, "distillation_teachers")
    teachers = teachers.rename(
        columns={
            "params": "teacher_params",
            "test_balanced_accuracy": "teacher_test_balanced_accuracy",
        }
    )
    return teachers.reindex(columns=[*keys, *DISTILLATION_COLUMNS[:3]]), list(keys)


def with_distillation(
    table: pd.DataFrame, distillation_teachers: pd.DataFrame | None
) -> pd.DataFrame:
    """``table`` (joined leaderboard rows) with :data:`DISTILLATION_COLUMNS`, set on the distilled
    files only: their cell's teacher and the share of the gap between the cell's baseline file of
    the same quantization and the teacher (test balanced accuracy) that the file closes."""
    table = table.drop(columns=DISTILLATION_COLUMNS, errors="ignore").reset_index(drop=True)
    for column in DISTILLATION_COLUMNS:
        table[column] = np.nan
    table["teacher"] = table["teacher"].astype("object")
    if distillation_teachers is None:
        return table
    teachers, keys = _teachers(distillation_teachers)
    distilled = table["technique"].isin(DISTILLED)
    if not distilled.any() or teachers.empty:
        return table
    students = table.loc[distilled, FILE_COLUMNS].merge(teachers, on=keys, how="left")
    baselines = table.loc[
        table["technique"] == BASELINE, [*CELL_COLUMNS, "quantization", "test_balanced_accuracy"]
    ].drop_duplicates([*CELL_COLUMNS, "quantization"])
    baselines = baselines.rename(columns={"test_balanced_accuracy": "_baseline"})
    students = students.merge(baselines, on=[*CELL_COLUMNS, "quantization"], how="left")
    scores = table.loc[distilled, [*FILE_COLUMNS, "test_balanced_accuracy"]]
    students = students.merge(scores, on=FILE_COLUMNS, how="left")
    students["gap_closed"] = gap_closed(
        numbers(students["test_balanced_accuracy"]),
        numbers(students["_baseline"]),
        numbers(students["teacher_test_balanced_accuracy"]),
    )
    students["teacher_test_balanced_accuracy"] = numbers(students["teacher_test_balanced_accuracy"])
    students["teacher_params"] = numbers(students["teacher_params"])
    filled = table.drop(columns=DISTILLATION_COLUMNS).merge(
        students[[*FILE_COLUMNS, *DISTILLATION_COLUMNS]], on=FILE_COLUMNS, how="left"
    )
    return filled


def is_tflite_file(leaderboard: pd.DataFrame) -> pd.Series:
    """Rows that are exported TFLite files (written by the optimization pipeline)."""
    return (
        (leaderboard["technique"] != KERAS[0])
        & (leaderboard["status"] == "ok")
        & leaderboard["tflite_path"].notna()
    )


def model_name(row: Mapping[str, Any]) -> str:
    """``architecture.variant technique quantization``."""
    return f"{row['architecture']}.{row['variant']} {row['technique']} {row['quantization']}"


def of_file(table: pd.DataFrame, row: Mapping[str, Any]) -> pd.Series:
    """Rows of ``table`` naming the same file (or Keras model) as ``row``, keys compared as
    strings."""
    key = pd.Series({column: str(row[column]) for column in FILE_COLUMNS})
    return (table[FILE_COLUMNS].astype(str) == key).all(axis=1)


def numbers(column: pd.Series) -> np.ndarray:
    """A column as float64, NaN where it is empty (nullable integers included)."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
