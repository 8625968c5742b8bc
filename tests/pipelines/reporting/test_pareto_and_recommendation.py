"""Pareto flags on hand-made points; the recommendation, including when no file qualifies."""

import json

import numpy as np
import pandas as pd
import pytest

from pediatric_emotion.pipelines.reporting.pareto import flag_pareto, non_dominated, plot_front
from pediatric_emotion.pipelines.reporting.recommendation import flag_recommended, recommend


def test_non_dominated_points():
    score = np.array([0.9, 0.8, 0.7, 0.8, 0.6, np.nan, 0.9])
    cost = np.array([10.0, 5.0, 5.0, 5.0, 1.0, 0.5, 12.0])
    # 0.7@5 is dominated by 0.8@5; 0.9@12 by 0.9@10; equal points (0.8@5 twice) both stay;
    # a NaN is never on the front
    assert non_dominated(score, cost).tolist() == [True, True, False, True, True, False, False]
    assert non_dominated(np.array([]), np.array([])).tolist() == []


def _files(points):
    """A leaderboard of TFLite files: (name, accuracy, latency ms, size bytes)."""
    return pd.DataFrame(
        [
            {
                "architecture": name,
                "variant": "demo",
                "technique": "baseline",
                "quantization": "int8",
                "status": "ok",
                "tflite_path": f"{name}.tflite",
                "test_balanced_accuracy": acc,
                "test_balanced_accuracy_ci_low": acc - 0.1,
                "test_balanced_accuracy_ci_high": acc + 0.1,
                "test_macro_f1": acc,
                "latency_ms": latency,
                "p50_ms": latency,
                "avg_ms": latency,
                "size_bytes": size,
                "gzip_bytes": size,
                "params": 10,
                "latency_target": "host: cpu",
                "recommended": False,
            }
            for name, acc, latency, size in points
        ]
    )


POINTS = [
    ("a", 0.60, 120.0, 9e6),  # most accurate, over budget
    ("b", 0.55, 80.0, 5e6),  # the best within 100 ms
    ("c", 0.50, 30.0, 2e6),
    ("d", 0.45, 40.0, 1e6),  # slower than c: off the latency front; smallest: on the size one
    ("e", 0.58, np.nan, 3e6),  # not profiled
]


def test_flags_only_tflite_files_with_both_values():
    board = pd.concat(
        [_files(POINTS), _files([("k", 0.99, np.nan, np.nan)]).assign(technique="keras")],
        ignore_index=True,
    )
    flagged = flag_pareto(board, "test").set_index("architecture")
    assert flagged["pareto_latency"].to_dict() == {
        "a": True,
        "b": True,
        "c": True,
        "d": False,
        "e": False,
        "k": False,
    }
    assert flagged["pareto_size"].to_dict() == {
        "a": True,
        "b": False,
        "c": True,
        "d": True,
        "e": True,
        "k": False,
    }  # b (0.55, 5 MB) is dominated by e (0.58, 3 MB)


def test_recommends_the_most_accurate_file_within_budget(reporting):
    settings = {**reporting, "latency_budget_ms": 100, "min_balanced_accuracy": 0.5}
    result = recommend(_files(POINTS), settings)
    assert result["status"] == "recommended"
    assert result["recommended"]["architecture"] == "b"
    assert result["recommended"]["test_balanced_accuracy_ci_low"] == pytest.approx(0.45)
    assert result["counts"] == {
        "files": 5,
        "with_latency": 4,
        "with_accuracy": 5,
        "within_budget": 3,
        "above_minimum": 4,
        "qualifying": 2,
    }
    assert "b.demo baseline int8" in result["reason"]
    json.dumps(result, allow_nan=False)  # strict JSON
    flagged = flag_recommended(_files(POINTS), result)
    assert flagged["recommended"].tolist() == [False, True, False, False, False]


@pytest.mark.parametrize(
    ("budget", "minimum", "reason"),
    [
        (10, 0.3, "no file is within the 10 ms budget (fastest: c.demo baseline int8, 30.00 ms)"),
        (
            200,
            0.7,
            "no file reaches 0.7 test balanced accuracy (best: a.demo baseline int8, 0.600)",
        ),
        (
            35,
            0.52,
            "1 file(s) are within 35 ms and 3 reach 0.52, but none both; the most "
            "accurate within budget, c.demo baseline int8, has 0.500",
        ),
    ],
)
def test_when_none_qualifies_it_says_why(reporting, budget, minimum, reason):
    settings = {**reporting, "latency_budget_ms": budget, "min_balanced_accuracy": minimum}
    result = recommend(_files(POINTS), settings)
    assert result["status"] == "none_qualifies" and result["recommended"] is None
    assert result["reason"] == reason
    assert not flag_recommended(_files(POINTS), result)["recommended"].any()


def test_no_files_or_no_latency(reporting):
    empty = recommend(_files(POINTS).iloc[0:0], reporting)
    assert empty["status"] == "none_qualifies" and "no exported TFLite file" in empty["reason"]
    untimed = recommend(_files(POINTS).assign(latency_ms=np.nan), reporting)
    assert "has a latency" in untimed["reason"]
    with pytest.raises(ValueError, match="reporting.latency_budget_ms"):
        recommend(_files(POINTS), {**reporting, "latency_budget_ms": "fast"})


def test_plots_draw_with_and_without_points(reporting):
    board = flag_pareto(_files(POINTS), "test")
    criteria = {"latency_budget_ms": 100, "min_balanced_accuracy": 0.5}
    for front in ("balanced_accuracy_vs_latency", "balanced_accuracy_vs_size"):
        figure = plot_front(board, front, split="test", criteria=criteria, plots={}, title="t")
        assert len(figure.axes[0].collections) >= 1
        empty = plot_front(
            board.iloc[0:0], front, split="test", criteria=criteria, plots={}, title="t"
        )
        assert "no file has both" in empty.axes[0].texts[0].get_text()
