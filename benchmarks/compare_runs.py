"""Whether two project copies' runs made the same outputs: a refactor's before and after.

Clone the repository twice (the commit before and the commit after), run ``make run`` in each,
then compare:

    .venv/bin/python benchmarks/compare_runs.py /tmp/before /tmp/after

Compared: every table under data/08_reporting (the old column name ``arch`` read as
``architecture``; the clone's own path written as ``<clone>``; wall-clock columns left out:
seconds, latencies, memory, and what is chosen by latency: Pareto flags, the recommendation), the
face manifest, the crops folder's digest, the weights of every Keras model (as a set of arrays:
Keras numbers layer names per process, ``conv2d_12``) and every TFLite file (its bytes, and its
weights where the bytes differ). Prints one line per output and the number of differences.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

# columns that depend on the wall clock, not on what was computed
WALL_CLOCK = re.compile(
    r"seconds|_ms$|^latency|images_per_second|mem_mb|runs$|target_details|pareto|recommended"
)


def unrooted(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``frame`` with the clone's absolute path written as ``<clone>/`` in its text columns."""
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            text = frame[column].astype("string")
            frame[column] = text.str.replace(f"{root}/", "<clone>/", regex=False)
    return frame


def compare_tables(before: Path, after: Path) -> int:
    problems = 0
    for path in sorted((before / "data/08_reporting").rglob("*.csv")):
        rel = path.relative_to(before)
        if rel.name == "run_timing.csv":
            continue
        if not (after / rel).exists():
            print(f"MISSING {rel}")
            problems += 1
            continue
        tables = [
            unrooted(pd.read_csv(root / rel).rename(columns={"arch": "architecture"}), root)
            for root in (before, after)
        ]
        left_out = sorted({c for t in tables for c in t.columns if WALL_CLOCK.search(c)})
        a, b = (t.drop(columns=[c for c in left_out if c in t.columns]) for t in tables)
        try:
            pd.testing.assert_frame_equal(a, b, check_dtype=False)
            print(f"equal   {rel} ({len(a)} rows; left out: {', '.join(left_out) or '-'})")
        except AssertionError as err:
            print(f"DIFFER  {rel}: {' '.join(str(err).split())[:300]}")
            problems += 1
    manifests = [
        unrooted(pd.read_parquet(root / "data/03_primary/face_manifest.parquet"), root)
        for root in (before, after)
    ]
    same = manifests[0].equals(manifests[1])
    print(f"{'equal ' if same else 'DIFFER'}  face_manifest.parquet ({len(manifests[0])} rows)")
    digests = [(r / "data/03_primary/face_crops/CROPS_DIGEST").read_text() for r in (before, after)]
    crops_same = digests[0] == digests[1]
    print(f"{'equal ' if crops_same else 'DIFFER'}  face_crops (digest {digests[0][:16]})")
    return problems + (not same) + (not crops_same)


def keras_weights(path: Path) -> list[bytes]:
    """The digests of a saved model's weight arrays, sorted (names left out)."""
    source = path
    if zipfile.is_zipfile(path):  # a Keras v3 archive; else an HDF5 model file
        with zipfile.ZipFile(path) as archive:
            source = io.BytesIO(archive.read("model.weights.h5"))
    digests: list[bytes] = []
    with h5py.File(source, "r") as file:
        file.visititems(
            lambda _, item: (
                digests.append(hashlib.sha256(item[()].tobytes()).digest())
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    return sorted(digests)


def compare_models(before: Path, after: Path) -> int:
    from pediatric_emotion.modeling.tflite_inspection import weight_tensors

    problems = 0
    for path in sorted((before / "data/06_models").rglob("*.keras")):
        rel = path.relative_to(before)
        same = keras_weights(path) == keras_weights(after / rel)
        problems += not same
        print(f"{'equal ' if same else 'DIFFER'}  {rel} (weights)")
    files = sorted((before / "data/06_models").rglob("*.tflite"))
    identical, different = 0, []
    for path in files:
        a, b = path.read_bytes(), (after / path.relative_to(before)).read_bytes()
        if a == b:
            identical += 1
            continue
        wa, wb = weight_tensors(a), weight_tensors(b)
        if len(wa) != len(wb) or not all(
            np.array_equal(x.values, y.values) for x, y in zip(wa, wb, strict=True)
        ):
            different.append(str(path.relative_to(before)))
    print(
        f"TFLite files: {len(files)}, {identical} identical byte for byte, "
        f"{len(different)} with other weights {different[:5]}"
    )
    return problems + len(different)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path, help="the first project copy, after its run")
    parser.add_argument("after", type=Path, help="the second project copy, after its run")
    args = parser.parse_args()
    before, after = args.before.resolve(), args.after.resolve()
    problems = compare_tables(before, after) + compare_models(before, after)
    print(f"{problems} difference(s)")


if __name__ == "__main__":
    main()
