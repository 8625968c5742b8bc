"""Experiment tracking with MLflow (issue 20): the TFLite pyfunc model (pyfunc.py, imports
MLflow), the project's tracking hooks (hooks.py, imports MLflow only when tracking is on), the
per-cell child runs and reporting artifacts (cells.py) and the recommended model's registration
(registry.py), both logged by the hook after the pipeline run."""
