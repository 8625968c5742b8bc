"""`make run` in one go, at test scale: demo data, then the default pipeline (every pipeline but
demo_data) on a one-cell grid, ending with the HTML report and the leaderboard, their paths in
the log, and every node of the run timed as completed.

The grid is MobileNetV3-Small on public_guesswhat at 32 px, one epoch of two steps, optimized
with the baseline (float32 and int8), pruning and PQAT; two fine-tuning steps are fewer than the
pruning frequency, so pruning is unsupported and PQAT is skipped with nothing to start from:
both become rows with their reasons, shown in the report, and the run goes on (the fine-tuning
steps and the pruning frequency are runtime parameters, which the quick demo's cuts do not
override). Profiling on the host (no phone
here). The demo data is the session's shared copy (``demo_raw``), generated once for every
end-to-end test.

The run also has a technique the project does not ship, added the way a user adds one (one
registry row, one builder function, its name in conf): ``float16_only``. It must reach every
stage: optimization_summary, evaluation, profiling, the leaderboard and a model card.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import yaml

from pediatric_emotion.grid import TECHNIQUES, Technique, register_technique
from tests.conftest import TINY_TRAINING, project_with_demo_data, run_pipelines

pytestmark = pytest.mark.slow

TINY = {
    **TINY_TRAINING,
    "device_profiling": {"warmup_runs": 1, "runs": 3},
    "optimization": {"fine_tuning": {"max_steps_per_epoch": 2}, "pruning": {"frequency": 10}},
}


def float16_only(*, model, cell, technique, **inputs):
    """A technique defined outside the project: float16 weights of the trained float model."""
    from pediatric_emotion.modeling.architectures import float32_copy
    from pediatric_emotion.pipelines.optimization.cell import cell_context
    from pediatric_emotion.pipelines.optimization.conversion import tflite_files

    return tflite_files(cell_context(cell, **inputs), float32_copy(model), technique)


@pytest.fixture(scope="module")
def float16_technique():
    """``float16_only`` in the registry for this module's run only."""
    register_technique(Technique("float16_only", float16_only, "float16 weights, nothing else"))
    yield "float16_only"
    TECHNIQUES.pop("float16_only")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, demo_raw, float16_technique):
    root = project_with_demo_data(tmp_path_factory.mktemp("default_run"), demo_raw)
    base = yaml.safe_load((root / "conf/base/parameters_training.yml").read_text())
    grid = {
        "architectures": {"mobilenet_v3_small": base["architectures"]["mobilenet_v3_small"]},
        "variants": {"public_guesswhat": base["variants"]["public_guesswhat"]},
    }
    (root / "conf/local/parameters_training.yml").write_text(yaml.safe_dump(grid))
    # the techniques are part of the pipeline's shape, read from conf (not runtime parameters)
    optimization = yaml.safe_load((root / "conf/base/parameters_optimization.yml").read_text())
    optimization["optimization"]["techniques"] = ["baseline", "pruned", "pqat", float16_technique]
    optimization["optimization"]["quantizations"][float16_technique] = ["float16"]
    (root / "conf/local/parameters_optimization.yml").write_text(yaml.safe_dump(optimization))
    handler = logging.Handler(logging.INFO)
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        run_pipelines(root, ["__default__"], TINY)
    finally:
        logging.getLogger().removeHandler(handler)
    return root, records


def test_the_run_ends_with_the_report_and_the_leaderboard(default_run):
    root, records = default_run
    reports = root / "data/08_reporting"
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "not the study" in page
    assert "Files not made" in page and "exceeds the 2 fine-tuning steps" in page
    board = pd.read_csv(reports / "leaderboard.csv")
    files = board[board["tflite_path"].notna()]
    assert sorted(files["technique"] + "/" + files["quantization"]) == [
        "baseline/float32",
        "baseline/int8",
        "float16_only/float16",
    ]
    assert files["test_balanced_accuracy"].notna().all()
    assert files["latency_ms"].notna().all()
    refused = board[board["technique"].isin(["pruned", "pqat"])].set_index("technique")
    assert refused["status"].to_dict() == {"pruned": "unsupported", "pqat": "skipped"}
    assert "pruning.frequency 10 exceeds the 2 fine-tuning steps" in refused.loc["pruned", "reason"]
    assert "no pruned model to start from" in refused.loc["pqat", "reason"]
    assert not (root / "data/06_models/optimization").exists() or not any(
        (root / "data/06_models/optimization").iterdir()
    )
    assert set(board["architecture"]) == {"mobilenet_v3_small"}
    assert f"Leaderboard: {reports / 'leaderboard.csv'}" in records
    assert f"HTML report: {reports / 'report.html'}" in records


def test_every_node_of_the_default_run_completed(default_run):
    root, _ = default_run
    timing = pd.read_csv(root / "data/08_reporting/run_timing.csv")
    assert set(timing["status"]) == {"completed"}
    for expected in (
        "crop_faces_node",
        "mobilenet_v3_small.public_guesswhat.train_classifier_node",
        "mobilenet_v3_small.public_guesswhat.pqat_node",
        "summarize_profiling_node",
        "build_report_node",
    ):
        assert expected in set(timing["node"]), expected


def test_a_technique_added_with_one_registry_row_reaches_every_stage(default_run):
    root, _ = default_run
    reports = root / "data/08_reporting"
    summary = pd.read_csv(reports / "optimization_summary.csv")
    row = summary[summary["technique"] == "float16_only"].squeeze()
    assert (row["quantization"], row["status"], row["weight_dtypes"]) == (
        "float16",
        "ok",
        "float16",
    )
    assert (
        root / "data/06_models/tflite/mobilenet_v3_small.public_guesswhat/float16_only"
    ).is_dir()
    metrics = pd.read_csv(reports / "evaluation_metrics.csv")
    scored = metrics[(metrics["technique"] == "float16_only") & (metrics["split"] == "test")]
    assert scored.set_index("metric").loc["balanced_accuracy", "value"] >= 0
    profiled = pd.read_csv(reports / "profiling_results.csv")
    assert (profiled["technique"] == "float16_only").any()
    board = pd.read_csv(reports / "leaderboard.csv").set_index("technique")
    assert board.loc["float16_only", "test_balanced_accuracy"] == pytest.approx(
        scored.set_index("metric").loc["balanced_accuracy", "value"]
    )
    assert board.loc["float16_only", "latency_ms"] > 0
    card = next((reports / "model_cards").rglob("float16_only/float16.md")).read_text()
    assert "float16_only: float16 weights, nothing else" in card
