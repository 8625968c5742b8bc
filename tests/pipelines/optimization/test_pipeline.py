"""The optimization pipeline as Kedro sees it: one node per technique in every namespace of the
grid, configuration checked when the pipeline is built, the summary table, the catalog patterns."""

import re

import pandas as pd
import pytest
import yaml

from pediatric_emotion.grid import (
    TECHNIQUES,
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    training_cells,
)
from pediatric_emotion.modeling.tflite_export import QUANTIZATIONS
from pediatric_emotion.pipelines.optimization.nodes import SUMMARY_COLUMNS, summarize_optimization
from pediatric_emotion.pipelines.optimization.pipeline import create_pipeline
from tests.conftest import kedro_cli


def test_every_cell_gets_every_technique_in_its_namespace(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    parameters = load_project_parameters(project_root)
    pipeline = create_pipeline()
    techniques = configured_techniques(parameters)
    # the default runs every technique but QAT after distillation (the paper environment's)
    assert techniques == [t for t in TECHNIQUES if t != "distilled_qat"]
    for arch, variant in optimized_cells(parameters):
        namespace = f"{arch}.{variant}"
        for technique in techniques:
            node = pipeline.filter(node_names=[f"{namespace}.{technique}_node"]).nodes[0]
            source = TECHNIQUES[technique].starts_from
            model = f"{namespace}.model" if source is None else f"{namespace}.{source}_model"
            assert node.inputs[0] == model
            assert f"{namespace}.training_examples" in node.inputs
            if technique == "distilled":
                assert f"{namespace}.teacher_logits" in node.inputs
            assert f"params:architectures.{arch}" in node.inputs
            assert f"{namespace}.{technique}_tflite" in node.outputs
            assert node.func.keywords["cell"] == {"architecture": arch, "variant": variant}
            assert node.func.__name__ != "partial"
    summary = pipeline.filter(node_names=["summarize_optimization_node"]).nodes[0]
    assert len(summary.inputs) == len(optimized_cells(parameters)) * len(techniques)


def test_each_student_has_its_teacher_node_in_its_own_namespace(project_root, monkeypatch):
    """The teacher node reads every model of the cell's data copy (best_of_grid) and sits in the
    student's namespace: Kedro finds no namespace broken by a node outside it."""
    import warnings

    monkeypatch.chdir(project_root)
    parameters = load_project_parameters(project_root)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*interrupted.*")
        pipeline = create_pipeline()
    architectures = list(parameters["architectures"])
    for arch, variant in optimized_cells(parameters):
        namespace = f"{arch}.{variant}"
        teacher = pipeline.filter(node_names=[f"{namespace}.teacher_logits_node"]).nodes[0]
        assert teacher.outputs == [f"{namespace}.teacher_logits", f"{namespace}.teacher"]
        for member in architectures:
            assert f"{member}.{variant}.model" in teacher.inputs
            assert f"{member}.{variant}.training_metrics" in teacher.inputs
    table = pipeline.filter(node_names=["summarize_teachers_node"]).nodes[0]
    assert table.outputs == ["distillation_teachers"]
    assert len(table.inputs) == len(optimized_cells(parameters))


def test_a_teacher_only_architecture_is_trained_and_teaches_but_is_never_optimized(
    project_root, monkeypatch
):
    """Trained and its Keras model evaluated like any cell; a member every student's teacher
    node may choose; no technique node, no TFLite file to predict with."""
    from pediatric_emotion.grid import cells
    from pediatric_emotion.pipelines.evaluation import pipeline as evaluation_pipeline
    from pediatric_emotion.pipelines.optimization import pipeline as optimization_pipeline
    from pediatric_emotion.pipelines.training import pipeline as training_pipeline

    parameters = load_project_parameters(project_root)
    parameters["architectures"]["big_teacher"] = {"application": "ResNet50", "teacher_only": True}
    assert ("big_teacher", "public_guesswhat") in training_cells(parameters)
    assert all(arch != "big_teacher" for arch, _ in optimized_cells(parameters))
    for module in (cells, optimization_pipeline, evaluation_pipeline):
        monkeypatch.setattr(module, "load_project_parameters", lambda *a: parameters)
    trained = {n.name for n in training_pipeline.create_pipeline().nodes}
    assert "big_teacher.public_guesswhat.train_classifier_node" in trained
    optimization = optimization_pipeline.create_pipeline()
    assert not any(n.name.startswith("big_teacher.") for n in optimization.nodes)
    teacher = optimization.filter(
        node_names=["mobilenet_v2.public_guesswhat.teacher_logits_node"]
    ).nodes[0]
    assert "big_teacher.public_guesswhat.model" in teacher.inputs
    evaluated = {n.name for n in evaluation_pipeline.create_pipeline().nodes}
    assert "big_teacher.public_guesswhat.predict_keras_node" in evaluated
    assert not any(
        name.startswith("big_teacher.") and name.endswith("_tflite_node") for name in evaluated
    )


def test_technique_list_is_checked_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match="unknown"):
        configured_techniques({"optimization": {"techniques": ["baseline", "distilling"]}})
    with pytest.raises(ValueError, match="pqat starts from the pruned model"):
        configured_techniques({"optimization": {"techniques": ["baseline", "pqat"]}})
    assert configured_techniques({"optimization": {"techniques": ["clustered", "cqat"]}}) == [
        "clustered",
        "cqat",
    ]


