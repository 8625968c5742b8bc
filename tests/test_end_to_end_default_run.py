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
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY_TRAINING, project_with_demo_data, run_pipelines

pytestmark = pytest.mark.slow

TINY = {
    **TINY_TRAINING,
    "device_profiling": {"warmup_runs": 1, "runs": 3},
    "optimization": {"fine_tuning": {"max_steps_per_epoch": 2}, "pruning": {"frequency": 10}},
}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, demo_raw):
    root = project_with_demo_data(tmp_path_factory.mktemp("default_run"), demo_raw)
    base = yaml.safe_load((root / "conf/base/parameters_training.yml").read_text())
    grid = {
        "architectures": {"mobilenet_v3_small": base["architectures"]["mobilenet_v3_small"]},
        "variants": {"public_guesswhat": base["variants"]["public_guesswhat"]},
    }
    (root / "conf/local/parameters_training.yml").write_text(yaml.safe_dump(grid))
    # the techniques are part of the pipeline's shape, read from conf (not runtime parameters)
    optimization = yaml.safe_load((root / "conf/base/parameters_optimization.yml").read_text())
    optimization["optimization"]["techniques"] = ["baseline", "pruned", "pqat"]
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
    assert set(board["arch"]) == {"mobilenet_v3_small"}
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
