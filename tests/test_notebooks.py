"""Every notebook in notebooks/ executed top to bottom (nbclient, one kernel each) in a tiny
temporary Kedro project whose data/ holds a small hand-made run: a face manifest with its crops,
the evaluation tables scored by the evaluation pipeline's own node from made-up predictions, and a
leaderboard with the columns the reporting pipeline agreed to write."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient

from pediatric_emotion.datasets import FileTree
from pediatric_emotion.grid import FILE_COLUMNS
from pediatric_emotion.pipelines.evaluation.nodes import evaluate_cell
from pediatric_emotion.pipelines.evaluation.selection import select_evaluation_images
from pediatric_emotion.pipelines.label_harmonization.manifest import MANIFEST_COLUMNS
from tests.conftest import PROJECT_ROOT, make_project_copy
from tests.pipelines.evaluation.conftest import (  # noqa: F401  (fixtures reused here)
    EMOTIONS,
    EVALUATION,
    crop_paths,
    crops_root,
    manifest,
    training_examples,
)

pytestmark = pytest.mark.slow  # a kernel per notebook, each loading the project: ~10 s apiece

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
CELLS = [("mobilenet_v3_small", "public_guesswhat"), ("mobilenet_v2", "public_guesswhat")]
MODELS = [("keras", "float32"), ("baseline", "float32"), ("baseline", "int8")]
LICENSED = "licensed_set"  # a source outside the demo data: its crops must never be shown
# The reporting pipeline's entry (agreed contract), for a conf/base that does not have it yet.
LEADERBOARD_ENTRY = {
    "type": "pediatric_emotion.datasets.AtomicCSVDataset",
    "filepath": "data/08_reporting/leaderboard.csv",
    "save_args": {"index": False},
}


def face_manifest(paths: list[str]) -> pd.DataFrame:
    """The evaluation tests' manifest (16 CAFE-like test rows, 8 KDEF val rows) in the full
    manifest layout, with two KDEF rows moved to GuessWhat and two to a licensed source."""
    table = manifest(paths)
    moved = {20: "guesswhat", 21: "guesswhat", 22: LICENSED, 23: LICENSED}
    for index, source in moved.items():
        table.loc[index, "source"] = source
        table.loc[index, "role"] = "guesswhat" if source == "guesswhat" else "train"
    table["crop_path"] = table["source"] + "/" + table["crop_path"].str.split("/").str[-1]
    table["record_id"] = table["image_id"]
    table["image_id"] = table["source"] + ":" + table["image_id"]
    table["original_label"] = table["emotion"]
    table["population"] = np.where(table["source"].isin(["kdef", LICENSED]), "adult", "child")
    table[["bbox_x", "bbox_y", "bbox_w", "bbox_h"]] = [0.0, 0.0, 32.0, 32.0]
    table["box_source"] = "detected"
    table["face_score"] = 0.9
    table["image_width"] = table["image_height"] = pd.array([32] * len(table), dtype="Int64")
    table["phash"] = table["image_phash"] = [f"{index:064x}" for index in range(len(table))]
    for column in ("image_path", "angle", "gaze", "session", "source_split", "crops_digest"):
        table[column] = None
    table = table[MANIFEST_COLUMNS]
    for column in [c for c in table if table[c].dtype.kind not in "fiu" and c != "emotion"]:
        table[column] = table[column].astype("string")
    table["emotion"] = pd.Categorical(table["emotion"], categories=EMOTIONS)
    return table


def predictions(images: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Made-up scores for every model of a cell: right about half of the time."""
    rng = np.random.default_rng(seed)
    tables = {}
    for technique, quantization in MODELS:
        scores = rng.dirichlet(np.ones(len(EMOTIONS)), len(images))
        hit = rng.random(len(images)) < 0.5
        scores[hit, images["label"].to_numpy()[hit]] += 1.0
        scores /= scores.sum(axis=1, keepdims=True)
        frame = images[["split", "crop_path", "label"]].assign(
            technique=technique, quantization=quantization, predicted=scores.argmax(axis=1)
        )
        for column, values in zip(EMOTIONS, scores.T, strict=True):
            frame[f"p_{column}"] = values
        tables[f"{technique}_{quantization}"] = frame
    return tables


