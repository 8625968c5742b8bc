"""demo_data -> label_harmonization -> training through Kedro: every architecture trains (a few
steps on 32 px crops), its outputs land where the catalog says, and one namespace reruns alone.
Trained in the harmonization tests' project (the session's ``harmonized_project``: demo data and
harmonization run once for both files). Every optimization technique, on the study's
MobileNetV3-Small and on MobileNetV2: test_rehearsal_paper.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession

from tests.conftest import run_pipelines

pytestmark = pytest.mark.slow

ARCHITECTURES = [
    "mobilenet_v3_small",
    "mobilenet_v2",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "nasnet_mobile",
]
TINY_TRAINING = {
    "training": {
        "image_size": 32,
        "batch_size": 8,
        "epochs": 2,
        "max_steps_per_epoch": 2,
        "early_stopping": {"patience": 5, "min_delta": 0.0},
    },
    # an architecture's own `training:` overrides the shared settings
    "architectures": {"nasnet_mobile": {"training": {"epochs": 2}}},
}


def write_grid_conf(root) -> None:
    """conf/local of these tests: every architecture on the public copy, optimized."""
    (root / "conf/local/parameters_training.yml").write_text(
        yaml.safe_dump({"variants": {"public": {"roles": ["train"]}}})
    )
    # conf/local replaces a whole top-level key: the base optimization settings, on this grid's
    # one variant, with every post-training quantization of the baseline (the demo run writes
    # float32 and int8; the float32 files of pruned/clustered models are unit-tested)
    optimization = yaml.safe_load((root / "conf/base/parameters_optimization.yml").read_text())
    optimization["optimization"]["variants"] = ["public"]
    optimization["optimization"]["quantizations"].update(
        baseline=["float32", "dynamic_range", "float16", "int8"]
    )
    (root / "conf/local/parameters_optimization.yml").write_text(yaml.safe_dump(optimization))


@pytest.fixture(scope="module")
def half_trained(harmonized_project):
    """The first three cells: the grid trains in two runs, so that no test's setup holds it all."""
    root = harmonized_project
    write_grid_conf(root)
    run_pipelines(root, ["training"], TINY_TRAINING, namespaces=_cells(ARCHITECTURES[:3]))
    return root


@pytest.fixture(scope="module")
def trained(half_trained):
    """The whole grid: the last two cells, then the summary over all five."""
    root = half_trained
    run_pipelines(root, ["training"], TINY_TRAINING, namespaces=_cells(ARCHITECTURES[3:]))
    run_pipelines(root, ["training"], TINY_TRAINING, node_names=["summarize_training_node"])
    return root


def _cells(architectures: list[str]) -> list[str]:
    return [f"{arch}.public" for arch in architectures]


def test_the_first_cells_train_alone(half_trained):
    for arch in ARCHITECTURES:
        model = half_trained / f"data/06_models/{arch}.public.keras"
        assert model.exists() == (arch in ARCHITECTURES[:3])


def test_every_architecture_has_a_model_history_and_curve(trained):
    for arch in ARCHITECTURES:
        assert (trained / f"data/06_models/{arch}.public.keras").stat().st_size > 10_000
        history = json.loads(
            (trained / f"data/07_model_output/training/{arch}.public.history.json").read_text()
        )
        if arch == "mobilenet_v2":  # the quick demo's: from torchvision's ImageNet weights
            assert history["phase"] == ["head", "head", "fine_tune", "fine_tune"]
        else:
            assert history["epoch"] == [1, 2]
            assert set(history["phase"]) == {"scratch"}
        assert all(0.0 <= v <= 1.0 for v in history["val_balanced_accuracy"])
        assert (trained / f"data/08_reporting/training/{arch}.public.learning_curve.png").exists()


def test_summary_has_one_row_per_cell(trained):
    summary = pd.read_csv(trained / "data/08_reporting/training_summary.csv")
    assert sorted(summary["architecture"]) == sorted(ARCHITECTURES)
    assert set(summary["variant"]) == {"public"}
    assert (summary["params"] > 100_000).all()
    assert (summary["image_size"] == 32).all()
    weights = summary.set_index("architecture")["weights"]
    assert weights.pop("mobilenet_v2") == "mobilenet_v2_torchvision_imagenet_no_top.h5"
    assert (weights == "scratch").all()
    assert summary["images_per_second"].gt(0).all()


def test_saved_models_load_through_the_catalog_and_predict(trained):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        with KedroSession.create(project_path=trained) as session:
            catalog = session.load_context().catalog
            model = catalog.load("mobilenet_v3_small.public.model")
    probabilities = model.predict(np.zeros((3, 32, 32, 3), np.float32), verbose=0)
    assert probabilities.shape == (3, 7)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_one_namespace_reruns_alone(trained):
    target = trained / "data/06_models/mobilenet_v2.public.keras"
    other = trained / "data/06_models/efficientnet_b0.public.keras"
    target.unlink()
    other_mtime = os.stat(other).st_mtime_ns
    run_pipelines(trained, ["training"], TINY_TRAINING, namespaces=["mobilenet_v2.public"])
    assert target.exists()
    assert os.stat(other).st_mtime_ns == other_mtime
