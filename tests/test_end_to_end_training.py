"""demo_data -> label_harmonization -> training through Kedro: every architecture trains (a few
steps on 32 px crops), its outputs land where the catalog says, and one namespace reruns alone."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession

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
    }
}


@pytest.fixture(scope="module")
def trained(kedro_project):
    root = kedro_project.root
    (root / "conf/local/parameters_training.yml").write_text(
        yaml.safe_dump({"variants": {"public": {"roles": ["train"]}}})
    )
    kedro_project("demo_data", runtime_params={"demo_data": {"scale": 0.15}})
    kedro_project("label_harmonization")
    kedro_project("training", runtime_params=TINY_TRAINING)
    return root


def test_every_architecture_has_a_model_history_and_curve(trained):
    for arch in ARCHITECTURES:
        assert (trained / f"data/06_models/{arch}.public.keras").stat().st_size > 10_000
        history = json.loads(
            (trained / f"data/07_model_output/training/{arch}.public.history.json").read_text()
        )
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
    assert (summary["weights"] == "scratch").all()
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


def test_one_namespace_reruns_alone(trained, kedro_project):
    target = trained / "data/06_models/mobilenet_v2.public.keras"
    other = trained / "data/06_models/efficientnet_b0.public.keras"
    target.unlink()
    other_mtime = os.stat(other).st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        with KedroSession.create(project_path=trained, runtime_params=TINY_TRAINING) as session:
            session.run(pipeline_names=["training"], namespaces=["mobilenet_v2.public"])
    assert target.exists()
    assert os.stat(other).st_mtime_ns == other_mtime
