"""`kedro viz build` offline, in a project copy (it writes build/ into the folder it runs in): the
graph it writes has every registered pipeline and every `{arch}.{variant}` namespace of the
training grid, nested under its architecture, with the cell's nodes in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import configure_project

from pediatric_emotion.grid import load_project_parameters, training_cells
from pediatric_emotion.pipeline_registry import register_pipelines
from tests.conftest import make_project_copy

pytestmark = pytest.mark.slow  # loads the project and TensorFlow's dataset classes: ~20 s

# A third data copy from conf/local, as the README's example: the grid follows configuration.
EXTRA_VARIANT = {"children": {"roles": ["train", "guesswhat"], "populations": ["child"]}}


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory) -> tuple[Path, dict]:
    """The project copy after `kedro viz build` in it, and its graph (build/api/main)."""
    root = make_project_copy(tmp_path_factory.mktemp("viz_project"))
    base = yaml.safe_load((root / "conf" / "base" / "parameters_training.yml").read_text())
    variants = {**base["variants"], **EXTRA_VARIANT}
    (root / "conf" / "local" / "parameters_training.yml").write_text(
        yaml.safe_dump({"variants": variants})
    )
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    result = subprocess.run(
        [str(kedro), "viz", "build"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"kedro viz build failed:\n{result.stdout}\n{result.stderr}"
    assert (root / "build" / "index.html").is_file()
    return root, json.loads((root / "build" / "api" / "main").read_text())


@pytest.fixture(scope="module")
def registered(viz_build) -> dict:
    """The pipelines as the project copy registers them (the grid is read from its conf)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(viz_build[0])
        configure_project("pediatric_emotion")
        return register_pipelines()


def test_every_pipeline_is_in_the_build(viz_build, registered):
    root, graph = viz_build
    assert {p["id"] for p in graph["pipelines"]} == set(registered)
    for name, pipeline in registered.items():
        data = json.loads((root / "build" / "api" / "pipelines" / name).read_text())
        task_names = {n["full_name"] for n in data["nodes"] if n["type"] == "task"}
        assert {node.name for node in pipeline.nodes} <= task_names, name


def test_every_cell_of_the_grid_is_a_namespace(viz_build, registered):
    root, graph = viz_build
    cells = training_cells(load_project_parameters(root))
    assert ("mobilenet_v2", "children") in cells  # the conf/local variant is in the grid
    tree = graph["modular_pipelines"]
    training = json.loads((root / "build" / "api" / "pipelines" / "training").read_text())
    training_tree = training["modular_pipelines"]
    for arch, variant in cells:
        namespace = f"{arch}.{variant}"
        assert namespace in tree and namespace in training_tree, namespace
        children = {child["id"] for child in tree[arch]["children"]}
        assert namespace in children, f"{namespace} is not nested under {arch}"
        cell_tasks = {
            n["full_name"]
            for n in training["nodes"]
            if n["type"] == "task" and namespace in (n["modular_pipelines"] or [])
        }
        expected = {n.name for n in registered["training"].nodes if n.namespace == namespace}
        assert expected and cell_tasks == expected, namespace
    top_level = {child["id"] for child in tree["__root__"]["children"]}
    assert {arch for arch, _ in cells} <= top_level
