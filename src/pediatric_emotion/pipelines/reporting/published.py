"""The study's published numbers (real CAFE, a real Moto G6; from ``params:evaluation``) beside
this run's test-set numbers (evaluation_metrics, subgroup_metrics): one table, each row labelled
with its ``source``, shown by the HTML report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.grid import FILE_COLUMNS

PUBLISHED_COLUMNS = [
    "source",
    "model",
    "version",
    "copy",
    *FILE_COLUMNS,
    "test_set",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "note",
]
STUDY_METRICS = (
    "balanced_accuracy",
    "macro_f1",
    "subset_a_balanced_accuracy",
    "subset_a_macro_f1",
    "moto_g6_latency_ms",
    "ethnicity_accuracy_gap",
)


def compare_with_published(
    evaluation_metrics: pd.DataFrame,
    subgroup_metrics: pd.DataFrame,
    evaluation: Mapping[str, Any],
) -> pd.DataFrame:
    """The study's numbers (real CAFE, real phone; from conf) and this run's test-set numbers in
    one table, each row labelled with its ``source``."""
    published = evaluation.get("published") or {}
    study_source = str(published.get("source", "study (real CAFE, real phone)"))
    run_source = str(evaluation.get("run_label", "this run (demo data)"))
    if study_source == run_source:
        raise ValueError("evaluation.run_label must differ from evaluation.published.source")
    rows: list[dict[str, Any]] = []
    for result in published.get("results") or []:
        for metric in STUDY_METRICS:
            if result.get(metric) is None:
                continue
            rows.append(
                {
                    "source": study_source,
                    "model": result.get("model"),
                    "version": result.get("version"),
                    "copy": result.get("copy"),
                    "architecture": result.get("architecture"),
                    "variant": result.get("variant"),
                    "technique": None,  # the study's models, as the paper reports them
                    "quantization": None,
                    "test_set": published.get("test_set"),
                    "metric": metric,
                    "value": float(result[metric]),
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "note": result.get("note"),
                }
            )
    ours = evaluation_metrics[
        (evaluation_metrics["split"] == "test")
        & evaluation_metrics["metric"].isin(["balanced_accuracy", "macro_f1"])
    ]
    subset_a = subgroup_metrics[
        (subgroup_metrics["split"] == "test")
        & (subgroup_metrics["grouping"] == "subset_a")
        & (subgroup_metrics["group"] == "Subset A")
        & subgroup_metrics["metric"].isin(["balanced_accuracy", "macro_f1"])
    ].assign(metric=lambda t: "subset_a_" + t["metric"])
    gap = subgroup_metrics[
        (subgroup_metrics["split"] == "test")
        & (subgroup_metrics["grouping"] == "ethnicity")
        & (subgroup_metrics["metric"] == "accuracy")
        & subgroup_metrics["group"].str.startswith("gap")
    ].assign(metric="ethnicity_accuracy_gap")
    for table in (ours, subset_a, gap):
        for record in table.to_dict("records"):
            rows.append(
                {
                    "source": run_source,
                    "model": record["architecture"],
                    "version": None,
                    "copy": record["variant"],
                    "architecture": record["architecture"],
                    "variant": record["variant"],
                    "technique": record["technique"],
                    "quantization": record["quantization"],
                    "test_set": evaluation.get("test_set_label"),
                    "metric": record["metric"],
                    "value": record["value"],
                    "ci_low": record.get("ci_low"),
                    "ci_high": record.get("ci_high"),
                    "note": record.get("note"),
                }
            )
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)
