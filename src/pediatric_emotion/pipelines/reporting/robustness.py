"""The report's robustness section: balanced accuracy against severity per corruption family, and
which file holds up best within the latency budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.corruptions import corruption_family
from pediatric_emotion.pipelines.reporting.leaderboard import (
    FILE_COLUMNS,
    ROBUSTNESS_COLUMNS,
    is_tflite_file,
    model_name,
    numbers,
)
from pediatric_emotion.pipelines.reporting.recommendation import criteria
from pediatric_emotion.plots import new_figure

CLEAN = "clean"
SHOWN = [
    *FILE_COLUMNS,
    "{split}_balanced_accuracy",
    *ROBUSTNESS_COLUMNS,
    "latency_ms",
    "recommended",
]


def family_curves(robustness_metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean balanced accuracy per file, corruption family and severity; the clean row is every
    family's severity 0."""
    table = robustness_metrics.copy()
    corrupted = table[table["corruption"] != CLEAN]
    clean = table[table["corruption"] == CLEAN]
    families = sorted({corruption_family(name) for name in corrupted["corruption"].unique()})
    parts = [corrupted.assign(family=corrupted["corruption"].map(corruption_family))]
    parts += [clean.assign(family=family) for family in families]
    joined = pd.concat(parts, ignore_index=True)
    return (
        joined.groupby([*FILE_COLUMNS, "family", "severity"], sort=True)["balanced_accuracy"]
        .mean()
        .reset_index()
    )


def plot_robustness(
    robustness_metrics: pd.DataFrame, *, title: str, width_in: float, height_in: float
) -> Figure | None:
    """One panel per corruption family: balanced accuracy against severity (0: clean), a line per
    model and file. None without rows."""
    curves = family_curves(robustness_metrics)
    if curves.empty:
        return None
    families = list(dict.fromkeys(curves["family"]))
    columns = min(3, len(families))
    rows = -(-len(families) // columns)
    figure = new_figure(width_in, height_in * (rows + 1) / 2)
    axes = figure.subplots(rows, columns, sharey=True, squeeze=False)
    for axis, family in zip(axes.flat, families, strict=False):
        for key, group in curves[curves["family"] == family].groupby(FILE_COLUMNS, sort=True):
            label = model_name(dict(zip(FILE_COLUMNS, key, strict=True)))
            axis.plot(group["severity"], group["balanced_accuracy"], marker="o", label=label)
        axis.set_title(family, fontsize=9)
        axis.set_xlabel("severity (0: clean)", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(families) :]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("balanced accuracy", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=7, ncol=2, frameon=False)
    figure.suptitle(title, fontsize=10)
    return figure


def most_robust_within_budget(leaderboard: pd.DataFrame, reporting: Mapping[str, Any]) -> str:
    """Which TFLite file keeps the highest mean balanced accuracy under the corruptions among
    those within the latency budget (every file where no budget is set)."""
    settings = criteria(reporting)
    files = leaderboard[is_tflite_file(leaderboard)]
    files = files.assign(_robust=numbers(files["corrupted_balanced_accuracy"]))
    files = files[files["_robust"].notna()]
    budget = settings["latency_budget_ms"]
    where = "of all files"
    if budget is not None:
        latency = numbers(files["latency_ms"])
        files = files[(latency <= float(budget))]
        where = f"within the {budget} ms budget"
    if files.empty:
        return f"No TFLite file {where} has robustness figures."
    best = files.sort_values("_robust", ascending=False, kind="stable").iloc[0]
    mce = numbers(pd.Series([best["mce"]]))[0]
    mce_text = "" if pd.isna(mce) else f", mCE {mce:.2f} against its cell's Keras model"
    return (
        f"Holds up best {where}: {model_name(best)}, mean balanced accuracy "
        f"{best['_robust']:.3f} over the corruptions{mce_text}; its worst corruption is "
        f"{best['worst_corruption']}."
    )


def robustness_table(leaderboard: pd.DataFrame, split: str) -> pd.DataFrame:
    """The leaderboard's robustness columns, most robust first (rows with figures only)."""
    table = leaderboard.reindex(columns=[c.format(split=split) for c in SHOWN])
    table = table[pd.notna(numbers(table["corrupted_balanced_accuracy"]))]
    return table.sort_values("corrupted_balanced_accuracy", ascending=False, kind="stable")
