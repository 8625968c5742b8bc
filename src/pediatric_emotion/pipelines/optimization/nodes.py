"""The optimization summary: one table of every file of every cell and technique (the technique
nodes themselves are in techniques.py, one per row of the technique registry)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pediatric_emotion.grid import CELL_COLUMNS, FILE_COLUMNS

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = [
    *FILE_COLUMNS,
    "tflite_path",
    "size_bytes",
    "gzip_bytes",
    "size_vs_baseline_float32",
    "gzip_vs_baseline_float32",
    "sparsity",
    "max_unique_per_channel",
    "weight_dtypes",
    "input_dtype",
    "status",
    "reason",
    "seconds",
]


def summarize_optimization(**reports: list[dict[str, Any]] | None) -> pd.DataFrame:
    """One table of every file of every cell, with sizes relative to the cell's float32 baseline.

    ``reports``: ``"{arch}.{variant}.{technique}"`` -> that node's report rows, or None where the
    node has not run yet (its report file is absent): one ``not_run`` row says so, and how to run
    it, so a partial run still gives the whole grid's table."""
    rows: list[dict[str, Any]] = []
    missing = []
    for key, report in reports.items():
        if report is not None:
            rows.extend(report)
            continue
        arch, variant, technique = key.rsplit(".", 2)  # grid names hold no '.' (grid.py)
        missing.append(key)
        rows.append(
            {
                "architecture": arch,
                "variant": variant,
                "technique": technique,
                "status": "not_run",
                "reason": "no report yet: kedro run --pipelines=optimization "
                f"--namespaces={arch}.{variant}",
            }
        )
    if missing:
        logger.warning("optimization_summary: %d technique(s) not run yet: %s", len(missing),
                       ", ".join(missing))  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    baseline = table[(table["technique"] == "baseline") & (table["quantization"] == "float32")]
    reference = baseline.set_index(CELL_COLUMNS)[["size_bytes", "gzip_bytes"]]
    keys = pd.MultiIndex.from_frame(table[CELL_COLUMNS])
    for column, base in (("size", "size_bytes"), ("gzip", "gzip_bytes")):
        reference_values = reference[base].reindex(keys).to_numpy(dtype="float64")
        table[f"{column}_vs_baseline_float32"] = (
            table[base].to_numpy(dtype="float64") / reference_values
        ).round(3)
    table["status"] = table["status"].fillna("ok")
    failed = table[table["status"] == "failed"]
    if len(failed):
        logger.error(
            "optimization_summary: %d file(s) failed (a defect, not a limit; the log above holds "
            "each traceback): %s",
            len(failed),
            ", ".join(
                f"{r.architecture}.{r.variant} {r.technique} {r.quantization}"
                for r in failed.itertuples()
            ),
        )
    return table
