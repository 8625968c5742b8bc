"""The reporting pipeline as Kedro sees it: found by find_pipelines and in the default run, its
catalog entries, and a whole run through a Kedro session on a tiny project with hand-made tables."""

import json
import logging

import pandas as pd
import yaml
from kedro.framework.project import configure_project

from pediatric_emotion.pipeline_registry import register_pipelines
from pediatric_emotion.pipelines.reporting.leaderboard import LEADERBOARD_COLUMNS
from tests.pipelines.reporting.conftest import FOLDER, make_tables

INPUT_FILES = {
    "training_summary": "data/08_reporting/training_summary.csv",
    "optimization_summary": "data/08_reporting/optimization_summary.csv",
    "evaluation_metrics": "data/08_reporting/evaluation_metrics.csv",
    "profiling_results": "data/08_reporting/profiling_results.csv",
    "subgroup_metrics": "data/08_reporting/subgroup_metrics.csv",
    "confusion_matrices": "data/08_reporting/evaluation/confusion_matrices.csv",
    "robustness_metrics": "data/08_reporting/robustness_metrics.csv",
    "robustness_summary": "data/08_reporting/robustness_summary.csv",
    "distillation_teachers": "data/08_reporting/distillation_teachers.csv",
}
PUBLISHED_FILE = "data/08_reporting/published_comparison.csv"


def test_reporting_is_registered_and_in_the_default_run(project_root):
    configure_project("pediatric_emotion")
    pipelines = register_pipelines()
    reporting = pipelines["reporting"]
    assert {node.name for node in reporting.nodes} == {
        "compare_with_published_node",
        "build_leaderboard_node",
        "plot_pareto_fronts_node",
        "write_model_cards_node",
        "build_report_node",
    }
    assert {node.name for node in reporting.nodes} <= {
        n.name for n in pipelines["__default__"].nodes
    }
    assert reporting.inputs() == {
        *INPUT_FILES,
        "params:reporting",
        "params:variants",
        "params:emotions",
        "params:evaluation",  # the study's numbers and this run's labels
    }
    assert "published_comparison" in reporting.all_outputs()
    # every input is an output of the pipeline that makes it
    made = set().union(*(p.all_outputs() for n, p in pipelines.items() if n != "reporting"))
    assert set(INPUT_FILES) <= made
    catalog = {}
    for path in (project_root / "conf/base").glob("catalog*.yml"):
        catalog.update(yaml.safe_load(path.read_text()))
    for name, path in {**INPUT_FILES, "published_comparison": PUBLISHED_FILE}.items():
        assert catalog[name]["filepath"] == path


def test_a_whole_run_on_a_tiny_project(kedro_project, caplog):
    root = kedro_project.root
    for name, table in make_tables().items():
        if name not in INPUT_FILES:
            continue  # made by the run
        path = root / INPUT_FILES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)

    with caplog.at_level(logging.INFO):
        kedro_project("reporting")

    reports = root / "data/08_reporting"
    board = pd.read_csv(reports / "leaderboard.csv")
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert len(board) == 5 and board["recommended"].sum() == 1
    chosen = json.loads((reports / "recommendation.json").read_text())
    assert chosen["status"] == "recommended"
    assert chosen["recommended"]["tflite_path"] == f"{FOLDER}/float32.tflite"
    assert chosen["run_label"] == "this run (demo data)"  # from globals.yml
    comparison = pd.read_csv(root / PUBLISHED_FILE)
    assert set(comparison["source"]) == {"study (real CAFE, real phone)", "this run (demo data)"}
    ours = comparison[comparison["source"] == "this run (demo data)"]
    assert set(ours["architecture"]) == {"net", "big", "fer_mini_xception"}  # and the peer
    assert sorted(p.name for p in (reports / "pareto").iterdir()) == [
        "balanced_accuracy_vs_latency.png",
        "balanced_accuracy_vs_size.png",
    ]
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "not the study" in page
    cards = sorted(
        p.relative_to(reports / "model_cards").as_posix()
        for p in (reports / "model_cards").rglob("*.md")
    )
    assert cards == ["net.demo/baseline/float32.md", "net.demo/baseline/int8.md"]
    assert f"Leaderboard: {reports / 'leaderboard.csv'}" in caplog.text
    assert f"HTML report: {reports / 'report.html'}" in caplog.text
