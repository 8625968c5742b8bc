"""Hand-made grid-wide tables for the reporting tests: two cells (``net.demo`` optimized into two
files and one refused technique, ``big.demo`` trained only), host profiling of the files by two
runners, metrics, subgroups, confusion matrices and the published comparison; the teachers of the
``distilled`` technique, and :func:`with_distilled` adding two distilled files to ``net.demo``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

EMOTIONS = ["neutral", "fear", "happy", "sad", "surprise", "anger", "disgust"]
RUN_LABEL = "this run (demo data)"
TEST_SET = "CAFE-like demo set (synthetic)"
FOLDER = "data/06_models/tflite/net.demo/baseline"
# (architecture, variant, technique, quantization) -> test b. acc., CI, macro F1, val b. acc.
SCORES = {
    ("net", "demo", "keras", "float32"): (0.50, 0.40, 0.60, 0.45, 0.55),
    ("net", "demo", "baseline", "float32"): (0.50, 0.41, 0.59, 0.46, 0.55),
    ("net", "demo", "baseline", "int8"): (0.48, 0.38, 0.58, 0.44, 0.52),
    ("big", "demo", "keras", "float32"): (0.62, 0.52, 0.72, 0.60, 0.66),
}


def _metric_rows() -> list[dict]:
    rows = []
    for (arch, variant, technique, quantization), scores in SCORES.items():
        balanced, low, high, f1, val = scores
        model = dict(
            architecture=arch, variant=variant, technique=technique, quantization=quantization
        )
        for split, metric, value, ci in (
            ("test", "balanced_accuracy", balanced, (low, high)),
            ("test", "macro_f1", f1, (f1 - 0.1, f1 + 0.1)),
            ("test", "n_images", 160.0, (np.nan, np.nan)),
            ("test", "n_subjects", 20.0, (np.nan, np.nan)),
            ("test", "recall:happy", 0.9, (np.nan, np.nan)),  # not a leaderboard column
            ("val", "balanced_accuracy", val, (val - 0.05, val + 0.05)),
        ):
            rows.append(
                {
                    **model,
                    "split": split,
                    "metric": metric,
                    "value": value,
                    "ci_low": ci[0],
                    "ci_high": ci[1],
                }
            )
    rows.append(
        dict(
            architecture="fer_mini_xception",
            variant="published_weights",
            technique="peer",
            quantization="keras",
            split="test",
            metric="balanced_accuracy",
            value=0.3,
            ci_low=0.2,
            ci_high=0.4,
        )
    )
    return rows


def _profiling_row(quantization: str, runner: str, p50: float, avg: float, kind="host") -> dict:
    return dict(
        architecture="net",
        variant="demo",
        technique="baseline",
        quantization=quantization,
        target_kind=kind,
        target="Test CPU" if kind == "host" else "moto g(6)",
        target_details="",
        runner=runner,
        threads=2,
        delegate="cpu",
        delegate_applied=True,
        delegated_nodes=np.nan,
        init_ms=1.0,
        first_ms=2.0,
        warmup_avg_ms=avg,
        avg_ms=avg,
        p50_ms=p50,
        p90_ms=p50 * 1.5,
        p95_ms=p50 * 1.6,
        std_ms=0.1,
        min_ms=p50 / 2,
        max_ms=p50 * 2,
        runs=10,
        mem_mb=3.0,
        size_bytes=1,
        note="",
    )


def _subgroups() -> pd.DataFrame:
    rows = []
    for arch, variant, technique, quantization in SCORES:
        model = dict(
            architecture=arch,
            variant=variant,
            technique=technique,
            quantization=quantization,
            split="test",
        )
        for group, value in (("Asian", 0.55), ("Caucasian", 0.45)):
            rows.append(
                {
                    **model,
                    "grouping": "ethnicity",
                    "group": group,
                    "n_images": 80.0,
                    "n_subjects": 10.0,
                    "metric": "balanced_accuracy",
                    "value": value,
                    "ci_low": value - 0.1,
                    "ci_high": value + 0.1,
                    "note": np.nan,
                }
            )
        rows.append(
            {
                **model,
                "grouping": "ethnicity",
                "group": "gap (best - worst)",
                "n_images": np.nan,
                "n_subjects": np.nan,
                "metric": "balanced_accuracy",
                "value": 0.10,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "note": "best Asian (0.550), worst Caucasian (0.450)",
            }
        )
    return pd.DataFrame(rows)


def _confusion() -> pd.DataFrame:
    rows = []
    for arch, variant, technique, quantization in SCORES:
        for i, true in enumerate(EMOTIONS):
            for j, predicted in enumerate(EMOTIONS):
                rows.append(
                    dict(
                        architecture=arch,
                        variant=variant,
                        technique=technique,
                        quantization=quantization,
                        split="test",
                        true=true,
                        predicted=predicted,
                        count=10 if i == j else i,
                    )
                )
    return pd.DataFrame(rows)


def _published() -> pd.DataFrame:
    common = dict(version=None, ci_low=np.nan, ci_high=np.nan, note=None)
    return pd.DataFrame(
        [
            dict(
                source="study (real CAFE, real phone)",
                model="MobileNetV3-Large",
                copy="public + GuessWhat",
                architecture="net",
                variant="demo",
                technique=None,
                quantization=None,
                test_set="CAFE (real)",
                metric="balanced_accuracy",
                value=0.6521,
                **common,
            ),
            dict(
                source=RUN_LABEL,
                model="net",
                copy="demo",
                architecture="net",
                variant="demo",
                technique="baseline",
                quantization="int8",
                test_set=TEST_SET,
                metric="balanced_accuracy",
                value=0.48,
                **{**common, "ci_low": 0.38},
            ),
            dict(
                source=RUN_LABEL,
                model="other",
                copy="demo",
                architecture="other",
                variant="demo",
                technique="keras",
                quantization="float32",
                test_set=TEST_SET,
                metric="balanced_accuracy",
                value=0.2,
                **{**common, "ci_low": 0.1},
            ),
        ]
    )


def _robustness() -> pd.DataFrame:
    """Every model under two corruptions at two severities: the int8 file degrades fastest."""
    rows = []
    for (arch, variant, technique, quantization), scores in SCORES.items():
        clean = scores[0]
        fragile = 2.0 if quantization == "int8" else 1.0
        for corruption, severity, drop in (
            ("clean", 0, 0.0),
            ("jpeg", 1, 0.02),
            ("jpeg", 5, 0.10),
            ("rotation", 1, 0.05),
            ("rotation", 5, 0.20),
        ):
            rows.append(
                dict(
                    architecture=arch,
                    variant=variant,
                    technique=technique,
                    quantization=quantization,
                    corruption=corruption,
                    severity=severity,
                    images=20,
                    faces_lost=int(severity == 5 and corruption == "rotation"),
                    balanced_accuracy=clean - fragile * drop,
                    balanced_accuracy_drop=fragile * drop,
                )
            )
    return pd.DataFrame(rows)


def _teachers(test_balanced_accuracy: float = 0.60) -> pd.DataFrame:
    """distillation_teachers: the ``demo`` copy's teacher, ``big.demo`` (best of the grid)."""
    return pd.DataFrame(
        {
            "variant": ["demo"],
            "teacher": ["big.demo"],
            "kind": ["best_of_grid"],
            "members": ["big.demo;net.demo"],
            "params": [5000],
            "val_balanced_accuracy": [0.66],
            "test_balanced_accuracy": [test_balanced_accuracy],
            "images": [80],
        }
    )


