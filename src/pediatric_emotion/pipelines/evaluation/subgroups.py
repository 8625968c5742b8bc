"""Subgroups of the test images (CAFE's metadata): Subset A by rater agreement, ethnicity, age
band, sex, mouth open/closed. Per group: balanced accuracy, macro F1 and accuracy with subject
bootstrap intervals; per grouping: the gap between the best and the worst group large enough to
count (``min_group_size`` images)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pediatric_emotion.pipelines.evaluation.metrics import (
    confusion_matrix,
    subject_bootstrap,
    summary_scores,
)

logger = logging.getLogger(__name__)

GROUP_METRICS = ("balanced_accuracy", "macro_f1", "accuracy")
GAP_GROUP = "gap (best - worst)"


def _age_band_labels(ages: pd.Series, bands: Sequence[Mapping[str, Any]]) -> pd.Series:
    """The band of each age: ``min <= age < max``; ages outside every band are NaN."""
    values = pd.to_numeric(ages, errors="coerce")
    labels = pd.Series(pd.NA, index=ages.index, dtype="object")
    for band in bands:
        label = str(band["label"])
        inside = (values >= float(band["min"])) & (values < float(band["max"]))
        labels[inside.fillna(False).to_numpy(dtype=bool)] = label
    return labels


def group_labels(images: pd.DataFrame, subgroups: Mapping[str, Any]) -> dict[str, pd.Series]:
    """grouping name -> group label per image (NaN: not in any group), for the groupings whose
    column exists and has values."""
    groupings: dict[str, pd.Series] = {}
    threshold = subgroups.get("subset_a_agreement")
    if threshold is not None and "agreement" in images and images["agreement"].notna().any():
        agreement = pd.to_numeric(images["agreement"], errors="coerce")
        labels = pd.Series(pd.NA, index=images.index, dtype="object")
        known = agreement.notna().to_numpy()
        above = (agreement >= float(threshold)).fillna(False).to_numpy(dtype=bool)
        labels[known & above] = "Subset A"
        labels[known & ~above] = "not Subset A"
        groupings["subset_a"] = labels
    bands = subgroups.get("age_bands") or []
    if bands and "age" in images and images["age"].notna().any():
        groupings["age_band"] = _age_band_labels(images["age"], bands)
    for column in subgroups.get("columns") or []:
        if column in images and images[column].notna().any():
            groupings[column] = images[column].astype("object").where(images[column].notna())
    return groupings


def subgroup_rows(
    labels: np.ndarray,
    predicted: np.ndarray,
    subjects: np.ndarray,
    groupings: Mapping[str, pd.Series],
    *,
    num_classes: int,
    min_group_size: int,
    bootstrap: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Rows (grouping, group, n_images, n_subjects, metric, value, ci_low, ci_high, note) for one
    model's predictions on one split; groups under ``min_group_size`` images get counts only."""
    rows: list[dict[str, Any]] = []
    nan = float("nan")
    for grouping, members in groupings.items():
        values = members.to_numpy(dtype=object)
        scores: dict[str, dict[str, float]] = {}
        for group in sorted({v for v in values if not pd.isna(v)}, key=str):
            mask = np.asarray([not pd.isna(v) and v == group for v in values], dtype=bool)
            count, people = int(mask.sum()), len(set(subjects[mask].tolist()))
            base = {
                "grouping": grouping,
                "group": str(group),
                "n_images": count,
                "n_subjects": people,
            }
            if count < min_group_size:
                rows.append(
                    {
                        **base,
                        "metric": "n_images",
                        "value": float(count),
                        "ci_low": nan,
                        "ci_high": nan,
                        "note": f"fewer than min_group_size={min_group_size} images: not scored",
                    }
                )
                continue
            summary = summary_scores(confusion_matrix(labels[mask], predicted[mask], num_classes))
            intervals = subject_bootstrap(
                labels[mask],
                predicted[mask],
                subjects[mask],
                num_classes,
                resamples=int(bootstrap.get("resamples", 1000)),
                confidence=float(bootstrap.get("confidence", 0.95)),
                seed=int(bootstrap.get("seed", 0)),
            )
            scores[str(group)] = {}
            for metric in GROUP_METRICS:
                value = float(summary[metric])
                scores[str(group)][metric] = value
                low, high = intervals[metric]
                rows.append(
                    {**base, "metric": metric, "value": value, "ci_low": low, "ci_high": high}
                )
        rows.extend(_gap_rows(grouping, scores, min_group_size))
    return rows


def _gap_rows(
    grouping: str, scores: Mapping[str, Mapping[str, float]], min_group_size: int
) -> list[dict[str, Any]]:
    rows = []
    for metric in GROUP_METRICS:
        finite = {group: v[metric] for group, v in scores.items() if np.isfinite(v[metric])}
        ranked = sorted(((value, group) for group, value in finite.items()), reverse=True)
        row = {
            "grouping": grouping,
            "group": GAP_GROUP,
            "n_images": np.nan,
            "n_subjects": np.nan,
            "metric": metric,
            "ci_low": np.nan,
            "ci_high": np.nan,
        }
        if len(ranked) < 2:
            rows.append(
                {
                    **row,
                    "value": np.nan,
                    "note": f"fewer than 2 groups with >= {min_group_size} images",
                }
            )
            continue
        (best, best_group), (worst, worst_group) = ranked[0], ranked[-1]
        rows.append(
            {
                **row,
                "value": best - worst,
                "note": f"best {best_group} ({best:.3f}), worst {worst_group} ({worst:.3f})",
            }
        )
    return rows
