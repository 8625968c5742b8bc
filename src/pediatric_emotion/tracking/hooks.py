"""kedro-mlflow's hook with this project's switch, fast-fail check and Dask workers.

``TrackingHook`` is kedro-mlflow's ``MlflowHook`` registered from ``settings.HOOKS`` (its entry
point is disabled there, so it never runs twice), with three additions:

* ``enabled:`` at the top of ``mlflow.yml`` (a key of this project's; kedro-mlflow refuses
  unknown keys, so it is removed before kedro-mlflow reads the file) switches tracking off:
  nothing is imported from the store, nothing is connected to, every hook is a no-op.
* Before kedro-mlflow connects, an ``http(s)`` tracking URI (``server.mlflow_tracking_uri``,
  else ``MLFLOW_TRACKING_URI``) must answer ``GET /health`` within
  :data:`HEALTH_TIMEOUT_S`; otherwise the session stops at once with an error naming the URI
  and the settings to change, instead of MLflow's retries (7 retries, 120 s timeout: about
  4 minutes) before the run even starts.
* ``DaskRunner`` runs nodes in worker processes whose hooks never saw the session: the run's
  id, tracking URI and kedro-mlflow settings go to the workers through the environment
  (``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI``, :data:`CONFIG_VARIABLE`; the local cluster is
  started after ``before_pipeline_run``), so the workers' parameters go into the run's own
  run instead of a stray new run; a worker without them logs nothing.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

logger = logging.getLogger(__name__)

SWITCH = "enabled"
"""This project's top-level key of mlflow.yml: false switches tracking off."""

CONFIG_VARIABLE = "PEDIATRIC_EMOTION_MLFLOW_CONFIG"
"""kedro-mlflow's settings (JSON) handed to Dask workers during a run."""

HEALTH_TIMEOUT_S = 5.0
"""How long a tracking server has to answer ``/health`` at the start of a session."""

_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]  # kedro-mlflow's own


class TrackingServerUnreachableError(RuntimeError):
    """The configured MLflow tracking server does not answer."""


def tracking_uri(conf: dict[str, Any]) -> str | None:
    """The tracking URI kedro-mlflow will use: mlflow.yml's, else ``MLFLOW_TRACKING_URI``."""
    server = conf.get("server") or {}
    return server.get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")


_SQLITE = "sqlite:///"


def local_sqlite_uri(uri: str, project_path: Any) -> str:
    """``sqlite:///relative/path.db`` made absolute against the project root (not the current
    folder), its folder created; other SQLite URIs unchanged."""
    path = uri[len(_SQLITE) :]
    if not path or path.startswith("/") or path == ":memory:" or "?" in path:
        return uri
    absolute = Path(project_path) / path
    absolute.parent.mkdir(parents=True, exist_ok=True)
    return f"{_SQLITE}{absolute}"


def _is_http(uri: str | None) -> bool:
    return bool(uri) and str(uri).lower().startswith(("http://", "https://"))


def _local_artifact_location(conf: dict[str, Any], project_path: Any, server: bool) -> None:
    """A relative ``artifact_location`` (the local store's folder): with a tracking server,
    dropped (the server's artifact root holds the artifacts, not a folder on this machine);
    otherwise made absolute against the project root, not the current folder."""
    kwargs = ((conf.get("tracking") or {}).get("experiment") or {}).get(
        "create_experiment_kwargs"
    ) or {}
    location = kwargs.get("artifact_location")
    if location and "://" not in str(location) and not os.path.isabs(str(location)):
        kwargs["artifact_location"] = None if server else str(Path(project_path) / location)