# distilled file of net.demo -> test balanced accuracy, size, p50 latency; against the baseline
# files (float32 0.50, int8 0.48) and a teacher at 0.60: float32 closes 0.06 / 0.10 = 60% of the
# gap, int8 0.04 / 0.12 = 1/3
DISTILLED = {"float32": (0.56, 4100, 11.0), "int8": (0.52, 1550, 4.5)}


def with_distilled(
    tables: dict[str, pd.DataFrame], teacher_test_balanced_accuracy: float = 0.60
) -> dict[str, pd.DataFrame]:
    """``tables`` with net.demo's two ``distilled`` files (optimized, evaluated, profiled) and a
    teacher of the given test balanced accuracy."""
    tables = dict(tables)
    optimization, metrics, profiling = [], [], []
    base = tables["optimization_summary"].iloc[0]
    for quantization, (balanced, size, p50) in DISTILLED.items():
        key = dict(architecture="net", variant="demo", technique="distilled")
        folder = FOLDER.replace("baseline", "distilled")
        optimization.append(
            base.to_dict()
            | key
            | dict(
                quantization=quantization,
                tflite_path=f"{folder}/{quantization}.tflite",
                size_bytes=size,
                gzip_bytes=size - 300,
                input_dtype=quantization,
            )
        )
        metrics.append(
            dict(
                **key,
                quantization=quantization,
                split="test",
                metric="balanced_accuracy",
                value=balanced,
                ci_low=balanced - 0.1,
                ci_high=balanced + 0.1,
            )
        )
        profiling.append(
            _profiling_row(quantization, "litert", p50, p50 + 1) | {"technique": "distilled"}
        )
    for name, rows in (
        ("optimization_summary", optimization),
        ("evaluation_metrics", metrics),
        ("profiling_results", profiling),
    ):
        tables[name] = pd.concat([tables[name], pd.DataFrame(rows)], ignore_index=True)
    tables["distillation_teachers"] = _teachers(teacher_test_balanced_accuracy)
    return tables


