"""Per-cell child runs and the reporting artifacts of a tracked ``kedro run`` (issue 20).

Run structure: one parent run per ``kedro run`` (kedro-mlflow's) holding the parameters and the
reporting artifacts, and one nested child run per cell of the grid, tagged ``cell`` =
``{architecture}.{variant}``, ``architecture`` and ``variant``. "The same cell across runs" is
then one query: ``MlflowClient().search_runs([experiment_id], "tags.cell = 'x.y'")``, every
child run carrying the same metric names (``{technique}.{quantization}.{column}``) so they line up
in the UI's comparison view.

Everything here goes through ``MlflowClient`` with explicit run ids (no active-run stack), reads
the grid's tables only (aggregates), and logs files from ``data/08_reporting`` only: never a face
crop (:func:`reporting_artifacts`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pediatric_emotion.grid import CELL_COLUMNS, FILE_COLUMNS, cell_name

logger = logging.getLogger(__name__)

CELL_TAG = "cell"
PARENT_TAG = "mlflow.parentRunId"  # what makes a run nested in the UI

FILE_METRICS = (
    "test_balanced_accuracy",
    "test_balanced_accuracy_ci_low",
    "test_balanced_accuracy_ci_high",
    "test_macro_f1",
    "test_macro_f1_ci_low",
    "test_macro_f1_ci_high",
    "size_bytes",
    "gzip_bytes",
    "sparsity",
    "latency_ms",
    "p50_ms",
    "corrupted_balanced_accuracy",
    "mce",
    "gap_closed",
)
"""The leaderboard's per-file columns logged, as ``{technique}.{quantization}.{column}``, where
present and numeric."""

FILE_TAGS = ("latency_target", "latency_target_kind", "status", "worst_corruption", "teacher")
"""The leaderboard's per-file text columns set as tags ``{technique}.{quantization}.{column}``:
where a latency was measured (a host's figure does not predict a phone's), the worst corruption, a
distilled file's teacher."""

HISTORY_METRICS = ("val_balanced_accuracy", "val_loss", "val_accuracy", "loss", "accuracy")
"""Per-epoch columns of a cell's history logged with ``step=epoch``."""

TRAINING_PREFIX = "training."

Loader = Callable[[str], Any]
"""Loads a catalog entry by name; ``None`` when it has no data."""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def cells_of(*tables: pd.DataFrame | None) -> list[str]:
    """The cells (``{architecture}.{variant}``) present in any of the tables, sorted."""
    names: set[str] = set()
    for table in tables:
        if table is not None and set(CELL_COLUMNS) <= set(table.columns):
            for architecture, variant in (
                table[CELL_COLUMNS].drop_duplicates().itertuples(index=False)
            ):
                names.add(cell_name(str(architecture), str(variant)))
    return sorted(names)


def _rows_of(table: pd.DataFrame | None, cell: str) -> pd.DataFrame:
    if table is None or not set(CELL_COLUMNS) <= set(table.columns):
        return pd.DataFrame()
    names = table["architecture"].astype(str) + "." + table["variant"].astype(str)
    return table[names == cell]


def file_metrics(leaderboard_rows: pd.DataFrame) -> dict[str, float]:
    """``{technique}.{quantization}.{column}`` -> value for one cell's leaderboard rows."""
    metrics: dict[str, float] = {}
    columns = [c for c in FILE_METRICS if c in leaderboard_rows.columns]
    for _, row in leaderboard_rows.iterrows():
        prefix = f"{row['technique']}.{row['quantization']}"
        for column in columns:
            value = _number(row[column])
            if value is not None:
                metrics[f"{prefix}.{column}"] = value
    return metrics


def file_tags(leaderboard_rows: pd.DataFrame) -> dict[str, str]:
    """``{technique}.{quantization}.{column}`` -> text for :data:`FILE_TAGS` that are set."""
    tags: dict[str, str] = {}
    columns = [c for c in FILE_TAGS if c in leaderboard_rows.columns]
    for _, row in leaderboard_rows.iterrows():
        for column in columns:
            if pd.notna(row[column]) and str(row[column]):
                tags[f"{row['technique']}.{row['quantization']}.{column}"] = str(row[column])
    return tags


def training_metrics(summary_rows: pd.DataFrame) -> dict[str, float]:
    """The numeric columns of a cell's training_summary row, as ``training.{column}``."""
    if summary_rows.empty:
        return {}
    row = summary_rows.iloc[0]
    metrics = {}
    for column in summary_rows.columns:
        if column in FILE_COLUMNS:
            continue
        value = _number(row[column])
        if value is not None:
            metrics[f"{TRAINING_PREFIX}{column}"] = value
    return metrics


def history_steps(history: Mapping[str, list] | None) -> list[tuple[str, float, int]]:
    """``(metric, value, epoch)`` for every epoch of a cell's history (a dict of lists, one
    entry per epoch, with an ``epoch`` list counted from 1)."""
    if not history or "epoch" not in history:
        return []
    epochs = [int(e) for e in history["epoch"]]
    steps = []
    for name in HISTORY_METRICS:
        for epoch, raw in zip(epochs, history.get(name) or [], strict=False):
            value = _number(raw)
            if value is not None:
                steps.append((name, value, epoch))
    return steps


