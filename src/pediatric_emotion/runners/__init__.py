"""Project runners: ``kedro run --runner=pediatric_emotion.runners.DaskRunner``."""

from pediatric_emotion.runners.dask_runner import DaskRunner

__all__ = ["DaskRunner"]
