"""Node timing: the duration of every node, logged and written as a run timing table.

A node's time runs from loading its first input to saving its last output (loading, the node's
function and saving together), measured in the process that runs the node:
``pediatric_emotion.runners.DaskRunner`` sends each worker's timings back to the process that
writes the table (``pop_timing`` / ``add_timing``);
nodes that Kedro's ``ParallelRunner`` runs in worker processes are reported as ``not_timed``.

Ctrl-C: Kedro 1.x calls no hook for a ``KeyboardInterrupt`` (``on_node_error`` and
``on_pipeline_error`` see ``Exception`` only, and ``after_pipeline_run`` is skipped), so
``NodeTimingHook`` holds the SIGINT handler for the length of a run and writes the table from it
before the interrupt goes on.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)

RUN_TIMING_COLUMNS = [
    "node",
    "namespace",
    "seconds",
    "cpu_seconds",
    "status",
    "started_at",
    "error",
]
"""Columns of the run timing table, one row per node of the pipeline that was run.
``cpu_seconds``: the CPU time of the process that ran the node, all its threads, over the same
span; below ``seconds`` the node waited for a core (or for files), above it the node ran several
threads. Exact where a process runs one node at a time (Sequential and Dask runners)."""


@dataclass
class _NodeTiming:
    node: Node
    started: float  # time.perf_counter()
    started_at: datetime
    last: float  # perf_counter of the node's latest event (run finished, output saved)
    cpu_started: float = 0.0  # time.process_time() at the start
    cpu_last: float = 0.0  # process_time() at the latest event
    saves: int = 0
    status: str = "running"  # running | saving (returned) | completed | failed | interrupted
    error: str = ""
    logged: bool = False


class NodeTimingHook:
    """Log every node's duration at INFO and save the run timing table at the end of the run.

    The table (columns :data:`RUN_TIMING_COLUMNS`, in order of start, then the nodes that never
    started) is saved through the catalog entry ``dataset`` after a successful run, after a
    failed one (the failed node ``failed``, the nodes after it ``not_run``) and on Ctrl-C (the
    nodes running then ``interrupted``, the rest ``not_run``; then the ``KeyboardInterrupt``
    goes on); nothing is saved when the catalog has no such entry.

    Ctrl-C is seen by a SIGINT handler held from ``before_pipeline_run`` to the end of the run,
    saving through the catalog of ``after_catalog_created`` (which ``KedroSession.run`` fires
    before the run), in the main thread of the process that started the run only (none where the
    run was started from another thread, or where SIGINT is ignored); a ``KeyboardInterrupt``
    raised by code, not by the signal, is not seen (Kedro calls no hook for it).
    """

    def __init__(self, dataset: str = "run_timing") -> None:
        self.dataset = dataset
        # re-entrant: the SIGINT handler runs in the main thread, maybe inside a `with self._lock`
        self._lock = threading.RLock()
        self._pipeline_nodes: list[Node] = []
        self._timings: dict[str, _NodeTiming] = {}
        self._sigint: tuple[Callable[..., Any], Any] | None = None  # (ours, the one it replaced)
        self._catalog: CatalogProtocol | None = None  # the coming run's, for the SIGINT handler

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        """Keep the catalog of the coming run: the Ctrl-C handler saves the table through it."""
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline) -> None:
        with self._lock:
            self._pipeline_nodes = list(pipeline.nodes)
            self._timings = {}
        self._hold_sigint()

    def _hold_sigint(self) -> None:
        """Install the run's SIGINT handler: mark the unfinished nodes ``interrupted``, save the
        table, restore the previous handler and hand the signal to it (``KeyboardInterrupt``)."""
        catalog = self._catalog
        self._release_sigint()  # an earlier run's, if that run never reached its end
        if catalog is None:
            logger.debug("No catalog created before the run: Ctrl-C is not timed")
            return
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Run started outside the main thread: Ctrl-C is not timed")
            return
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # ignored, or the OS default: no KeyboardInterrupt to follow
            return
        owner = os.getpid()

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            # a forked worker inherits the handler, and one put back after the run by code that
            # had installed its own over it outlives the run: only the running run's one writes
            held = self._sigint
            if os.getpid() == owner and held is not None and held[0] is on_sigint:
                self._release_sigint()
                self._mark_unfinished("interrupted", "KeyboardInterrupt")
                self._finish(catalog, failed=True)
            previous(signum, frame)

        signal.signal(signal.SIGINT, on_sigint)
        self._sigint = (on_sigint, previous)

    def _release_sigint(self) -> None:
        """Put back the handler the run's replaced (unless another was installed over ours), and
        forget the run's catalog."""
        held, self._sigint, self._catalog = self._sigint, None, None
        in_main = threading.current_thread() is threading.main_thread()  # where signal() works
        if held is not None and in_main and signal.getsignal(signal.SIGINT) is held[0]:
            signal.signal(signal.SIGINT, held[1])

    def _mark_unfinished(self, status: str, error: str) -> None:
        """Give the nodes still running or saving their outcome (the run ended under them)."""
        now, cpu = time.perf_counter(), time.process_time()
        with self._lock:
            for timing in self._timings.values():
                if timing.status in ("running", "saving"):
                    timing.status, timing.error = status, error
                    timing.last, timing.cpu_last = now, cpu

    def _start(self, node: Node) -> None:
        with self._lock:
            if node.name not in self._timings:
                now, cpu = time.perf_counter(), time.process_time()
                self._timings[node.name] = _NodeTiming(
                    node, now, datetime.now(timezone.utc), now, cpu_started=cpu, cpu_last=cpu
                )

    @hook_impl
    def before_dataset_loaded(self, node: Node) -> None:
        self._start(node)

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._start(node)

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        self._start(node)
        with self._lock:
            timing = self._timings[node.name]
            timing.last, timing.status = time.perf_counter(), "saving"
            timing.cpu_last = time.process_time()
            self._log_if_done(timing)

    @hook_impl
    def after_dataset_saved(self, node: Node) -> None:
        with self._lock:
            timing = self._timings.get(node.name)
            if timing is None:
                return
            timing.last, timing.cpu_last = time.perf_counter(), time.process_time()
            timing.saves += 1
            self._log_if_done(timing)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        self._start(node)
        with self._lock:
            timing = self._timings[node.name]
            timing.last, timing.status = time.perf_counter(), "failed"
            timing.cpu_last = time.process_time()
            timing.error = type(error).__name__
            self._log(timing)

    @hook_impl
    def after_pipeline_run(self, catalog: CatalogProtocol) -> None:
        self._release_sigint()
        self._finish(catalog, failed=False)

    @hook_impl
    def on_pipeline_error(self, error: Exception, catalog: CatalogProtocol) -> None:
        self._release_sigint()
        self._mark_unfinished("failed", type(error).__name__)  # the one that failed
        self._finish(catalog, failed=True)

    def pop_timing(self, node_name: str) -> dict[str, Any] | None:
        """Remove and return one node's timing (``seconds``, ``cpu_seconds``, ``status``,
        ``started_at``, ``error``), for a runner to send from the process that ran the node to
        the one that writes the table; None when the node was not seen here."""
        with self._lock:
            timing = self._timings.pop(node_name, None)
            if timing is None:
                return None
            status = "completed" if timing.status == "saving" else timing.status
            return {
                "seconds": timing.last - timing.started,
                "cpu_seconds": timing.cpu_last - timing.cpu_started,
                "status": status,
                "started_at": timing.started_at,
                "error": timing.error,
            }

    def add_timing(self, node: Node, timing: dict[str, Any], where: str = "") -> None:
        """Record (and log) a node timed in another process: ``pop_timing``'s result there."""
        now, now_at = time.perf_counter(), datetime.now(timezone.utc)
        started = now - (now_at - timing["started_at"]).total_seconds()
        record = _NodeTiming(
            node,
            started,
            timing["started_at"],
            started + float(timing["seconds"]),
            status=str(timing["status"]),
            error=str(timing.get("error") or ""),
            cpu_last=float(timing.get("cpu_seconds") or 0.0),
        )
        with self._lock:
            self._timings[node.name] = record
            record.logged = True
        logger.info(
            "Node %s %s in %.2f s%s",
            node.name,
            record.status,
            timing["seconds"],
            f" on {where}" if where else "",
        )

    def _log_if_done(self, timing: _NodeTiming) -> None:
        """Complete and log a node once all its outputs are saved (generator nodes, which save
        chunk by chunk: at the end of the run)."""
        streams = inspect.isgeneratorfunction(timing.node.func)
        if timing.status == "saving" and not streams and timing.saves >= len(timing.node.outputs):
            timing.status = "completed"
            self._log(timing)

    @staticmethod
    def _log(timing: _NodeTiming) -> None:
        if not timing.logged:
            timing.logged = True
            logger.info(
                "Node %s %s in %.2f s",
                timing.node.name,
                timing.status,
                timing.last - timing.started,
            )

    def table(self, *, failed: bool) -> list[dict[str, Any]]:
        """The rows of the run timing table, as they stand now."""
        with self._lock:
            rows = []
            for timing in sorted(self._timings.values(), key=lambda t: t.started):
                status = timing.status
                if status in ("running", "saving"):  # a generator node, or a runner's oddity
                    status = "failed" if failed else "completed"
                rows.append(
                    {
                        "node": timing.node.name,
                        "namespace": timing.node.namespace or "",
                        "seconds": round(timing.last - timing.started, 3),
                        "cpu_seconds": round(timing.cpu_last - timing.cpu_started, 3),
                        "status": status,
                        "started_at": timing.started_at.isoformat(timespec="milliseconds"),
                        "error": timing.error,
                    }
                )
            for node in self._pipeline_nodes:
                if node.name not in self._timings:
                    rows.append(
                        {
                            "node": node.name,
                            "namespace": node.namespace or "",
                            "seconds": None,
                            "cpu_seconds": None,
                            "status": "not_run" if failed else "not_timed",
                            "started_at": "",
                            "error": "",
                        }
                    )
            return rows

    def _finish(self, catalog: CatalogProtocol, *, failed: bool) -> None:
        import pandas as pd

        with self._lock:
            for timing in self._timings.values():
                if timing.status in ("running", "saving") and not failed:
                    timing.status = "completed"
                self._log(timing)
        rows = self.table(failed=failed)
        timed = [row for row in rows if row["seconds"] is not None]
        total = sum(row["seconds"] for row in timed)
        slowest = sorted(timed, key=lambda row: row["seconds"], reverse=True)[:3]
        logger.info(
            "Run timing: %d of %d nodes timed, %.1f s in nodes; slowest: %s",
            len(timed),
            len(rows),
            total,
            ", ".join(f"{row['node']} ({row['seconds']:.1f} s)" for row in slowest) or "none",
        )
        if self.dataset not in catalog:
            logger.debug("No catalog entry %r: the run timing table is not saved", self.dataset)
            return
        try:
            catalog.save(self.dataset, pd.DataFrame(rows, columns=RUN_TIMING_COLUMNS))
        except Exception as error:  # a failed table must not hide the run's own outcome
            logger.warning("Could not save the run timing table %r: %s", self.dataset, error)