def make_tables() -> dict[str, pd.DataFrame]:
    """The nine input tables of the reporting pipeline (no distilled file: the teachers' table
    names a teacher no leaderboard row uses), and a published comparison (which the pipeline
    makes from evaluation_metrics and subgroup_metrics) for the report's tests."""
    from pediatric_emotion.pipelines.evaluation.robustness import summarize_robustness

    robustness_metrics, robustness_summary = summarize_robustness(_robustness())
    training = pd.DataFrame(
        {
            "architecture": ["net", "big"],
            "variant": ["demo", "demo"],
            "weights": [None, None],
            "image_size": [64, 64],
            "params": [1000, 5000],
            "train_images": [80, 80],
            "val_images": [20, 20],
        }
    )
    optimization = pd.DataFrame(
        {
            "architecture": ["net", "net", "net"],
            "variant": ["demo", "demo", "demo"],
            "technique": ["baseline", "baseline", "pruned"],
            "quantization": ["float32", "int8", "int8"],
            "tflite_path": [f"{FOLDER}/float32.tflite", f"{FOLDER}/int8.tflite", np.nan],
            "size_bytes": [4000, 1500, np.nan],
            "gzip_bytes": [3600, 1200, np.nan],
            "size_vs_baseline_float32": [1.0, 0.375, np.nan],
            "gzip_vs_baseline_float32": [1.0, 0.333, np.nan],
            "sparsity": [0.0, 0.0, np.nan],
            "max_unique_per_channel": [np.nan] * 3,
            "weight_dtypes": ["float32", "int8", np.nan],
            "input_dtype": ["float32", "int8", np.nan],
            "status": ["ok", "ok", "unsupported"],
            "reason": [np.nan, np.nan, "tfmot refused the layer"],
            "seconds": [1.0, 2.0, 0.5],
        }
    )
    profiling = pd.DataFrame(
        [
            _profiling_row("float32", "litert", 10.0, 11.0),
            _profiling_row("int8", "litert", 5.0, 6.0),
            _profiling_row("int8", "benchmark_model", 4.0, 4.5),
        ]
    )
    return {
        "training_summary": training,
        "optimization_summary": optimization,
        "evaluation_metrics": pd.DataFrame(_metric_rows()),
        "profiling_results": profiling,
        "subgroup_metrics": _subgroups(),
        "confusion_matrices": _confusion(),
        "published_comparison": _published(),
        "robustness_metrics": robustness_metrics,
        "robustness_summary": robustness_summary,
        "distillation_teachers": _teachers(),
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return make_tables()


@pytest.fixture
def reporting(project_root) -> dict:
    """parameters_reporting.yml's reporting block, globals resolved as the demo run has them."""
    import yaml

    params = yaml.safe_load((project_root / "conf/base/parameters_reporting.yml").read_text())
    return {**params["reporting"], "run_label": RUN_LABEL, "test_set_label": TEST_SET}