def test_variants_select_the_cells_to_optimize(project_root):
    parameters = load_project_parameters(project_root)
    cells = training_cells(parameters)
    parameters["optimization"]["variants"] = ["public"]
    assert optimized_cells(parameters) == [(a, v) for a, v in cells if v == "public"]
    parameters["optimization"]["variants"] = ["nope"]
    with pytest.raises(ValueError, match="nope"):
        optimized_cells(parameters)


def _rows(arch, technique, quantization, size, gzipped, *, status="ok"):
    return {
        "architecture": arch,
        "variant": "public",
        "technique": technique,
        "quantization": quantization,
        "size_bytes": size,
        "gzip_bytes": gzipped,
        "status": status,
    }


def test_summary_sizes_are_relative_to_the_cells_float32_baseline():
    table = summarize_optimization(
        **{
            "a.public.baseline": [
                _rows("a", "baseline", "float32", 1000, 900),
                _rows("a", "baseline", "int8", 260, 200),
            ],
            "a.public.pruned": [_rows("a", "pruned", "float32", 1000, 450)],
            "b.public.baseline": [_rows("b", "baseline", "float32", 4000, 3600)],
            "b.public.qat": [
                {**_rows("b", "qat", "int8", None, None, status="unsupported"), "reason": "why"}
            ],
        }
    )
    assert list(table.columns) == SUMMARY_COLUMNS
    by_key = table.set_index(["architecture", "technique", "quantization"])
    assert by_key.loc[("a", "baseline", "int8"), "size_vs_baseline_float32"] == 0.26
    assert by_key.loc[("a", "pruned", "float32"), "gzip_vs_baseline_float32"] == 0.5
    assert by_key.loc[("b", "baseline", "float32"), "size_vs_baseline_float32"] == 1.0
    assert pd.isna(by_key.loc[("b", "qat", "int8"), "size_vs_baseline_float32"])
    assert by_key.loc[("b", "qat", "int8"), "reason"] == "why"


