"""Project settings. https://docs.kedro.org/en/stable/kedro_project_setup/settings.html

Kept free of TensorFlow imports so that ``kedro viz`` and the data-only pipelines start fast.
"""

from pediatric_emotion.config import ProjectConfigLoader
from pediatric_emotion.hooks import (
    GridEnvironmentHook,
    NodeTimingHook,
    QuickDemoNoticeHook,
    ReleaseMemoryHook,
)
from pediatric_emotion.tracking.hooks import TrackingHook

# The quick demo's cuts named at the start of a run; every node's duration in the log, and
# data/08_reporting/run_timing.csv after each run; memory given back after every node (one run
# trains and compresses many models in one process).
HOOKS: tuple = (
    GridEnvironmentHook(),
    QuickDemoNoticeHook(),
    NodeTimingHook(),
    ReleaseMemoryHook(),
    TrackingHook(),  # kedro-mlflow's hook, behind mlflow.yml's `enabled` (tracking/hooks.py)
)

# No usage data leaves the machine: kedro-telemetry (installed with kedro-viz) is switched off here
# for sessions and notebooks, and by the .telemetry file and the Makefile for the CLI.
# kedro-mlflow's own entry-point hook is off: TrackingHook above is that hook, registered once.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry", "kedro_mlflow")

CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
