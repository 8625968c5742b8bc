"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that only make inputs, run on purpose (`make run` runs demo_data when it is absent).
NOT_IN_DEFAULT = ("demo_data",)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects. ``__default__`` is every pipeline
        except the ones that only generate inputs (``demo_data``).
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipe for name, pipe in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([])
    )
    return pipelines