def leaderboard(metrics: pd.DataFrame) -> pd.DataFrame:
    """The agreed leaderboard columns, filled from the metrics and made-up sizes and latencies."""
    wide = metrics[metrics["metric"].isin(["balanced_accuracy", "macro_f1"])].pivot_table(
        index=FILE_COLUMNS, columns=["split", "metric"], values=["value", "ci_low", "ci_high"]
    )
    rows = []
    for position, ((arch, variant, technique, quantization), row) in enumerate(wide.iterrows()):
        tflite = technique != "keras"
        size = 4_000_000 // (4 if quantization == "int8" else 1) // (2 if arch.endswith("2") else 1)
        rows.append(
            {
                "architecture": arch,
                "variant": variant,
                "technique": technique,
                "quantization": quantization,
                "params": 1_000_000 if arch.endswith("2") else 2_000_000,
                "size_bytes": size,
                "gzip_bytes": int(size * 0.9),
                "test_balanced_accuracy": row[("value", "test", "balanced_accuracy")],
                "test_balanced_accuracy_ci_low": row[("ci_low", "test", "balanced_accuracy")],
                "test_balanced_accuracy_ci_high": row[("ci_high", "test", "balanced_accuracy")],
                "test_macro_f1": row[("value", "test", "macro_f1")],
                "val_balanced_accuracy": row[("value", "val", "balanced_accuracy")],
                "p50_ms": 5.0 + 3 * position if tflite else np.nan,
                "avg_ms": 5.5 + 3 * position if tflite else np.nan,
                "latency_target": "host" if tflite else None,
                "tflite_path": (
                    f"data/06_models/tflite/{arch}.{variant}/{technique}/{quantization}.tflite"
                    if tflite
                    else None
                ),
            }
        )
    table = pd.DataFrame(rows)
    files = table["tflite_path"].notna()
    best = table[files]["test_balanced_accuracy"].idxmax()
    table["recommended"] = table.index == best
    table["pareto_latency"] = files & (table.index % 2 == 0)
    table["pareto_size"] = files & (table.index % 3 == 0)
    return table


def make_run(
    root: Path, crops: Path, paths: list[str], *, with_leaderboard: bool
) -> dict[str, pd.DataFrame]:
    """A small run's outputs under root/data, in the formats the pipelines write; returns the
    tables written."""
    data = root / "data"
    table = face_manifest(paths)
    for source_path, crop_path in zip(paths, table["crop_path"], strict=True):
        target = data / "03_primary" / "face_crops" / crop_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(crops / source_path, target)
    table.to_parquet(data / "03_primary" / "face_manifest.parquet")
    crop_tree = FileTree(data / "03_primary" / "face_crops")
    examples = training_examples(table.astype({"emotion": "object", "role": "object"}))
    images = select_evaluation_images(table, crop_tree, examples, EVALUATION, EMOTIONS)
    parts = [
        evaluate_cell(
            images=images,
            evaluation=EVALUATION,
            emotions=EMOTIONS,
            cell={"architecture": arch, "variant": variant},
            **predictions(images, seed),
        )
        for seed, (arch, variant) in enumerate(CELLS)
    ]
    metrics, subgroups, _, confusion = (
        pd.concat([part[index] for part in parts], ignore_index=True) for index in range(4)
    )
    reporting = data / "08_reporting"
    (reporting / "evaluation").mkdir(parents=True)
    metrics.to_csv(reporting / "evaluation_metrics.csv", index=False)
    subgroups.to_csv(reporting / "subgroup_metrics.csv", index=False)
    confusion.to_csv(reporting / "evaluation" / "confusion_matrices.csv", index=False)
    tables = {"evaluation_metrics": metrics, "subgroup_metrics": subgroups}
    if with_leaderboard:
        tables["leaderboard"] = leaderboard(metrics)
        tables["leaderboard"].to_csv(reporting / "leaderboard.csv", index=False)
    return tables


