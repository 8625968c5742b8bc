"""Reporting nodes: the leaderboard with its flags and the recommendation, the Pareto plots, the
HTML report and the model cards."""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.pipelines.reporting.distillation import distillation_section
from pediatric_emotion.pipelines.reporting.html_report import (
    confusion_heading,
    confusion_matrix,
    figure_png,
    gap_table,
    not_made_html,
    published_table,
    render_report,
    shown_leaderboard,
)
from pediatric_emotion.pipelines.reporting.leaderboard import (
    check_columns,
    is_tflite_file,
    join_leaderboard,
    model_name,
    numbers,
)
from pediatric_emotion.pipelines.reporting.model_cards import card_key, model_card
from pediatric_emotion.pipelines.reporting.pareto import FRONTS, flag_pareto, plot_front
from pediatric_emotion.pipelines.reporting.recommendation import (
    criteria,
    flag_recommended,
    recommend,
)
from pediatric_emotion.pipelines.reporting.robustness import (
    most_robust_within_budget,
    plot_robustness,
    robustness_table,
)
from pediatric_emotion.plots import plot_confusion

logger = logging.getLogger(__name__)

DEMO_WORDS = ("demo", "synthetic")


def _demo(reporting: Mapping[str, Any]) -> bool:
    """Whether the run's numbers come from demo data (``demo_banner``: auto, true or false)."""
    setting = reporting.get("demo_banner", "auto")
    if setting == "auto":
        labels = f"{reporting.get('run_label', '')} {reporting.get('test_set_label', '')}"
        return any(word in labels.lower() for word in DEMO_WORDS)
    return bool(setting)


