"""The project's config loader.

Kedro 1.7's OmegaConfigLoader merges runtime parameters (``kedro run --params demo_data.scale=3``)
into conf/base and into the run environment (conf/local) separately, then lets the environment
replace base's top-level keys. So as soon as conf/local holds any parameters file, ``--params
demo_data.scale=3`` replaced the whole ``demo_data`` mapping with ``{scale: 3}``. This loader
keeps the environments' merge as it is (conf/local replaces whole top-level keys) and applies the
runtime parameters once, deeply, on the result: they override exactly the keys they name.

The quick demo: unless ``demo.full`` is true (``kedro run --params=demo.full=true``), the
parameters under ``demo.quick`` are merged over the others, key by key, before the runtime
parameters (which still override any of them). conf/base/parameters_demo.yml lists them: every
cut the default run makes to fit its time budget, in one place.

A configuration file that YAML refuses for its content (a duplicate key, such as a source named
twice under ``sources``) is named in the error: OmegaConf reads each file from a buffer and says
only ``"<file>"``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf


class ConfigFileError(ValueError):
    """A configuration file that does not load, named with the line and what is wrong."""


def quick_demo_cuts(parameters: Mapping[str, Any]) -> Any:
    """The quick demo's parameters (``demo.quick``) when they are in force: None when
    ``demo.full`` is true (the full-size demo, or an environment without the cuts) or there are
    none."""
    demo = parameters.get("demo") or {}
    return None if demo.get("full", False) else demo.get("quick") or None


def with_demo_profile(
    parameters: dict[str, Any], runtime_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``parameters`` with the runtime parameters applied, and with ``demo.quick`` merged in
    between unless ``demo.full`` (from either) is true."""
    layers = [OmegaConf.create(parameters)]
    runtime = OmegaConf.create(dict(runtime_params or {}))
    merged = OmegaConf.to_container(OmegaConf.unsafe_merge(*layers, runtime), resolve=True)
    quick = quick_demo_cuts(merged)
    if quick is None:
        return merged
    if not isinstance(quick, Mapping):
        raise ValueError(f"demo.quick must be a mapping of parameters, got {quick!r}")
    layers.append(OmegaConf.create(_existing_entries(quick, merged)))
    return OmegaConf.to_container(OmegaConf.unsafe_merge(*layers, runtime), resolve=True)


def _existing_entries(quick: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The quick values whose first two levels name entries the parameters have: the quick demo
    cuts what is configured and adds nothing (an architecture or a parameter group that a run
    leaves out stays out); below that level it merges freely (a member's new builder setting)."""
    kept: dict[str, Any] = {}
    for key, value in quick.items():
        if key not in parameters:
            continue
        present = parameters[key]
        if isinstance(value, Mapping) and isinstance(present, Mapping):
            kept[key] = {name: entry for name, entry in value.items() if name in present}
        else:
            kept[key] = value
    return kept


def _file_refused(fs: Any, conf_path: str, patterns: Iterable[str]) -> tuple[str, str] | None:
    """(path, YAML's error) of the first configuration file under ``conf_path`` matching
    ``patterns`` that YAML refuses; None when each loads on its own."""
    for pattern in patterns:
        for name in sorted(fs.glob(Path(f"{conf_path}/{pattern}").as_posix())):
            if Path(name).suffix not in (".yml", ".yaml", ".json") or not fs.isfile(name):
                continue
            with fs.open(name) as file:
                text = file.read().decode("utf8")
            try:
                OmegaConf.load(io.StringIO(text))
            except yaml.YAMLError as error:
                return name, str(error)
    return None


class ProjectConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose runtime parameters override only the keys they name, with the
    quick demo's parameters (``demo.quick``) in force unless ``demo.full`` is true."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key == "parameters":
            config = with_demo_profile(config, self.runtime_params)
        return config

    def _read_dir_configs(
        self,
        conf_path: str,
        patterns: Iterable[str],
        key: str,
        processed_files: set,
        read_environment_variables: bool | None = False,
    ) -> dict:
        """Kedro's reading of one environment's files, with a file YAML refuses for its content
        (a duplicate key) named in the error. ``${oc.env:...}`` resolves in credentials (Kedro's
        rule) and in mlflow.yml (``MLFLOW_TRACKING_URI`` overrides the local store)."""
        read_environment_variables = bool(read_environment_variables) or key == "mlflow"
        try:
            return super()._read_dir_configs(
                conf_path, patterns, key, processed_files, read_environment_variables
            )
        except yaml.constructor.ConstructorError as error:  # syntax errors: Kedro names the file
            found = _file_refused(self._fs, conf_path, patterns)
            if found is None:
                raise ConfigFileError(f"a {key} file under {conf_path}: {error}") from error
            name, message = found
            raise ConfigFileError(message.replace('"<file>"', f'"{name}"')) from error

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
