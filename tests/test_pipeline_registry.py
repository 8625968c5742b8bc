import subprocess
import sys

from kedro.framework.project import configure_project

from pediatric_emotion.pipeline_registry import register_pipelines
from tests.conftest import heavy_modules_after


def test_default_runs_everything_but_demo_data():
    configure_project("pediatric_emotion")
    pipelines = register_pipelines()
    assert {"demo_data", "label_harmonization", "optimization", "evaluation", "__default__"} <= set(
        pipelines
    )
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    assert {node.name for node in pipelines["label_harmonization"].nodes} <= default_nodes
    assert {node.name for node in pipelines["training"].nodes} <= default_nodes
    assert {node.name for node in pipelines["optimization"].nodes} <= default_nodes
    assert {node.name for node in pipelines["evaluation"].nodes} <= default_nodes
    assert not {node.name for node in pipelines["demo_data"].nodes} & default_nodes


def test_registry_and_settings_do_not_import_tensorflow_or_litert(project_root):
    code = (
        "from kedro.framework.project import configure_project; "
        "configure_project('pediatric_emotion'); "
        "from pediatric_emotion.pipeline_registry import register_pipelines; "
        "import pediatric_emotion.settings; register_pipelines()"
    )
    assert heavy_modules_after(code, project_root) == (False, False)


def test_package_sets_legacy_keras_before_tensorflow():
    code = "import os, pediatric_emotion; print(os.environ['TF_USE_LEGACY_KERAS'])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "1"
