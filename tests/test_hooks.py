"""NodeTimingHook: every node's duration logged and saved as the run timing table, after a
successful run and after a failed one; registered in settings, its table in the catalog."""

from __future__ import annotations

import logging
import signal
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from pediatric_emotion.datasets import AtomicCSVDataset
from pediatric_emotion.hooks import RUN_TIMING_COLUMNS, NodeTimingHook
from tests.conftest import PROJECT_ROOT, make_project_copy, run_pipelines


def nap_and_double(x: int) -> int:
    time.sleep(0.2)
    return 2 * x


def add_one(x: int) -> int:
    return x + 1


def spin_and_add_one(x: int) -> int:
    """Keep one core busy for 0.3 s."""
    until = time.process_time() + 0.3
    while time.process_time() < until:
        pass
    return x + 1


def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


def press_ctrl_c(*args: object) -> None:
    """What Ctrl-C does to the running node: SIGINT, whose handler raises KeyboardInterrupt."""
    signal.raise_signal(signal.SIGINT)
    time.sleep(5)  # never reached: the handler runs before the next bytecode
    raise AssertionError("SIGINT did not interrupt the node")


@pytest.fixture
def python_sigint():
    """SIGINT raising KeyboardInterrupt, as in a plain Python process (whatever the test runner's
    worker set); put back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class FailingSave(AbstractDataset):
    """A dataset whose save always fails."""

    def load(self):
        raise NotImplementedError

    def save(self, data) -> None:
        raise OSError("disk full")

    def _describe(self) -> dict:
        return {}


def run(pipeline: Pipeline, catalog: DataCatalog, hook: NodeTimingHook) -> None:
    """Run ``pipeline`` calling the hooks as KedroSession.run does."""
    manager = _create_hook_manager()
    manager.register(hook)
    manager.hook.after_catalog_created(  # KedroSession.run, through its context
        catalog=catalog,
        conf_catalog={},
        conf_creds={},
        parameters={},
        save_version=None,
        load_versions={},
    )
    manager.hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    try:
        result = SequentialRunner().run(pipeline, catalog, manager)
    except Exception as error:
        manager.hook.on_pipeline_error(
            error=error, run_params={}, pipeline=pipeline, catalog=catalog
        )
        raise
    manager.hook.after_pipeline_run(
        run_params={}, run_result=result, pipeline=pipeline, catalog=catalog
    )


def pipeline(second=add_one) -> Pipeline:
    return Pipeline(
        [
            Node(nap_and_double, "a", "b", name="nap", namespace="mobilenet_v2.demo"),
            Node(second, "b", "c", name="second"),
            Node(add_one, "c", "d", name="third"),
        ]
    )


def catalog(tmp_path) -> DataCatalog:
    return DataCatalog(
        {
            "a": MemoryDataset(1),
            "run_timing": AtomicCSVDataset(
                filepath=str(tmp_path / "08_reporting" / "run_timing.csv"),
                save_args={"index": False},
            ),
        }
    )


def saved_table(folder, keep_default_na: bool = False) -> pd.DataFrame:
    """The run timing table the hook saved through ``catalog(folder)`` (blank cells as "" unless
    ``keep_default_na``)."""
    return pd.read_csv(folder / "08_reporting" / "run_timing.csv", keep_default_na=keep_default_na)


def test_every_node_is_logged_and_the_table_saved(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pediatric_emotion.hooks.timing"):
        run(pipeline(), catalog(tmp_path), NodeTimingHook())

    table = saved_table(tmp_path)
    assert list(table.columns) == RUN_TIMING_COLUMNS
    assert table["node"].tolist() == ["mobilenet_v2.demo.nap", "second", "third"]
    assert table["namespace"].tolist() == ["mobilenet_v2.demo", "", ""]
    assert table["status"].tolist() == ["completed"] * 3
    assert 0.2 <= table.loc[0, "seconds"] < 5
    assert (table.loc[1:, "seconds"] < table.loc[0, "seconds"]).all()
    assert table.loc[0, "cpu_seconds"] < 0.1  # asleep: no core used
    started = pd.to_datetime(table["started_at"])
    assert started.is_monotonic_increasing and started.dt.tz is not None
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith("Node ") for message in messages) == 3
    assert any(
        message.startswith("Node mobilenet_v2.demo.nap completed in 0.2") for message in messages
    )
    assert any(message.startswith("Run timing: 3 of 3 nodes timed") for message in messages)


def test_cpu_seconds_tell_a_busy_node_from_a_waiting_one(tmp_path):
    run(pipeline(second=spin_and_add_one), catalog(tmp_path), NodeTimingHook())
    table = saved_table(tmp_path, keep_default_na=True).set_index("node")
    assert table.loc["mobilenet_v2.demo.nap", "cpu_seconds"] < 0.1
    assert table.loc["second", "cpu_seconds"] >= 0.3
    assert table.loc["second", "cpu_seconds"] <= table.loc["second", "seconds"] + 0.05


def test_a_failed_run_still_saves_the_table_with_the_failed_node(tmp_path):
    with pytest.raises(ValueError, match="bad input 2"):
        run(pipeline(second=fail), catalog(tmp_path), NodeTimingHook())

    table = saved_table(tmp_path)
    assert table[["node", "status", "error"]].values.tolist() == [
        ["mobilenet_v2.demo.nap", "completed", ""],
        ["second", "failed", "ValueError"],
        ["third", "not_run", ""],
    ]
    assert table.loc[2, "seconds"] == "" and table.loc[2, "started_at"] == ""
    assert table.loc[2, "cpu_seconds"] == "" and table.loc[1, "cpu_seconds"] != ""


def test_ctrl_c_in_a_node_still_saves_the_table_and_the_interrupt_goes_on(
    tmp_path, python_sigint, caplog
):
    with caplog.at_level(logging.INFO, logger="pediatric_emotion.hooks.timing"):
        with pytest.raises(KeyboardInterrupt):
            run(pipeline(second=press_ctrl_c), catalog(tmp_path), NodeTimingHook())

    table = saved_table(tmp_path)
    assert table[["node", "status", "error"]].values.tolist() == [
        ["mobilenet_v2.demo.nap", "completed", ""],
        ["second", "interrupted", "KeyboardInterrupt"],
        ["third", "not_run", ""],
    ]
    assert float(table.loc[1, "seconds"]) < 5  # stopped where the signal came
    assert "Node second interrupted in" in caplog.text
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run's is gone


def test_the_sigint_handler_is_held_for_the_run_only(tmp_path, python_sigint):
    seen = []

    def look(x: int) -> int:
        seen.append(signal.getsignal(signal.SIGINT))
        return x

    run(pipeline(second=look), catalog(tmp_path), NodeTimingHook())
    with pytest.raises(ValueError, match="bad input"):
        run(
            Pipeline([Node(look, "a", "b"), Node(fail, "b", "c")]),
            catalog(tmp_path),
            NodeTimingHook(),
        )
    assert len(seen) == 2 and all(h is not signal.default_int_handler for h in seen)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    NodeTimingHook().before_pipeline_run(pipeline())  # no catalog created: nothing to save to
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ignored: left ignored
    run(pipeline(second=look), catalog(tmp_path), NodeTimingHook())
    assert seen[-1] is signal.SIG_IGN


def test_ctrl_c_during_a_kedro_session_run_writes_the_projects_table(
    tmp_path, monkeypatch, python_sigint
):
    """A real session of the project (its settings' hooks, its catalog): Kedro calls no hook for
    a KeyboardInterrupt; the table is written all the same and the interrupt reaches the caller."""
    from kedro.framework.startup import bootstrap_project

    from pediatric_emotion.pipelines.label_harmonization import sources

    root = make_project_copy(tmp_path / "project")
    bootstrap_project(root)
    monkeypatch.setattr(sources, "_label_map_name", press_ctrl_c)  # inside check_sources_node
    with pytest.raises(KeyboardInterrupt):
        run_pipelines(root, ["label_harmonization"])

    table = pd.read_csv(root / "data" / "08_reporting" / "run_timing.csv", keep_default_na=False)
    assert list(table.columns) == RUN_TIMING_COLUMNS
    assert table.loc[0, ["node", "status", "error"]].tolist() == [
        "check_sources_node",
        "interrupted",
        "KeyboardInterrupt",
    ]
    assert len(table) > 1 and set(table.loc[1:, "status"]) == {"not_run"}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_node_whose_output_cannot_be_saved_is_marked_failed(tmp_path):
    data = catalog(tmp_path)
    data["c"] = FailingSave()
    with pytest.raises(Exception, match="disk full"):
        run(pipeline(), data, NodeTimingHook())
    table = saved_table(tmp_path)
    assert table["status"].tolist() == ["completed", "failed", "not_run"]


def test_the_hook_is_reused_across_runs_and_skips_a_catalog_without_the_entry(tmp_path, caplog):
    hook = NodeTimingHook()
    run(pipeline(), catalog(tmp_path), hook)
    run(
        Pipeline([Node(add_one, "a", "z", name="only")]), DataCatalog({"a": MemoryDataset(1)}), hook
    )
    assert [row["node"] for row in hook.table(failed=False)] == ["only"]
    table = saved_table(tmp_path, keep_default_na=True)
    assert len(table) == 3  # the first run's table, untouched by the second run

    broken = DataCatalog({"a": MemoryDataset(1), "run_timing": FailingSave()})
    with caplog.at_level(logging.WARNING, logger="pediatric_emotion.hooks.timing"):
        run(pipeline(), broken, hook)  # a table that cannot be saved does not fail the run
    assert "Could not save the run timing table 'run_timing'" in caplog.text


def test_settings_register_the_hook_and_conf_names_the_table():
    from pediatric_emotion.settings import HOOKS

    assert any(isinstance(hook, NodeTimingHook) for hook in HOOKS)
    entry = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog_run_timing.yml").read_text())
    assert entry["run_timing"]["type"] == "pediatric_emotion.datasets.AtomicCSVDataset"
    assert entry["run_timing"]["filepath"] == "data/08_reporting/run_timing.csv"


def test_a_session_env_other_than_the_grids_is_refused_naming_the_fix(monkeypatch):
    from types import SimpleNamespace

    from pediatric_emotion.hooks import GridEnvironmentHook
    from pediatric_emotion.settings import HOOKS

    assert any(isinstance(hook, GridEnvironmentHook) for hook in HOOKS)
    hook = GridEnvironmentHook()
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    hook.after_context_created(SimpleNamespace(env=None))  # the default run
    hook.after_context_created(SimpleNamespace(env="local"))
    with pytest.raises(ValueError, match="KEDRO_ENV=paper kedro"):
        hook.after_context_created(SimpleNamespace(env="paper"))  # kedro run --env paper
    monkeypatch.setenv("KEDRO_ENV", "paper")
    hook.after_context_created(SimpleNamespace(env="paper"))  # KEDRO_ENV=paper kedro run


def test_memory_held_by_a_finished_nodes_cycles_is_given_back():
    import gc

    from pediatric_emotion.hooks import ReleaseMemoryHook
    from pediatric_emotion.hooks.memory import _resident_gib
    from pediatric_emotion.settings import HOOKS

    assert any(isinstance(hook, ReleaseMemoryHook) for hook in HOOKS)
    if _resident_gib() is None:
        pytest.skip("no /proc/self/statm here")
    gc.disable()  # so that only the hook collects the cycle
    try:
        holder: dict = {"pixels": np.ones(64 * 2**20, dtype=np.float32)}  # 256 MiB, touched
        holder["self"] = holder  # a reference cycle, as a Keras model is
        del holder
        before = _resident_gib()
        ReleaseMemoryHook().after_node_run(Node(add_one, "a", "b", name="model_node"))
        after = _resident_gib()
    finally:
        gc.enable()
    assert before - after > 0.2


def test_releasing_memory_resets_keras_state_but_keeps_existing_models():
    import tf_keras as keras

    from pediatric_emotion.hooks import ReleaseMemoryHook

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="kept")])
    keras.layers.Dense(1)
    assert keras.layers.Dense(1).name != "dense"  # the name counter has moved on
    ReleaseMemoryHook().after_node_run(Node(add_one, "a", "b", name="model_node"))
    assert keras.layers.Dense(1).name == "dense"  # clear_session ran
    assert model.predict(np.ones((1, 3), np.float32), verbose=0).shape == (1, 2)


def test_full_collections_run_only_after_the_process_grew():
    import gc

    import tf_keras as keras

    from pediatric_emotion.hooks import ReleaseMemoryHook
    from pediatric_emotion.hooks.memory import _resident_gib

    if _resident_gib() is None:
        pytest.skip("no /proc/self/statm here")
    hook = ReleaseMemoryHook(collect_after_growth_mib=128)
    node = Node(add_one, "a", "b", name="model_node")
    collections: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.disable()  # so that only the hook collects
    gc.callbacks.append(record)
    try:
        hook.after_node_run(node)  # the first node: collected
        assert collections == [2]
        keras.layers.Dense(1)
        assert keras.layers.Dense(1).name != "dense"
        hook.after_node_run(node)  # a small node: Keras reset and heap trimmed, no collection
        assert collections == [2]
        assert keras.layers.Dense(1).name == "dense"
        holder: dict = {"pixels": np.ones(64 * 2**20, dtype=np.float32)}  # 256 MiB, touched
        holder["self"] = holder  # a reference cycle, as a Keras model is
        del holder
        before = _resident_gib()
        hook.after_node_run(node)  # grown by 256 MiB: collected
        after = _resident_gib()
    finally:
        gc.callbacks.remove(record)
        gc.enable()
    assert collections == [2, 2]
    assert before - after > 0.2


def test_releasing_memory_never_imports_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from pediatric_emotion.hooks import release_memory; release_memory(); "
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
