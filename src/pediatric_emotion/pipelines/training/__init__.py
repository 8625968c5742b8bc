"""Training pipeline: five mobile architectures times data copies."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
