"""The project's config loader.

Kedro 1.7's OmegaConfigLoader merges runtime parameters (``kedro run --params demo_data.scale=3``)
into conf/base and into the run environment (conf/local) separately, then lets the environment
replace base's top-level keys. So as soon as conf/local holds any parameters file, ``--params
demo_data.scale=3`` replaced the whole ``demo_data`` mapping with ``{scale: 3}``. This loader
keeps the environments' merge as it is (conf/local replaces whole top-level keys) and applies the
runtime parameters once, deeply, on the result: they override exactly the keys they name.
"""

from __future__ import annotations

from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf


class ProjectConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose runtime parameters override only the keys they name."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key == "parameters" and self.runtime_params:
            merged = OmegaConf.unsafe_merge(OmegaConf.create(config), self.runtime_params)
            config = OmegaConf.to_container(merged, resolve=True)
        return config

    def _merge_and_resolve(self, key: str, config_per_file: dict) -> dict[str, Any]:
        if key != "parameters":
            return super()._merge_and_resolve(key, config_per_file)
        # merge the files of one environment without the runtime parameters (applied once above);
        # the `runtime_params:` resolver keeps its own copy and still resolves
        runtime_params, self.runtime_params = self.runtime_params, {}
        try:
            return super()._merge_and_resolve(key, config_per_file)
        finally:
            self.runtime_params = runtime_params
