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

The run is tracked, as a user's run is, against a real ``mlflow server`` (SQLite backend, a
temporary folder) started for this module: the run, the cell's child run with the leaderboard's
figures and its history, the reporting artifacts (no face crop) and the registered recommended
file are read back through ``MlflowClient``, and the registered model, served by ``mlflow models
serve``, answers face crops of the test role with the LiteRT interpreter's classes.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pediatric_emotion.grid import TECHNIQUES, Technique, register_technique
from tests.conftest import TINY_TRAINING, project_with_demo_data, run_pipelines
from tests.tracking.servers import mlflow_server, model_server, post_json

pytestmark = pytest.mark.slow

TINY = {
    **TINY_TRAINING,
    "device_profiling": {"warmup_runs": 1, "runs": 3},
    "optimization": {"fine_tuning": {"max_steps_per_epoch": 2}, "pruning": {"frequency": 10}},
    # a one-epoch model is near chance: recommend the best file anyway, to register it
    "reporting": {"min_balanced_accuracy": 0.0},
    # every test picture (so the clean row is the evaluation's figure), three corruptions
    "robustness": {
        "images_per_class": None,
        "severities": [1, 5],
        "corruptions": ["jpeg", "rotation", "occlusion_mouth"],
    },
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
def tracking_server(tmp_path_factory):
    """A real ``mlflow server`` for this module's run; its URI."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow_server")) as uri:
        yield uri


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, demo_raw, float16_technique, tracking_server):
    import mlflow

    root = project_with_demo_data(tmp_path_factory.mktemp("default_run"), demo_raw)
    (root / "conf/local/mlflow.yml").unlink()  # the shipped setting: tracking on
    base = yaml.safe_load((root / "conf/base/parameters_training.yml").read_text())
    grid = {
        "architectures": {"mobilenet_v3_small": base["architectures"]["mobilenet_v3_small"]},
        "variants": {"public_guesswhat": base["variants"]["public_guesswhat"]},
    }
    (root / "conf/local/parameters_training.yml").write_text(yaml.safe_dump(grid))
    # the techniques are part of the pipeline's shape, read from conf (not runtime parameters)
    optimization = yaml.safe_load((root / "conf/base/parameters_optimization.yml").read_text())
    optimization["optimization"]["techniques"] = [
        *["baseline", "pruned", "pqat", "distilled"],
        float16_technique,
    ]
    optimization["optimization"]["quantizations"][float16_technique] = ["float16"]
    (root / "conf/local/parameters_optimization.yml").write_text(yaml.safe_dump(optimization))
    handler = logging.Handler(logging.INFO)
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", tracking_server)
            patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
            run_pipelines(root, ["__default__"], TINY)
    finally:
        logging.getLogger().removeHandler(handler)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
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
        "distilled/int8",
        "float16_only/float16",
    ]
    assert files["test_balanced_accuracy"].notna().all()
    assert files["latency_ms"].notna().all()
    refused = board[board["technique"].isin(["pruned", "pqat"])].set_index("technique")
    assert refused["status"].to_dict() == {"pruned": "unsupported", "pqat": "skipped"}
    assert "pruning.frequency 10 exceeds the 2 fine-tuning steps" in refused.loc["pruned", "reason"]
    assert "no pruned model to start from" in refused.loc["pqat", "reason"]
    kept = {p.name for p in (root / "data/06_models/optimization").iterdir()}
    assert kept == {"mobilenet_v3_small.public_guesswhat.distilled.keras"}  # no pruned model
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


def test_the_distilled_file_learned_from_its_teacher_and_is_reported_beside_it(default_run):
    """One architecture in the grid: the best of the grid is the cell's own model, so the
    teacher's test balanced accuracy is the Keras model's in evaluation_metrics (the same test
    pictures); its logits were computed once for every train image."""
    root, records = default_run
    reports = root / "data/08_reporting"
    teachers = pd.read_csv(reports / "distillation_teachers.csv")
    (teacher,) = teachers.to_dict("records")
    assert (teacher["architecture"], teacher["variant"]) == (
        "mobilenet_v3_small",
        "public_guesswhat",
    )
    assert (teacher["teacher"], teacher["kind"]) == (CELL, "best_of_grid")
    examples = pd.read_parquet(root / f"data/05_model_input/{CELL}.training_examples.parquet")
    logits = pd.read_parquet(
        root / f"data/05_model_input/distillation/{CELL}.teacher_logits.parquet"
    )
    assert teacher["images"] == len(logits) == (examples["split"] == "train").sum()
    assert set(logits["crop_path"]) == set(examples.loc[examples["split"] == "train", "crop_path"])
    metrics = pd.read_csv(reports / "evaluation_metrics.csv")
    keras_test = metrics[
        (metrics["technique"] == "keras")
        & (metrics["split"] == "test")
        & (metrics["metric"] == "balanced_accuracy")
    ]["value"].item()
    assert teacher["test_balanced_accuracy"] == pytest.approx(keras_test, abs=1e-9)
    summary = pd.read_csv(reports / "optimization_summary.csv").set_index("technique")
    assert summary.loc["distilled", "status"] == "ok"
    assert any("Distilling into" in message for message in records)
    profiled = pd.read_csv(reports / "profiling_results.csv")
    assert (profiled["technique"] == "distilled").any()
    board = pd.read_csv(reports / "leaderboard.csv").set_index(["technique", "quantization"])
    row = board.loc[("distilled", "int8")]
    assert row["teacher"] == CELL and row["teacher_params"] == teacher["params"]
    assert row["teacher_test_balanced_accuracy"] == pytest.approx(keras_test, abs=1e-9)
    baseline = board.loc[("baseline", "int8"), "test_balanced_accuracy"]
    if keras_test > baseline:  # the teacher (the float model) beats the int8 baseline
        expected = (row["test_balanced_accuracy"] - baseline) / (keras_test - baseline)
        assert row["gap_closed"] == pytest.approx(expected)
    else:
        assert pd.isna(row["gap_closed"])
    assert board.drop(index=[("distilled", "int8")])["teacher"].isna().all()
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert "<h2>Distillation</h2>" in page


def test_every_model_and_file_is_swept_and_the_report_plots_it(default_run):
    root, _ = default_run
    reports = root / "data/08_reporting"
    robustness = pd.read_csv(reports / "robustness_metrics.csv")
    models = set(zip(robustness["technique"], robustness["quantization"], strict=True))
    assert models == {
        ("keras", "float32"),
        ("baseline", "float32"),
        ("baseline", "int8"),
        ("distilled", "int8"),
        ("float16_only", "float16"),
    }
    conditions = set(zip(robustness["corruption"], robustness["severity"], strict=True))
    assert conditions == {("clean", 0)} | {
        (c, s) for c in ("jpeg", "rotation", "occlusion_mouth") for s in (1, 5)
    }
    metrics = pd.read_csv(reports / "evaluation_metrics.csv")
    test = metrics[(metrics["split"] == "test") & (metrics["metric"] == "balanced_accuracy")]
    figures = test.set_index(["technique", "quantization"])["value"]
    clean = robustness[robustness["corruption"] == "clean"]
    for _, row in clean.iterrows():  # the same crops through the same models
        expected = figures[(row["technique"], row["quantization"])]
        assert row["balanced_accuracy"] == pytest.approx(expected, abs=1e-9)
    board = pd.read_csv(reports / "leaderboard.csv")
    files = board[board["tflite_path"].notna()]
    assert files["corrupted_balanced_accuracy"].notna().all() and files["mce"].notna().all()
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert "Robustness to camera conditions" in page and "Holds up best" in page


CELL = "mobilenet_v3_small.public_guesswhat"


def _tracked(tracking_server):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    (experiment,) = [e for e in client.search_experiments() if e.name == "pediatric_emotion"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return client, experiment.experiment_id, parent


def test_the_run_its_cell_and_its_files_are_read_back_from_the_server(default_run, tracking_server):
    from tests.tracking.test_artifacts import _artifacts, _assert_no_face_crop

    root, _ = default_run
    client, experiment_id, parent = _tracked(tracking_server)
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert params["run.demo_data"] == "true" and params["run.environment"] == "local"
    assert "run.git_commit" in params and params["training.seed"] == "42"
    files = _artifacts(client, parent.info.run_id)
    assert {"report.html", "leaderboard.csv", "recommendation.json"} <= set(files)
    assert f"training/{CELL}.learning_curve.png" in files
    assert any(f.startswith(f"evaluation/{CELL}/") and f.endswith(".png") for f in files)
    assert any(f.startswith("model_cards/") for f in files)
    _assert_no_face_crop(files)

    (cell,) = client.search_runs([experiment_id], f"tags.cell = '{CELL}'")
    assert cell.data.tags["mlflow.parentRunId"] == parent.info.run_id
    board = pd.read_csv(root / "data/08_reporting/leaderboard.csv")
    for row in board[board["tflite_path"].notna()].itertuples():
        logged = cell.data.metrics[f"{row.technique}.{row.quantization}.test_balanced_accuracy"]
        assert logged == pytest.approx(row.test_balanced_accuracy)
        assert cell.data.metrics[f"{row.technique}.{row.quantization}.size_bytes"] == row.size_bytes
    history = json.loads((root / f"data/07_model_output/training/{CELL}.history.json").read_text())
    logged = client.get_metric_history(cell.info.run_id, "val_balanced_accuracy")
    logged = sorted(logged, key=lambda m: m.step)
    assert [m.step for m in logged] == history["epoch"]
    assert [m.value for m in logged] == pytest.approx(history["val_balanced_accuracy"])


def _recommended_version(default_run, tracking_server):
    root, _ = default_run
    client, _, parent = _tracked(tracking_server)
    record = json.loads((root / "data/08_reporting/recommendation.json").read_text())
    recommended = record["recommended"]
    (version,) = client.search_model_versions("name = 'pediatric_emotion'")
    assert parent.data.tags["registered_model"] == f"models:/pediatric_emotion/{version.version}"
    return root, recommended, version


def test_the_recommended_file_is_registered_with_its_figures(default_run, tracking_server):
    root, recommended, version = _recommended_version(default_run, tracking_server)
    assert version.run_id == _tracked(tracking_server)[2].info.run_id
    assert (version.tags["technique"], version.tags["quantization"]) == (
        recommended["technique"],
        recommended["quantization"],
    )
    board = pd.read_csv(root / "data/08_reporting/leaderboard.csv")
    row = board[
        (board["technique"] == recommended["technique"])
        & (board["quantization"] == recommended["quantization"])
    ].squeeze()
    assert float(version.tags["test_balanced_accuracy"]) == pytest.approx(
        row["test_balanced_accuracy"]
    )


def test_the_served_model_answers_face_crops_with_the_litert_classes(
    default_run, tracking_server, tmp_path
):
    from pediatric_emotion.datasets import load_tflite
    from pediatric_emotion.harmonized_crops import crop_paths
    from pediatric_emotion.modeling.tflite_runner import tflite_probabilities

    root, recommended, version = _recommended_version(default_run, tracking_server)
    manifest = pd.read_parquet(root / "data/03_primary/face_manifest.parquet")
    crops = crop_paths(root / "data/03_primary/face_crops", manifest[manifest["role"] == "test"])
    crops = crops[:12]
    model = load_tflite(root / recommended["tflite_path"])
    expected = tflite_probabilities(model.content, model.spec, crops, where="reference")
    labels = model.spec["labels"]
    images = [[base64.b64encode(Path(path).read_bytes()).decode()] for path in crops]
    with model_server(
        f"models:/pediatric_emotion/{version.version}", tracking_server, tmp_path
    ) as url:
        answer = post_json(
            f"{url}/invocations", {"dataframe_split": {"columns": ["image"], "data": images}}
        )
    predictions = answer["predictions"]
    assert [row["emotion"] for row in predictions] == [labels[i] for i in expected.argmax(axis=1)]
    for row, scores in zip(predictions, expected, strict=True):
        assert [row[f"p_{label}"] for label in labels] == pytest.approx(scores.tolist(), abs=1e-6)
