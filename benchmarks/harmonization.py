"""Throughput of label harmonization: read -> detect -> crop -> resize -> encode -> write.

Generates synthetic demo data (seeded) into a temporary folder, then runs the harmonization stages
on it and prints images per second for each stage and end to end. Nothing under data/ is touched.
With ``--workers 1,2`` the cropping runs once per worker count on the same records (in chunks on
Dask's local process scheduler, as ``parallel_cropping`` does) and the speed-up is printed; every
run's crops and records are checked to equal the first run's.

    .venv/bin/python benchmarks/harmonization.py [--scale 1.0] [--crop-size 64] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from kedro.config import OmegaConfigLoader

import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pediatric_emotion.datasets import FileTreeDataset
from pediatric_emotion.pipelines.demo_data.nodes import generate_demo_data
from pediatric_emotion.pipelines.label_harmonization.cropping import crop_faces
from pediatric_emotion.pipelines.label_harmonization.sources import check_sources, read_sources

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="demo data scale (default 1.0)")
    parser.add_argument("--crop-size", type=int, default=None, help="crop side (default: conf)")
    parser.add_argument(
        "--workers", default="1", help="comma-separated worker counts to crop with (default 1)"
    )
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="images per chunk (default: conf)"
    )
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    logging.basicConfig(level=logging.WARNING)

    params = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local"
    )["parameters"]
    demo_params = {**params["demo_data"], "scale": args.scale}
    face_crop = dict(params["face_crop"])
    if args.crop_size:
        face_crop["size"] = args.crop_size

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        FileTreeDataset(path=str(root / "demo")).save(generate_demo_data(demo_params))
        generate_s = time.perf_counter() - started

        sources = {
            name: {**config, "path": str(root / "demo" / Path(config["path"]).name)}
            for name, config in params["sources"].items()
        }
        started = time.perf_counter()
        inventory = check_sources(sources, params["label_maps"], params["emotions"])
        records = read_sources(inventory, sources, params["label_maps"])
        read_s = time.perf_counter() - started

        usable = int(records["drop_reason"].isna().sum())
        crop_seconds: dict[int, float] = {}
        for workers in worker_counts:
            parallel = {**params["parallel_cropping"], "workers": workers}
            if args.chunk_size:
                parallel["chunk_size"] = args.chunk_size
            started = time.perf_counter()
            result = crop_faces(
                records, params["face_detection"], face_crop, params["deduplication"], parallel
            )
            crop_seconds[workers] = time.perf_counter() - started
            if len(crop_seconds) == 1:
                crops, cropped = result
            elif result[0] != crops or not result[1].equals(cropped):
                raise SystemExit(f"cropping with {workers} workers differs from the first run")
        crop_s = crop_seconds[worker_counts[0]]

        started = time.perf_counter()
        FileTreeDataset(path=str(root / "crops")).save(crops)
        write_s = time.perf_counter() - started

    total_s = read_s + crop_s + write_s
    by_method = cropped["box_source"].value_counts().to_dict()
    print(f"demo data: scale {args.scale}, {len(records)} records, generated in {generate_s:.1f} s")
    print(f"read + label mapping : {len(records) / read_s:8.0f} records/s ({read_s:.2f} s)")
    print(
        f"decode+detect+crop+resize+encode+hash: {usable / crop_s:8.1f} images/s "
        f"({crop_s:.2f} s for {usable} images; boxes by {by_method})"
    )
    print(
        f"write crops          : {len(crops) / max(write_s, 1e-9):8.0f} files/s ({write_s:.2f} s)"
    )
    print(
        f"end to end           : {usable / total_s:8.1f} images/s (crop size {face_crop['size']})"
    )
    if len(worker_counts) > 1:
        first = worker_counts[0]
        chunk = args.chunk_size or params["parallel_cropping"]["chunk_size"]
        print(f"cropping by worker count ({usable} images, chunks of {chunk}, same output):")
        for workers, seconds in crop_seconds.items():
            print(
                f"  {workers:2d} workers: {usable / seconds:8.1f} images/s ({seconds:.2f} s), "
                f"speed-up {crop_seconds[first] / seconds:.2f}x over {first}"
            )


if __name__ == "__main__":
    main()
