"""Synthetic demo data: drawn faces with learnable expression cues, written in the native layouts
of the public facial-expression data sets (docs/data_sets.md), drop cases included."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
