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
    },
    # an architecture's own `training:` overrides the shared settings
    "architectures": {"nasnet_mobile": {"training": {"epochs": 2}}},
}


@pytest.fixture(scope="module")
def trained(kedro_project):
    root = kedro_project.root
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


COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")
TINY_OPTIMIZATION = {
    **TINY_TRAINING,
    "optimization": {
        "fine_tuning": {"max_steps_per_epoch": 4},
        "pruning": {"frequency": 1, "end_fraction": 0.5},
        "representative_images": 8,
    },
}


@pytest.fixture(scope="module")
def optimized(trained):
    """Every technique on MobileNetV3-Small (custom layers for hard-swish, Multiply configs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained)
        with KedroSession.create(project_path=trained, runtime_params=TINY_OPTIMIZATION) as s:
            s.run(pipeline_names=["optimization"], namespaces=["mobilenet_v3_small.public"])
    rows = []
    for report in sorted((trained / "data/07_model_output/optimization").glob("*.json")):
        rows.extend(json.loads(report.read_text()))
    return trained, pd.DataFrame(rows).set_index(["technique", "quantization"])


def test_every_technique_writes_its_files_with_specs(optimized):
    from pediatric_emotion.datasets import load_tflite

    root, table = optimized
    assert set(table.index) == {
        ("baseline", "float32"),
        ("baseline", "dynamic_range"),
        ("baseline", "float16"),
        ("baseline", "int8"),
        ("pruned", "int8"),
        ("clustered", "int8"),
        ("qat", "int8"),
        ("pqat", "int8"),
        ("cqat", "int8"),
        ("pcqat", "int8"),
    }
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"]["reason"].to_dict()
    for (technique, quantization), row in table.iterrows():
        assert row["tflite_path"] == (
            f"data/06_models/tflite/mobilenet_v3_small.public/{technique}/{quantization}.tflite"
        )
        model = load_tflite(root / row["tflite_path"])
        assert model.spec["labels"][:3] == ["neutral", "fear", "happy"]
        assert model.spec["technique"] == technique
        assert model.spec["input"]["shape"] == [1, 32, 32, 3]
        assert len(model.content) == row["size_bytes"]
        assert (root / row["tflite_path"]).with_suffix(".labels.txt").exists()
        if quantization == "int8":
            assert row["weight_dtypes"] == "int8" and row["input_dtype"] == "int8"
            assert model.spec["input"]["quantization"]["scale"] > 0


def _kept_clusters(path) -> bool:
    """Every CONV_2D / FULLY_CONNECTED kernel holds at most 16 values per output channel, the
    squeeze-excite reduction convs (Conv2D + ReLU on the pooled map, where tfmot alone drops the
    weight quantizer: modeling/quantize_layout.py) included; at least 30 kernels, so the check
    cannot pass vacuously."""
    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    weights = [w for w in weight_tensors(path.read_bytes()) if w.op in COMPRESSED_OPS]
    squeeze = [w for w in weights if "squeeze_excite/Conv/" in w.name]
    return (
        bool(squeeze)
        and len(weights) >= 30
        and all(w.unique_per_channel().max() <= 16 for w in weights)
    )


def test_each_technique_leaves_its_mark_in_the_weights(optimized):
    root, table = optimized
    for technique in ("pruned", "pqat", "pcqat"):
        assert table.loc[(technique, "int8"), "sparsity"] == pytest.approx(0.5, abs=0.03)
    assert table.loc[("baseline", "float32"), "sparsity"] < 0.05
    assert table.loc[("clustered", "int8"), "max_unique_per_channel"] <= 16
    for technique in ("cqat", "pcqat"):
        assert _kept_clusters(root / table.loc[(technique, "int8"), "tflite_path"])
    assert table.loc[("baseline", "int8"), "max_unique_per_channel"] > 16
    int8, float32 = (table.loc[("baseline", q), "size_bytes"] for q in ("int8", "float32"))
    assert int8 < 0.35 * float32