def log_cell_runs(
    client: Any,
    parent_run_id: str,
    leaderboard: pd.DataFrame | None,
    training_summary: pd.DataFrame | None,
    histories: Mapping[str, Mapping[str, list] | None],
) -> dict[str, str]:
    """One finished child run of ``parent_run_id`` per cell of the tables; returns cell -> run
    id."""
    from mlflow.entities import Metric

    parent = client.get_run(parent_run_id)
    experiment_id = parent.info.experiment_id
    runs: dict[str, str] = {}
    for cell in cells_of(leaderboard, training_summary):
        architecture, variant = cell.split(".", 1)
        run = client.create_run(
            experiment_id,
            run_name=cell,
            tags={
                PARENT_TAG: parent_run_id,
                CELL_TAG: cell,
                "architecture": architecture,
                "variant": variant,
                **file_tags(_rows_of(leaderboard, cell)),
            },
        )
        run_id = run.info.run_id
        timestamp = run.info.start_time
        values = {
            **file_metrics(_rows_of(leaderboard, cell)),
            **training_metrics(_rows_of(training_summary, cell)),
        }
        metrics = [Metric(key, value, timestamp, 0) for key, value in values.items()]
        metrics += [
            Metric(name, value, timestamp, epoch)
            for name, value, epoch in history_steps(histories.get(cell))
        ]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        client.set_terminated(run_id)
        runs[cell] = run_id
    logger.info("MLflow: %d cell run(s) under run %s", len(runs), parent_run_id)
    return runs


def catalog_loader(catalog: Any) -> Loader:
    """Loads a dataset of the session's catalog (factory patterns resolved), ``None`` when it has
    no data."""

    def load(name: str) -> Any:
        try:
            if not catalog.exists(name):
                return None
            return catalog.load(name)
        except Exception as error:  # noqa: BLE001  (tracking never fails a finished run)
            logger.warning("MLflow: %s not loaded (%s)", name, error)
            return None

    return load


def produced_only(load: Loader, produced: set[str] | None) -> Loader:
    """``load`` limited to the datasets this run wrote (``None`` for the rest): a partial run
    (``--pipelines``, ``--namespaces``) logs what it made, not the files of an earlier run."""
    if produced is None:
        return load
    return lambda name: load(name) if name in produced else None


def log_run_tables(
    client: Any, parent_run_id: str, load: Loader, load_history: Loader | None = None
) -> dict[str, str]:
    """Child runs from the leaderboard, training_summary and per-cell histories. The histories
    go through ``load_history`` (default ``load``): a cell's history on file is the one its
    figures come from, even when an earlier run trained it."""
    leaderboard = load("leaderboard")
    summary = load("training_summary")
    history_of = load_history or load
    histories = {cell: history_of(f"{cell}.history") for cell in cells_of(leaderboard, summary)}
    return log_cell_runs(client, parent_run_id, leaderboard, summary, histories)


REPORTING = Path("data/08_reporting")
"""The only folder artifacts are taken from (aggregates and plots; no image of a child)."""

REPORT_FILES = ("report.html", "leaderboard.csv", "recommendation.json")
PLOT_GLOBS = {  # artifact folder -> PNGs under the reporting folder
    "training": "training/*.learning_curve.png",
    "evaluation": "evaluation/**/*.png",  # confusion matrices, {cell}/{split}/{file}.png
}
ARTIFACT_PNG_PREFIXES = tuple(f"{folder}/" for folder in PLOT_GLOBS)
"""Where every PNG of a run lies in its artifacts: the plots, nothing else."""


def _inside(path: Path, root: Path) -> bool:
    """A regular file whose real path lies under ``root`` (no link out to, say, face crops)."""
    real = path.resolve()
    return path.is_file() and real.is_relative_to(root.resolve()) and "face_crops" not in real.parts


def _dataset_of(relative: Path) -> str:
    """The catalog entry that writes a reporting file (catalog_reporting.yml, catalog.yml,
    catalog_evaluation.yml)."""
    parts = relative.parts
    if parts[0] == "model_cards":
        return "model_cards"
    if parts[0] == "training":
        return relative.name.removesuffix(".png")  # {cell}.learning_curve
    if parts[0] == "evaluation" and len(parts) > 2:
        return f"{parts[1]}.evaluation_confusion_plots"
    return {"report.html": "report_html"}.get(relative.name, relative.stem)


def reporting_artifacts(root: Path, produced: set[str] | None = None) -> list[tuple[Path, str]]:
    """``(file, artifact folder)`` for the report, leaderboard, recommendation, model cards,
    learning curves and confusion-matrix plots under the reporting folder ``root``; with
    ``produced``, only the files of those datasets (the ones this run wrote)."""
    found = [(root / name, "") for name in REPORT_FILES]
    found += [
        (path, str(path.parent.relative_to(root))) for path in root.glob("model_cards/**/*.md")
    ]
    for pattern in PLOT_GLOBS.values():
        found += [(path, str(path.parent.relative_to(root))) for path in root.glob(pattern)]
    return [
        (path, folder)
        for path, folder in found
        if _inside(path, root)
        and (produced is None or _dataset_of(path.relative_to(root)) in produced)
    ]


def log_reporting_artifacts(
    client: Any, run_id: str, root: Path, produced: set[str] | None = None
) -> int:
    """Log :func:`reporting_artifacts` to the run, laid out as under ``root``; returns how
    many."""
    import shutil
    import tempfile

    files = reporting_artifacts(root, produced)
    if not files:
        return 0
    with tempfile.TemporaryDirectory() as staging:
        for path, folder in files:
            target = Path(staging) / folder
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
        client.log_artifacts(run_id, staging)
    logger.info("MLflow: %d reporting file(s) logged to run %s", len(files), run_id)
    return len(files)
