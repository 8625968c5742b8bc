"""Pareto fronts of the exported files: balanced accuracy (higher is better) against latency and
against size (lower is better). A file is on the front when no other file is at least as accurate
and at least as fast (small) and strictly better in one of the two."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.pipelines.reporting.leaderboard import is_tflite_file, numbers
from pediatric_emotion.plots import new_figure

# front name -> (leaderboard flag column, x column, x label, x scale to the plotted unit)
FRONTS = {
    "balanced_accuracy_vs_latency": ("pareto_latency", "latency_ms", "latency (ms)", 1.0),
    "balanced_accuracy_vs_size": ("pareto_size", "size_bytes", "size (MB)", 1e-6),
}


def non_dominated(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other point has score >= and cost <= with one of them strict; points with a
    NaN are never on the front. Equal points are all on it."""
    score = np.asarray(score, dtype="float64")
    cost = np.asarray(cost, dtype="float64")
    valid = ~(np.isnan(score) | np.isnan(cost))
    flags = np.zeros(len(score), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        dominated = (
            others
            & (score >= score[i])
            & (cost <= cost[i])
            & ((score > score[i]) | (cost < cost[i]))
        )
        flags[i] = not dominated.any()
    return flags


def flag_pareto(leaderboard: pd.DataFrame, split: str) -> pd.DataFrame:
    """``pareto_latency`` and ``pareto_size`` over the TFLite files, on ``{split}`` balanced
    accuracy; Keras rows and files missing a value are never on a front."""
    table = leaderboard.copy()
    files = is_tflite_file(table).to_numpy()
    score = np.where(files, numbers(table[f"{split}_balanced_accuracy"]), np.nan)
    for flag, x, _, _ in FRONTS.values():
        table[flag] = non_dominated(score, numbers(table[x]))
    return table


def _short(row: Any) -> str:
    return f"{row.architecture} {row.technique} {row.quantization}"


def plot_front(
    leaderboard: pd.DataFrame,
    front: str,
    *,
    split: str,
    criteria: Mapping[str, float | None],
    plots: Mapping[str, Any],
    title: str,
) -> Figure:
    """One front: every file with both values, the front as a step line, the recommended file
    starred; the latency budget and the minimum accuracy as dashed lines."""
    flag, x, xlabel, unit = FRONTS[front]
    accuracy = f"{split}_balanced_accuracy"
    figure = new_figure(float(plots.get("width_in", 7.0)), float(plots.get("height_in", 4.6)))
    axis = figure.subplots()
    rows = leaderboard[is_tflite_file(leaderboard)].assign(
        plot_x=lambda t: numbers(t[x]) * unit, plot_y=lambda t: numbers(t[accuracy])
    )
    rows = rows[rows["plot_x"].notna() & rows["plot_y"].notna()]
    if rows.empty:
        axis.text(0.5, 0.5, f"no file has both {accuracy} and {x}", ha="center", va="center")
    for technique, group in rows.groupby("technique", sort=True):
        axis.scatter(group["plot_x"], group["plot_y"], label=technique, s=28, alpha=0.8)
    on_front = rows[rows[flag].astype(bool)].sort_values("plot_x")
    if len(on_front):
        axis.step(
            on_front["plot_x"], on_front["plot_y"], where="post", color="black", lw=1, label="front"
        )
    recommended = rows[rows["recommended"].astype(bool)]
    if len(recommended):
        axis.scatter(
            recommended["plot_x"],
            recommended["plot_y"],
            marker="*",
            s=260,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label="recommended",
        )
    if plots.get("annotate_front", True):
        for row in on_front.itertuples():
            axis.annotate(
                _short(row),
                (row.plot_x, row.plot_y),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
    budget = criteria.get("latency_budget_ms")
    if x == "latency_ms" and budget is not None:
        axis.axvline(float(budget), color="red", ls="--", lw=0.8, label=f"budget {budget} ms")
    minimum = criteria.get("min_balanced_accuracy")
    if minimum is not None:
        axis.axhline(float(minimum), color="grey", ls="--", lw=0.8, label=f"minimum {minimum}")
    if plots.get("log_x", False) and len(rows):
        axis.set_xscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(f"{split} balanced accuracy")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, loc="best")
    return figure
