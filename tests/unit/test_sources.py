"""The one table of data-source names, the data line, readiness and the augmentation advice."""

from __future__ import annotations

import pytest

from cifarkit import config, datasets
from cifarkit.config import DataConfig
from cifarkit.dataready import archive_missing, data_shape, where_to_put
from cifarkit.models.memory import training_mb
from cifarkit.sources import (
    CHOICES,
    SOURCES,
    describe_data,
    recommended_augment,
    source_choice,
    source_title,
)


def test_every_config_source_has_a_title_and_the_picker_offers_known_ones() -> None:
    assert set(SOURCES) == set(config.SOURCES)
    assert set(CHOICES) <= set(SOURCES)
    assert source_title("cifar10") == "CIFAR-10"
    assert source_choice("digits") == "Digits (built in, works offline)"
    assert source_title("unknown") == "unknown"


def test_datasets_and_the_runs_table_use_the_same_titles() -> None:
    titles = {info.key: info.title for info in datasets.catalog()}
    assert titles == {key: source.choice for key, source in SOURCES.items()}
    assert datasets.load(DataConfig(source="digits", max_train_images=50)).name.startswith(
        source_title("digits"))


def test_describe_data_names_source_subset_and_cap() -> None:
    spec = DataConfig(source="cifar100", classes=("apple", "bed"), max_train_images=2000)
    assert describe_data(spec) == ("CIFAR-100 (fine labels) · 2 classes: apple, bed · "
                                   "at most 2,000 training images")
    assert describe_data(DataConfig(source="cifar10", num_classes=3)) == (
        "CIFAR-10 · first 3 classes")
    assert describe_data(DataConfig(source="cifar100", classes=("maple_tree", "sweet_pepper"))) == (
        "CIFAR-100 (fine labels) · 2 classes: maple tree, sweet pepper")
    assert describe_data(DataConfig(source="tfrecord", path="/data/digits")) == (
        "TFRecord folder · `/data/digits`")


def test_data_shape_of_built_in_sources_needs_no_loading() -> None:
    def refuse(spec: DataConfig) -> datasets.Dataset:
        raise AssertionError("loaded")

    assert data_shape(DataConfig(source="cifar100", label_mode="coarse"), refuse) == (20, 32)
    assert data_shape(DataConfig(source="cifar10", num_classes=4), refuse) == (4, 32)
    assert data_shape(DataConfig(source="digits"), refuse) == (10, 32)


def test_data_shape_of_a_folder_comes_from_its_images() -> None:
    digits = datasets.load(DataConfig(source="digits", max_train_images=40))
    spec = DataConfig(source="folder", path="/anywhere")
    assert data_shape(spec, lambda _: digits) == (10, digits.x_train.shape[1])


def test_data_shape_of_a_tfrecord_folder_comes_from_its_manifest(tmp_path) -> None:
    digits = datasets.load(DataConfig(source="digits", max_train_images=40, max_test_images=10))
    folder = datasets.export_tfrecords(digits, tmp_path / "out", "digits").folder
    for shard in folder.glob("*.tfrecord"):
        shard.write_bytes(b"")  # no shard is read: only manifest.json

    def refuse(spec: DataConfig) -> datasets.Dataset:
        raise AssertionError("loaded")

    assert data_shape(DataConfig(source="tfrecord", path=str(folder)), refuse) == (10, 32)


def test_missing_archive_and_where_to_put_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CIFARKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert archive_missing(DataConfig(source="cifar10"))
    assert not archive_missing(DataConfig(source="digits"))
    assert where_to_put("cifar10").startswith(
        f"Copy the official archive `cifar-10-python.tar.gz` into `{tmp_path}`")


def test_no_mirroring_for_digits() -> None:
    assert not recommended_augment("digits").horizontal_flip
    assert recommended_augment("cifar10").horizontal_flip


def test_training_memory_adds_three_copies_of_the_trainable_part() -> None:
    assert training_mb(100.0, 50, 100) == pytest.approx(250.0)
    assert training_mb(100.0, 0, 100) == 100.0
    assert training_mb(0.0, 0, 0) == 0.0
