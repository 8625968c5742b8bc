"""Reporting pipeline: the leaderboard joining training, optimization, evaluation and profiling per
file; the study's published numbers beside this run's; Pareto fronts; the recommended file under a
latency budget; one self-contained HTML report; a model card per exported TFLite file."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
