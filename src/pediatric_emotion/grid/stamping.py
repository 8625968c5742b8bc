"""Stamping a stage's template once per cell of the grid (the kedro-viz demo project's idiom:
one modular pipeline per namespace), and ``bind``, which fixes the cell a node belongs to."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from kedro.pipeline import Pipeline

from pediatric_emotion.grid.cells import cell_name


def bind(func: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    """``func`` with the keyword arguments ``fixed`` filled in (the grid cell a node belongs to,
    fixed at pipeline-build time); the others stay keyword arguments with their annotations.
    Named and typed like ``func``, so Kedro's logs, parameter validation and kedro-viz show the
    real function (``functools.partial`` has no name and hides the type hints)."""
    signature = inspect.signature(func)
    unknown = sorted(set(fixed) - set(signature.parameters))
    if unknown and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    ):
        raise TypeError(f"{func.__name__} has no parameter {unknown}")

    @functools.wraps(func)
    def bound(**kwargs: Any) -> Any:
        return func(**fixed, **kwargs)

    bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name not in fixed]
    )
    bound.__annotations__ = {
        name: hint for name, hint in func.__annotations__.items() if name not in fixed
    }
    bound.keywords = dict(fixed)  # type: ignore[attr-defined]  (as functools.partial has them)
    return bound


def stamp(
    template: Callable[[str, str], Pipeline],
    cells: list[tuple[str, str]],
    *,
    shared: set[str] | frozenset[str] = frozenset(),
) -> Pipeline:
    """``template(architecture, variant)`` for every cell, each in its ``{arch}.{variant}``
    namespace, summed into one pipeline.

    ``shared``: datasets every cell reads un-namespaced (``face_manifest``, ``face_crops``); every
    other dataset of a template is the cell's own. Parameters are never namespaced:
    ``params:architecture`` and ``params:variant`` become the cell's entries of the grid
    (``params:architectures.{arch}``, ``params:variants.{variant}``), any other parameter stays the
    project's top-level one."""
    stamped = Pipeline([])
    for architecture, variant in cells:
        cell = template(architecture, variant)
        parameters = sorted(name for name in cell.inputs() if name.startswith("params:"))
        stamped += Pipeline(
            cell,
            namespace=cell_name(architecture, variant),
            inputs=set(shared) & cell.inputs(),
            parameters={
                name: {
                    "params:architecture": f"params:architectures.{architecture}",
                    "params:variant": f"params:variants.{variant}",
                }.get(name, name)
                for name in parameters
            },
        )
    return stamped
