"""Device profiling pipeline: every TFLite file of the optimization pipeline timed on an Android
phone (adb + TFLite's benchmark_model) or, with no phone configured, on the host (LiteRT)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
