"""The study's scale on this machine: per architecture at 224 px, training images per second, the
seconds of each TFLite conversion and of one file's evaluation on the CAFE-sized test set, and the
peak memory; then the projected cost of the study's run from those unit costs.

Each architecture runs in a child process of its own (its peak resident memory is that child's;
one at a time, with a timeout): the study's member from conf/base/parameters_training.yml (not the
quick demo's), built untrained (no download), compiled with Adam; ``--steps`` training steps of
``--batch-size`` random images timed after a traced first step; float32 and int8 files converted
with the project's exporter (int8 calibrated on 32 images); each file's scores on ``--eval-images``
images through the evaluation pipeline's LiteRT runner (batches of 32), scaled to the test set's
1,192 images. Nothing under data/ is touched.

    .venv/bin/python benchmarks/study_scale.py [--image-size 224] [--batch-size 32] [--steps 4]
        [--eval-images 128] [--architectures mobilenet_v2,nasnet_mobile] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGES = 1_192  # CAFE as the study uses it
# The study's run, projected (the paper environment's settings, conf/paper/)
TRAIN_IMAGES = 78_000
CELLS_PER_ARCHITECTURE = 2  # the data copies
EPOCHS = 45  # 5 head epochs + 40 fine-tuning epochs (early stopping may end sooner)
FILES_PER_CELL = 12  # baseline 4, pruned 2, clustered 2, qat / pqat / cqat / pcqat 1 each
INT8_SHARE = 9 / 12  # files converted with int8 calibration or from a QAT model


def architectures() -> dict:
    """The study's members: the ``architectures`` of conf/base (no quick demo cuts)."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return dict(loader["parameters"]["architectures"])


def measure(name: str, image_size: int, batch_size: int, steps: int, eval_images: int) -> dict:
    """One architecture's unit costs (run in the child process)."""
    import numpy as np

    import pediatric_emotion  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
    from pediatric_emotion.modeling.architectures import build_classifier
    from pediatric_emotion.modeling.inputs import Preprocessing
    from pediatric_emotion.modeling.tflite_export import convert_to_tflite, tflite_spec
    from pediatric_emotion.modeling.tflite_runner import tflite_probabilities

    architecture = architectures()[name]
    rng = np.random.default_rng(0)
    model = build_classifier(architecture, image_size=image_size, num_classes=7)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = rng.uniform(-1, 1, (batch_size, image_size, image_size, 3)).astype(np.float32)
    labels = rng.integers(0, 7, batch_size)
    started = time.perf_counter()
    model.train_on_batch(images, labels)  # traces the training step
    first_step = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    per_step = (time.perf_counter() - started) / steps
    result = {
        "architecture": name,
        "params": int(model.count_params()),
        "first_step_s": round(first_step, 1),
        "train_images_per_s": round(batch_size / per_step, 1),
    }
    preprocessing = Preprocessing.from_config(architecture, image_size)
    pixels = rng.integers(0, 256, (eval_images, image_size, image_size, 3), dtype=np.uint8)
    for quantization in ("float32", "int8"):
        started = time.perf_counter()
        content = convert_to_tflite(
            model, quantization, representative_images=preprocessing.apply(pixels[:32])
        )
        result[f"convert_{quantization}_s"] = round(time.perf_counter() - started, 1)
        spec = tflite_spec(
            content,
            labels=[str(i) for i in range(7)],
            preprocessing=preprocessing,
            face_crop={"size": image_size},
            description={"architecture": name},
        )
        started = time.perf_counter()
        tflite_probabilities(
            content, spec, [f"{i}" for i in range(eval_images)], where=name, pixels=pixels
        )
        seconds = (time.perf_counter() - started) * TEST_IMAGES / eval_images
        result[f"evaluate_{quantization}_s"] = round(seconds, 1)
        result[f"{quantization}_bytes"] = len(content)
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def project(rows: list[dict]) -> list[str]:
    """The study's run in hours on this machine, from the unit costs, with its assumptions."""
    lines = [
        f"Projection (assumptions: {TRAIN_IMAGES:,} training images, {EPOCHS} epochs per cell, "
        f"{CELLS_PER_ARCHITECTURE} data copies, {FILES_PER_CELL} files per cell of which "
        f"{INT8_SHARE:.0%} convert like int8, each file evaluated on {TEST_IMAGES:,} images; "
        "fine-tuning of the compressed models, validation passes and profiling not counted):"
    ]
    total = 0.0
    for row in rows:
        training = TRAIN_IMAGES * EPOCHS / row["train_images_per_s"]
        converting = FILES_PER_CELL * (
            INT8_SHARE * row["convert_int8_s"] + (1 - INT8_SHARE) * row["convert_float32_s"]
        )
        evaluating = FILES_PER_CELL * (
            INT8_SHARE * row["evaluate_int8_s"] + (1 - INT8_SHARE) * row["evaluate_float32_s"]
        )
        hours = CELLS_PER_ARCHITECTURE * (training + converting + evaluating) / 3600
        total += hours
        lines.append(
            f"  {row['architecture']}: {hours:,.1f} h (training {training / 3600:,.1f} h per "
            f"cell, conversion {converting / 60:.1f} min, evaluation {evaluating / 60:.1f} min)"
        )
    lines.append(f"  all {len(rows)} architectures: {total:,.1f} h on this machine")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps (default 4)")
    parser.add_argument("--eval-images", type=int, default=128, help="images evaluated per file")
    parser.add_argument("--architectures", default=None, help="comma-separated (default: all)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per architecture")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = (args.image_size, args.batch_size, args.steps, args.eval_images)
    if args.child:
        print(json.dumps(measure(args.child, *settings)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.architectures.split(",") if args.architectures else list(architectures())
    rows = []
    for name in names:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
        command += ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
        command += ["--steps", str(args.steps), "--eval-images", str(args.eval_images)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=args.timeout, check=True
            )
        except subprocess.TimeoutExpired:
            logging.warning("%s: over %.0f s, skipped", name, args.timeout)
            continue
        except subprocess.CalledProcessError as err:
            logging.warning("%s failed: %s", name, err.stderr[-2000:])
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        logging.info("%s", rows[-1])
    columns = list(rows[0]) if rows else []
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    if rows:
        print("\n".join(project(rows)))


if __name__ == "__main__":
    main()
