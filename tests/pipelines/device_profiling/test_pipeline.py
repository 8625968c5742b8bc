"""The device_profiling pipeline as Kedro sees it: one node per technique in every optimized
namespace, reading the optimization pipeline's catalog entries, the grid's table, its place in
the default run; and whole runs through a Kedro session on a tiny project, on the stand-in phone
and on the host."""

import json

import pandas as pd
import pytest
import yaml
from kedro.framework.project import configure_project

from pediatric_emotion.grid import configured_techniques, load_project_parameters, optimized_cells
from pediatric_emotion.pipeline_registry import register_pipelines
from pediatric_emotion.pipelines.device_profiling.nodes import PROFILING_COLUMNS
from pediatric_emotion.pipelines.device_profiling.pipeline import create_pipeline
from tests.pipelines.device_profiling.conftest import SERIAL


def test_every_technique_of_every_optimized_cell_is_profiled(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    parameters = load_project_parameters(project_root)
    pipeline = create_pipeline()
    techniques = configured_techniques(parameters)
    cells = optimized_cells(parameters)
    assert cells and techniques
    for arch, variant in cells:
        ns = f"{arch}.{variant}"
        for technique in techniques:
            node = pipeline.filter(node_names=[f"{ns}.profile_{technique}_tflite_node"]).nodes[0]
            assert node.inputs == [f"{ns}.{technique}_tflite", "params:device_profiling"]
            assert node.outputs == [
                f"{ns}.{technique}_profiling",
                f"{ns}.{technique}_profiling_runs",
            ]
            assert node.func.__name__ == "profile_tflite"
            assert node.func.keywords == {
                "cell": {"architecture": arch, "variant": variant},
                "technique": technique,
            }
    summary = pipeline.filter(node_names=["summarize_profiling_node"]).nodes[0]
    assert summary.inputs == [f"{a}.{v}.{t}_profiling" for a, v in cells for t in techniques]
    assert pipeline.inputs() == {f"{a}.{v}.{t}_tflite" for a, v in cells for t in techniques} | {
        "params:device_profiling"
    }
    configure_project("pediatric_emotion")
    pipelines = register_pipelines()
    default = {node.name for node in pipelines["__default__"].nodes}
    assert {node.name for node in pipelines["device_profiling"].nodes} <= default


def test_catalog_factories_resolve_the_profiling_outputs(project_root):
    catalog = yaml.safe_load((project_root / "conf/base/catalog_device_profiling.yml").read_text())
    rows = catalog["{arch}.{variant}.{technique}_profiling"]
    assert rows["type"] == "pediatric_emotion.datasets.AtomicCSVDataset"
    runs = catalog["{arch}.{variant}.{technique}_profiling_runs"]
    assert runs["dataset"]["type"] == "pediatric_emotion.datasets.AtomicJSONDataset"
    assert runs["path"] == "data/07_model_output/device_profiling/{arch}.{variant}/{technique}"
    assert catalog["profiling_results"]["filepath"] == "data/08_reporting/profiling_results.csv"
    base = yaml.safe_load((project_root / "conf/base/catalog.yml").read_text())
    assert "{arch}.{variant}.{technique}_tflite" in base  # the input it reads


def _tiny_project(root, tiny_tflite, binary):
    from pediatric_emotion.datasets import TFLiteModelDataset

    local = root / "conf" / "local"
    (local / "parameters_grid.yml").write_text(
        yaml.safe_dump(
            {
                "architectures": {"tiny": {"application": "none"}},
                "variants": {"demo": {"roles": ["train"]}},
                "optimization": {
                    "variants": None,
                    "techniques": ["baseline", "pruned"],  # pruned: every file refused
                    "quantizations": {"baseline": ["float32", "int8"], "pruned": ["int8"]},
                },
            }
        )
    )
    profiling = yaml.safe_load((root / "conf/base/parameters_device_profiling.yml").read_text())
    profiling["device_profiling"]["phone"]["benchmark_model"] = str(binary)
    profiling["device_profiling"]["runs"] = 10
    (local / "parameters_device_profiling.yml").write_text(yaml.safe_dump(profiling))
    for quantization, model in tiny_tflite.items():
        path = root / f"data/06_models/tflite/tiny.demo/baseline/{quantization}.tflite"
        TFLiteModelDataset(filepath=str(path)).save(model)


def test_whole_runs_on_the_phone_and_on_the_host(kedro_project, fake_adb, tiny_tflite):
    root = kedro_project.root
    _tiny_project(root, tiny_tflite, fake_adb.binary)
    fake_adb.set(
        benchmark=[{"match": "int8", "output": "phone_int8_cpu.txt"}, {"output": "phone_cpu.txt"}]
    )

    kedro_project("device_profiling")

    results = pd.read_csv(root / "data/08_reporting/profiling_results.csv")
    assert list(results.columns) == PROFILING_COLUMNS
    assert results[["architecture", "variant", "technique"]].drop_duplicates().values.tolist() == [
        ["tiny", "demo", "baseline"]
    ]
    assert results["quantization"].tolist() == ["float32", "int8"]
    assert set(results["target"]) == {"moto g(6)"}
    assert results["avg_ms"].tolist() == pytest.approx([90.9542, 48.2053])
    sizes = [
        len((root / f"data/06_models/tflite/tiny.demo/baseline/{q}.tflite").read_bytes())
        for q in ("float32", "int8")
    ]
    assert results["size_bytes"].tolist() == sizes  # what is on disk, spec embedded
    raw = root / "data/07_model_output/device_profiling/tiny.demo"
    assert sorted(p.name for p in (raw / "baseline").iterdir()) == ["float32.json", "int8.json"]
    record = json.loads((raw / "baseline/int8.json").read_text())
    assert record["runs"][0]["device"]["serial"] == SERIAL
    assert "Inference timings in us" in record["runs"][0]["output"]
    assert pd.read_csv(raw / "pruned.csv").empty  # a technique without files: an empty table
    assert fake_adb.left_on_device() == ["data", "data/local", "data/local/tmp"]
    pushed = [c for c in fake_adb.calls() if c[2:3] == ["push"]]
    assert len(pushed) == 3  # the binary, then each file

    kedro_project("device_profiling", runtime_params={"device_profiling": {"target": "host"}})

    host = pd.read_csv(root / "data/08_reporting/profiling_results.csv")
    assert set(host["target_kind"]) == {"host"} and set(host["runner"]) == {"litert"}
    assert host["quantization"].tolist() == ["float32", "int8"]
    assert host[["init_ms", "avg_ms", "p50_ms", "p90_ms", "std_ms"]].notna().all().all()
    assert (host["runs"] == 10).all() and host["size_bytes"].tolist() == sizes
