"""Evaluation pipeline: every trained Keras model and every TFLite file on the test role (CAFE,
or the CAFE-like demo set) and the validation split; metrics with subject-bootstrap intervals,
subgroups, compression cost and confusion matrices; the optional peers."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
