"""The demo pipelines on a local Dask cluster of 2 worker processes give the sequential runner's
outputs: demo data once (the session's shared copy, ``demo_raw``), then label_harmonization + a
2-cell training grid (MobileNetV3-Small on both data copies, 32 px, 1 epoch of 2 steps) with each
runner in the same project copy.

Compared: every harmonization output byte for byte (crops, CSVs) or frame for frame (the
manifest), with the crops cut in parallel chunks on the cluster's workers against one after the
other; every namespaced training dataset exists in both runs; each cell's training examples are
equal; each cell's history and model weights are equal, because training is seeded per cell
(keras.utils.set_random_seed, seeded shuffle and stateless augmentation) and TensorFlow on CPU
is deterministic for the same ops and thread counts, whichever process runs the cell. The
workers get the sequential run's intra-op thread count (TensorFlow's default: every core), not
the shipped ``auto`` (cores / workers): on an AVX-512/AMX Xeon, 1 thread and 2 threads gave a
cell's first-epoch loss 2.2703 and 2.2672 (oneDNN splits its reductions by thread count). Not
compared: times (seconds, images per second) and the plots' bytes.

The Dask run is tracked (MLflow, a SQLite store outside the project): its nodes run in the
workers, so their parameters, the per-cell child runs and the run's status must still land in
one run of the session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.runner import SequentialRunner

from pediatric_emotion.runners import DaskRunner
from tests.conftest import TINY_TRAINING, project_with_demo_data, run_pipelines

pytestmark = pytest.mark.slow

CELLS = ["mobilenet_v3_small.public", "mobilenet_v3_small.public_guesswhat"]
HARMONIZATION_FILES = [
    "02_intermediate/source_inventory.csv",
    "08_reporting/harmonization_report.csv",
    "08_reporting/harmonization_drops.csv",
    "08_reporting/duplicate_pairs.csv",
]
VOLATILE = ("run_timing.csv", ".png")  # times; plots are not compared byte for byte


def _outputs(data: Path) -> set[str]:
    return {
        p.relative_to(data).as_posix()
        for p in data.rglob("*")
        if p.is_file() and not p.relative_to(data).as_posix().startswith(("01_raw", "09_tracking"))
    }


PIPELINES = ["label_harmonization", "training"]


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory, demo_raw) -> tuple[Path, Path]:
    """The project copy, and the data of its sequential run (kept aside; the copy's data folders
    emptied for the Dask run). Two fixtures, so that no test's setup holds both runs."""
    root = project_with_demo_data(tmp_path_factory.mktemp("dask_project"), demo_raw)
    base = yaml.safe_load((root / "conf/base/parameters_training.yml").read_text())
    grid = {
        "architectures": {"mobilenet_v3_small": base["architectures"]["mobilenet_v3_small"]},
        "variants": {
            "public": {"roles": ["train"]},
            "public_guesswhat": {"roles": ["train", "guesswhat"]},
        },
    }
    (root / "conf/local/parameters_training.yml").write_text(yaml.safe_dump(grid))
    run_pipelines(root, PIPELINES, TINY_TRAINING, runner=SequentialRunner())
    sequential = tmp_path_factory.mktemp("sequential") / "data"
    shutil.copytree(root / "data", sequential, ignore=shutil.ignore_patterns("01_raw"))
    for layer in (root / "data").iterdir():
        if layer.is_dir() and layer.name != "01_raw":
            shutil.rmtree(layer)
            layer.mkdir()
    return root, sequential


@pytest.fixture(scope="module")
def runs(sequential_run) -> dict[str, Path]:
    root, sequential = sequential_run
    in_chunks = {
        **TINY_TRAINING,
        "parallel_cropping": {"workers": 2, "chunk_size": 32},
        "dask": {"tensorflow_threads": os.cpu_count()},  # as many as the sequential run
    }
    (root / "conf/local/mlflow.yml").unlink()  # the shipped setting: tracking on
    store = sequential.parent / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        try:
            run_pipelines(root, PIPELINES, in_chunks, runner=DaskRunner(n_workers=2))
        finally:
            import mlflow

            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
    return {"sequential": sequential, "dask": root / "data", "store": store}


