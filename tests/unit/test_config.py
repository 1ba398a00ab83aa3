"""RunConfig (and the JSON reader TuneConfig shares): JSON round trip and validation messages
that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cifarkit.config import (
    AugmentConfig,
    CallbacksConfig,
    ConfigError,
    DataConfig,
    JsonConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainingConfig,
)
from cifarkit.labels import CIFAR100_FINE_LABELS, CIFAR100_FINE_TO_COARSE, CIFAR100_SUPERCLASSES
from cifarkit.models.catalog import MODELS, model_info, names
from cifarkit.tuneconfig import TuneConfig
from tests.conftest import assert_refused


def test_default_config_is_valid_and_round_trips() -> None:
    config = RunConfig().validate()
    assert RunConfig.from_json(config.to_json()) == config


def test_every_field_survives_json() -> None:
    config = RunConfig(
        name="x", seed=7,
        data=DataConfig(source="cifar100", label_mode="coarse", classes=("people", "trees"),
                        max_train_images=100, validation_split=0.2),
        augment=AugmentConfig(vertical_flip=True, rotation=0.1, zoom=0.2, contrast=0.3),
        model=ModelConfig(architecture="Xception", input_size=96, trainable_fraction=0.2,
                          pooling="max", dense_units=128),
        optimizer=OptimizerConfig(name="sgd", learning_rate=0.05, nesterov=True,
                                  schedule="cosine"),
        training=TrainingConfig(epochs=3, batch_size=32, steps_per_epoch=10,
                                label_smoothing=0.1),
        callbacks=CallbacksConfig(reduce_lr=False, early_stopping_patience=9),
    ).validate()
    restored = RunConfig.from_json(config.to_json())
    assert restored == config
    assert restored.data.classes == ("people", "trees")  # tuples, not lists, after JSON


def test_partial_dict_fills_defaults() -> None:
    config = RunConfig.from_dict({"training": {"epochs": 3}})
    assert config.training.epochs == 3
    assert config.training.batch_size == TrainingConfig().batch_size


@pytest.mark.parametrize(("raw", "field"), [
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"training": {"batch_size": 2.5}}, "training.batch_size"),
    ({"model": {"architecture": "Xception", "input_size": 32}}, "model.input_size"),
    ({"model": {"architecture": "nope"}}, "model.architecture"),
    ({"model": {"weights": "/no/such.weights.h5", "architecture": "VGG16"}}, "model.weights"),
    ({"model": {"trainable_fraction": 1.5}}, "model.trainable_fraction"),
    ({"data": {"source": "cifar100", "classes": ["apple", "unicorn"]}}, "data.classes"),
    ({"data": {"source": "cifar10", "num_classes": 11}}, "data.num_classes"),
    ({"data": {"source": "folder"}}, "data.path"),
    ({"data": {"validation_split": 0}}, "data.validation_split"),
    ({"augment": {"rotation": -0.1}}, "augment.rotation"),
    ({"optimizer": {"learning_rate": 0}}, "optimizer.learning_rate"),
    ({"optimizer": {"name": "lion"}}, "optimizer.name"),
    ({"optimizer": {"schedule": "cosine"}, "callbacks": {"reduce_lr": True}},
     "callbacks.reduce_lr"),
    ({"callbacks": {"reduce_lr_factor": 1.0}}, "callbacks.reduce_lr_factor"),
    ({"seed": 2**32}, "seed"),
    ({"seed": -1}, "seed"),
    ({"name": {"a": 1}}, "name"),
    ({"name": "two\nlines"}, "name"),
    ({"training": {"epochs": 10_001}}, "training.epochs"),
    ({"training": {"steps_per_epoch": 10**7}}, "training.steps_per_epoch"),
    ({"data": {"max_test_images": 10**8}}, "data.max_test_images"),
    ({"data": {"path": ["a"]}}, "data.path"),
    ({"data": {"source": "folder", "path": "x", "classes": [1, 2]}}, "data.classes"),
    ({"augment": {"horizontal_flip": "yes"}}, "augment.horizontal_flip"),
    ({"model": {"architecture": ["resnet_fast"]}}, "model.architecture"),
    ({"callbacks": {"early_stopping_patience": 10**6}}, "callbacks.early_stopping_patience"),
])
def test_bad_value_names_the_field(raw: dict, field: str) -> None:
    assert_refused(lambda: RunConfig.from_dict(raw).validate(), field)


def test_unknown_key_names_the_field() -> None:
    assert_refused(lambda: RunConfig.from_dict({"training": {"epoch": 3}}), "training.epoch")


@pytest.mark.parametrize(("kind", "name"), [(RunConfig, "config"), (TuneConfig, "tune")])
def test_broken_json_is_a_config_error_naming_the_kind(kind: type[JsonConfig], name: str) -> None:
    """RunConfig and TuneConfig share one JSON reader (JsonConfig); each names its own kind."""
    assert assert_refused(lambda: kind.from_json("{"), name).reason.startswith("not valid JSON (")
    listed = assert_refused(lambda: kind.from_json(json.dumps([1, 2])), name)
    assert listed.reason == "must be a JSON object, got a list"
    assert assert_refused(lambda: kind.from_dict([1, 2]), name).reason == "must be an object"


def test_class_names_are_checked_against_the_label_mode() -> None:
    coarse = RunConfig(data=DataConfig(source="cifar100", label_mode="coarse",
                                       classes=("people", "trees")))
    assert coarse.validate() is coarse
    with pytest.raises(ConfigError, match="people"):
        RunConfig(data=DataConfig(source="cifar100", classes=("people", "apple"))).validate()


def test_fine_to_coarse_follows_the_superclass_table() -> None:
    assert len(CIFAR100_FINE_LABELS) == 100
    for fine_index, coarse_index in enumerate(CIFAR100_FINE_TO_COARSE):
        coarse = sorted(CIFAR100_SUPERCLASSES)[coarse_index]
        assert CIFAR100_FINE_LABELS[fine_index] in CIFAR100_SUPERCLASSES[coarse]


def test_catalog_lists_scratch_and_transfer_models() -> None:
    assert {"resnet_fast", "simple_cnn", "conv4_bn", "vgg_style", "resnet50_style"} <= set(
        names("scratch"))
    expected = {"VGG16", "VGG19", "ResNet50", "ResNet50V2", "MobileNet", "MobileNetV2",
                "DenseNet121", "Xception", "InceptionV3", "InceptionResNetV2",
                *(f"EfficientNetB{i}" for i in range(8)), "EfficientNetV2B0", "ConvNeXtTiny"}
    assert expected <= set(names("transfer"))
    assert all(info.min_input <= info.default_input for info in MODELS.values())
    with pytest.raises(ValueError, match="unknown architecture"):
        model_info("LeNet")


def test_a_weights_file_must_be_hdf5_before_any_run_exists(tmp_path: Path) -> None:
    import h5py

    fake = tmp_path / "fake.weights.h5"
    fake.write_text("not HDF5")
    real = tmp_path / "real.weights.h5"
    with h5py.File(real, "w") as handle:
        handle.create_dataset("w", data=[1.0])
    config = RunConfig(model=ModelConfig(architecture="MobileNet", weights=str(fake)))
    assert "is not an HDF5 file" in assert_refused(config.validate, "model.weights").reason
    assert config.with_updates(model=ModelConfig(architecture="MobileNet",
                                                 weights=str(real))).validate()


def test_config_files_are_named_in_every_load_error(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    for path, reason in ((listed, "must be a JSON object, got a list"),
                         (tmp_path, "is a folder, not a JSON file"),
                         (tmp_path / "absent.json", "no such file")):
        with pytest.raises(ConfigError) as caught:
            RunConfig.load(path)
        assert str(caught.value) == f"{path}: {reason}"


def test_each_architecture_starts_from_the_optimizer_measured_for_its_kind() -> None:
    from cifarkit.config import OptimizerConfig, recommended_optimizer

    assert recommended_optimizer("airbench_cpu") == OptimizerConfig()  # the default recipe
    assert OptimizerConfig().name == "sgd" and OptimizerConfig().schedule == "linear"
    simple = recommended_optimizer("simple_cnn")  # no batch norm: large SGD steps diverge
    assert (simple.name, simple.learning_rate, simple.schedule) == ("adam", 1e-3, "linear")
    pretrained = recommended_optimizer("MobileNetV2")
    assert (pretrained.name, pretrained.learning_rate) == ("adam", 1e-4)
