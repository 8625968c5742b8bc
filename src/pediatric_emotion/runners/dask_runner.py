"""``DaskRunner``: Kedro's documented Dask runner (docs: Deploy > Dask), on the Kedro 1.x runner
API. Every node is one task on a ``distributed`` cluster, submitted as soon as the nodes it
depends on are done, so independent namespaces (the training cells, their optimization) run
concurrently on the workers::

    kedro run --runner=pediatric_emotion.runners.DaskRunner

The cluster: ``dask.scheduler_address`` (conf/base/parameters_dask.yml, or
``--params=dask.scheduler_address=tcp://host:8786``), else Dask's own ``scheduler-address``
setting (``DASK_SCHEDULER_ADDRESS``), else a ``LocalCluster`` on this machine
(``dask.local_cluster``: 2 worker processes of 1 thread by default, TensorFlow's thread pools
sized by ``dask.tensorflow_threads``). ``--runner-params`` may set ``address`` and ``n_workers``
too; they win over the parameters. Among ready nodes, those with the most nodes downstream start
first.

Every in-memory dataset a node writes (``MemoryDataset``: the unregistered ones and the
``copy_mode: assign`` entries) is swapped, for this run only, for a pickle file under
``dask.intermediate_dir`` (on storage every worker sees), deleted once its last reader is done;
free outputs come back into their ``MemoryDataset`` after the run, as with Kedro's runners. Other
single-process datasets that cross nodes are refused before anything runs. Node hooks run
on the worker that runs the node; ``NodeTimingHook``'s timings come back to this process.

No TensorFlow here: the nodes import it on the workers when they need it.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
from kedro.framework.hooks.manager import (
    _create_hook_manager,
    _register_hooks,
    _register_hooks_entry_points,
)
from kedro.io import AbstractDataset, MemoryDataset
from kedro.runner import AbstractRunner
from kedro.runner.task import Task
from pluggy import PluginManager

from pediatric_emotion.hooks import NodeTimingHook

if TYPE_CHECKING:
    from distributed import Client
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "scheduler_address": None,
    "intermediate_dir": "data/02_intermediate/dask",
    "tensorflow_threads": "auto",
    "malloc_trim_threshold": None,
    "local_cluster": {"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None},
}
"""``dask`` parameters when conf has none (conf/base/parameters_dask.yml documents each)."""

_TIMINGS_ATTRIBUTE = "_pediatric_emotion_node_timings"


class PickleFileDataset(AbstractDataset):
    """A dataset that crosses nodes, kept where every worker can read it: one pickle file
    (cloudpickle: Keras models and closures too), written to a temporary name and renamed, so a
    reader never sees half a file. Releasing it deletes the file; ephemeral like the
    ``MemoryDataset`` it stands for (the runner deletes it after the run)."""

    _EPHEMERAL = True

    def __init__(self, filepath: str) -> None:
        self._filepath = Path(filepath)

    def load(self) -> Any:
        with self._filepath.open("rb") as file:
            return cloudpickle.load(file)

    def save(self, data: Any) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        partial = self._filepath.with_name(f".{self._filepath.name}.{uuid.uuid4().hex}.partial")
        try:
            with partial.open("wb") as file:
                cloudpickle.dump(data, file, protocol=5)
            os.replace(partial, self._filepath)
        finally:
            partial.unlink(missing_ok=True)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _release(self) -> None:
        self._filepath.unlink(missing_ok=True)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


def crossing_datasets(pipeline: Pipeline) -> set[str]:
    """The datasets that one node of ``pipeline`` writes and another reads."""
    return _outputs(pipeline) & set(chain.from_iterable(node.inputs for node in pipeline.nodes))


def _outputs(pipeline: Pipeline) -> set[str]:
    return set(chain.from_iterable(node.outputs for node in pipeline.nodes))


class _QuietReplacing(logging.Filter):
    """Drops the catalog's "Replacing dataset" warning while the runner swaps datasets."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Replacing dataset")


@contextmanager
def _replacing_quietly() -> Iterator[None]:
    catalog_logger, quiet = logging.getLogger("kedro.io.data_catalog"), _QuietReplacing()
    catalog_logger.addFilter(quiet)
    try:
        yield
    finally:
        catalog_logger.removeFilter(quiet)


