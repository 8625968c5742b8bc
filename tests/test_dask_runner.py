"""DaskRunner on small pipelines: the sequential runner's results, in-memory datasets through
files that are gone after the run, single-process datasets refused, failures raised with their
node's timing, settings from the ``dask`` parameters, no TensorFlow import."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dask
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from kedro.io import CachedDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from pediatric_emotion.datasets import AtomicCSVDataset
from pediatric_emotion.hooks import NodeTimingHook
from pediatric_emotion.runners import DaskRunner, dask_runner
from pediatric_emotion.runners.dask_runner import (
    MALLOC_TRIM_SETTING,
    PROFILER_SETTING,
    PickleFileDataset,
    crossing_datasets,
    downstream_counts,
    local_cluster_arguments,
    local_worker_config,
    persist_in_memory_outputs,
)
from tests.conftest import heavy_modules_after


def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})


def double(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(y=frame["x"] * 2)


def total(frame: pd.DataFrame) -> int:
    return int(frame["y"].sum())


def fail(frame: pd.DataFrame) -> int:
    raise RuntimeError("this node fails")


def pipeline(last=total) -> Pipeline:
    """Two branches after one node: ``a`` -> ``b`` -> ``c`` (free) and ``a`` -> ``saved``."""
    return Pipeline(
        [
            Node(make_frame, "params:n", "a", name="make"),
            Node(double, "a", "b", name="double"),
            Node(last, "b", "c", name="total"),
            Node(double, "a", "saved", name="save"),
        ]
    )


def catalog(folder: Path) -> DataCatalog:
    return DataCatalog(
        {
            "params:n": MemoryDataset(6),
            "params:dask": MemoryDataset({"intermediate_dir": str(folder / "dask")}),
            "saved": AtomicCSVDataset(filepath=str(folder / "saved.csv")),
        }
    )


@pytest.fixture(scope="module")
def client():
    """Two worker threads in this process: quick to start (the slow end-to-end test runs worker
    processes)."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_results_match_the_sequential_runner(client, tmp_path):
    expected = SequentialRunner().run(pipeline(), catalog(tmp_path / "seq"))["c"].load()
    ours = catalog(tmp_path / "dask")
    outputs = DaskRunner(client=client).run(pipeline(), ours)
    assert outputs["c"].load() == expected == 30  # the free output is back in memory
    assert pd.read_csv(tmp_path / "dask/saved.csv")["y"].sum() == 30
    assert not list((tmp_path / "dask/dask").iterdir())  # the run's pickle files are gone
    assert isinstance(ours.get("a", fallback_to_runtime_pattern=True), MemoryDataset)


def test_failure_is_raised_and_files_removed(client, tmp_path):
    with pytest.raises(RuntimeError, match="this node fails"):
        DaskRunner(client=client).run(pipeline(last=fail), catalog(tmp_path))
    assert not list((tmp_path / "dask").iterdir())


def test_in_memory_outputs_go_through_files_and_single_process_ones_are_refused(tmp_path):
    ours = catalog(tmp_path)
    assert crossing_datasets(pipeline()) == {"a", "b"}
    swapped = persist_in_memory_outputs(pipeline(), ours, tmp_path / "run")
    assert sorted(swapped) == ["a", "b", "c"]
    assert all(isinstance(ours[name], PickleFileDataset) for name in swapped)
    ours["a"].save(make_frame(3))
    pd.testing.assert_frame_equal(ours["a"].load(), make_frame(3))
    ours.release("a")
    assert not (tmp_path / "run/a.pkl").exists()

    cached = catalog(tmp_path)
    cached["b"] = CachedDataset(MemoryDataset())
    with pytest.raises(ValueError, match=r"cross nodes .* b \(CachedDataset\)"):
        persist_in_memory_outputs(pipeline(), cached, tmp_path / "run")


def test_settings_from_parameters_then_runner_arguments(tmp_path):
    ours = catalog(tmp_path)
    ours["params:dask"] = MemoryDataset(
        {"scheduler_address": "tcp://a:1", "local_cluster": {"n_workers": 5}}
    )
    settings = DaskRunner().settings(ours)
    assert settings["scheduler_address"] == "tcp://a:1"
    assert settings["local_cluster"] == {
        "n_workers": 5,
        "threads_per_worker": 1,
        "dashboard_address": None,
    }
    assert settings["intermediate_dir"] == "data/02_intermediate/dask"
    settings = DaskRunner(address="tcp://b:2", n_workers=3).settings(ours)
    assert settings["scheduler_address"] == "tcp://b:2"
    assert settings["local_cluster"]["n_workers"] == 3


