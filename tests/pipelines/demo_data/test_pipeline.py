"""The demo_data pipeline and node: structure, determinism, scale and writing through Kedro."""

from __future__ import annotations

import copy
from pathlib import PurePosixPath

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pediatric_emotion.datasets import FileTreeDataset
from pediatric_emotion.pipelines.demo_data import create_pipeline
from pediatric_emotion.pipelines.demo_data.layouts import WRITERS
from pediatric_emotion.pipelines.demo_data.nodes import generate_demo_data, source_rng

from .conftest import base_params, tiny_params

SOURCES = {
    "fer2013",
    "ckplus",
    "jaffe",
    "kdef",
    "rafd",
    "affectnet",
    "expw",
    "rafdb",
    "cafe",
    "guesswhat",
    "nimh_chefs",
    "dartmouth",
    "liris_cse",
}


def test_pipeline_is_one_named_node_from_params_to_the_raw_folder():
    pipeline = create_pipeline()
    assert [node.name for node in pipeline.nodes] == ["generate_demo_data_node"]
    assert pipeline.inputs() == {"params:demo_data"}
    assert pipeline.outputs() == {"demo_raw_data"}


def test_conf_names_every_source_and_a_writer_exists_for_each():
    params = base_params()
    assert set(params["sources"]) == SOURCES == set(WRITERS)
    assert params["scale"] == 1.0


def test_same_parameters_give_byte_identical_files(demo_params, demo_files):
    again = generate_demo_data(copy.deepcopy(demo_params))
    assert list(again) == list(demo_files)
    assert all(again[path] == data for path, data in demo_files.items())


def test_another_seed_gives_other_images(demo_params, demo_files):
    other = generate_demo_data(tiny_params(seed=demo_params["seed"] + 1))
    shared = set(other) & set(demo_files)
    assert shared, "the layouts should share at least some fixed file names"
    assert sum(other[path] != demo_files[path] for path in shared) > 0.9 * len(shared)


def test_every_path_is_relative_posix_and_starts_with_its_source(demo_files):
    assert {path.split("/", 1)[0] for path in demo_files} == SOURCES
    for path, data in demo_files.items():
        parts = PurePosixPath(path).parts
        assert not PurePosixPath(path).is_absolute() and ".." not in parts and "\\" not in path
        assert len(parts) >= 2 and isinstance(data, bytes) and data


def test_scale_multiplies_the_counts(demo_files):
    bigger = generate_demo_data(tiny_params(scale=0.1))
    assert len(bigger) > len(demo_files)


def test_a_source_left_out_is_not_written(demo_params):
    params = copy.deepcopy(demo_params)
    params["sources"] = {"jaffe": params["sources"]["jaffe"]}
    files = generate_demo_data(params)
    assert files and {path.split("/", 1)[0] for path in files} == {"jaffe"}


def test_unknown_source_is_refused(demo_params):
    params = copy.deepcopy(demo_params)
    params["sources"]["mystery_set"] = {"counts": {}}
    with pytest.raises(ValueError, match="mystery_set"):
        generate_demo_data(params)


def test_source_generators_are_independent_and_stable():
    first = source_rng(7, "cafe").integers(0, 2**31, 4)
    assert (first == source_rng(7, "cafe").integers(0, 2**31, 4)).all()
    assert (first != source_rng(7, "kdef").integers(0, 2**31, 4)).any()
    assert (first != source_rng(8, "cafe").integers(0, 2**31, 4)).any()


def test_kedro_run_writes_the_folder(tmp_path, demo_params, demo_files):
    catalog = DataCatalog(
        {
            "params:demo_data": MemoryDataset(copy.deepcopy(demo_params)),
            "demo_raw_data": FileTreeDataset(str(tmp_path / "demo")),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    tree = FileTreeDataset(str(tmp_path / "demo")).load()
    assert sorted(tree) == sorted(demo_files)
    assert all(tree[path] == demo_files[path] for path in demo_files)
