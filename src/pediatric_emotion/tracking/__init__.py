"""Experiment tracking with MLflow (issue 20, docs/tracking.md).

* hooks.py: the tracking hook (kedro-mlflow's, so settings.py imports MLflow, as kedro-mlflow's
  CLI plugin does on every ``kedro`` command; with tracking off nothing is connected to).
* run_info.py: what a run records about itself (environment, git commit, demo data or not).
* cells.py: the per-cell child runs and the reporting artifacts, logged after the pipeline run.
* registry.py: the recommended file registered as a model version.
* pyfunc.py: the TFLite file as an MLflow pyfunc model (LiteRT, its embedded spec).
"""
