"""Every optimization technique through Kedro on one cell of the training tests' grid:
MobileNetV3-Small (custom layers for hard-swish, Multiply configs) on the public copy, trained
here alone (its namespace, as test_end_to_end_training.py trains it) on a copy of the session's
harmonized demo data, so this file runs beside the training tests (pytest-xdist) instead of after
them. The post-training techniques and the quantization-aware ones run in two steps, each a
fixture of its own, so no single test's setup holds the whole cell."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests.conftest import make_project_copy, run_pipelines
from tests.test_end_to_end_training import TINY_TRAINING, write_grid_conf

pytestmark = pytest.mark.slow

CELL = "mobilenet_v3_small.public"

COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")
# The study's MobileNetV3-Small, not the quick demo's minimalistic member: the cluster check
# below reads its squeeze-excite convs (runtime parameters win over the quick demo's).
TRAINING = {
    **TINY_TRAINING,
    "architectures": {
        **TINY_TRAINING["architectures"],
        "mobilenet_v3_small": {"application_kwargs": {"minimalistic": False}},
    },
}
TINY_OPTIMIZATION = {
    **TRAINING,
    "optimization": {
        "fine_tuning": {"max_steps_per_epoch": 4},
        "pruning": {"frequency": 1, "end_fraction": 0.5},
        "representative_images": 8,
    },
}


POST_TRAINING = ("baseline", "pruned", "clustered")
QUANTIZATION_AWARE = ("qat", "pqat", "cqat", "pcqat")  # from baseline, pruned and clustered


@pytest.fixture(scope="module")
def trained_cell(tmp_path_factory, harmonized_project):
    """MobileNetV3-Small trained in a project holding the harmonized demo data (the
    harmonization outputs only: the training tests write beside them)."""
    trained = make_project_copy(tmp_path_factory.mktemp("optimization_project"))
    for layer in ("01_raw", "02_intermediate", "03_primary"):
        shutil.copytree(harmonized_project / "data" / layer, trained / "data" / layer)
    write_grid_conf(trained)
    run_pipelines(trained, ["training"], TRAINING, namespaces=[CELL])
    return trained


def _optimize(root, techniques) -> tuple[object, pd.DataFrame]:
    """Run the optimization nodes of ``techniques`` on the cell; every report so far, indexed."""
    nodes = [f"{CELL}.{technique}_node" for technique in techniques]
    run_pipelines(root, ["optimization"], TINY_OPTIMIZATION, node_names=nodes)
    rows = []
    for report in sorted((root / "data/07_model_output/optimization").glob("*.json")):
        rows.extend(json.loads(report.read_text()))
    return root, pd.DataFrame(rows).set_index(["technique", "quantization"])


@pytest.fixture(scope="module")
def post_trained(trained_cell):
    """The techniques that start from the trained model. The cell runs in three runs of the
    pipeline, so that no test's setup holds the whole cell."""
    return _optimize(trained_cell, POST_TRAINING)


@pytest.fixture(scope="module")
def half_optimized(post_trained):
    """QAT and PQAT, from the baseline and the pruned model the first run wrote."""
    return _optimize(post_trained[0], QUANTIZATION_AWARE[:2])


@pytest.fixture(scope="module")
def optimized(half_optimized):
    """Every technique: CQAT and PCQAT too."""
    return _optimize(half_optimized[0], QUANTIZATION_AWARE[2:])


def _assert_files_with_specs(root, table: pd.DataFrame) -> None:
    from pediatric_emotion.datasets import load_tflite

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


def test_post_training_techniques_write_their_files_with_specs(post_trained):
    root, table = post_trained
    assert set(table.index) == {
        ("baseline", "float32"),
        ("baseline", "dynamic_range"),
        ("baseline", "float16"),
        ("baseline", "int8"),
        ("pruned", "int8"),
        ("clustered", "int8"),
    }
    _assert_files_with_specs(root, table)


def test_qat_and_pqat_write_their_files_with_specs(half_optimized):
    root, table = half_optimized
    assert {t for t, _ in table.index} == {*POST_TRAINING, "qat", "pqat"}
    _assert_files_with_specs(root, table.loc[["qat", "pqat"]])


def test_quantization_aware_techniques_write_their_files_with_specs(optimized):
    root, table = optimized
    assert {t for t, _ in table.index} == {*POST_TRAINING, *QUANTIZATION_AWARE}
    quantization_aware = table.loc[list(QUANTIZATION_AWARE)]
    assert set(quantization_aware.index) == {(t, "int8") for t in QUANTIZATION_AWARE}
    _assert_files_with_specs(root, quantization_aware.loc[["cqat", "pcqat"]])


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
