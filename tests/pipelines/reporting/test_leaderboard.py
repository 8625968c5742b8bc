"""The leaderboard join on hand-made tables: exact values, missing parts as NaN, malformed input
named."""

import numpy as np
import pandas as pd
import pytest

from pediatric_emotion.grid import FILE_COLUMNS
from pediatric_emotion.pipelines.reporting.leaderboard import (
    DISTILLATION_COLUMNS,
    LEADERBOARD_COLUMNS,
    ROBUSTNESS_COLUMNS,
    gap_closed,
    join_leaderboard,
    select_latency,
    with_distillation,
)
from pediatric_emotion.pipelines.reporting.nodes import build_leaderboard
from tests.pipelines.reporting.conftest import FOLDER, with_distilled

LATENCY = {"column": "p50_ms", "target": "auto", "runners": ["benchmark_model", "litert"]}
INPUTS = ("training_summary", "optimization_summary", "evaluation_metrics", "profiling_results")


def _join(tables, latency=LATENCY):
    return join_leaderboard(*(tables[name] for name in INPUTS), latency)


def test_one_row_per_model_with_the_values_of_every_table(tables):
    board = _join(tables)
    assert list(board.columns) == LEADERBOARD_COLUMNS
    keys = board[FILE_COLUMNS].values.tolist()
    assert keys == [
        ["big", "demo", "keras", "float32"],
        ["net", "demo", "keras", "float32"],
        ["net", "demo", "baseline", "float32"],
        ["net", "demo", "baseline", "int8"],
        ["net", "demo", "pruned", "int8"],
    ]  # the peer of evaluation_metrics is not a leaderboard row
    rows = board.set_index(["architecture", "technique", "quantization"])
    int8 = rows.loc[("net", "baseline", "int8")]
    assert int8["params"] == 1000  # the cell's, carried to its files
    assert (int8["size_bytes"], int8["gzip_bytes"]) == (1500, 1200)
    assert int8["tflite_path"] == f"{FOLDER}/int8.tflite"
    assert int8[
        [
            "test_balanced_accuracy",
            "test_balanced_accuracy_ci_low",
            "test_balanced_accuracy_ci_high",
        ]
    ].tolist() == pytest.approx([0.48, 0.38, 0.58])
    assert int8["test_macro_f1"] == pytest.approx(0.44)
    assert int8["val_balanced_accuracy"] == pytest.approx(0.52)
    assert int8["test_n_images"] == 160 and int8["test_n_subjects"] == 20
    # benchmark_model comes first in runners: its p50 (4 ms), not LiteRT's (5 ms)
    assert (int8["latency_ms"], int8["p50_ms"], int8["avg_ms"]) == (4.0, 4.0, 4.5)
    assert int8["latency_target"] == "host: Test CPU (benchmark_model, cpu, 2 threads)"
    assert rows.loc[("net", "baseline", "float32"), "latency_ms"] == 10.0  # LiteRT only
    keras = rows.loc[("big", "keras", "float32")]
    assert keras["params"] == 5000 and keras["status"] == "ok"
    assert pd.isna(keras["size_bytes"]) and pd.isna(keras["latency_ms"])
    assert pd.isna(keras["tflite_path"])
    assert keras["test_balanced_accuracy"] == pytest.approx(0.62)
    refused = rows.loc[("net", "pruned", "int8")]
    assert refused["status"] == "unsupported" and refused["reason"] == "tfmot refused the layer"
    assert np.isnan(refused["test_balanced_accuracy"]) and pd.isna(refused["latency_ms"])
    assert not board[["recommended", "pareto_latency", "pareto_size"]].any().any()


def test_phone_rows_win_when_present_and_can_be_overridden(tables):
    phone = (
        tables["profiling_results"]
        .iloc[[1]]
        .assign(target_kind="phone", target="moto g(6)", runner="benchmark_model", p50_ms=48.0)
    )
    profiling = pd.concat([tables["profiling_results"], phone], ignore_index=True)
    chosen = select_latency(profiling, LATENCY).set_index("quantization")
    assert chosen["latency_ms"].to_dict() == {"int8": 48.0}  # float32: no phone row, no latency
    assert set(chosen["latency_target_kind"]) == {"phone"}
    host = select_latency(profiling, {**LATENCY, "target": "host", "column": "avg_ms"})
    assert host.set_index("quantization")["latency_ms"].to_dict() == {"float32": 11.0, "int8": 4.5}
    with pytest.raises(ValueError, match="reporting.latency.target"):
        select_latency(profiling, {**LATENCY, "target": "cloud"})


