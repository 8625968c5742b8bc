"""The evaluation pipeline as Kedro sees it: one namespace per cell of the grid, a TFLite node
per optimization technique where the cell is optimized, the grid's tables, the catalog patterns,
and (slow) a whole run on a tiny project: a Keras model and its TFLite files built here."""

import re

import pandas as pd
import pytest
import yaml

from pediatric_emotion.grid import (
    configured_techniques,
    load_project_parameters,
    optimized_cells,
    training_cells,
)
from pediatric_emotion.pipelines.evaluation.pipeline import CELL_OUTPUTS, create_pipeline
from tests.conftest import kedro_cli
from tests.pipelines.evaluation.conftest import EMOTIONS, manifest, training_examples


def test_every_cell_is_a_namespace_with_its_models(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    parameters = load_project_parameters(project_root)
    pipeline = create_pipeline()
    techniques = configured_techniques(parameters)
    optimized = optimized_cells(parameters)
    cells = training_cells(parameters)
    for arch, variant in cells:
        ns = f"{arch}.{variant}"
        keras = pipeline.filter(node_names=[f"{ns}.predict_keras_node"]).nodes[0]
        assert keras.inputs[0] == f"{ns}.model"
        assert f"params:architectures.{arch}" in keras.inputs
        assert keras.func.keywords["cell"] == {"architecture": arch, "variant": variant}
        assert keras.func.__name__ == "predict_keras"
        names = {n.name for n in pipeline.nodes if n.namespace == ns}
        expected_tflite = techniques if (arch, variant) in optimized else []
        assert names == {
            f"{ns}.select_evaluation_images_node",
            f"{ns}.predict_keras_node",
            f"{ns}.evaluate_cell_node",
            f"{ns}.evaluate_robustness_node",
            *(f"{ns}.predict_{t}_tflite_node" for t in expected_tflite),
        }
        robustness = pipeline.filter(node_names=[f"{ns}.evaluate_robustness_node"]).nodes[0]
        assert robustness.outputs == [f"{ns}.robustness_metrics"]
        assert {"robustness_images", "robustness_crops", f"{ns}.model"} <= set(robustness.inputs)
        assert {f"{ns}.{t}_tflite" for t in expected_tflite} <= set(robustness.inputs)
        for technique in expected_tflite:
            node = pipeline.filter(node_names=[f"{ns}.predict_{technique}_tflite_node"]).nodes[0]
            assert node.inputs[0] == f"{ns}.{technique}_tflite"
            assert node.func.keywords == {
                "cell": {"architecture": arch, "variant": variant},
                "technique": technique,
            }
        evaluate = pipeline.filter(node_names=[f"{ns}.evaluate_cell_node"]).nodes[0]
        assert evaluate.outputs == [f"{ns}.{o}" for o in CELL_OUTPUTS]
        assert len(evaluate.inputs) == 3 + 1 + len(expected_tflite)
    assert optimized  # the default optimizes some cells, so TFLite files are evaluated
    summary = pipeline.filter(node_names=["summarize_evaluation_metrics_node"]).nodes[0]
    assert summary.inputs == [f"{a}.{v}.evaluation_metrics" for a, v in cells] + ["peer_metrics"]
    # the grid's tables and the plots (the study's numbers are reporting's)
    corrupt = pipeline.filter(node_names=["corrupt_test_images_node"]).nodes[0]
    assert corrupt.outputs == ["robustness_crops", "robustness_images"]
    robustness = pipeline.filter(node_names=["summarize_robustness_node"]).nodes[0]
    assert robustness.inputs == [f"{a}.{v}.robustness_metrics" for a, v in cells]
    assert pipeline.outputs() == {
        "evaluation_metrics",
        "subgroup_metrics",
        "compression_cost",
        "confusion_matrices",
        "robustness_metrics",
        "robustness_summary",
        *(f"{a}.{v}.evaluation_confusion_plots" for a, v in cells),
    }


@pytest.mark.slow
def test_catalog_binds_every_evaluation_output_to_its_pattern(project_root):
    stdout = kedro_cli(["catalog", "resolve-patterns", "-p", "evaluation"], project_root)
    start = re.search(r"^[A-Za-z_][\w.]*:$", stdout, flags=re.MULTILINE)
    resolved = yaml.load(stdout[start.start() :], Loader=yaml.UnsafeLoader)  # our own CLI output
    for arch, variant in training_cells(load_project_parameters(project_root)):
        ns = f"{arch}.{variant}"
        folder = f"data/07_model_output/evaluation/{ns}"
        assert resolved[f"{ns}.evaluation_keras_predictions"]["filepath"].endswith(
            f"{folder}/keras.predictions.parquet"
        )
        for output, file in (("metrics", "metrics"), ("subgroups", "subgroup_metrics")):
            entry = resolved[f"{ns}.evaluation_{output}"]
            assert entry["type"] == "pediatric_emotion.datasets.AtomicCSVDataset"
            assert entry["filepath"].endswith(f"{folder}/{file}.csv")
        plots = resolved[f"{ns}.evaluation_confusion_plots"]
        assert plots["path"].endswith(f"data/08_reporting/evaluation/{ns}")
        assert plots["dataset"]["type"] == "pediatric_emotion.datasets.AtomicMatplotlibDataset"
        assert resolved[f"{ns}.evaluation_images"]["type"] == "kedro.io.MemoryDataset"
        assert resolved[f"{ns}.robustness_metrics"]["filepath"].endswith(
            f"{folder}/robustness_metrics.csv"
        )
    explicit = yaml.safe_load((project_root / "conf/base/catalog_evaluation.yml").read_text())
    for table in ("evaluation_metrics", "subgroup_metrics", "compression_cost"):
        assert explicit[table]["filepath"] == f"data/08_reporting/{table}.csv"
        assert explicit[table]["type"] == "pediatric_emotion.datasets.AtomicCSVDataset"


@pytest.mark.slow
def test_a_whole_run_scores_every_model_and_file(
    kedro_project, tiny_model, tiny_tflite, crops_root, crop_paths
):
    import shutil

    from kedro_datasets.tensorflow import TensorFlowModelDataset

    from pediatric_emotion.datasets import AtomicParquetDataset, TFLiteModelDataset

    root = kedro_project.root
    base = yaml.safe_load((root / "conf/base/parameters_evaluation.yml").read_text())
    base["evaluation"]["bootstrap"]["resamples"] = 50
    base["evaluation"]["subgroups"]["min_group_size"] = 4
    local = root / "conf" / "local"
    (local / "parameters_evaluation.yml").write_text(yaml.safe_dump(base))
    (local / "parameters_grid.yml").write_text(
        yaml.safe_dump(
            {
                "architectures": {
                    "tiny": {"application": "none", "input_scale": 2 / 255, "input_offset": -1.0}
                },
                "variants": {"demo": {"roles": ["train"]}},
                "training": {"image_size": 32},
                "optimization": {
                    "variants": None,
                    "techniques": ["baseline"],
                    "quantizations": {"baseline": ["float32", "int8"]},
                    "tflite_folder": "data/06_models/tflite",
                },
            }
        )
    )
    shutil.copytree(crops_root, root / "data/03_primary/face_crops")
    table = manifest(crop_paths)
    AtomicParquetDataset(filepath=str(root / "data/03_primary/face_manifest.parquet")).save(table)
    AtomicParquetDataset(
        filepath=str(root / "data/05_model_input/tiny.demo.training_examples.parquet")
    ).save(training_examples(table))
    TensorFlowModelDataset(filepath=str(root / "data/06_models/tiny.demo.keras")).save(tiny_model)
    for quantization, model in tiny_tflite.items():
        TFLiteModelDataset(
            filepath=str(root / f"data/06_models/tflite/tiny.demo/baseline/{quantization}.tflite")
        ).save(model)

    kedro_project("evaluation")

    reports = root / "data/08_reporting"
    metrics = pd.read_csv(reports / "evaluation_metrics.csv")
    models = set(map(tuple, metrics[["technique", "quantization", "split"]].values.tolist()))
    assert models == {
        (t, q, s)
        for t, q in [("keras", "float32"), ("baseline", "float32"), ("baseline", "int8")]
        for s in ("test", "val")
    }
    assert set(metrics["architecture"]) == {"tiny"}
    headline = metrics[metrics["metric"] == "balanced_accuracy"]
    assert headline[["ci_low", "ci_high"]].notna().all().all()
    subgroups = pd.read_csv(reports / "subgroup_metrics.csv")
    assert {"subset_a", "ethnicity", "age_band", "sex", "mouth"} <= set(subgroups["grouping"])
    cost = pd.read_csv(reports / "compression_cost.csv")
    float32 = cost[cost["quantization"] == "float32"]
    assert (float32["agreement_with_keras"] == 1.0).all()
    assert len(cost) == 4
    assert not (reports / "published_comparison.csv").exists()  # the reporting pipeline's
    plots = sorted(p.relative_to(reports) for p in (reports / "evaluation").rglob("*.png"))
    assert [str(p) for p in plots] == [
        f"evaluation/tiny.demo/{s}/{m}.png"
        for s in ("test", "val")
        for m in ("baseline.float32", "baseline.int8", "keras.float32")
    ]
    confusion = pd.read_csv(reports / "evaluation/confusion_matrices.csv")
    assert len(confusion) == 6 * len(EMOTIONS) ** 2
    # robustness: the manifest has no picture paths, so each crop stands in for its picture
    robustness = pd.read_csv(reports / "robustness_metrics.csv")
    settings = base["robustness"]
    conditions = 1 + len(settings["corruptions"]) * len(settings["severities"])
    assert len(robustness) == 3 * conditions
    clean = robustness[robustness["corruption"] == "clean"].set_index(["technique", "quantization"])
    test = headline[headline["split"] == "test"].set_index(["technique", "quantization"])
    for model, value in test["value"].items():  # every test picture: images_per_class 4 > 3
        assert clean.loc[model, "balanced_accuracy"] == pytest.approx(value, abs=1e-9)
    summary = pd.read_csv(reports / "robustness_summary.csv")
    assert len(summary) == 3
    keras = summary[summary["technique"] == "keras"]
    assert keras["mce"].iloc[0] == pytest.approx(1.0)
