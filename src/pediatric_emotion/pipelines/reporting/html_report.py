"""One self-contained HTML page: the recommendation, the Pareto fronts (PNG embedded as base64),
the leaderboard, the confusion matrix of the recommended file, the subgroup gaps and the study's
published numbers beside this run's. Nothing is loaded from elsewhere (no external src or href)
and no face image is shown."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pediatric_emotion.grid import CELL_COLUMNS, FILE_COLUMNS
from pediatric_emotion.pipelines.reporting.leaderboard import model_name, of_file

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.8em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:.8em 1em;font-weight:600}
.box{background:#eef6ee;border:1px solid #7a7;padding:.8em 1em}
.none{background:#fbeaea;border:1px solid #c77;padding:.8em 1em}
img{max-width:100%}.scroll{overflow-x:auto}small{color:#666}
"""
LEADERBOARD_SHOWN = [
    *FILE_COLUMNS,
    "status",
    "params",
    "size_bytes",
    "gzip_bytes",
    "{split}_balanced_accuracy",
    "{split}_balanced_accuracy_ci_low",
    "{split}_balanced_accuracy_ci_high",
    "{split}_macro_f1",
    "val_balanced_accuracy",
    "latency_ms",
    "p50_ms",
    "avg_ms",
    "latency_target",
    "recommended",
    "pareto_latency",
    "pareto_size",
]


def figure_png(figure: Figure, dpi: int = 100) -> str:
    """``<img>`` with the figure as an embedded base64 PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def table_html(table: pd.DataFrame, digits: int = 3) -> str:
    """A table as escaped HTML, empty cells as a dash."""
    if table.empty:
        return "<p><small>(no rows)</small></p>"
    body = table.to_html(
        index=False, escape=True, na_rep="-", float_format=lambda v: f"{v:.{digits}f}", border=0
    )
    return f'<div class="scroll">{body}</div>'


def confusion_matrix(
    confusion: pd.DataFrame, model: Mapping[str, Any], split: str, emotions: Sequence[str]
) -> np.ndarray | None:
    """The counts of one model and split (rows true, columns predicted), or None without rows."""
    rows = confusion[(confusion["split"] == split) & of_file(confusion, model)]
    if rows.empty:
        return None
    matrix = (
        rows.pivot_table(index="true", columns="predicted", values="count", aggfunc="sum")
        .reindex(index=list(emotions), columns=list(emotions))
        .fillna(0)
    )
    return matrix.to_numpy(dtype=np.int64)


def gap_table(subgroups: pd.DataFrame, split: str, model: Mapping[str, Any] | None) -> pd.DataFrame:
    """Best-minus-worst gaps per grouping: one model's (all metrics) or, without a model, every
    model's balanced-accuracy gap (one column per grouping)."""
    gaps = subgroups[
        (subgroups["split"] == split) & subgroups["group"].astype(str).str.startswith("gap")
    ]
    if model is not None:
        mine = of_file(gaps, model)
        return gaps[mine][["grouping", "metric", "value", "note"]].rename(columns={"value": "gap"})
    rows = gaps[gaps["metric"] == "balanced_accuracy"]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(
        index=FILE_COLUMNS, columns="grouping", values="value", aggfunc="first"
    ).reset_index()


def published_table(published: pd.DataFrame, run_label: str) -> pd.DataFrame:
    """The study's rows and this run's (``source`` == ``run_label``) for the study's architecture
    and variant pairs, one column per metric."""
    study = published["source"] != run_label
    cells = pd.MultiIndex.from_frame(published[CELL_COLUMNS].astype(str))
    ours = ~study & cells.isin(cells[study.to_numpy()])
    rows = published[study | ours].copy()
    if rows.empty:
        return pd.DataFrame()
    index = ["source", "model", "version", "copy", "technique", "quantization", "test_set"]
    rows[index] = rows[index].astype("object").fillna("")
    wide = rows.pivot_table(index=index, columns="metric", values="value", aggfunc="first")
    return wide.reset_index()