def test_missing_parts_are_empty_rows_not_errors(tables):
    tables["profiling_results"] = tables["profiling_results"].iloc[0:0]
    tables["optimization_summary"] = tables["optimization_summary"].iloc[0:0]
    board = _join(tables)
    files = board[board["technique"] != "keras"]
    # evaluated files still appear, without size, path or latency
    assert files["quantization"].tolist() == ["float32", "int8"]
    assert files["status"].eq("not in optimization_summary").all()
    assert files[["size_bytes", "latency_ms", "tflite_path"]].isna().all().all()
    assert board["latency_ms"].isna().all()


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("training_summary", "params"),
        ("optimization_summary", "gzip_bytes"),
        ("evaluation_metrics", "ci_low"),
        ("profiling_results", "target_kind"),
    ],
)
def test_a_missing_column_names_the_table_and_the_column(tables, table, column):
    tables[table] = tables[table].drop(columns=[column])
    with pytest.raises(ValueError, match=f"{table}: missing column '{column}'"):
        _join(tables)


def test_the_configured_latency_column_must_exist(tables):
    with pytest.raises(ValueError, match="profiling_results: missing column 'p99_ms'"):
        _join(tables, {**LATENCY, "column": "p99_ms"})


def test_a_duplicated_file_is_named(tables):
    summary = tables["optimization_summary"]
    tables["optimization_summary"] = pd.concat([summary, summary.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="optimization_summary: 2 rows share a key"):
        _join(tables)


def test_build_leaderboard_flags_and_recommends(tables, reporting):
    board, recommendation = build_leaderboard(*(tables[name] for name in INPUTS), reporting)
    flagged = board.set_index(["architecture", "technique", "quantization"])
    assert flagged["recommended"].sum() == 1
    assert flagged.loc[("net", "baseline", "float32"), "recommended"]
    assert recommendation["recommended"]["tflite_path"] == f"{FOLDER}/float32.tflite"
    # float32: more accurate, slower, bigger; int8 faster, smaller: both on both fronts
    assert flagged.loc[("net", "baseline", "float32"), "pareto_latency"]
    assert flagged.loc[("net", "baseline", "int8"), "pareto_size"]
    assert not flagged.loc[("big", "keras", "float32"), "pareto_latency"]


def test_undefined_per_class_scores_and_filled_accuracy_intervals_change_nothing(tables):
    """evaluation's NaN per-class scores (a class absent from the split) and its accuracy interval
    are not leaderboard columns: the leaderboard is the same with them."""
    metrics = tables["evaluation_metrics"]
    absent = metrics[metrics["metric"] == "recall:happy"].assign(metric="recall:fear")
    accuracy = metrics[metrics["metric"] == "balanced_accuracy"].assign(
        metric="accuracy", value=0.5, ci_low=0.4, ci_high=0.6
    )
    changed = dict(tables)
    changed["evaluation_metrics"] = pd.concat(
        [
            metrics.assign(value=metrics["value"].where(metrics["metric"] != "recall:happy")),
            absent.assign(value=np.nan),
            accuracy,
        ],
        ignore_index=True,
    )
    board = _join(changed)
    base = _join(tables).drop(columns=["test_accuracy", "val_accuracy"])
    pd.testing.assert_frame_equal(board.drop(columns=["test_accuracy", "val_accuracy"]), base)
    assert board["test_accuracy"].dropna().eq(0.5).all()


def test_the_robustness_summary_adds_its_columns_to_every_model(tables):
    board = join_leaderboard(
        *(tables[name] for name in INPUTS),
        LATENCY,
        robustness_summary=tables["robustness_summary"],
    )
    rows = board.set_index(["architecture", "technique", "quantization"])
    int8 = rows.loc[("net", "baseline", "int8")]
    # clean 0.48; drops 2 x (0.02, 0.10, 0.05, 0.20) -> mean 0.48 - 0.185
    assert int8["corrupted_balanced_accuracy"] == pytest.approx(0.295)
    assert int8["mce"] > 1.0 and int8["worst_corruption"] == "rotation"
    assert rows.loc[("net", "keras", "float32"), "mce"] == pytest.approx(1.0)
    assert pd.isna(rows.loc[("net", "pruned", "int8"), "mce"])  # no file, no figures
    without = _join(tables)
    assert without[["corrupted_balanced_accuracy", "mce", "worst_corruption"]].isna().all().all()
    duplicated = pd.concat([tables["robustness_summary"]] * 2)
    with pytest.raises(ValueError, match="robustness.*share a key"):
        join_leaderboard(*(tables[name] for name in INPUTS), LATENCY, robustness_summary=duplicated)


def _distilled(tables, **keywords):
    board = join_leaderboard(*(tables[name] for name in INPUTS), LATENCY, **keywords)
    return board.set_index(["architecture", "technique", "quantization"]).sort_index()


def test_distilled_files_get_their_teacher_and_the_gap_they_close(tables):
    tables = with_distilled(tables)
    board = join_leaderboard(
        *(tables[name] for name in INPUTS),
        LATENCY,
        distillation_teachers=tables["distillation_teachers"],
    )
    assert list(board.columns) == LEADERBOARD_COLUMNS
    after = LEADERBOARD_COLUMNS.index(ROBUSTNESS_COLUMNS[-1]) + 1
    assert LEADERBOARD_COLUMNS[after : after + 4] == DISTILLATION_COLUMNS
    rows = board.set_index(["architecture", "technique", "quantization"])
    float32 = rows.loc[("net", "distilled", "float32")]
    # baseline float32 0.50, distilled 0.56, teacher 0.60: (0.56 - 0.50) / (0.60 - 0.50)
    assert float32["gap_closed"] == pytest.approx(0.6)
    assert float32["teacher"] == "big.demo" and float32["teacher_params"] == 5000
    assert float32["teacher_test_balanced_accuracy"] == pytest.approx(0.60)
    # int8 against the baseline int8 file (0.48), not the float32 one
    assert rows.loc[("net", "distilled", "int8"), "gap_closed"] == pytest.approx(0.04 / 0.12)
    others = board[board["technique"] != "distilled"]
    assert len(others) == 5 and others[DISTILLATION_COLUMNS].isna().all().all()


def test_no_gap_where_the_teacher_is_no_better_than_the_baseline(tables):
    equal = with_distilled(tables, teacher_test_balanced_accuracy=0.50)
    rows = _distilled(equal, distillation_teachers=equal["distillation_teachers"])
    # float32: teacher 0.50 = baseline 0.50; int8: baseline 0.48, (0.52 - 0.48) / 0.02
    assert np.isnan(rows.loc[("net", "distilled", "float32"), "gap_closed"])
    assert rows.loc[("net", "distilled", "int8"), "gap_closed"] == pytest.approx(2.0)
    worse = with_distilled(tables, teacher_test_balanced_accuracy=0.40)
    rows = _distilled(worse, distillation_teachers=worse["distillation_teachers"])
    assert rows.loc[("net", "distilled"), "gap_closed"].isna().all()
    assert (rows.loc[("net", "distilled"), "teacher"] == "big.demo").all()  # still named


def test_no_gap_without_the_baseline_file_of_that_quantization(tables):
    tables = with_distilled(tables)
    for name in ("optimization_summary", "evaluation_metrics", "profiling_results"):
        table = tables[name]
        baseline_int8 = (table["technique"] == "baseline") & (table["quantization"] == "int8")
        tables[name] = table[~baseline_int8]
    rows = _distilled(tables, distillation_teachers=tables["distillation_teachers"])
    assert ("net", "baseline", "int8") not in rows.index
    assert np.isnan(rows.loc[("net", "distilled", "int8"), "gap_closed"])
    assert rows.loc[("net", "distilled", "int8"), "teacher"] == "big.demo"
    assert rows.loc[("net", "distilled", "float32"), "gap_closed"] == pytest.approx(0.6)


def test_no_teacher_table_or_row_leaves_the_columns_empty(tables):
    tables = with_distilled(tables)
    for teachers in (None, tables["distillation_teachers"].iloc[0:0]):
        board = join_leaderboard(
            *(tables[name] for name in INPUTS), LATENCY, distillation_teachers=teachers
        )
        assert list(board.columns) == LEADERBOARD_COLUMNS
        assert board[DISTILLATION_COLUMNS].isna().all().all()
    other_copy = tables["distillation_teachers"].assign(variant="other")
    rows = _distilled(tables, distillation_teachers=other_copy)
    assert rows[DISTILLATION_COLUMNS].isna().all().all()


def test_a_teachers_table_with_the_architecture_joins_per_cell(tables):
    tables = with_distilled(tables)
    teachers = tables["distillation_teachers"]
    per_cell = pd.concat(
        [teachers.assign(architecture="net"), teachers.assign(architecture="big", teacher="x")],
        ignore_index=True,
    )
    rows = _distilled(tables, distillation_teachers=per_cell)
    assert (rows.loc[("net", "distilled"), "teacher"] == "big.demo").all()
    assert rows.loc[("net", "distilled", "float32"), "gap_closed"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="distillation_teachers: 2 rows share a key"):
        _distilled(tables, distillation_teachers=pd.concat([teachers, teachers]))


@pytest.mark.parametrize("column", ["teacher", "params", "test_balanced_accuracy", "variant"])
def test_a_teachers_table_missing_a_column_is_named(tables, column):
    teachers = with_distilled(tables)["distillation_teachers"].drop(columns=[column])
    with pytest.raises(ValueError, match=f"distillation_teachers: missing column '{column}'"):
        _distilled(tables, distillation_teachers=teachers)


def test_gap_closed_by_hand():
    closed = gap_closed(
        np.array([0.56, 0.52, 0.55, np.nan, 0.45]),
        np.array([0.50, 0.48, 0.55, 0.50, 0.50]),
        np.array([0.60, 0.50, 0.50, 0.60, 0.60]),
    )
    assert closed[0] == pytest.approx(0.6) and closed[1] == pytest.approx(2.0)
    assert np.isnan(closed[2]) and np.isnan(closed[3])  # teacher worse; no student score
    assert closed[4] == pytest.approx(-0.5)  # a distilled file worse than its baseline


def test_build_leaderboard_takes_the_teachers_by_keyword(tables, reporting):
    tables = with_distilled(tables)
    board, recommendation = build_leaderboard(
        *(tables[name] for name in INPUTS),
        reporting,
        distillation_teachers=tables["distillation_teachers"],
    )
    rows = board.set_index(["architecture", "technique", "quantization"])
    assert rows.loc[("net", "distilled", "float32"), "gap_closed"] == pytest.approx(0.6)
    assert recommendation["recommended"]["technique"] == "distilled"  # 0.56, within budget


def test_quantization_aware_training_after_distillation_is_a_distilled_file_too():
    cell = {"architecture": "net", "variant": "demo", "quantization": "int8"}
    table = pd.DataFrame(
        [
            {**cell, "technique": "baseline", "test_balanced_accuracy": 0.50},
            {**cell, "technique": "distilled_qat", "test_balanced_accuracy": 0.55},
            {**cell, "technique": "qat", "test_balanced_accuracy": 0.58},
        ]
    )
    teachers = pd.DataFrame(
        [{"architecture": "net", "variant": "demo", "teacher": "big.demo", "params": 9,
          "test_balanced_accuracy": 0.60}]
    )  # fmt: skip
    rows = with_distillation(table, teachers).set_index("technique")
    assert rows.loc["distilled_qat", "gap_closed"] == pytest.approx(0.5)
    assert rows.loc["distilled_qat", "teacher"] == "big.demo"
    assert rows.loc[["baseline", "qat"], "gap_closed"].isna().all()