def check_server(uri: str | None, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Raise :class:`TrackingServerUnreachableError` unless an ``http(s)`` ``uri`` answers
    ``/health`` with 200 within ``timeout_s``; other URIs (a SQLite file, a folder) pass."""
    if not _is_http(uri):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (OSError, ValueError) as error:  # refused, timed out, DNS
        reason = str(getattr(error, "reason", None) or error)
    raise TrackingServerUnreachableError(
        f"MLflow tracking server {uri} does not answer ({url}: {reason}, {timeout_s:g} s). "
        "Start it; or point MLFLOW_TRACKING_URI (or `server.mlflow_tracking_uri` in "
        "conf/<env>/mlflow.yml) at a reachable server, or unset it for the local store "
        "(sqlite:///data/09_tracking/mlflow.db); or switch tracking off with `enabled: false` "
        "in conf/local/mlflow.yml. Nothing has run."
    )


class TrackingHook(MlflowHook):
    """kedro-mlflow's hook behind the project's ``enabled`` switch and fast-fail check."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled: bool | None = None  # None: no session in this process (a Dask worker)
        self.run_information: dict[str, str] = {}
        self._project: tuple[Path, str | None] = (Path.cwd(), None)

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        loader = context.config_loader
        if "mlflow" not in loader.config_patterns:
            loader.config_patterns.update({"mlflow": _PATTERNS})
        try:
            conf = dict(loader["mlflow"])
        except MissingConfigException:
            conf = {}
        self.enabled = bool(conf.pop(SWITCH, True))
        loader["mlflow"] = conf  # set explicitly: what kedro-mlflow reads, without the switch
        if not self.enabled:
            logger.info("Experiment tracking is off (`%s: false` in mlflow.yml)", SWITCH)
            return
        uri = tracking_uri(conf)
        check_server(uri)
        _local_artifact_location(conf, context.project_path, server=_is_http(uri))
        if uri and uri.startswith(_SQLITE):
            conf.setdefault("server", {})["mlflow_tracking_uri"] = local_sqlite_uri(
                uri, context.project_path
            )
        loader["mlflow"] = conf
        super().after_context_created(context)
        self._project = (Path(context.project_path), context.env)

    def _worker_setup(self) -> bool:
        """In a Dask worker: adopt the session's run from the environment, once."""
        if self.enabled is None:
            raw = os.environ.get(CONFIG_VARIABLE)
            self.enabled = bool(raw and os.environ.get("MLFLOW_RUN_ID"))
            if self.enabled:
                from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

                self.mlflow_config = KedroMlflowConfig.model_validate(json.loads(raw))
                params = self.mlflow_config.tracking.params
                self.flatten = params.dict_params.flatten
                self.recursive = params.dict_params.recursive
                self.sep = params.dict_params.sep
                self.long_params_strategy = params.long_params_strategy
                self.run_id = os.environ["MLFLOW_RUN_ID"]
        return bool(self.enabled)

    @hook_impl
    def after_catalog_created(  # noqa: PLR0917
        self,
        catalog: Any,
        conf_catalog: dict[str, Any],
        conf_creds: dict[str, Any],
        parameters: dict[str, Any],
        save_version: str,
        load_versions: dict[str, str],
    ) -> None:
        if self.enabled:
            super().after_catalog_created(
                catalog=catalog,
                conf_catalog=conf_catalog,
                conf_creds=conf_creds,
                parameters=parameters,
                save_version=save_version,
                load_versions=load_versions,
            )
            from pediatric_emotion.tracking.run_info import run_information

            # from the configuration Kedro has just read, not read again
            project, environment = self._project
            self.run_information = run_information(
                project, environment, parameters.get("parameters") or {}, conf_catalog or {}
            )

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if not self.enabled:
            return
        super().before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        if self.run_id is not None:
            import mlflow

            # the environment, the git commit and whether the data was the demo's (run_info.py)
            mlflow.log_params(self.run_information)
            if self.run_information.get("run.git_commit", "unknown") != "unknown":
                mlflow.set_tag("mlflow.source.git.commit", self.run_information["run.git_commit"])

            # for the Dask workers, started after this hook (see the module's docstring)
            _share_run(
                {
                    "MLFLOW_RUN_ID": self.run_id,
                    "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
                    CONFIG_VARIABLE: self.mlflow_config.model_dump_json(include={"tracking"}),
                }
            )

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict, is_async: bool) -> None:
        if not self._worker_setup():
            return
        import mlflow
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        # kedro-mlflow logs parameters one call (one store transaction) at a time: 4 s for the
        # 330 of check_sources_node on SQLite. Collected here, logged in one batch.
        batch: dict[str, Any] = {}
        log_one = self._log_param

        def collect(name: str, value: Any) -> None:
            if len(str(value)) <= MAX_PARAM_VAL_LENGTH:
                batch[name] = value
            else:  # kedro-mlflow's long_params_strategy
                log_one(name, value)

        self._log_param = collect  # type: ignore[method-assign]
        try:
            super().before_node_run(node=node, catalog=catalog, inputs=inputs, is_async=is_async)
        finally:
            del self._log_param
        if batch:
            mlflow.log_params(batch)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self.enabled:
            try:
                self._log_outputs(catalog, run_params, pipeline)
                super().after_pipeline_run(
                    run_params=run_params, pipeline=pipeline, catalog=catalog
                )
            finally:
                _forget_run()

    def _log_outputs(self, catalog: Any, run_params: dict[str, Any], pipeline: Any = None) -> None:
        """The per-cell child runs, the reporting artifacts and the recommended model
        (tracking/cells.py, registry.py), from the datasets ``pipeline`` wrote (all on file
        without one); a failure is logged, never raised: the pipeline's outputs are written."""
        if self.run_id is None:
            return
        from mlflow import MlflowClient

        from pediatric_emotion.tracking.cells import (
            REPORTING,
            catalog_loader,
            log_reporting_artifacts,
            log_run_tables,
            produced_only,
        )

        produced = None if pipeline is None else set(pipeline.all_outputs())
        on_file = catalog_loader(catalog)
        load = produced_only(on_file, produced)
        client = MlflowClient()
        try:
            log_run_tables(client, self.run_id, load, on_file)
        except Exception:  # noqa: BLE001
            logger.exception("MLflow: the per-cell runs were not logged")
        project = Path(run_params.get("project_path") or ".")
        try:
            log_reporting_artifacts(client, self.run_id, project / REPORTING, produced)
        except Exception:  # noqa: BLE001
            logger.exception("MLflow: the reporting artifacts were not logged")
        try:
            self._register(load, project)
        except Exception:  # noqa: BLE001
            logger.exception("MLflow: the recommended model was not registered")

    def _register(self, load: Any, project: Path) -> None:
        """The recommended TFLite file, logged in the session's run and registered."""
        recommendation = load("recommendation")
        if not recommendation:
            return
        import mlflow

        from pediatric_emotion.tracking.registry import register_recommended

        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            mlflow.start_run(run_id=self.run_id)  # ended by kedro-mlflow's after_pipeline_run
        register_recommended(project, recommendation, load("leaderboard"))

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if self.enabled:
            try:
                super().on_pipeline_error(
                    error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
                )
            finally:
                _forget_run()


_saved_environment: dict[str, str | None] = {}


def _share_run(variables: dict[str, str]) -> None:
    for name, value in variables.items():
        _saved_environment.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def _forget_run() -> None:
    """The environment as it was before :func:`_share_run`."""
    while _saved_environment:
        name, value = _saved_environment.popitem()
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
