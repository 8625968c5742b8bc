"""Node functions of the ``demo_data`` pipeline."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .context import Look, SourceContext, SourceFiles
from .layouts import WRITERS
from .planted import PlantedCases

logger = logging.getLogger(__name__)


def source_rng(seed: int, source: str) -> np.random.Generator:
    """The random generator of one source: from the seed and a stable hash of the source's name."""
    return np.random.default_rng([int(seed), zlib.crc32(source.encode("utf-8"))])


def generate_demo_data(demo_params: Mapping[str, Any]) -> dict[str, bytes]:
    """Write synthetic faces in the native layout of every source named in ``demo_params``.

    Args:
        demo_params: the ``demo_data`` parameters: ``seed``, ``scale`` (multiplies every count),
            ``faces`` (expression and nuisance ranges) and ``sources`` (name -> counts, sizes and
            deliberate drop cases).

    Returns:
        Relative POSIX path (``<source>/<path in the source's layout>``) -> file bytes, sorted by
        path. The same parameters give byte-identical files.
    """
    sources = demo_params["sources"]
    unknown = sorted(set(sources) - set(WRITERS))
    if unknown:
        raise ValueError(f"demo_data: no writer for source(s) {unknown}; known: {sorted(WRITERS)}")
    if "cafe" in sources:  # fail before minutes of drawing, not when CAFE's turn comes
        PlantedCases.from_params(sources["cafe"].get("planted"))
    seed, scale = int(demo_params["seed"]), float(demo_params.get("scale", 1.0))
    look = Look.from_params(demo_params["faces"])
    written: dict[str, SourceFiles] = {}
    files: dict[str, bytes] = {}
    for name, writer in WRITERS.items():  # fixed order: sources that others copy come first
        if name not in sources:
            continue
        started = time.perf_counter()
        context = SourceContext(name, sources[name], look, scale, source_rng(seed, name), seed)
        written[name] = writer(context, written)
        for path, data in written[name].files.items():
            files[f"{name}/{path}"] = data
        logger.info(
            "demo_data: %s: %d files in %.1f s",
            name,
            len(written[name].files),
            time.perf_counter() - started,
        )
    logger.info("demo_data: %d files for %d sources", len(files), len(written))
    return dict(sorted(files.items()))
