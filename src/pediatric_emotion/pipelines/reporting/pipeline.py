"""Reporting: the grid-wide tables of training, optimization, evaluation and profiling joined into
the leaderboard and the recommendation; the study's published numbers beside this run's; the
Pareto plots; the HTML report; the model cards."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from pediatric_emotion.pipelines.reporting.nodes import (
    build_leaderboard,
    build_report,
    plot_pareto_fronts,
    write_model_cards,
)
from pediatric_emotion.pipelines.reporting.published import compare_with_published


def create_pipeline(**kwargs) -> Pipeline:
    """Five nodes on the grid's tables (no per-cell nodes: the tables hold every cell)."""
    return Pipeline(
        [
            Node(
                func=compare_with_published,
                inputs=["evaluation_metrics", "subgroup_metrics", "params:evaluation"],
                outputs="published_comparison",
                name="compare_with_published_node",
            ),
            Node(
                func=build_leaderboard,
                inputs={
                    "training_summary": "training_summary",
                    "optimization_summary": "optimization_summary",
                    "evaluation_metrics": "evaluation_metrics",
                    "profiling_results": "profiling_results",
                    "reporting": "params:reporting",
                    "robustness_summary": "robustness_summary",
                    "distillation_teachers": "distillation_teachers",
                },
                outputs=["leaderboard", "recommendation"],
                name="build_leaderboard_node",
            ),
            Node(
                func=plot_pareto_fronts,
                inputs=["leaderboard", "params:reporting"],
                outputs="pareto_plots",
                name="plot_pareto_fronts_node",
            ),
            Node(
                func=write_model_cards,
                inputs=["leaderboard", "subgroup_metrics", "params:reporting", "params:variants"],
                outputs="model_cards",
                name="write_model_cards_node",
            ),
            Node(
                func=build_report,
                inputs={
                    "leaderboard": "leaderboard",
                    "recommendation": "recommendation",
                    "subgroup_metrics": "subgroup_metrics",
                    "confusion_matrices": "confusion_matrices",
                    "published_comparison": "published_comparison",
                    "robustness_metrics": "robustness_metrics",
                    "reporting": "params:reporting",
                    "emotions": "params:emotions",
                },
                outputs="report_html",
                name="build_report_node",
            ),
        ]
    )
