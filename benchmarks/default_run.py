"""The default run's time: wall time per pipeline, and node time by technique and architecture.

Reads a run timing table (``data/08_reporting/run_timing.csv``, written by every ``kedro run``)
and prints, per pipeline of the project's registry, its nodes' summed seconds and its wall span
(first node start to last node end) and the CPU seconds of the processes that ran them (below
the node seconds: nodes waited for a core); then the node seconds grouped by technique and by
architecture. With ``--run`` it first runs the README's main command (``make run``: install if
needed, the demo data when absent, the default pipelines) and prints its wall time, the peak
resident memory of its largest process (``getrusage`` of the children, as ``/usr/bin/time -v``
reports it) and the peak of all its processes together (sampled every second: ``make run`` runs
the pipelines on Dask workers, each a process of its own) as PSS, each page shared between
processes split among them, and as summed RSS, which counts TensorFlow's library once per
worker; then the nodes that were running at the PSS peak.

    .venv/bin/python benchmarks/default_run.py               # the last run's table
    .venv/bin/python benchmarks/default_run.py --run         # make run, then its table
    .venv/bin/python benchmarks/default_run.py --timing path/to/run_timing.csv
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TIMING = PROJECT_ROOT / "data" / "08_reporting" / "run_timing.csv"


def pipeline_of_nodes() -> dict[str, str]:
    """node name -> the first registered pipeline (but ``__default__``) holding it."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    owners: dict[str, str] = {}
    for name, pipeline in pipelines.items():
        if name == "__default__":
            continue
        for node in pipeline.nodes:
            owners.setdefault(node.name, name)
    return owners


def technique_of(node: str, techniques: list[str]) -> str:
    """The optimization technique a node works on (its name says it), or ``-``."""
    short = node.rsplit(".", 1)[-1]
    for technique in sorted(techniques, key=len, reverse=True):
        if short in (f"{technique}_node", f"predict_{technique}_tflite_node",
                     f"profile_{technique}_tflite_node"):  # fmt: skip
            return technique
    if short in ("train_classifier_node", "predict_keras_node"):
        return "keras model"
    return "-"


def summarize(timing: pd.DataFrame, owners: dict[str, str], techniques: list[str]) -> str:
    """The three tables as text."""
    table = timing.copy()
    if "cpu_seconds" not in table:  # a table written before the column existed
        table["cpu_seconds"] = float("nan")
    table["pipeline"] = table["node"].map(owners).fillna("?")
    table["technique"] = [technique_of(node, techniques) for node in table["node"]]
    table["architecture"] = table["namespace"].fillna("").str.split(".").str[0].replace("", "-")
    started = pd.to_datetime(table["started_at"], utc=True, format="ISO8601")
    table["ended"] = started + pd.to_timedelta(table["seconds"].fillna(0), unit="s")
    table["started"] = started
    per_pipeline = table.groupby("pipeline", sort=False).agg(
        nodes=("node", "size"),
        node_seconds=("seconds", "sum"),
        cpu_seconds=("cpu_seconds", "sum"),
        first_start=("started", "min"),
        last_end=("ended", "max"),
    )
    per_pipeline["wall_seconds"] = (
        per_pipeline["last_end"] - per_pipeline["first_start"]
    ).dt.total_seconds()
    per_pipeline = per_pipeline.sort_values("first_start")
    span = (table["ended"].max() - table["started"].min()).total_seconds()
    cpu_share = (
        "no CPU seconds in this table"
        if table["cpu_seconds"].isna().all()
        else f"{table['cpu_seconds'].sum() / max(table['seconds'].sum(), 1e-9):.2f}"
    )
    lines = [
        f"{len(table)} nodes, {table['seconds'].sum():.0f} s in nodes, {span:.0f} s from the "
        f"first node's start to the last node's end; statuses: "
        + ", ".join(f"{k} {v}" for k, v in table["status"].value_counts().items()),
        f"CPU seconds / node seconds: {cpu_share} (below 1: nodes waited for a core)",
        "",
        "per pipeline (wall: first node start to last node end)",
        per_pipeline[["nodes", "node_seconds", "cpu_seconds", "wall_seconds"]].round(1).to_string(),
    ]
    for column in ("technique", "architecture"):
        grouped = (
            table.groupby(column)
            .agg(
                nodes=("seconds", "size"),
                node_seconds=("seconds", "sum"),
                cpu_seconds=("cpu_seconds", "sum"),
                slowest_node=("seconds", "max"),
            )
            .sort_values("node_seconds", ascending=False)
        )
        lines += ["", f"node seconds per {column}", grouped.round(1).to_string()]
    return "\n".join(lines)


