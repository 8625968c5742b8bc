"""Throughput of label harmonization: read -> detect -> crop -> resize -> encode -> write.

Generates synthetic demo data (seeded) into a temporary folder, then runs the harmonization stages
on it and prints images per second for each stage and end to end. Nothing under data/ is touched.

    .venv/bin/python benchmarks/harmonization.py [--scale 1.0] [--crop-size 64]
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
    args = parser.parse_args()
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
        started = time.perf_counter()
        crops, cropped = crop_faces(
            records, params["face_detection"], face_crop, params["deduplication"]
        )
        crop_s = time.perf_counter() - started

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


if __name__ == "__main__":
    main()