def persist_in_memory_outputs(
    pipeline: Pipeline, catalog: CatalogProtocol, folder: Path
) -> dict[str, tuple[Path, MemoryDataset]]:
    """Swap every in-memory dataset a node writes (crossing to another node, or a free output
    this process reads after the run) for a ``PickleFileDataset`` in ``folder``.

    Returns, per swapped name, its file and the ``MemoryDataset`` it replaced.

    Raises:
        ValueError: a dataset that crosses nodes is single-process or ephemeral but no
            ``MemoryDataset``, so it cannot be persisted for it; the message names each.
    """
    crossing = crossing_datasets(pipeline)
    swapped: dict[str, tuple[Path, MemoryDataset]] = {}
    refused: list[str] = []
    for name in sorted(_outputs(pipeline)):
        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        if isinstance(dataset, MemoryDataset):
            swapped[name] = (folder / f"{name}.pkl", dataset)
        elif name in crossing and (
            getattr(dataset, "_SINGLE_PROCESS", False) or getattr(dataset, "_EPHEMERAL", False)
        ):
            refused.append(f"{name} ({type(dataset).__name__})")
    if refused:
        raise ValueError(
            "DaskRunner: these datasets cross nodes but live in one process, so another worker "
            f"cannot read them: {', '.join(refused)}. Give each a file dataset in the catalog."
        )
    with _replacing_quietly():
        for name, (path, _) in swapped.items():
            catalog[name] = PickleFileDataset(str(path))
    return swapped


def restore_in_memory_outputs(
    catalog: CatalogProtocol, swapped: dict[str, tuple[Path, MemoryDataset]]
) -> None:
    """Put the ``MemoryDataset``s back, with the data of those still on file (free outputs),
    and delete the files."""
    with _replacing_quietly():
        for name, (path, original) in swapped.items():
            if path.exists():
                original.save(PickleFileDataset(str(path)).load())
                path.unlink()
            catalog[name] = original


TENSORFLOW_THREAD_VARIABLE = "TF_NUM_INTRAOP_THREADS"
"""The environment variable that sizes TensorFlow's intra-op thread pool (its kernels' threads)."""


def _whole_number(value: Any, setting: str, minimum: int, allowed: str) -> int:
    """``value`` as an int of at least ``minimum``, or a ValueError naming ``dask.<setting>``."""
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < minimum:
        raise ValueError(f"dask.{setting}: {value!r} ({allowed})")
    return int(value)