def render_report(
    *,
    title: str,
    banner: str | None,
    recommendation: Mapping[str, Any],
    plots: Mapping[str, str],
    leaderboard: pd.DataFrame,
    not_made: str,
    confusion: tuple[str, str, pd.DataFrame] | None,
    gaps_shown: tuple[str, pd.DataFrame],
    gaps_all: pd.DataFrame,
    published: pd.DataFrame,
    footer: str,
    robustness: tuple[str, str | None, pd.DataFrame] | None = None,
    distillation: tuple[str, pd.DataFrame] | None = None,
) -> str:
    """The page (``plots``: caption -> <img>; ``not_made``: :func:`not_made_html` of the whole
    leaderboard; ``confusion``: heading, <img>, counts table; ``robustness``: the sentence on the
    most robust file within the budget, the <img> of the severity plot, the table;
    ``distillation``: the sentence on the file closing most of the gap, the table)."""
    escape = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if banner:
        parts.append(f'<p class="banner">{escape(banner)}</p>')
    parts.append("<h2>Recommendation</h2>")
    criteria = recommendation.get("criteria") or {}
    rule = (
        f"Most accurate file ({criteria.get('split')} {criteria.get('metric')}) with "
        f"{criteria.get('latency_column')} within {criteria.get('latency_budget_ms')} ms "
        f"(target {criteria.get('latency_target')}) and at least "
        f"{criteria.get('min_balanced_accuracy')}."
    )
    chosen = recommendation.get("recommended")
    counts = recommendation.get("counts") or {}
    css = "box" if chosen else "none"
    headline = (
        f"Recommended: <code>{escape(str(chosen.get('tflite_path')))}</code>"
        if chosen
        else "No file qualifies."
    )
    parts.append(
        f'<div class="{css}"><p>{headline}</p><p>{escape(str(recommendation.get("reason")))}</p>'
        f"<p><small>{escape(rule)} Files: "
        f"{escape(', '.join(f'{k} {v}' for k, v in counts.items()))}</small></p></div>"
    )
    parts.append("<h2>Pareto fronts</h2>")
    for caption, image in plots.items():
        parts.append(f"<figure>{image}<figcaption>{escape(caption)}</figcaption></figure>")
    parts += ["<h2>Leaderboard</h2>", table_html(leaderboard)]
    parts += ["<h2>Files not made</h2>", not_made]
    if robustness is not None:
        sentence, image, table = robustness
        parts += [
            "<h2>Robustness to camera conditions</h2>",
            "<p>Test pictures corrupted as a phone camera does (blur, JPEG, low light, noise, "
            "tilt, small faces, occlusion) at several severities, the face detected and cropped "
            "again: a face the detector loses counts as a miss. mCE: mean corruption error "
            "against the cell's Keras model (ImageNet-C), 1.0 for that model, lower is more "
            "robust.</p>",
            f'<p class="box">{escape(sentence)}</p>',
        ]
        if image:
            parts.append(
                f"<figure>{image}<figcaption>Balanced accuracy against severity, per "
                "corruption family.</figcaption></figure>"
            )
        parts.append(table_html(table))
    if distillation is not None:
        sentence, table = distillation
        parts += [
            "<h2>Distillation</h2>",
            "<p>Each distilled file beside its cell's baseline file of the same quantization and "
            "the teacher it learned from (test balanced accuracy, BA). Gap closed: (distilled - "
            "baseline) / (teacher - baseline); empty where the baseline file or the teacher's "
            "score is missing, or the teacher is no better than the baseline.</p>",
            f'<p class="box">{escape(sentence)}</p>',
        ]
        if not table.empty:
            parts.append(table_html(table))
    parts.append("<h2>Confusion matrix</h2>")
    if confusion is None:
        parts.append("<p>No confusion matrix: no file to show, or no rows for it.</p>")
    else:
        heading, image, counts = confusion
        parts += [f"<p>{escape(heading)}</p>", image, table_html(counts, digits=0)]
    heading, table = gaps_shown
    parts += ["<h2>Subgroup gaps</h2>", f"<p>{escape(heading)}</p>", table_html(table)]
    parts += [
        "<p>Balanced-accuracy gap (best - worst group) of every model, per grouping:</p>",
        table_html(gaps_all),
    ]
    parts += [
        "<h2>The study's published numbers beside this run's</h2>",
        "<p>Rows labelled with their source: the study's were measured on the real CAFE set and "
        "a real Moto G6; this run's on its own test set and target.</p>",
        table_html(published, digits=4),
        f"<hr><p><small>{escape(footer)}</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


NOT_MADE_MEANING = {
    "failed": "an exception in wrapping, fine-tuning or conversion: a defect to fix (the log "
    "holds the traceback)",
    "unsupported": "the technique cannot apply to this model or these settings",
    "skipped": "the model this technique starts from was not made",
    "not_run": "not run yet",
}


def not_made_html(leaderboard: pd.DataFrame) -> str:
    """The leaderboard's rows without a file or model (``status`` other than ``ok``), failures
    first, with their reasons and what each status means."""
    rows = leaderboard[leaderboard["status"].fillna("ok") != "ok"]
    if rows.empty:
        return "<p>Every configured file was made.</p>"
    order = {status: rank for rank, status in enumerate(NOT_MADE_MEANING)}
    rows = rows.sort_values("status", key=lambda s: s.map(order).fillna(len(order)), kind="stable")
    counts = rows["status"].value_counts()
    meaning = "; ".join(
        f"<b>{html.escape(status)}</b> ({counts[status]}): {html.escape(text)}"
        for status, text in NOT_MADE_MEANING.items()
        if status in counts
    )
    table = rows.reindex(columns=[*FILE_COLUMNS, "status", "reason"])
    return f"<p>{meaning}</p>" + table_html(table)


def shown_leaderboard(leaderboard: pd.DataFrame, split: str) -> pd.DataFrame:
    """The leaderboard's columns the page shows, best first."""
    columns = [c.format(split=split) for c in LEADERBOARD_SHOWN]
    table = leaderboard.reindex(columns=columns)
    return table.sort_values(f"{split}_balanced_accuracy", ascending=False, na_position="last")


def confusion_heading(model: Mapping[str, Any], split: str, recommended: bool) -> str:
    """What the confusion matrix shows."""
    what = "the recommended file" if recommended else "no file qualifies; the most accurate file"
    return f"{what}: {model_name(model)}, {split} split (rows: true class, columns: predicted)"
