"""Does face alignment recover accuracy under head tilt? Balanced accuracy of one TFLite file on
the test role's pictures rotated in the plane (the robustness stage's ``rotation`` corruption at
given angles, alternating sign per picture), each face found again by the detector and cropped
twice: as harmonization crops it by default (``face_crop.align: false``) and aligned (eyes level,
``face_crop.eye_distance`` apart: pediatric_emotion.faces.align).

The file was trained on unaligned crops, so this measures test-time alignment only; a run with
``face_crop.align: true`` trains on aligned crops as well (its spec then aligns in predict).

Needs a finished run (`make run`): the face manifest, the crops and a TFLite file.

    .venv/bin/python benchmarks/alignment_under_tilt.py [--project .] [--tflite FILE]
        [--angles 0 10 20 30] [--images-per-class 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pediatric_emotion  # noqa: F401  (environment defaults before TensorFlow loads)
from pediatric_emotion.corruptions import corrupt
from pediatric_emotion.datasets import FileTree, load_tflite
from pediatric_emotion.faces import FaceDetector, crop_detected_face
from pediatric_emotion.grid import load_project_parameters
from pediatric_emotion.images import encode_image, read_image
from pediatric_emotion.modeling.tflite_runner import tflite_probabilities
from pediatric_emotion.pipelines.evaluation.robustness import (
    balanced_accuracy_with_misses,
    sample_test_images,
)
from pediatric_emotion.pipelines.evaluation.selection import select_test_images

logger = logging.getLogger("alignment_under_tilt")


def default_tflite(project: Path) -> Path:
    """The run's recommended file, else its first baseline float32 file."""
    recommendation = project / "data/08_reporting/recommendation.json"
    if recommendation.is_file():
        chosen = json.loads(recommendation.read_text()).get("recommended") or {}
        if chosen.get("tflite_path"):
            return project / chosen["tflite_path"]
    found = sorted((project / "data/06_models/tflite").glob("*/baseline/float32.tflite"))
    if not found:
        raise SystemExit(f"no TFLite file under {project}/data/06_models/tflite: run `make run`")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--tflite", type=Path, default=None)
    parser.add_argument("--angles", type=float, nargs="+", default=[0, 10, 20, 30])
    parser.add_argument("--images-per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    project = args.project.resolve()
    parameters = load_project_parameters(project)
    emotions = list(parameters["emotions"])
    face_crop = dict(parameters["face_crop"])
    manifest = pd.read_parquet(project / "data/03_primary/face_manifest.parquet")
    crops = FileTree(project / "data/03_primary/face_crops")
    test = select_test_images(manifest, crops, parameters["evaluation"], emotions)
    chosen = sample_test_images(test, args.images_per_class, args.seed)
    tflite = load_tflite(args.tflite or default_tflite(project))
    size = int(tflite.spec.get("face_crop", {}).get("size", face_crop["size"]))
    detector = FaceDetector(**parameters["face_detection"])
    modes = {
        "unaligned": {**face_crop, "size": size, "align": False},
        "aligned": {**face_crop, "size": size, "align": True},
    }
    pictures = [read_image(path) for path in chosen["image_path"]]
    labels = chosen["label"].to_numpy()
    print(f"file: {args.tflite or default_tflite(project)}")
    print(f"{len(chosen)} test pictures (at most {args.images_per_class} per class), {size} px")
    print(f"{'angle':>6} {'mode':>10} {'balanced_acc':>13} {'faces_lost':>11} {'seconds':>8}")
    for angle in args.angles:
        for mode, settings in modes.items():
            start = time.perf_counter()
            predicted = np.full(len(pictures), -1, dtype=np.int64)
            with tempfile.TemporaryDirectory(prefix="tilt-") as folder:
                paths, positions = [], []
                for position, picture in enumerate(pictures):
                    signed = angle if position % 2 == 0 else -angle
                    rotated = corrupt(picture, "rotation", 1, seed=0, levels=[signed] * 5)
                    box = detector.detect(rotated)
                    if box is None:
                        continue
                    path = Path(folder) / f"{position:05d}.png"
                    path.write_bytes(encode_image(crop_detected_face(rotated, box, settings)))
                    paths.append(str(path))
                    positions.append(position)
                if paths:
                    scores = tflite_probabilities(
                        tflite.content, tflite.spec, paths, where="alignment benchmark"
                    )
                    predicted[positions] = scores.argmax(axis=1)
            accuracy = balanced_accuracy_with_misses(labels, predicted, len(emotions))
            lost = int((predicted < 0).sum())
            seconds = time.perf_counter() - start
            print(f"{angle:>6.0f} {mode:>10} {accuracy:>13.3f} {lost:>11d} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
