"""Map a function over chunks on Dask: the cluster's workers when called inside a Dask worker
(a node run by ``pediatric_emotion.runners.DaskRunner``), else Dask's local scheduler.

Results always come back in chunk order, whatever order the chunks finish in, so a caller that
merges them in order gets the same result as a sequential loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

LOCAL_SCHEDULERS = ("processes", "threads")


def in_dask_worker() -> bool:
    """Whether this code runs inside a ``distributed`` worker's task."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def map_chunks(
    func: Callable[..., R],
    chunks: Sequence[T],
    *,
    args: Sequence[Any] = (),
    workers: int = 1,
    scheduler: str = "processes",
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """``[func(chunk, *args) for chunk in chunks]``, computed in parallel.

    Args:
        func: a module-level (importable) function, so that worker processes can load it.
        chunks: the chunks, each sent whole to one task.
        args: further positional arguments, the same for every chunk.
        workers: local processes or threads; ``1`` runs the chunks one after the other here.
            Inside a Dask worker the chunks go to the cluster (its workers decide how many run at
            once) unless ``workers`` is 1.
        scheduler: the local scheduler, ``processes`` (the default: image work holds the GIL)
            or ``threads``.
        on_done: called with a chunk's position as each chunk finishes (a progress bar).

    Returns:
        The results in chunk order.
    """
    if scheduler not in LOCAL_SCHEDULERS:
        raise ValueError(f"scheduler must be one of {LOCAL_SCHEDULERS}, got {scheduler!r}")
    done = on_done or (lambda position: None)
    if workers <= 1 or len(chunks) <= 1:
        results = []
        for position, chunk in enumerate(chunks):
            results.append(func(chunk, *args))
            done(position)
        return results
    if in_dask_worker():
        return _on_cluster(func, chunks, args, done)
    return _on_local_scheduler(func, chunks, args, workers=workers, scheduler=scheduler, done=done)


def _on_cluster(
    func: Callable[..., R], chunks: Sequence[T], args: Sequence[Any], done: Callable[[int], None]
) -> list[R]:
    """Submit every chunk from inside a worker task (the task leaves its thread slot meanwhile)."""
    from distributed import as_completed, worker_client

    with worker_client() as client:
        futures = [client.submit(func, chunk, *args, pure=False) for chunk in chunks]
        position = {future.key: i for i, future in enumerate(futures)}
        logger.info("%d chunks submitted to the Dask cluster", len(futures))
        for future in as_completed(futures):
            future.result()  # raises the chunk's error here
            done(position[future.key])
        return client.gather(futures)


def _on_local_scheduler(
    func: Callable[..., R],
    chunks: Sequence[T],
    args: Sequence[Any],
    *,
    workers: int,
    scheduler: str,
    done: Callable[[int], None],
) -> list[R]:
    """Dask's local scheduler with ``workers`` processes or threads; progress per chunk."""
    import dask
    from dask.callbacks import Callback

    tasks = [dask.delayed(func, pure=False)(chunk, *args) for chunk in chunks]
    position = {task.key: i for i, task in enumerate(tasks)}

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in position:
            done(position[key])

    with Callback(posttask=posttask):
        return list(dask.compute(*tasks, scheduler=scheduler, num_workers=workers))
