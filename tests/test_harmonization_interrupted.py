"""A harmonization run stopped at any node boundary, then run again, gives the outputs of a run
that was never stopped; between the two, the manifest and the crops folder may come from
different runs, and every reader of the crops refuses them (pediatric_emotion.harmonized_crops).

The project copy reads one tiny source (a folder per label, whole pictures as faces: no
detector), so each Kedro run of label_harmonization takes about a second."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.startup import bootstrap_project

from pediatric_emotion.harmonized_crops import DIGEST_FILE, CropsMismatchError, check_crops_match
from pediatric_emotion.images import encode_image
from pediatric_emotion.pipelines.label_harmonization.pipeline import create_pipeline
from tests.conftest import make_project_copy, run_pipelines

pytestmark = pytest.mark.slow

NODES = [node.name for node in create_pipeline().nodes]  # in the order a run takes them
OUTPUTS = (
    "data/03_primary/face_manifest.parquet",
    "data/08_reporting/harmonization_report.csv",
    "data/08_reporting/harmonization_drops.csv",
    "data/08_reporting/duplicate_pairs.csv",
    "data/08_reporting/class_distribution.png",
)


def tiny_project(destination: Path, crop_size: int = 32) -> Path:
    """A project copy whose only source is 16 small pictures in two label folders."""
    root = make_project_copy(destination)
    rng = np.random.default_rng(0)
    for label in ("happy", "sad"):
        for number in range(8):
            picture = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            path = root / "data/01_raw/tiny" / label / f"child{number}_{label}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_image(picture, ".png"))
    set_crop_size(root, crop_size)
    bootstrap_project(root)
    return root


def set_crop_size(root: Path, crop_size: int) -> None:
    base = yaml.safe_load((root / "conf/base/parameters_label_harmonization.yml").read_text())
    settings = {
        "sources": {
            "tiny": {
                "format": "folder",
                "path": "data/01_raw/tiny",
                "population": "child",
                "role": "train",
                "face_box": "whole_image",
                "options": {"subject_pattern": r"(?P<subject>child\d+)_"},
            }
        },
        "face_crop": {**base["face_crop"], "size": crop_size},
    }
    (root / "conf/local/parameters_label_harmonization.yml").write_text(yaml.safe_dump(settings))


def harmonize(root: Path, up_to: str | None = None) -> None:
    run_pipelines(root, ["label_harmonization"], to_nodes=[up_to] if up_to else None)


def outputs(root: Path) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """The manifest (its ``image_path`` is absolute: here relative to the project) and every
    other output file's bytes by path, the crops included."""
    manifest = pd.read_parquet(root / OUTPUTS[0])
    manifest["image_path"] = [str(Path(path).relative_to(root)) for path in manifest["image_path"]]
    files = {name: (root / name).read_bytes() for name in OUTPUTS[1:]}
    crops = root / "data/03_primary/face_crops"
    for path in crops.rglob("*"):
        if path.is_file():
            files[str(path.relative_to(root))] = path.read_bytes()
    return manifest, files


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """The outputs of a run at crop size 48 that nothing stopped."""
    root = tiny_project(tmp_path_factory.mktemp("uninterrupted"), crop_size=48)
    harmonize(root)
    return outputs(root)


@pytest.fixture(scope="module")
def run_at_32_px(tmp_path_factory) -> Path:
    """A project after a whole run at crop size 32."""
    root = tiny_project(tmp_path_factory.mktemp("run_at_32_px"), crop_size=32)
    harmonize(root)
    return root


@pytest.fixture
def earlier_run(run_at_32_px, tmp_path) -> Path:
    """A copy of ``run_at_32_px``, now configured for 48 px."""
    root = Path(shutil.copytree(run_at_32_px, tmp_path / "project"))
    set_crop_size(root, 48)
    bootstrap_project(root)
    return root


def test_the_tiny_source_gives_a_manifest_and_marked_crops(uninterrupted):
    manifest, files = uninterrupted
    assert DIGEST_FILE in {Path(name).name for name in files}
    crops = [name for name in files if name.endswith(".png") and "face_crops" in name]
    assert len(crops) == len(manifest) == 16


@pytest.mark.parametrize("boundary", NODES[:-1])
def test_a_run_stopped_after_any_node_then_rerun_gives_the_uninterrupted_outputs(
    earlier_run, uninterrupted, boundary
):
    harmonize(earlier_run, up_to=boundary)  # stopped there: later nodes did not run
    harmonize(earlier_run)
    manifest, files = outputs(earlier_run)
    pd.testing.assert_frame_equal(manifest, uninterrupted[0])
    assert files == uninterrupted[1]


def test_readers_refuse_a_manifest_whose_crops_are_from_another_run(earlier_run):
    from pediatric_emotion.datasets import FileTree
    from pediatric_emotion.pipelines.evaluation.selection import select_evaluation_images
    from pediatric_emotion.pipelines.training.nodes import select_training_examples

    harmonize(earlier_run, up_to="build_manifest_node")  # Ctrl-C before select_crops_node
    manifest = pd.read_parquet(earlier_run / "data/03_primary/face_manifest.parquet")
    crops = FileTree(earlier_run / "data/03_primary/face_crops")
    variant = {"roles": ["train"]}
    examples = select_training_examples(manifest, variant, ["neutral", "happy", "sad"])
    with pytest.raises(CropsMismatchError, match="face_manifest belongs to harmonization run"):
        select_evaluation_images(manifest, crops, examples, {"splits": ["val"]}, ["happy"])
    with pytest.raises(CropsMismatchError, match="rerun `kedro run --pipelines=label_harm"):
        check_crops_match(examples, crops.root, "mobilenet_v2.public.training_examples")
    harmonize(earlier_run)  # the whole run again: the two agree
    check_crops_match(
        pd.read_parquet(earlier_run / "data/03_primary/face_manifest.parquet"),
        crops.root,
        "face_manifest",
    )