def local_cluster_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    """``distributed.LocalCluster`` arguments: ``local_cluster`` with each worker's TensorFlow
    intra-op thread pool sized by ``tensorflow_threads`` (``auto``: this machine's cores shared
    among the workers; a number; null: TensorFlow's default, every core in every worker).
    TensorFlow reads it from the worker's environment (``TF_NUM_INTRAOP_THREADS``); an ``env``
    of ``local_cluster`` that sets it wins. The inter-op pool keeps TensorFlow's default: its
    threads mostly wait for the ops they dispatch, and with one thread the input pipeline's ops
    queued behind the model's (EfficientNetB0 beside NASNetMobile on 2 cores: 45.8 s of
    training with one inter-op thread, 31.5 s with two)."""
    arguments = dict(settings["local_cluster"])
    threads = settings.get("tensorflow_threads", "auto")
    if threads is None:
        return arguments
    if str(threads).lower() == "auto":
        workers = max(1, int(arguments.get("n_workers") or 1))
        threads = max(1, (os.cpu_count() or 1) // workers)
    else:
        threads = _whole_number(threads, "tensorflow_threads", 1, "auto, a number >= 1 or null")
    arguments["env"] = {
        TENSORFLOW_THREAD_VARIABLE: str(threads),
        **dict(arguments.get("env") or {}),
    }
    return arguments


MALLOC_TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
"""Where Dask keeps the ``MALLOC_TRIM_THRESHOLD_`` its nannies put in each worker's environment."""

PROFILER_SETTING = "distributed.worker.profile.enabled"
"""Dask's statistical profiler of each worker (``sys._current_frames()`` every 10 ms)."""


def local_worker_config(settings: dict[str, Any]) -> dict[str, Any]:
    """Dask settings in force while the local cluster starts its workers (the nannies hand
    Dask's configuration to the worker processes).

    - ``MALLOC_TRIM_THRESHOLD_``: Dask's default sets glibc's to 65536 in every worker; any
      explicit value turns off glibc's sliding mmap threshold, so each tensor above 128 KiB is
      mapped, faulted in and unmapped again: TensorFlow's training steps ran 2x slower in those
      workers. ``null`` (``dask.malloc_trim_threshold``) leaves glibc's own behaviour;
      ``ReleaseMemoryHook`` hands freed pages back after each node instead.
    - The statistical profiler is off: on Python 3.11 ``sys._current_frames()`` holds the
      interpreter's thread-list lock while it allocates, and a garbage collection there that
      frees a thread-local (TensorFlow's graphs hold them) takes the same lock again. A worker
      hung for good in NASNetMobile's PCQAT node that way (its event loop in the profiler, the
      node's thread waiting for the interpreter lock).
    """
    threshold = settings.get("malloc_trim_threshold")
    if threshold is not None:
        threshold = _whole_number(threshold, "malloc_trim_threshold", 0, "bytes >= 0 or null")
    return {
        MALLOC_TRIM_SETTING: threshold,
        PROFILER_SETTING: False,
    }


_frozen = {"modules": 0}  # modules imported when this worker last froze its objects


def _freeze_long_lived_objects() -> None:
    """Between tasks, a dedicated worker holds what its imports made (TensorFlow's modules and
    registries: about half a million objects) and nothing of any node. Move those out of the
    cyclic garbage collector's sight (``gc.freeze``) whenever new modules came in, so the
    collections that free each node's Keras models (``ReleaseMemoryHook``) walk only what later
    nodes make: about 0.05 s instead of 1-2 s per node. Objects alive now are never collected as
    cycles afterwards; between tasks those are imports and caches that live as long as the
    worker."""
    if len(sys.modules) > _frozen["modules"]:
        gc.collect()
        gc.freeze()
        _frozen["modules"] = len(sys.modules)


def downstream_counts(pipeline: Pipeline) -> dict[Node, int]:
    """How many nodes depend on each node, directly or not: the Dask priority of its task, so
    that among ready nodes those that unlock the most work start first (a training cell whose
    model is optimized, evaluated and profiled before one that is only evaluated), and fewer
    workers sit idle at the end of the run."""
    dependents: dict[Node, set[Node]] = {node: set() for node in pipeline.nodes}
    for node, parents in pipeline.node_dependencies.items():
        for parent in parents:
            dependents[parent].add(node)
    below: dict[Node, set[Node]] = {}
    for node in reversed(pipeline.nodes):  # topological order, reversed: children first
        below[node] = set().union(*(below[c] | {c} for c in dependents[node]))
    return {node: len(nodes) for node, nodes in below.items()}


def _bootstrap_worker(package_name: str | None, logging_config: dict[str, Any] | None) -> None:
    """Configure the Kedro project in a worker process once (settings, hooks, logging)."""
    from kedro.framework import project

    if package_name and project.PACKAGE_NAME != package_name:
        project.configure_project(package_name)
        if logging_config:
            project.configure_logging(logging_config)


def run_node_on_worker(
    node: Node,
    catalog: CatalogProtocol,
    *,
    is_async: bool,
    run_id: str | None,
    package_name: str | None,
    logging_config: dict[str, Any] | None,
    dedicated_worker: bool = False,
) -> tuple[Node, dict[str, Any]]:
    """Run one node on a Dask worker with the project's hooks (a ``PluginManager`` cannot be
    pickled: it is built here); returns the node and the timings of its ``NodeTimingHook``s,
    which a failure carries on the exception instead. ``dedicated_worker``: the worker is a
    process of its own (the runner's cluster, or a scheduler's), not a notebook's or a test's
    threads, so its long-lived objects may be frozen."""
    from kedro.framework.project import settings

    _bootstrap_worker(package_name, logging_config)
    if dedicated_worker:
        _freeze_long_lived_objects()
    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, settings.HOOKS)
    _register_hooks_entry_points(hook_manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
    timing_hooks = [p for p in hook_manager.get_plugins() if isinstance(p, NodeTimingHook)]

    def timings() -> dict[str, Any]:
        popped = {type(h).__qualname__: h.pop_timing(node.name) for h in timing_hooks}
        return {key: value for key, value in popped.items() if value is not None}

    try:
        Task(
            node=node, catalog=catalog, is_async=is_async, hook_manager=hook_manager, run_id=run_id
        ).execute()
    except Exception as error:
        setattr(error, _TIMINGS_ATTRIBUTE, timings())
        raise
    return node, timings()


class DaskRunner(AbstractRunner):
    """Run a pipeline's nodes as tasks on a Dask ``distributed`` cluster, each as soon as its
    inputs are written.

    Args:
        address: the scheduler (``tcp://host:8786``); overrides ``dask.scheduler_address``.
        n_workers: workers of the local cluster; overrides ``dask.local_cluster.n_workers``.
        client: an existing ``distributed.Client`` (tests, notebooks); it is left open.
        is_async: load and save a node's datasets in threads (Kedro's ``--async``).
    """

    def __init__(
        self,
        address: str | None = None,
        n_workers: int | None = None,
        client: Client | None = None,
        is_async: bool = False,
    ) -> None:
        super().__init__(is_async=is_async)
        self._address = address
        self._n_workers = n_workers
        self._client = client

    def _get_executor(self, max_workers: int) -> None:
        return None  # the cluster schedules; AbstractRunner's executor loop is not used

    def settings(self, catalog: CatalogProtocol) -> dict[str, Any]:
        """The ``dask`` parameters of this run over the defaults, then the runner's arguments."""
        configured = catalog.load("params:dask") if "params:dask" in catalog else {}
        merged = {**DEFAULT_SETTINGS, **(configured or {})}
        merged["local_cluster"] = {
            **DEFAULT_SETTINGS["local_cluster"],
            **(merged.get("local_cluster") or {}),
        }
        if self._address:
            merged["scheduler_address"] = self._address
        if self._n_workers:
            merged["local_cluster"]["n_workers"] = int(self._n_workers)
        return merged

    def _connect(self, settings: dict[str, Any]) -> tuple[Client, list[Any]]:
        """The client to use and what to close after the run."""
        import dask
        from distributed import Client, LocalCluster

        if self._client is not None:
            return self._client, []
        address = settings["scheduler_address"] or dask.config.get("scheduler-address", None)
        if address:
            client = Client(address)
            logger.info("DaskRunner: scheduler %s", address)
            return client, [client]
        with dask.config.set(local_worker_config(settings)):
            cluster = LocalCluster(**local_cluster_arguments(settings))
        client = Client(cluster)
        logger.info("DaskRunner: local cluster of %d workers at %s", len(cluster.workers), cluster)
        return client, [client, cluster]

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        """Submit each node when its dependencies are done; release datasets as Kedro does."""
        from kedro.framework.project import LOGGING, PACKAGE_NAME

        settings = self.settings(catalog)
        folder = Path(settings["intermediate_dir"]) / (run_id or uuid.uuid4().hex)
        swapped = persist_in_memory_outputs(pipeline, catalog, folder)
        if swapped:
            logger.info(
                "DaskRunner: %d in-memory datasets go through files in %s",
                len(swapped),
                folder,
            )
        client, to_close = self._connect(settings)
        try:
            self._warn_on_other_working_directories(client)
            self._submit_all(
                pipeline,
                catalog,
                client,
                hook_manager=hook_manager,
                run_id=run_id,
                package_name=PACKAGE_NAME,
                logging_config=dict(LOGGING),
            )
        finally:
            for closable in to_close:
                closable.close()
            restore_in_memory_outputs(catalog, swapped)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    @staticmethod
    def _warn_on_other_working_directories(client: Client) -> None:
        """Relative catalog paths resolve against each worker's working directory."""
        here = os.getcwd()
        elsewhere = {w: d for w, d in client.run(os.getcwd).items() if d != here}
        if elsewhere:
            logger.warning(
                "DaskRunner: workers started outside this project folder (%s): %s; relative "
                "catalog paths resolve there (docs/scaling.md)",
                here,
                elsewhere,
            )

    def _submit_all(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        client: Client,
        *,
        hook_manager: PluginManager | None,
        run_id: str | None,
        package_name: str | None,
        logging_config: Any,
    ) -> None:
        from distributed import wait

        nodes = pipeline.nodes
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        dependencies = pipeline.node_dependencies
        todo, done_nodes = set(dependencies), set()
        running: dict[Any, Node] = {}
        plugins = hook_manager.get_plugins() if isinstance(hook_manager, PluginManager) else ()
        timing_hooks = [p for p in plugins if isinstance(p, NodeTimingHook)]
        priorities = downstream_counts(pipeline)
        while True:
            ready = {n for n in todo if dependencies[n] <= done_nodes}
            todo -= ready
            for node in sorted(ready, key=lambda n: n.name):
                future = client.submit(
                    run_node_on_worker,
                    node,
                    catalog,
                    is_async=self._is_async,
                    run_id=run_id,
                    package_name=package_name,
                    logging_config=logging_config,
                    dedicated_worker=self._client is None,
                    key=f"{node.name}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                    priority=priorities[node],
                )
                running[future] = node
            if not running:
                if todo:
                    self._raise_runtime_error(todo, done_nodes, ready, None)
                break
            finished = wait(list(running), return_when="FIRST_COMPLETED").done
            for future in finished:
                node = running.pop(future)
                error = future.exception()
                if error is not None:
                    timings = getattr(error, _TIMINGS_ATTRIBUTE, {})
                    self._add_timings(timing_hooks, node, timings, "a worker")
                    for other in running:
                        other.cancel()
                    self._suggest_resume_scenario(pipeline, done_nodes, catalog)
                    raise error
                _, node_timings = future.result()
                where = (client.who_has(future).get(future.key) or ["a worker"])[0]
                self._add_timings(timing_hooks, node, node_timings, str(where))
                done_nodes.add(node)
                self._logger.info("Completed node: %s", node.name)
                self._logger.info("Completed %d out of %d tasks", len(done_nodes), len(nodes))
                self._release_datasets(node, catalog, load_counts, pipeline)

    @staticmethod
    def _add_timings(
        hooks: list[NodeTimingHook], node: Node, timings: dict[str, Any], where: str
    ) -> None:
        for hook in hooks:
            timing = timings.get(type(hook).__qualname__)
            if timing is not None:
                hook.add_timing(node, timing, where=where)
