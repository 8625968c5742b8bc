"""Experiment tracking with MLflow (issue 20): the TFLite pyfunc model (pyfunc.py, imports
MLflow) and the project's tracking hooks (hooks.py, imports MLflow only when tracking is on)."""