def test_tensorflow_threads_of_local_workers(monkeypatch):
    monkeypatch.setattr(dask_runner.os, "cpu_count", lambda: 8)
    settings = DaskRunner().settings(DataCatalog())
    settings["local_cluster"]["n_workers"] = 3
    arguments = local_cluster_arguments(settings)
    assert arguments["env"] == {"TF_NUM_INTRAOP_THREADS": "2"}  # inter-op: TensorFlow's default
    assert arguments["n_workers"] == 3 and "env" not in settings["local_cluster"]
    settings["tensorflow_threads"] = 4
    settings["local_cluster"]["env"] = {"TF_NUM_INTEROP_THREADS": "1", "OTHER": "x"}
    assert local_cluster_arguments(settings)["env"] == {
        "TF_NUM_INTRAOP_THREADS": "4",
        "TF_NUM_INTEROP_THREADS": "1",
        "OTHER": "x",
    }
    settings["tensorflow_threads"] = None
    assert local_cluster_arguments(settings)["env"] == {"TF_NUM_INTEROP_THREADS": "1", "OTHER": "x"}
    for wrong in (0, "many", True):
        settings["tensorflow_threads"] = wrong
        with pytest.raises(ValueError, match="dask.tensorflow_threads"):
            local_cluster_arguments(settings)


def test_local_workers_keep_glibcs_mmap_threshold_and_run_no_profiler(tmp_path):
    """Dask's default MALLOC_TRIM_THRESHOLD_ (65536) made TensorFlow's training 2x slower in the
    workers, and its statistical profiler deadlocked a worker (sys._current_frames on Python
    3.11): the local cluster's worker processes start without either."""
    settings = DaskRunner().settings(DataCatalog())
    assert local_worker_config(settings) == {MALLOC_TRIM_SETTING: None, PROFILER_SETTING: False}
    assert (
        local_worker_config({**settings, "malloc_trim_threshold": 65536})[MALLOC_TRIM_SETTING]
        == 65536
    )
    for wrong in (-1, "much", True):
        with pytest.raises(ValueError, match="dask.malloc_trim_threshold"):
            local_worker_config({**settings, "malloc_trim_threshold": wrong})
    settings["local_cluster"] = {"n_workers": 1, "threads_per_worker": 1, "dashboard_address": None}
    settings["intermediate_dir"] = str(tmp_path / "dask")
    client, to_close = DaskRunner()._connect(settings)
    try:
        environments = client.run(lambda: dict(os.environ))
        profilers = client.run(lambda: dask.config.get(PROFILER_SETTING))
    finally:
        for closable in to_close:
            closable.close()
    (environment,) = environments.values()
    assert "MALLOC_TRIM_THRESHOLD_" not in environment
    assert list(profilers.values()) == [False]
    assert environment["TF_NUM_INTRAOP_THREADS"] == str(max(1, os.cpu_count() or 1))


def test_nodes_with_more_work_downstream_start_first():
    counts = {node.name: count for node, count in downstream_counts(pipeline()).items()}
    assert counts == {"make": 3, "double": 1, "total": 0, "save": 0}


def test_dedicated_workers_freeze_their_imports_once_per_new_module(monkeypatch, tmp_path):
    frozen = []
    monkeypatch.setattr(dask_runner.gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setitem(dask_runner._frozen, "modules", 0)
    node = pipeline().nodes[0]
    ours = catalog(tmp_path)
    ours["a"] = MemoryDataset()
    for dedicated in (False, True, True):
        dask_runner.run_node_on_worker(
            node, ours, is_async=False, run_id=None, package_name=None, logging_config=None,
            dedicated_worker=dedicated,
        )  # fmt: skip
    assert frozen == [1]  # not in a shared process; then once, as no module came in since


def test_node_timing_travels_between_hooks():
    worker, driver = NodeTimingHook(), NodeTimingHook()
    node = pipeline().nodes[0]
    driver.before_pipeline_run(pipeline())
    worker.before_node_run(node)
    time.sleep(0.05)
    until = time.process_time() + 0.05
    while time.process_time() < until:  # and busy
        pass
    worker.after_node_run(node)
    worker.after_dataset_saved(node)
    timing = worker.pop_timing(node.name)
    assert worker.pop_timing(node.name) is None
    assert timing["status"] == "completed" and timing["seconds"] >= 0.05
    assert timing["cpu_seconds"] >= 0.05
    assert timing["started_at"] <= datetime.now(timezone.utc)
    driver.add_timing(node, timing, where="tcp://worker")
    rows = {row["node"]: row for row in driver.table(failed=False)}
    assert rows["make"]["status"] == "completed"
    assert rows["make"]["seconds"] == pytest.approx(timing["seconds"], abs=1e-3)
    assert rows["make"]["cpu_seconds"] == pytest.approx(timing["cpu_seconds"], abs=1e-3)
    assert rows["double"]["status"] == "not_timed"


def test_runner_module_does_not_import_tensorflow(project_root):
    assert heavy_modules_after("import pediatric_emotion.runners", project_root) == (False, False)
