"""The training grid (architectures x variants), read from conf when pipelines are registered.

Pipelines are built before a session exists, so the grid is read here with the project's own
config loader: conf/base, then conf/local, then the environment named by ``KEDRO_ENV`` if set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.framework.project import settings
from kedro.utils import find_kedro_project


def load_project_parameters(project_path: Path | None = None) -> dict[str, Any]:
    """The project's parameters as a run would see them (without runtime --params)."""
    project_path = project_path or find_kedro_project(Path.cwd()) or Path.cwd()
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project_path) / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


def training_cells(parameters: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Every (architecture, variant) pair of the grid, architectures in configured order."""
    parameters = parameters if parameters is not None else load_project_parameters()
    architectures = parameters.get("architectures") or {}
    variants = parameters.get("variants") or {}
    if not architectures or not variants:
        raise ValueError(
            "the training grid is empty: `architectures` and `variants` must each have at least "
            "one entry (conf/base/parameters_training.yml)"
        )
    for name in [*architectures, *variants]:
        if "." in name:
            raise ValueError(f"grid names cannot contain '.', it separates namespaces: {name!r}")
    return [(arch, variant) for arch in architectures for variant in variants]


def cell_parameters(architecture: str, variant: str, *shared: str) -> dict[str, str]:
    """Parameter mapping of one cell's namespaced pipeline: ``params:architecture`` and
    ``params:variant`` to the cell's entries of the grid, and each ``shared`` top-level parameter
    (``training``, ``emotions``, ...) to itself."""
    return {
        "params:architecture": f"params:architectures.{architecture}",
        "params:variant": f"params:variants.{variant}",
        **{f"params:{name}": f"params:{name}" for name in shared},
    }
