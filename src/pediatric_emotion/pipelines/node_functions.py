"""Node functions with some arguments fixed at pipeline-build time (the grid cell a node belongs
to), named and typed like the function they call, so Kedro's logs, parameter validation and
kedro-viz show the real function (``functools.partial`` has no name and hides the type hints)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def bind(func: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    """``func`` with the keyword arguments ``fixed`` filled in; the others stay keyword arguments
    with their annotations."""
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
