"""The paper environment rehearsed on the demo data: `KEDRO_ENV=paper` as shipped in conf/paper,
with only the source paths, the grid, the epoch and step counts and the calibration count scaled
down (``scale_down``). 224 px JPEG crops, MobileNetV2 from torchvision's ImageNet weights (the
study's two-phase path) and the study's MobileNetV3-Small (hard-swish, squeeze-excite) from
scratch (`weights: imagenet` with `offline: true`: no file here, so the documented fallback),
mixed precision forced on as a GPU gets it, every technique with all four post-training
quantizations of the baseline, evaluation, host profiling and reporting. Every row of
optimization_summary must be `ok`, every file carries its spec and labels, and each technique
leaves its mark in the weights (pruned zeros, clusters, int8 size).

The run is split into one Kedro run per test (harmonization, one training cell, one group of
techniques of one cell, evaluation, then profiling and reporting), each under the suite's 120 s
per test, in the order a full `kedro run` takes them; each skips what the tests before it saved
(``only_missing_outputs``), so any one of them run alone runs the path up to it. It is part of
`make test` (tests/conftest.py starts this file first: it is the longest); `make rehearsal` runs
it alone.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kedro.framework.startup import bootstrap_project
from PIL import Image

from tests.conftest import PROJECT_ROOT, project_with_demo_data, run_pipelines

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]

CELLS = ("mobilenet_v2.public_guesswhat", "mobilenet_v3_small.public_guesswhat")
TECHNIQUE_GROUPS = (
    ("baseline", "pruned", "clustered"),
    ("qat", "pqat"),
    ("cqat",),
    ("pcqat",),
    ("distilled", "distilled_qat"),
)
FILES = {  # conf/paper's quantizations, per technique
    "baseline": ["dynamic_range", "float16", "float32", "int8"],
    "pruned": ["float32", "int8"],
    "clustered": ["float32", "int8"],
    "qat": ["int8"],
    "pqat": ["int8"],
    "cqat": ["int8"],
    "pcqat": ["int8"],
    "distilled": ["float32", "int8"],
    "distilled_qat": ["int8"],
}
STEPS: dict[str, Any] = {  # runtime parameters: steps, not settings, scaled down
    "training": {"max_steps_per_epoch": 2, "batch_size": 8, "mixed_precision": True},
    "optimization": {"fine_tuning": {"max_steps_per_epoch": 2, "run_eagerly": True}},
    "device_profiling": {"warmup_runs": 1, "runs": 2},
    # paper sweeps every picture at five severities: one picture per class, one condition here
    "robustness": {"images_per_class": 1, "severities": [5], "corruptions": ["rotation"]},
}


def _edit(path: Path, change) -> None:
    settings = yaml.safe_load(path.read_text())
    change(settings)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def scale_down(root: Path) -> None:
    """conf/paper of the project copy at ``root``, with the demo's sources and a small grid."""
    paper = root / "conf" / "paper"
    shutil.copytree(PROJECT_ROOT / "conf" / "paper", paper)
    base = root / "conf" / "base"
    demo_sources = yaml.safe_load((base / "parameters_label_harmonization.yml").read_text())
    base_grid = yaml.safe_load((base / "parameters_training.yml").read_text())

    def sources(settings: dict[str, Any]) -> None:
        assert (
            settings["face_crop"]["size"] == 224 and settings["face_crop"]["image_format"] == "jpg"
        )
        settings["sources"] = demo_sources["sources"]

    def grid(settings: dict[str, Any]) -> None:
        mobilenet_v2 = dict(base_grid["architectures"]["mobilenet_v2"])
        mobilenet_v2["training"] = {"weights": "torchvision"}
        mobilenet_v3_small = dict(base_grid["architectures"]["mobilenet_v3_small"])
        mobilenet_v3_small["training"] = {"weights": "imagenet", "offline": True}
        settings["architectures"] = {
            "mobilenet_v2": mobilenet_v2,
            "mobilenet_v3_small": mobilenet_v3_small,
        }
        settings["variants"] = {"public_guesswhat": base_grid["variants"]["public_guesswhat"]}
        assert settings["training"]["image_size"] == 224
        assert settings["training"]["mixed_precision"] == "auto"  # a GPU's; forced on below
        settings["training"].update(head_epochs=1, fine_tune_epochs=1, epochs=1, distribute=False)

    def optimization(settings: dict[str, Any]) -> None:
        quantizations = settings["optimization"]["quantizations"]
        assert {technique: sorted(files) for technique, files in quantizations.items()} == FILES
        settings["optimization"]["representative_images"] = 16
        # one epoch of 2 steps per fine-tuning stage; pruning's mask reaches the target at step 1
        settings["optimization"]["fine_tuning"]["epochs"] = 1
        settings["optimization"]["pruning"]["frequency"] = 1

    _edit(paper / "parameters_label_harmonization.yml", sources)
    _edit(paper / "parameters_training.yml", grid)
    _edit(paper / "parameters_optimization.yml", optimization)


