"""The grid's cells (architectures x variants), read from conf when pipelines are registered.

Pipelines are built before a session exists, so the grid is read here with the project's own
config loader: conf/base, then conf/local, then the environment named by ``KEDRO_ENV`` if set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.project import settings
from kedro.utils import find_kedro_project

# The columns naming a cell, and a file of a cell, in every table of the grid.
CELL_COLUMNS = ["architecture", "variant"]
FILE_COLUMNS = [*CELL_COLUMNS, "technique", "quantization"]


def cell_name(architecture: str, variant: str) -> str:
    """``{architecture}.{variant}``: the cell's namespace, and its folder under the model
    folders."""
    return f"{architecture}.{variant}"


def grid_environment() -> str:
    """The configuration environment the grid is read from: ``KEDRO_ENV``, else ``local``."""
    return os.environ.get("KEDRO_ENV") or "local"


def check_session_environment(session_env: str | None) -> None:
    """Refuse a session whose environment is not the grid's: ``kedro run --env paper`` alone would
    run the base grid with the paper parameters (hooks/grid_guard.py calls this)."""
    session_env = session_env or "local"
    if session_env != grid_environment():
        raise ValueError(
            f"this session's environment is {session_env!r} but the pipelines (the training "
            f"grid) were built from {grid_environment()!r}: they are registered before a session "
            f"exists, from KEDRO_ENV. Run `KEDRO_ENV={session_env} kedro ...` instead of "
            f"`--env {session_env}`."
        )


def load_project_parameters(project_path: Path | None = None) -> dict[str, Any]:
    """The project's parameters as a run would see them (without runtime --params)."""
    project_path = project_path or find_kedro_project(Path.cwd()) or Path.cwd()
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project_path) / settings.CONF_SOURCE),
        env=grid_environment(),
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


def optimized_cells(parameters: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The cells to optimize: all, or those of ``optimization.variants``; never those of an
    architecture marked ``teacher_only`` (trained and evaluated, only to teach ``distilled``)."""
    parameters = load_project_parameters() if parameters is None else parameters
    architectures = parameters.get("architectures") or {}
    cells = [
        (arch, variant)
        for arch, variant in training_cells(parameters)
        if not (architectures.get(arch) or {}).get("teacher_only", False)
    ]
    variants = (parameters.get("optimization") or {}).get("variants")
    if variants is None:
        return cells
    unknown = sorted(set(variants) - {variant for _, variant in cells})
    if unknown:
        raise ValueError(f"optimization.variants: {unknown} are not variants of the training grid")
    return [(arch, variant) for arch, variant in cells if variant in variants]


def cell_settings(
    training: Mapping[str, Any], architecture: Mapping[str, Any], variant: Mapping[str, Any]
) -> dict[str, Any]:
    """Shared training settings with the architecture's, then the variant's overrides. A nested
    mapping (``early_stopping``, ``augmentation``, ``learning_rate_schedule``) is merged key by
    key, so an override names only what it changes."""
    settings = dict(training)
    for overrides in (architecture.get("training") or {}, variant.get("training") or {}):
        for key, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(settings.get(key), Mapping):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
    return settings
