"""Experiment tracking with MLflow (issue 20): the TFLite pyfunc model (pyfunc.py, imports
MLflow), the project's tracking hook (hooks.py: kedro-mlflow's hook, so settings.py imports MLflow, as
kedro-mlflow's CLI plugin does on every `kedro` command; with tracking off nothing connects),
what a run records about itself (run_info.py), the
per-cell child runs and reporting artifacts (cells.py) and the recommended model's registration
(registry.py), both logged by the hook after the pipeline run."""
