"""Project settings. https://docs.kedro.org/en/stable/kedro_project_setup/settings.html

Kept free of TensorFlow imports so that ``kedro viz`` and the data-only pipelines start fast.
"""

from kedro.config import OmegaConfigLoader

HOOKS: tuple = ()

# No usage data leaves the machine: kedro-telemetry (installed with kedro-viz) is switched off here
# for sessions and notebooks, and by the .telemetry file and the Makefile for the CLI.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
