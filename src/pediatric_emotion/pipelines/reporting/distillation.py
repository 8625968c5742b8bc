"""The report's distillation section: each distilled file beside its cell's baseline file of the
same quantization and its teacher, and which file closes most of the baseline-to-teacher gap."""

from __future__ import annotations

import pandas as pd

from pediatric_emotion.grid import CELL_COLUMNS
from pediatric_emotion.pipelines.reporting.leaderboard import (
    BASELINE,
    DISTILLED,
    model_name,
    numbers,
)

FIGURES = {  # leaderboard column -> shown name (prefixed with distilled / baseline)
    "test_balanced_accuracy": "test BA",
    "size_bytes": "size (bytes)",
    "latency_ms": "latency (ms)",
}
TEACHER = {
    "teacher": "teacher",
    "teacher_test_balanced_accuracy": "teacher test BA",
    "teacher_params": "teacher params",
}


def distilled_rows(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's distilled files that were made or evaluated."""
    distilled = leaderboard["technique"].isin(DISTILLED)
    made = (leaderboard["status"] == "ok") | pd.notna(
        numbers(leaderboard["test_balanced_accuracy"])
    )
    return leaderboard[distilled & made]


def percent(value: float) -> str | None:
    """A share as a whole percentage (``0.6`` -> ``"60%"``), None where it is NaN."""
    return None if pd.isna(value) else f"{value:.0%}"


def distillation_table(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """One row per distilled file: its test BA, size and latency, the same cell's baseline file of
    the same quantization's, the teacher (name, test BA, parameters) and the gap closed as a
    percentage; most of the gap closed first."""
    students = distilled_rows(leaderboard)
    keys = [*CELL_COLUMNS, "quantization"]
    baselines = leaderboard.loc[leaderboard["technique"] == BASELINE, [*keys, *FIGURES]]
    baselines = baselines.drop_duplicates(keys).rename(
        columns={column: f"baseline {name}" for column, name in FIGURES.items()}
    )
    table = (
        students[[*keys, *FIGURES, *TEACHER, "gap_closed"]]
        .rename(columns={column: f"distilled {name}" for column, name in FIGURES.items()})
        .merge(baselines, on=keys, how="left")
        .rename(columns=TEACHER)
    )
    table["_gap"] = numbers(table["gap_closed"])
    table = table.sort_values("_gap", ascending=False, na_position="last", kind="stable")
    table["gap closed"] = table["_gap"].map(percent).astype("object")
    shown = [
        *keys,
        *[f"distilled {name}" for name in FIGURES.values()],
        *[f"baseline {name}" for name in FIGURES.values()],
        *TEACHER.values(),
        "gap closed",
    ]
    return table[shown].reset_index(drop=True)


def best_distilled(leaderboard: pd.DataFrame) -> str:
    """A sentence naming the distilled file that closes most of the gap between its baseline
    file and its teacher."""
    students = distilled_rows(leaderboard)
    students = students.assign(_gap=numbers(students["gap_closed"]))
    scored = students[students["_gap"].notna()]
    if scored.empty:
        return (
            f"No distilled file has a gap figure ({len(students)} distilled file(s)): each lacks "
            "a baseline file of its quantization, a teacher, or a teacher more accurate than the "
            "baseline."
        )
    best = scored.sort_values("_gap", ascending=False, kind="stable").iloc[0]
    return (
        f"Closes most of the gap: {model_name(best)}, {percent(best['_gap'])} of the way from its "
        f"baseline {best['quantization']} file to its teacher {best['teacher']} (test balanced "
        f"accuracy {float(best['test_balanced_accuracy']):.3f}; teacher "
        f"{float(best['teacher_test_balanced_accuracy']):.3f})."
    )


def distillation_section(leaderboard: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """The sentence and the table of the report's distillation section; None where the leaderboard
    has no distilled row."""
    if not leaderboard["technique"].isin(DISTILLED).any():
        return None
    if distilled_rows(leaderboard).empty:
        return "No distilled file was made or evaluated (see Files not made).", pd.DataFrame()
    return best_distilled(leaderboard), distillation_table(leaderboard)
