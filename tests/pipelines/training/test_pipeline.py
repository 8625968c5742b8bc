"""The training grid as Kedro sees it: namespaces, parameter mapping, catalog patterns, and a new
data copy added in conf alone."""

import re

import pytest
import yaml

from pediatric_emotion.grid import load_project_parameters, training_cells
from pediatric_emotion.pipelines.training.pipeline import create_pipeline
from tests.conftest import kedro_cli, make_project_copy

PER_CELL_OUTPUTS = ("model", "history", "learning_curve", "training_examples", "training_metrics")


def test_each_cell_is_one_namespace_with_its_own_parameters(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    pipeline = create_pipeline()
    cells = training_cells(load_project_parameters(project_root))
    for arch, variant in cells:
        namespace = f"{arch}.{variant}"
        train = pipeline.filter(node_names=[f"{namespace}.train_classifier_node"]).nodes[0]
        assert train.inputs == [
            f"{namespace}.training_examples",
            "face_crops",
            f"params:architectures.{arch}",
            f"params:variants.{variant}",
            "params:training",
            "params:emotions",
        ]
        assert train.outputs == [
            f"{namespace}.model",
            f"{namespace}.history",
            f"{namespace}.training_metrics",
        ]
        assert train.func.keywords["cell"] == {"architecture": arch, "variant": variant}
        assert train.func.__name__ == "train_classifier"
    summary = pipeline.filter(node_names=["summarize_training_node"]).nodes[0]
    assert len(summary.inputs) == len(cells)
    assert pipeline.outputs() >= {"training_summary"}


@pytest.mark.slow
def test_catalog_binds_every_namespaced_dataset_to_its_pattern(project_root):
    stdout = kedro_cli(["catalog", "resolve-patterns", "-p", "training"], project_root)
    start = re.search(r"^[A-Za-z_][\w.]*:$", stdout, flags=re.MULTILINE)
    resolved = yaml.load(stdout[start.start() :], Loader=yaml.UnsafeLoader)  # our own CLI output
    expected_files = {
        "model": (
            "pediatric_emotion.datasets.models.AtomicTensorFlowModelDataset",
            "data/06_models/{ns}.keras",
        ),
        "history": (
            "pediatric_emotion.datasets.AtomicJSONDataset",
            "data/07_model_output/training/{ns}.history.json",
        ),
        "training_metrics": (
            "pediatric_emotion.datasets.AtomicJSONDataset",
            "data/07_model_output/training/{ns}.metrics.json",
        ),
        "learning_curve": (
            "pediatric_emotion.datasets.AtomicMatplotlibDataset",
            "data/08_reporting/training/{ns}.learning_curve.png",
        ),
    }
    for arch, variant in training_cells(load_project_parameters(project_root)):
        namespace = f"{arch}.{variant}"
        for output in PER_CELL_OUTPUTS:
            assert f"{namespace}.{output}" in resolved
        for output, (dataset_type, path) in expected_files.items():
            entry = resolved[f"{namespace}.{output}"]
            assert entry["type"] == dataset_type
            assert entry["filepath"].endswith(path.format(ns=namespace))


@pytest.mark.slow
def test_a_new_data_copy_needs_only_configuration(tmp_path):
    root = make_project_copy(tmp_path)
    (root / "conf" / "local" / "parameters_training.yml").write_text(
        yaml.safe_dump(
            {
                "variants": {
                    "public": {"roles": ["train"]},
                    "public_guesswhat": {"roles": ["train", "guesswhat"]},
                    "children": {"roles": ["train", "guesswhat"], "populations": ["child"]},
                }
            }
        )
    )
    stdout = kedro_cli(["registry", "describe", "training"], root)
    assert "mobilenet_v2.children.train_classifier_node" in stdout
    assert "nasnet_mobile.children.train_classifier_node" in stdout
    assert stdout.count("train_classifier_node") == 15


def test_paper_environment_is_the_study_scale(project_root, monkeypatch):
    base = load_project_parameters(project_root)
    monkeypatch.setenv("KEDRO_ENV", "paper")
    paper = load_project_parameters(project_root)
    assert paper["training"]["image_size"] == paper["face_crop"]["size"] == 224
    assert paper["training"]["weights"] == "imagenet"
    assert set(paper["sources"]) == set(base["sources"])
    assert all(source["path"].startswith("/data/") for source in paper["sources"].values())
    assert training_cells(paper) == training_cells(base)
