"""Time and peak memory of one TFLite conversion: the project's converter (the inference function
and the variables) against ``TFLiteConverter.from_keras_model`` (a SavedModel of the whole Keras
model first).

Builds an untrained classifier of one architecture (random weights; no download), makes the
technique's model (``baseline``: the float model to float32; ``qat``: quantization-aware;
``pcqat``: half of every prunable kernel zeroed, sparsity-preserving clustering, PCQAT), then
converts it to the technique's TFLite file, each way in a fresh process (peak resident memory is
the child's), and checks that both files give the same outputs on a few random images.

    .venv/bin/python benchmarks/tflite_conversion.py [--architecture NASNetMobile]
        [--technique pcqat] [--image-size 32]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

WAYS = ("project", "from_keras_model")
TECHNIQUES = ("baseline", "qat", "pcqat")


def technique_model(architecture: str, technique: str, image_size: int):
    """The untrained classifier made ready for ``technique``'s conversion."""
    import numpy as np

    from pediatric_emotion.modeling.architectures import build_classifier
    from pediatric_emotion.modeling.compression import (
        clustering_wrapped,
        prunable_layer_names,
        quantization_aware,
        strip,
    )
    from pediatric_emotion.modeling.quantizable import quantizable_twin

    config = {"application": architecture, "application_kwargs": {}}
    model = build_classifier(config, image_size=image_size, num_classes=7)
    if technique == "baseline":
        return model
    if technique == "qat":
        return quantization_aware(
            quantizable_twin(model, config, image_size=image_size, num_classes=7)
        )
    prunable = set(prunable_layer_names(model))
    for layer in model.layers:
        if layer.name in prunable:
            kernel, *rest = layer.get_weights()
            kernel = np.where(np.abs(kernel) < np.median(np.abs(kernel)), 0, kernel)
            layer.set_weights([kernel, *rest])
    clustered = strip(clustering_wrapped(model, clusters=16, preserve_sparsity=True))
    return quantization_aware(clustered, preserve="sparsity_and_clusters")


def convert(way: str, architecture: str, technique: str, image_size: int, out: Path) -> dict:
    """One conversion in this process; returns its seconds and this process's peak memory."""
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from pediatric_emotion.modeling import tflite_export
    from pediatric_emotion.modeling.quantizable import CUSTOM_OBJECTS

    model = technique_model(architecture, technique, image_size)
    quantization = "float32" if technique == "baseline" else "int8"
    images = np.random.default_rng(0).random((8, image_size, image_size, 3), dtype=np.float32)
    if way == "from_keras_model":  # the same settings, only the converter's source differs

        def keras_converter(keras_model):
            with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
                return tf.lite.TFLiteConverter.from_keras_model(keras_model)

        tflite_export._inference_converter = keras_converter
    started = time.perf_counter()
    content = tflite_export.convert_to_tflite(
        model,
        quantization,
        representative_images=images,
        quantization_aware=technique != "baseline",
    )
    seconds = time.perf_counter() - started
    out.write_bytes(content)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {
        "way": way,
        "seconds": round(seconds, 1),
        "peak_gib": round(peak_gib, 2),
        "bytes": len(content),
    }


def outputs(path: Path, image_size: int):
    """The file's outputs on four seeded random inputs of its own input type."""
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rng = np.random.default_rng(1)
    results = []
    for _ in range(4):
        if source["dtype"] == np.int8:
            image = rng.integers(-128, 128, (1, image_size, image_size, 3), dtype=np.int8)
        else:
            image = rng.random((1, image_size, image_size, 3), dtype=np.float32)
        interpreter.set_tensor(source["index"], image)
        interpreter.invoke()
        results.append(interpreter.get_tensor(target["index"]).astype(np.float64))
    return np.concatenate(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="NASNetMobile", help="tf_keras application")
    parser.add_argument("--technique", default="pcqat", choices=TECHNIQUES)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # the child's one way
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.way:
        figures = convert(
            args.way, args.architecture, args.technique, args.image_size, Path(args.out)
        )
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for way in WAYS:
            out = Path(tmp) / f"{way}.tflite"
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--architecture",
                    args.architecture,
                    "--technique",
                    args.technique,
                    "--image-size",
                    str(args.image_size),
                    "--way",
                    way,
                    "--out",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=3600,
                check=True,
            )
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        import numpy as np

        difference = np.abs(
            outputs(Path(tmp) / "project.tflite", args.image_size)
            - outputs(Path(tmp) / "from_keras_model.tflite", args.image_size)
        ).max()
    print(f"{args.architecture} {args.technique} at {args.image_size} px, untrained:")
    print(f"{'way':<18} {'seconds':>8} {'peak GiB':>9} {'bytes':>10}")
    for row in rows:
        print(f"{row['way']:<18} {row['seconds']:>8} {row['peak_gib']:>9} {row['bytes']:>10}")
    print(f"largest output difference between the two files: {difference:g}")


if __name__ == "__main__":
    main()