def _tree_memory_bytes(process: psutil.Process) -> tuple[int, int]:
    """Resident bytes of ``process`` and all its descendants (those alive now): the sum of their
    RSS (pages shared between processes, TensorFlow's library in every worker, counted once per
    process) and of their PSS (each shared page split between its processes)."""
    rss = pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except psutil.Error:  # ended between listing and reading
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def run_default() -> dict[str, float]:
    """``make run`` in the project: wall seconds, the largest process's peak RSS, and the peak of
    all its processes together (RSS sum, PSS sum, in GiB) with the time of that peak."""
    started = time.perf_counter()
    make = subprocess.Popen(["make", "run"], cwd=PROJECT_ROOT)
    root, done = psutil.Process(make.pid), threading.Event()
    peak = {"rss": 0, "pss": 0, "at": 0.0}

    def sample() -> None:
        while not done.wait(1.0):
            try:
                rss, pss = _tree_memory_bytes(root)
            except psutil.Error:
                return
            if pss > peak["pss"]:
                peak.update(pss=pss, at=time.time())
            peak["rss"] = max(peak["rss"], rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        returncode = make.wait(timeout=4 * 3600)
    finally:
        if make.poll() is None:
            make.kill()
        done.set()
        sampler.join()
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, ["make", "run"])
    return {
        "seconds": time.perf_counter() - started,
        "largest_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2,
        "rss_gib": peak["rss"] / 1024**3,
        "pss_gib": peak["pss"] / 1024**3,
        "peak_at": peak["at"],
    }


def running_at(timing: pd.DataFrame, moment: float) -> list[str]:
    """The nodes of ``timing`` (run_timing.csv) that were running at ``moment`` (epoch seconds)."""
    start = pd.to_datetime(timing["started_at"], utc=True).astype("int64") / 1e9
    end = start + timing["seconds"]
    return sorted(timing.loc[(start <= moment) & (end >= moment), "node"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="run `make run` first, timed")
    parser.add_argument("--timing", type=Path, default=TIMING, help="a run_timing.csv")
    args = parser.parse_args(argv)
    args.timing = args.timing.resolve()  # before moving into the project folder
    measured = run_default() if args.run else None
    if measured:
        print(
            f"make run: {measured['seconds']:.0f} s ({measured['seconds'] / 60:.1f} min), peak "
            f"RSS {measured['largest_gib']:.2f} GiB (largest process); all its processes "
            f"together: {measured['pss_gib']:.2f} GiB PSS at the peak (shared pages split), "
            f"{measured['rss_gib']:.2f} GiB summed RSS (shared pages counted per process)"
        )
    if not args.timing.is_file():
        print(f"{args.timing}: no run timing table (run `make run` first)", file=sys.stderr)
        return 1
    if measured and measured["peak_at"]:
        nodes = running_at(pd.read_csv(args.timing), measured["peak_at"])
        print(f"running at the PSS peak: {', '.join(nodes) or 'no node (start-up or saving)'}")
    os.chdir(PROJECT_ROOT)
    owners = pipeline_of_nodes()
    from pediatric_emotion.grid import configured_techniques

    print(summarize(pd.read_csv(args.timing), owners, configured_techniques()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