def build_leaderboard(
    training_summary: pd.DataFrame,
    optimization_summary: pd.DataFrame,
    evaluation_metrics: pd.DataFrame,
    profiling_results: pd.DataFrame,
    reporting: dict[str, Any],
    *,
    robustness_summary: pd.DataFrame | None = None,
    distillation_teachers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The leaderboard (one row per model and file, Pareto and recommended flags, robustness
    columns from ``robustness_summary``, the distilled files' teacher and gap closed from
    ``distillation_teachers``) and the recommendation."""
    settings = criteria(reporting)
    table = join_leaderboard(
        training_summary,
        optimization_summary,
        evaluation_metrics,
        profiling_results,
        reporting.get("latency") or {},
        robustness_summary=robustness_summary,
        distillation_teachers=distillation_teachers,
    )
    table = flag_pareto(table, settings["split"])
    recommendation = recommend(table, reporting)
    table = flag_recommended(table, recommendation)
    log = logger.info if recommendation["recommended"] else logger.warning
    log("Recommendation: %s", recommendation["reason"])
    return table, recommendation


def _title(reporting: Mapping[str, Any], front: str) -> str:
    label = reporting.get("run_label") or "this run"
    return f"{front.replace('_', ' ')}, {label}"


def _front_figures(
    leaderboard: pd.DataFrame, reporting: Mapping[str, Any]
) -> dict[str, Callable[[], Figure]]:
    settings = criteria(reporting)
    return {
        front: functools.partial(
            plot_front,
            leaderboard,
            front,
            split=settings["split"],
            criteria=settings,
            plots=reporting.get("plots") or {},
            title=_title(reporting, front),
        )
        for front in FRONTS
    }


def plot_pareto_fronts(
    leaderboard: pd.DataFrame, reporting: dict[str, Any]
) -> dict[str, Callable[[], Figure]]:
    """The two fronts as figures (drawn when saved): name -> figure."""
    return _front_figures(leaderboard, reporting)


def _shown_model(leaderboard: pd.DataFrame, split: str) -> tuple[pd.Series | None, bool]:
    """The recommended file, else the most accurate file, and whether it is the recommended."""
    chosen = leaderboard[leaderboard["recommended"].astype(bool)]
    if len(chosen):
        return chosen.iloc[0], True
    files = leaderboard[is_tflite_file(leaderboard)]
    files = files.assign(_score=numbers(files[f"{split}_balanced_accuracy"]))
    files = files[files["_score"].notna()].sort_values("_score", ascending=False, kind="stable")
    return (files.iloc[0], False) if len(files) else (None, False)


def build_report(
    *,
    leaderboard: pd.DataFrame,
    recommendation: dict[str, Any],
    subgroup_metrics: pd.DataFrame,
    confusion_matrices: pd.DataFrame,
    published_comparison: pd.DataFrame,
    reporting: dict[str, Any],
    emotions: list[str],
    robustness_metrics: pd.DataFrame | None = None,
) -> str:
    """The self-contained HTML report (with a robustness section given ``robustness_metrics``, a
    distillation section where the leaderboard has distilled files)."""
    for name, table in (
        ("subgroup_metrics", subgroup_metrics),
        ("confusion_matrices", confusion_matrices),
        ("published_comparison", published_comparison),
    ):
        check_columns(table, name)
    split = criteria(reporting)["split"]
    dpi = int((reporting.get("plots") or {}).get("dpi", 100))
    plots = {
        _title(reporting, front): figure_png(draw(), dpi)
        for front, draw in _front_figures(leaderboard, reporting).items()
    }
    model, is_recommended = _shown_model(leaderboard, split)
    confusion = None
    gaps_heading = "No file to show subgroup gaps for."
    gaps = pd.DataFrame()
    if model is not None:
        heading = confusion_heading(model, split, is_recommended)
        matrix = confusion_matrix(confusion_matrices, model, split, emotions)
        if matrix is not None:
            accuracy = numbers(pd.Series([model[f"{split}_balanced_accuracy"]]))[0]
            figure = plot_confusion(matrix, emotions, model_name(model), float(accuracy))
            counts = pd.DataFrame(matrix, index=emotions, columns=emotions)
            counts = counts.rename_axis("true \\ predicted").reset_index()
            confusion = (heading, figure_png(figure, dpi), counts)
        gaps_heading = f"Gaps of {model_name(model)} ({split} split):"
        gaps = gap_table(subgroup_metrics, split, model)
    label = str(reporting.get("run_label") or "this run")
    robustness = None
    if robustness_metrics is not None:
        check_columns(robustness_metrics, "robustness_metrics")
        plot_settings = reporting.get("plots") or {}
        figure = plot_robustness(
            robustness_metrics,
            title=f"Balanced accuracy under camera corruptions, {label}",
            width_in=float(plot_settings.get("width_in", 7.0)),
            height_in=float(plot_settings.get("height_in", 4.6)),
        )
        robustness = (
            most_robust_within_budget(leaderboard, reporting),
            None if figure is None else figure_png(figure, dpi),
            robustness_table(leaderboard, split),
        )
    banner = (
        f"Demo data ({reporting.get('test_set_label')}): every number of {label} comes from "
        "synthetic faces. It says nothing about real performance and is not the study's."
        if _demo(reporting)
        else None
    )
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render_report(
        title=f"Pediatric emotion models: leaderboard and recommendation, {label}",
        banner=banner,
        recommendation=recommendation,
        plots=plots,
        leaderboard=shown_leaderboard(leaderboard, split),
        not_made=not_made_html(leaderboard),
        confusion=confusion,
        gaps_shown=(gaps_heading, gaps),
        gaps_all=gap_table(subgroup_metrics, split, None),
        published=published_table(published_comparison, label),
        robustness=robustness,
        distillation=distillation_section(leaderboard),
        footer=f"Generated {generated} by the reporting pipeline from training_summary, "
        "optimization_summary, evaluation_metrics, profiling_results, subgroup_metrics, "
        "confusion_matrices, published_comparison, robustness_metrics and "
        "distillation_teachers. No face images are shown.",
    )
    logger.info("Report: %d leaderboard rows, %d plots", len(leaderboard), len(plots))
    return page


def write_model_cards(
    leaderboard: pd.DataFrame,
    subgroup_metrics: pd.DataFrame,
    reporting: dict[str, Any],
    variants: dict[str, Any],
) -> dict[str, str]:
    """One markdown card per exported TFLite file: ``{arch}.{variant}/{technique}/{quantization}``
    -> the card."""
    check_columns(subgroup_metrics, "subgroup_metrics")
    files = leaderboard[is_tflite_file(leaderboard)]
    demo = _demo(reporting)
    cards = {
        card_key(row): model_card(
            row, subgroup_metrics, reporting=reporting, variants=variants or {}, demo=demo
        )
        for _, row in files.iterrows()
    }
    logger.info("Model cards: %d files", len(cards))
    return cards
