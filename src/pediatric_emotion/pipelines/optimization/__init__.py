"""Optimization pipeline: pruning, clustering, quantization-aware training and post-training
quantization of every trained cell, into TFLite files with their specs."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