@pytest.mark.slow
def test_catalog_binds_every_optimization_output_to_its_pattern(project_root):
    stdout = kedro_cli(["catalog", "resolve-patterns", "-p", "optimization"], project_root)
    start = re.search(r"^[A-Za-z_][\w.]*:$", stdout, flags=re.MULTILINE)
    resolved = yaml.load(stdout[start.start() :], Loader=yaml.UnsafeLoader)  # our own CLI output
    parameters = load_project_parameters(project_root)
    for arch, variant in optimized_cells(parameters):
        namespace = f"{arch}.{variant}"
        for technique in configured_techniques(parameters):
            files = resolved[f"{namespace}.{technique}_tflite"]
            assert files["type"] == "pediatric_emotion.datasets.OptionalPartitionedDataset"
            assert files["path"].endswith(f"data/06_models/tflite/{namespace}/{technique}")
            assert files["dataset"] == "pediatric_emotion.datasets.TFLiteModelDataset"
            report = resolved[f"{namespace}.{technique}_report"]
            assert report["filepath"].endswith(
                f"data/07_model_output/optimization/{namespace}.{technique}.json"
            )
        for technique in ("pruned", "clustered"):  # PQAT / CQAT / PCQAT start from them
            model = resolved[f"{namespace}.{technique}_model"]
            assert (
                model["type"] == "pediatric_emotion.datasets.models.OptionalTensorFlowModelDataset"
            )
            assert model["filepath"].endswith(
                f"data/06_models/optimization/{namespace}.{technique}.keras"
            )
        assert resolved[f"{namespace}.training_examples"]["filepath"].endswith(
            f"data/05_model_input/{namespace}.training_examples.parquet"
        )


def test_paper_environment_optimizes_every_cell_with_full_fine_tuning(project_root, monkeypatch):
    base = load_project_parameters(project_root)
    monkeypatch.setenv("KEDRO_ENV", "paper")
    paper = load_project_parameters(project_root)
    assert set(configured_techniques(base)) <= set(configured_techniques(paper))
    assert "distilled_qat" in configured_techniques(paper)
    # every file the demo run writes, and the rest: all four post-training quantizations
    for technique, quantizations in base["optimization"]["quantizations"].items():
        assert set(quantizations) <= set(paper["optimization"]["quantizations"][technique])
    assert paper["optimization"]["quantizations"]["baseline"] == list(QUANTIZATIONS)
    assert optimized_cells(paper) == training_cells(paper)
    assert paper["optimization"]["fine_tuning"]["max_steps_per_epoch"] is None
    assert paper["optimization"]["pruning"]["frequency"] == 100


def test_a_technique_not_run_yet_gets_a_not_run_row(tmp_path):
    from pediatric_emotion.datasets import OptionalJSONDataset

    absent = OptionalJSONDataset(filepath=str(tmp_path / "b.public.pcqat.json"))
    assert absent.load() is None  # a node that has not run: no report file yet
    table = summarize_optimization(
        **{
            "b.public.baseline": [_rows("b", "baseline", "float32", 4000, 3600)],
            "b.public.pcqat": absent.load(),
        }
    )
    row = table.set_index("technique").loc["pcqat"]
    assert (row["architecture"], row["variant"], row["status"]) == ("b", "public", "not_run")
    assert "--namespaces=b.public" in row["reason"]
    absent.save([_rows("b", "pcqat", "int8", 900, 300)])
    assert absent.load()[0]["size_bytes"] == 900


def test_without_distillation_the_teachers_table_is_empty_with_its_columns(
    project_root, monkeypatch
):
    """Reporting reads distillation_teachers whatever the techniques: the node is always there."""
    from pediatric_emotion.grid import cells
    from pediatric_emotion.pipelines.optimization import pipeline as optimization_pipeline
    from pediatric_emotion.pipelines.optimization.distillation import summarize_teachers

    parameters = load_project_parameters(project_root)
    parameters["optimization"]["techniques"] = ["baseline"]
    monkeypatch.setattr(optimization_pipeline, "load_project_parameters", lambda: parameters)
    monkeypatch.setattr(cells, "load_project_parameters", lambda *a: parameters)
    pipeline = optimization_pipeline.create_pipeline()
    node = pipeline.filter(node_names=["summarize_teachers_node"]).nodes[0]
    assert node.inputs == [] and node.outputs == ["distillation_teachers"]
    assert not any(n.name.endswith("teacher_logits_node") for n in pipeline.nodes)
    empty = summarize_teachers()
    assert empty.empty and list(empty.columns)[:3] == ["architecture", "variant", "teacher"]
