"""Memory release: the memory a node's models held, given back before the next node runs."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys

from kedro.framework.hooks import hook_impl
from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)


def _resident_gib() -> float | None:
    """This process's resident memory in GiB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def _trim_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``); False where the C
    library has no such call."""
    try:
        process = ctypes.CDLL(None)  # the running program's symbols, the C library's among them
    except OSError:
        return False
    if not hasattr(process, "malloc_trim"):
        return False
    process.malloc_trim(0)
    return True


def release_memory(*, collect: bool = True) -> None:
    """Free what finished Keras models still hold: reset Keras' global state when TensorFlow is
    already loaded (never imported here), collect Python garbage (Keras models are reference
    cycles; one full collection after the reset frees both) unless ``collect`` is False, and trim
    the C heap."""
    keras = sys.modules.get("tf_keras")
    if keras is not None:
        keras.backend.clear_session()
    if collect:
        gc.collect()
    _trim_heap()


class ReleaseMemoryHook:
    """Give memory back after every node.

    One ``kedro run`` trains and compresses model after model in one process; without this, each
    node's graphs and freed heap pages stay with the process (MobileNetV2 CQAT at 32 px, 4 times
    in one process: 1.6 -> 2.6 GB without, 2.2 GB with; NASNetMobile's optimization nodes carry
    GBs each). After every node Keras' global state is reset (so each node names its layers as
    in a fresh process) and the C heap trimmed; the full garbage collection that frees Keras
    models' reference cycles runs only when the process has grown by ``collect_after_growth_mib``
    since the last one (or after the first node). With TensorFlow imported a full collection
    walks its half a million objects: about 0.2 s in a plain process, more inside a test session,
    for every one of the ~100 nodes of a run's evaluation, profiling and reporting, which grow
    the process by 0-70 MiB each (a LiteRT interpreter, a table); a node that trained, converted
    or loaded a Keras model grows it by hundreds of MiB to GBs and is collected. Kedro 1.x calls
    ``after_node_run`` before it saves the node's outputs, so what a node returns is still
    referenced here and is freed after a later node instead; models in a ``MemoryDataset`` stay
    usable: clearing the session resets Keras' layer-name counters and graph caches, not
    existing models. On the Dask runner's workers the collections are cheap: the imports are
    frozen out of the collector's sight between tasks (runners/dask_runner.py).
    """

    def __init__(self, collect_after_growth_mib: float = 128.0) -> None:
        self._collect_after_growth_gib = collect_after_growth_mib / 1024
        self._resident_since_collection: float | None = None  # GiB; None: collect next time

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        """Release, logging the resident memory before and after at debug level."""
        before = _resident_gib()
        since = self._resident_since_collection
        collect = (
            before is None or since is None or before - since >= self._collect_after_growth_gib
        )
        release_memory(collect=collect)
        after = _resident_gib()
        if after is not None:
            self._resident_since_collection = after if collect else min(since or after, after)
        if before is not None and after is not None:
            logger.debug(
                "%s: resident %.2f -> %.2f GiB%s",
                node.name,
                before,
                after,
                " (collected)" if collect else "",
            )

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        """A failed node's models are released too (the run may go on, or a notebook may)."""
        release_memory()
        self._resident_since_collection = _resident_gib()