def test_the_sequential_run_trains_both_cells(sequential_run):
    _, sequential = sequential_run
    for cell in CELLS:
        assert (sequential / f"06_models/{cell}.keras").is_file()


def test_same_output_files(runs):
    sequential, dask = (_outputs(runs[k]) for k in ("sequential", "dask"))
    assert sequential == dask
    assert not any(path.startswith("02_intermediate/dask") for path in dask)  # cleaned up
    for cell in CELLS:
        assert f"06_models/{cell}.keras" in dask


def test_harmonization_outputs_are_identical(runs):
    sequential, dask = runs["sequential"], runs["dask"]
    for name in HARMONIZATION_FILES:
        assert (dask / name).read_bytes() == (sequential / name).read_bytes(), name
    manifest = pd.read_parquet(dask / "03_primary/face_manifest.parquet")
    expected = pd.read_parquet(sequential / "03_primary/face_manifest.parquet")
    pd.testing.assert_frame_equal(manifest, expected)
    crops = sorted((sequential / "03_primary/face_crops").rglob("*.png"))
    assert len(crops) == len(manifest) > 100
    for crop in crops:
        relative = crop.relative_to(sequential)
        assert (dask / relative).read_bytes() == crop.read_bytes(), relative


def test_training_cells_are_identical(runs):
    import tf_keras as keras

    sequential, dask = runs["sequential"], runs["dask"]
    for cell in CELLS:
        examples = f"05_model_input/{cell}.training_examples.parquet"
        pd.testing.assert_frame_equal(
            pd.read_parquet(dask / examples), pd.read_parquet(sequential / examples)
        )
        history = f"07_model_output/training/{cell}.history.json"
        ours, theirs = (json.loads((d / history).read_text()) for d in (dask, sequential))
        timeless = {k for k in theirs if "second" not in k and "time" not in k}
        assert {k: ours[k] for k in timeless} == {k: theirs[k] for k in timeless}
        models = [
            keras.models.load_model(d / f"06_models/{cell}.keras", compile=False)
            for d in (dask, sequential)
        ]
        for ours_w, theirs_w in zip(*(m.get_weights() for m in models), strict=True):
            np.testing.assert_array_equal(ours_w, theirs_w)
    summary = [pd.read_csv(d / "08_reporting/training_summary.csv") for d in (dask, sequential)]
    timeless = [c for c in summary[1] if "second" not in c]
    pd.testing.assert_frame_equal(summary[0][timeless], summary[1][timeless])


def test_every_node_was_timed_on_the_workers(runs):
    timing, sequential = (
        pd.read_csv(runs[k] / "08_reporting/run_timing.csv") for k in ("dask", "sequential")
    )
    assert sorted(timing["node"]) == sorted(sequential["node"])
    assert len(timing) > 8 + 2 * len(CELLS)  # harmonization, summary, the cells' nodes
    assert set(timing["status"]) == {"completed"}
    assert timing["seconds"].gt(0).all()


def test_the_dask_run_is_one_tracked_run_with_its_workers_parameters_and_cells(runs):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs['store']}")
    runs_logged = [
        r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
    ]
    (parent,) = [r for r in runs_logged if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert any(name.startswith("training.") for name in params)  # logged in the workers
    assert any(name.startswith("parallel_cropping.") for name in params)
    assert params["run.demo_data"] == "true"
    children = {r.data.tags["cell"]: r for r in runs_logged if r is not parent}
    assert sorted(children) == sorted(CELLS)
    for cell, run in children.items():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        history = json.loads(
            (runs["dask"] / f"07_model_output/training/{cell}.history.json").read_text()
        )
        logged = client.get_metric_history(run.info.run_id, "val_balanced_accuracy")
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(
            history["val_balanced_accuracy"]
        )