@pytest.fixture(scope="module")
def paper_project(tmp_path_factory, demo_raw) -> Iterator[Path]:
    """The project copy, its grid read with ``KEDRO_ENV=paper`` (as `KEDRO_ENV=paper kedro run`
    registers it); the pipelines are registered again without it afterwards."""
    root = project_with_demo_data(tmp_path_factory.mktemp("paper_rehearsal"), demo_raw)
    scale_down(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEDRO_ENV", "paper")
        bootstrap_project(root)
        yield root
    bootstrap_project(root)


def run_up_to(root: Path, nodes: list[str] | None = None) -> None:
    """One stage of the rehearsal: the default pipeline up to ``nodes`` (all of it when None),
    skipping every node whose saved outputs exist, so each test runs its own stage after the
    tests before it, and the whole path when run alone."""
    run_pipelines(root, ["__default__"], STEPS, to_nodes=nodes, only_missing_outputs=True)


def test_harmonization_writes_224_px_jpeg_crops(paper_project):
    run_up_to(paper_project, ["select_crops_node"])
    crops = sorted((paper_project / "data").rglob("*.jpg"))
    crops = [crop for crop in crops if "01_raw" not in crop.parts]
    assert crops
    with Image.open(crops[0]) as picture:
        assert picture.size == (224, 224)


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_trains_under_mixed_precision(paper_project, cell, caplog):
    with caplog.at_level(logging.INFO):
        run_up_to(paper_project, [f"{cell}.train_classifier_node"])
    metrics = json.loads(
        (paper_project / f"data/07_model_output/training/{cell}.metrics.json").read_text()
    )
    assert metrics["image_size"] == 224
    if cell.startswith("mobilenet_v2"):
        assert metrics["weights"] == "mobilenet_v2_torchvision_imagenet_no_top.h5"
    else:
        assert metrics["weights"] == "scratch"  # offline, no ImageNet file: the fallback
    assert "mixed precision on" in caplog.text


def _reports(root: Path, cell: str, techniques: tuple[str, ...]) -> pd.DataFrame:
    """The optimization report rows of ``techniques`` of ``cell``, by technique and file."""
    folder = root / "data/07_model_output/optimization"
    rows = [
        row
        for technique in techniques
        for row in json.loads((folder / f"{cell}.{technique}.json").read_text())
    ]
    return pd.DataFrame(rows).set_index(["technique", "quantization"])


@pytest.mark.parametrize("group", TECHNIQUE_GROUPS, ids="+".join)
@pytest.mark.parametrize("cell", CELLS)
def test_every_technique_of_each_cell_is_ok(paper_project, cell, group):
    from pediatric_emotion.datasets import load_tflite

    run_up_to(paper_project, [f"{cell}.{technique}_node" for technique in group])
    table = _reports(paper_project, cell, group)
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"]["reason"].to_dict()
    for technique in group:
        assert sorted(table.loc[technique].index) == FILES[technique]
    for (technique, quantization), row in table.iterrows():
        expected_path = f"data/06_models/tflite/{cell}/{technique}/{quantization}.tflite"
        assert row["tflite_path"] == expected_path
        model = load_tflite(paper_project / row["tflite_path"])
        assert model.spec["labels"][:3] == ["neutral", "fear", "happy"]
        assert model.spec["technique"] == technique
        assert model.spec["input"]["shape"] == [1, 224, 224, 3]
        assert len(model.content) == row["size_bytes"]
        assert (paper_project / row["tflite_path"]).with_suffix(".labels.txt").exists()
        if quantization == "int8":
            assert row["weight_dtypes"] == "int8" and row["input_dtype"] == "int8"
            assert model.spec["input"]["quantization"]["scale"] > 0


COMPRESSED_OPS = ("CONV_2D", "FULLY_CONNECTED")


def _kept_clusters(path: Path, *, squeeze_excite: bool) -> bool:
    """Every CONV_2D / FULLY_CONNECTED kernel holds at most 16 values per output channel (the
    paper's clusters) and there are at least 30 of them, so the check cannot pass vacuously;
    with ``squeeze_excite`` (MobileNetV3) the squeeze-excite reduction convs are among them
    (Conv2D + ReLU on the pooled map, where tfmot alone drops the weight quantizer:
    modeling/quantize_layout.py)."""
    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    weights = [w for w in weight_tensors(path.read_bytes()) if w.op in COMPRESSED_OPS]
    squeeze = [w for w in weights if "squeeze_excite/Conv/" in w.name]
    return (
        (bool(squeeze) or not squeeze_excite)
        and len(weights) >= 30
        and all(w.unique_per_channel().max() <= 16 for w in weights)
    )


@pytest.mark.parametrize("cell", CELLS)
def test_each_technique_leaves_its_mark_in_the_weights(paper_project, cell):
    techniques = tuple(FILES)
    run_up_to(paper_project, [f"{cell}.{technique}_node" for technique in techniques])
    table = _reports(paper_project, cell, techniques)
    for technique in ("pruned", "pqat", "pcqat"):  # conf/paper's sparsity 0.5, zeros kept
        assert table.loc[(technique, "int8"), "sparsity"] == pytest.approx(0.5, abs=0.03)
    assert table.loc[("baseline", "float32"), "sparsity"] < 0.05
    assert table.loc[("clustered", "int8"), "max_unique_per_channel"] <= 16
    for technique in ("cqat", "pcqat"):
        path = paper_project / table.loc[(technique, "int8"), "tflite_path"]
        assert _kept_clusters(path, squeeze_excite=cell.startswith("mobilenet_v3"))
    assert table.loc[("baseline", "int8"), "max_unique_per_channel"] > 16
    int8, float32 = (table.loc[("baseline", q), "size_bytes"] for q in ("int8", "float32"))
    assert int8 < 0.35 * float32


def test_every_model_and_file_is_evaluated(paper_project):
    run_up_to(paper_project, [f"{cell}.evaluate_cell_node" for cell in CELLS])
    expected = sorted(
        [("keras", "float32")]
        + [
            (technique, quantization)
            for technique, files in FILES.items()
            for quantization in files
        ]
    )
    for cell in CELLS:
        metrics = pd.read_csv(
            paper_project / "data/07_model_output/evaluation" / cell / "metrics.csv"
        )
        for split in ("test", "val"):
            scores = metrics[
                (metrics["metric"] == "balanced_accuracy") & (metrics["split"] == split)
            ]
            assert sorted(zip(scores["technique"], scores["quantization"], strict=True)) == expected
            assert scores["value"].between(0, 1).all()


def test_every_file_is_profiled_and_reported(paper_project):
    run_up_to(paper_project)
    reports = paper_project / "data" / "08_reporting"
    summary = pd.read_csv(reports / "optimization_summary.csv")
    assert (summary["status"] == "ok").all(), summary[summary["status"] != "ok"].to_string()
    expected = sorted(
        (cell.split(".")[0], technique, quantization)
        for cell in CELLS
        for technique, files in FILES.items()
        for quantization in files
    )
    made = zip(summary["architecture"], summary["technique"], summary["quantization"], strict=True)
    assert sorted(made) == expected
    board = pd.read_csv(reports / "leaderboard.csv")
    files = board[board["tflite_path"].notna()]
    assert len(files) == len(expected)
    assert files["test_balanced_accuracy"].notna().all() and files["latency_ms"].notna().all()
    assert "data:image/png;base64," in (reports / "report.html").read_text(encoding="utf-8")