def write_kernel_spec(folder: Path) -> None:
    """A `python3` kernel running this interpreter, found first through JUPYTER_PATH."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )


@pytest.fixture(scope="module")
def notebook_project(tmp_path_factory, request) -> Callable[..., tuple]:
    """A function returning a fresh project copy with a small run and the notebooks in it, and
    the run's tables (crops: the evaluation tests' crops_root and crop_paths fixtures)."""
    crops, paths = request.getfixturevalue("crops_root"), request.getfixturevalue("crop_paths")
    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter)

    def build(*, with_leaderboard: bool = True) -> tuple[Path, dict[str, pd.DataFrame]]:
        root = make_project_copy(tmp_path_factory.mktemp("notebook_project"))
        shutil.copytree(PROJECT_ROOT / "notebooks", root / "notebooks")
        base_sources = yaml.safe_load(
            (root / "conf" / "base" / "parameters_label_harmonization.yml").read_text()
        )["sources"]
        sources = {name: base_sources[name] for name in ("kdef", "cafe", "guesswhat")}
        sources[LICENSED] = {
            "format": "folder",
            "path": "/data/licensed/some_set",
            "population": "adult",
            "role": "train",
        }
        local = root / "conf" / "local"
        local.joinpath("parameters_label_harmonization.yml").write_text(
            yaml.safe_dump({"sources": sources})
        )
        base_catalog = "\n".join(p.read_text() for p in (root / "conf" / "base").glob("catalog*"))
        if "\nleaderboard:" not in f"\n{base_catalog}":
            local.joinpath("catalog_reporting.yml").write_text(
                yaml.safe_dump({"leaderboard": LEADERBOARD_ENTRY})
            )
        return root, make_run(root, crops, paths, with_leaderboard=with_leaderboard)

    build.jupyter = jupyter  # type: ignore[attr-defined]
    return build


def execute(notebook: Path, root: Path, jupyter: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run ``notebook`` (copied into ``root``) in its own kernel from root/notebooks."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    book = nbformat.read(root / "notebooks" / notebook.name, as_version=4)
    client = NotebookClient(
        book,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(root / "notebooks")}},
    )
    client.execute()
    return book


def outputs(book: nbformat.NotebookNode) -> str:
    """Every text output of the executed notebook (streams, plain and HTML results)."""
    texts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            data = output.get("data", {})
            texts.extend(str(data.get(kind, "")) for kind in ("text/plain", "text/html"))
    return "\n".join(texts)


def images(book: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in book.cells
        for output in cell.get("outputs", [])
    )


def test_notebooks_are_committed_clean():
    assert [p.name for p in NOTEBOOKS] == [
        "01_face_manifest.ipynb",
        "02_model_comparison.ipynb",
        "03_error_analysis.ipynb",
    ]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        code = [cell for cell in book.cells if cell.cell_type == "code"]
        assert code[0].source.strip().startswith("%load_ext kedro.ipython"), path.name
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        source = "\n".join(cell.source for cell in code)
        assert "catalog.load(" in source, path.name
        for forbidden in ("pd.read_", "open(", "to_csv", "to_parquet", "import tensorflow"):
            assert forbidden not in source, f"{path.name}: {forbidden}"


def test_every_notebook_runs_on_a_small_run(notebook_project, monkeypatch):
    root, tables = notebook_project()
    books = {p.name: execute(p, root, notebook_project.jupyter, monkeypatch) for p in NOTEBOOKS}

    manifest_book = books["01_face_manifest.ipynb"]
    text = outputs(manifest_book)
    assert "cafe" in text and "guesswhat" in text
    assert f"not shown (not demo data): {LICENSED}" in text
    assert images(manifest_book) >= 2  # the counts plot and the sample grid

    board = tables["leaderboard"]
    best = board[board["recommended"]].iloc[0]
    comparison = outputs(books["02_model_comparison.ipynb"])
    assert f"from the leaderboard: {len(board)} models and files" in comparison
    assert best["tflite_path"] in comparison
    assert images(books["02_model_comparison.ipynb"]) == 3  # vs latency, vs size, per cell

    errors = outputs(books["03_error_analysis.ipynb"])
    chosen = " ".join(best[FILE_COLUMNS])
    assert f"model: {chosen}, split: test" in errors  # the recommended file by default
    subgroups = tables["subgroup_metrics"]
    gaps = subgroups[subgroups["group"].str.startswith("gap")].dropna(subset=["value"])
    assert len(gaps) and gaps.sort_values("value")["note"].iloc[-1] in errors
    # confusion matrix, recall per class, the chosen model's gaps
    assert images(books["03_error_analysis.ipynb"]) == 3


def test_model_comparison_falls_back_to_evaluation_metrics(notebook_project, monkeypatch):
    root, tables = notebook_project(with_leaderboard=False)
    notebook = PROJECT_ROOT / "notebooks" / "02_model_comparison.ipynb"
    book = execute(notebook, root, notebook_project.jupyter, monkeypatch)
    text = outputs(book)
    assert "no leaderboard yet" in text
    assert "no median latency (ms) in this table" in text
    metrics = tables["evaluation_metrics"]
    best = metrics[(metrics["metric"] == "balanced_accuracy") & (metrics["split"] == "test")]
    assert f"{best['value'].max():.3f}" in text  # the table's top score
    assert images(book) == 1  # the per-cell bars only
