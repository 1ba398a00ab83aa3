"""TFRecord folders: `datasets export` writes them, `source="tfrecord"` loads and trains on them.

Real CIFAR samples go out and come back bit for bit; every damaged manifest or shard is refused
with one line naming the file, and an export never writes into a folder that holds anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cifarkit import cli, datasets, pipeline, rundir, runs, training
from cifarkit.config import (
    MAX_IMAGES,
    CallbacksConfig,
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
)
from cifarkit.datasets import DatasetError
from cifarkit.evaluation import Predictions

SHARDS = ["manifest.json", "test-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord"]


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def assert_same(loaded: datasets.Dataset, original: datasets.Dataset) -> None:
    np.testing.assert_array_equal(loaded.x_train, original.x_train)
    np.testing.assert_array_equal(loaded.y_train, original.y_train)
    np.testing.assert_array_equal(loaded.x_test, original.x_test)
    np.testing.assert_array_equal(loaded.y_test, original.y_test)
    assert loaded.class_names == original.class_names
    assert loaded.x_train.dtype == np.uint8 and loaded.y_train.dtype == np.int64


@pytest.fixture
def digits_folder(tmp_path: Path) -> Path:
    """A small exported digits folder (200 train, 50 test images)."""
    dataset = datasets.load(DataConfig(source="digits", max_train_images=200, max_test_images=50))
    return datasets.export_tfrecords(dataset, tmp_path / "digits", "digits").folder


def edit_manifest(folder: Path, **changes: object) -> Path:
    manifest = folder / datasets.MANIFEST
    raw = json.loads(manifest.read_text())
    raw.update(changes)
    manifest.write_text(json.dumps(raw))
    return manifest


def refusal(folder: Path) -> str:
    with pytest.raises(DatasetError) as refused:
        datasets.load(DataConfig(source="tfrecord", path=str(folder)))
    return str(refused.value)


# --- round trips


def test_real_cifar10_sample_comes_back_exactly(cifar10_archive: Path, tmp_path: Path) -> None:
    spec = DataConfig(source="cifar10", path=str(cifar10_archive), max_train_images=300,
                      max_test_images=100)
    original = datasets.load(spec)
    export = datasets.export_tfrecords(original, tmp_path / "out", "cifar10")
    assert files_in(export.folder) == SHARDS
    manifest = json.loads((export.folder / datasets.MANIFEST).read_text())
    assert manifest["source"] == "cifar10" and manifest["image_size"] == 32
    assert manifest["splits"] == {"train": {"count": 300, "shards": 1},
                                  "test": {"count": 100, "shards": 1}}
    assert manifest["class_names"] == original.class_names
    loaded = datasets.load(DataConfig(source="tfrecord", path=str(export.folder)))
    assert_same(loaded, original)
    assert loaded.name == "TFRecords out (10 classes)"
    assert export.size_bytes == sum(p.stat().st_size for p in export.folder.iterdir())


def test_cifar100_fine_keeps_its_superclasses(cifar100_archive: Path, tmp_path: Path) -> None:
    """A class subset of fine labels keeps the fine→coarse table, so Errors can roll up."""
    original = datasets.load(DataConfig(source="cifar100", path=str(cifar100_archive),
                                        classes=("maple_tree", "oak_tree", "rocket")))
    folder = datasets.export_tfrecords(original, tmp_path / "trees", "cifar100").folder
    loaded = datasets.load(DataConfig(source="tfrecord", path=str(folder)))
    assert_same(loaded, original)
    assert loaded.coarse_names == original.coarse_names and len(loaded.coarse_names) == 20
    np.testing.assert_array_equal(loaded.fine_to_coarse, original.fine_to_coarse)
    subset = datasets.load(DataConfig(source="tfrecord", path=str(folder), classes=("rocket",
                                                                                    "oak_tree")))
    assert subset.class_names == ["rocket", "oak_tree"]
    assert [subset.coarse_names[i] for i in subset.fine_to_coarse] == ["vehicles_2", "trees"]


def test_big_splits_go_into_several_shards_in_order(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(datasets, "_SHARD_BYTES", 80 * 32 * 32 * 3)  # 80 images a shard
    original = datasets.load(DataConfig(source="digits", max_train_images=200, max_test_images=50))
    calls: list[tuple[str, int, int]] = []
    export = datasets.export_tfrecords(original, tmp_path / "out", "digits",
                                       progress=lambda *call: calls.append(call))
    assert files_in(export.folder) == [
        "manifest.json", "test-00000-of-00001.tfrecord", "train-00000-of-00003.tfrecord",
        "train-00001-of-00003.tfrecord", "train-00002-of-00003.tfrecord"]
    assert calls == [("train", 67, 200), ("train", 134, 200), ("train", 200, 200),
                     ("test", 50, 50)]
    assert_same(datasets.load_tfrecord_folder(export.folder), original)


def test_one_epoch_trains_from_the_tfrecord_source(digits_folder: Path) -> None:
    config = RunConfig(
        data=DataConfig(source="tfrecord", path=str(digits_folder)),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=1, batch_size=32),
        callbacks=CallbacksConfig(checkpoint=False),
    ).validate()
    run_dir = runs.create(config)
    status = training.train(run_dir, verbose=0)
    assert status["status"] == "completed", status.get("error")
    assert status["epochs_run"] == 1
    predictions = Predictions.load(run_dir / rundir.PREDICTIONS)
    original = datasets.load(DataConfig(source="digits", max_train_images=200,
                                        max_test_images=50))
    np.testing.assert_array_equal(predictions.images, original.x_test)  # Errors/Predict see them
    assert predictions.probs.shape == (50, 10)
    assert list(predictions.class_names) == original.class_names


# --- refusals: export target, config


def test_export_refuses_a_folder_that_holds_anything(digits_folder: Path, tmp_path: Path) -> None:
    before = {name: (digits_folder / name).read_bytes() for name in files_in(digits_folder)}
    dataset = datasets.load_digits()
    for target in (digits_folder, digits_folder / datasets.MANIFEST):
        with pytest.raises(DatasetError) as refused:
            datasets.export_tfrecords(dataset, target)
        assert str(refused.value) == (f"{target} already exists and is not an empty folder: "
                                      "export into a new or empty folder (nothing was written)")
    assert {name: (digits_folder / name).read_bytes() for name in files_in(digits_folder)} == before
    empty = tmp_path / "empty"
    empty.mkdir()
    datasets.export_tfrecords(dataset, empty)
    assert files_in(empty) == SHARDS


@pytest.mark.parametrize("made_before", [False, True])
def test_a_failed_export_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               made_before: bool) -> None:
    out = tmp_path / "out"
    if made_before:
        out.mkdir()
    real = pipeline.write_tfrecords

    def full_disk_on_test(path: Path, *args: object) -> Path:
        if path.name.startswith("test"):
            raise OSError(28, "No space left on device")
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "write_tfrecords", full_disk_on_test)
    with pytest.raises(OSError, match="No space left"):
        datasets.export_tfrecords(datasets.load_digits(), out)
    assert (files_in(out) == []) if made_before else not out.exists()


def test_a_tfrecord_config_needs_a_path() -> None:
    with pytest.raises(ConfigError) as refused:
        RunConfig(data=DataConfig(source="tfrecord")).validate()
    assert str(refused.value) == ("data.path: a TFRecord dataset needs the path of a folder "
                                  "written by `python -m cifarkit datasets export` "
                                  "(manifest.json and .tfrecord shards)")


# --- refusals: damaged folders and manifests


def test_not_a_folder_or_no_manifest(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nowhere") == (
        f"{tmp_path / 'nowhere'} is not a folder: a TFRecord dataset is a folder holding "
        "manifest.json and its .tfrecord shards")
    assert refusal(tmp_path) == (f"{tmp_path} has no manifest.json: not a TFRecord folder "
                                 "written by `python -m cifarkit datasets export`")


def test_manifest_that_is_not_json_or_not_ours(digits_folder: Path) -> None:
    manifest = digits_folder / datasets.MANIFEST
    manifest.write_bytes(b'{"format": "cifarkit-tfrecord", "vers')
    assert refusal(digits_folder).startswith(f"{manifest} is damaged: not valid JSON (")
    manifest.write_text('{"format": "tfds"}')
    assert refusal(digits_folder) == (f"{manifest} is not a cifarkit TFRecord manifest (its "
                                      "\"format\" must be 'cifarkit-tfrecord')")
    manifest.write_text('{"format": "cifarkit-tfrecord", "version": 2}')
    assert refusal(digits_folder) == (f"{manifest} has version 2; this cifarkit reads version 1")


@pytest.mark.parametrize(("changes", "message"), [
    ({"class_names": ["one"]}, "'class_names' must be a list of 2 to 10,000 different names, "
     "got ['one']"),
    ({"class_names": ["a", "a", "b"]}, "'class_names' must be a list of 2 to 10,000 different"),
    ({"image_size": 4096}, "'image_size' must be a whole number from 8 to 224, got 4096"),
    ({"image_size": "32"}, "'image_size' must be a whole number from 8 to 224, got '32'"),
    ({"splits": {"train": {"count": MAX_IMAGES + 1, "shards": 1},
                 "test": {"count": 50, "shards": 1}}},
     "'splits' must be {train, test} each with a count of 1 to 10,000,000 images"),
    ({"splits": {"train": {"count": 200, "shards": 201}, "test": {"count": 50, "shards": 1}}},
     "'splits' must be {train, test}"),
    ({"splits": {"train": {"count": 200, "shards": 1}}}, "'splits' must be {train, test}"),
    ({"coarse_names": ["x", "y"]}, "'fine_to_coarse' must be null, or one coarse index per "
     "class when coarse_names is given, got None"),
])
def test_manifest_values_out_of_range(digits_folder: Path, changes: dict, message: str) -> None:
    manifest = edit_manifest(digits_folder, **changes)
    assert refusal(digits_folder).startswith(f"{manifest} is damaged: {message}")


def test_manifest_beyond_the_memory_cap_is_refused_before_reading(digits_folder: Path) -> None:
    edit_manifest(digits_folder, image_size=224, splits={
        "train": {"count": 30_000, "shards": 1}, "test": {"count": 50, "shards": 1}})
    assert refusal(digits_folder) == (
        f"{digits_folder} holds 30,050 images: at 224×224 pixels they would take "
        "4,523 MB of memory (limit 1,000 MB); use fewer images or a smaller image size")


def test_missing_or_symlinked_shard(digits_folder: Path, tmp_path: Path) -> None:
    shard = digits_folder / "test-00000-of-00001.tfrecord"
    moved = shard.rename(tmp_path / "elsewhere.tfrecord")
    message = (f"{digits_folder}: test-00000-of-00001.tfrecord is missing or a link "
               "(manifest.json lists 1 test shard(s), plain files in the folder)")
    assert refusal(digits_folder) == message
    shard.symlink_to(moved)  # a shard must not lead the reader out of the folder
    assert refusal(digits_folder) == message


def test_shard_that_is_not_a_tfrecord_file(digits_folder: Path) -> None:
    shard = digits_folder / "train-00000-of-00001.tfrecord"
    shard.write_bytes(b"PK\x03\x04 a zip, say" * 100)
    assert refusal(digits_folder) == f"{shard} is not a TFRecord file (or is truncated)"


def test_truncated_or_corrupted_shard(digits_folder: Path) -> None:
    shard = digits_folder / "train-00000-of-00001.tfrecord"
    data = shard.read_bytes()
    shard.write_bytes(data[:-100])
    assert refusal(digits_folder).startswith(
        f"{shard} is damaged or holds records cifarkit did not write (")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # the record's CRC no longer matches
    shard.write_bytes(bytes(flipped))
    assert refusal(digits_folder).startswith(
        f"{shard} is damaged or holds records cifarkit did not write (")


def test_shard_bigger_than_its_count_allows_is_not_read(digits_folder: Path) -> None:
    edit_manifest(digits_folder, splits={"train": {"count": 20, "shards": 1},
                                         "test": {"count": 50, "shards": 1}})
    size = (digits_folder / "train-00000-of-00001.tfrecord").stat().st_size
    assert refusal(digits_folder) == (
        f"{digits_folder}: the train shards take {size:,} bytes, more than 20 images of 32×32 "
        "can fill (66,560): not the files manifest.json describes")


def test_counts_that_do_not_match_the_records(digits_folder: Path) -> None:
    edit_manifest(digits_folder, splits={"train": {"count": 199, "shards": 1},
                                         "test": {"count": 50, "shards": 1}})
    shard = digits_folder / "train-00000-of-00001.tfrecord"
    assert refusal(digits_folder) == f"{shard} holds more images than manifest.json counts"
    edit_manifest(digits_folder, splits={"train": {"count": 200, "shards": 1},
                                         "test": {"count": 51, "shards": 1}})
    assert refusal(digits_folder) == (f"{digits_folder}: the test shards hold 50 images, but "
                                      "manifest.json says 51")


def test_labels_or_image_size_that_do_not_match_the_manifest(digits_folder: Path) -> None:
    edit_manifest(digits_folder, class_names=["zero", "one", "two"])
    assert refusal(digits_folder) == (f"{digits_folder}: a train shard has label 9, but "
                                      "manifest.json names 3 classes")
    edit_manifest(digits_folder, class_names=[str(n) for n in range(10)], image_size=64)
    assert refusal(digits_folder) == (f"{digits_folder / 'train-00000-of-00001.tfrecord'} "
                                      "holds 32×32 images, but manifest.json says 64×64")


# --- the command line


def test_cli_export_writes_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "digits-tfr"
    assert cli.main(["datasets", "export", "--format", "tfrecord", "--num-classes", "3",
                     "--max-train", "120", "--max-test", "30", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[-2:] == [
        f"exported Digits (3 classes): 120 train and 30 test images (32×32) in 2 shards, "
        f"{sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB, to {out}",
        f"train on it: python -m cifarkit train --source tfrecord --data-path {out}"]
    assert "train: 120 of 120 images" in printed and "test: 30 of 30 images" in printed
    loaded = datasets.load(DataConfig(source="tfrecord", path=str(out)))
    original = datasets.load(DataConfig(source="digits", num_classes=3, max_train_images=120,
                                        max_test_images=30))
    assert_same(loaded, original)
    assert json.loads((out / datasets.MANIFEST).read_text())["source"] == "digits"


def test_cli_export_refuses_a_used_folder_and_bad_flags(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    assert cli.main(["datasets", "export", "--out", str(used)]) == 2
    assert capsys.readouterr().err == (f"error: {used} already exists and is not an empty "
                                       "folder: export into a new or empty folder (nothing was "
                                       "written)\n")
    assert files_in(used) == ["notes.txt"] and (used / "notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    assert cli.main(["datasets", "export", "--num-classes", "1", "--out", str(fresh)]) == 2
    assert capsys.readouterr().err == ("error: data.num_classes: a classifier needs at least 2 "
                                       "classes\n")
    assert not fresh.exists()
    with pytest.raises(SystemExit) as exited:
        cli.main(["datasets", "export", "--format", "csv", "--out", str(fresh)])
    assert exited.value.code == 2 and "invalid choice: 'csv'" in capsys.readouterr().err


def test_cli_lists_the_source(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["datasets", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "tfrecord    any classes  TFRecord folder (from datasets export)  [give its path]")


def test_cli_export_takes_the_data_section_of_a_run_config(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    RunConfig(data=DataConfig(source="digits", classes=("7", "1"), max_train_images=40,
                              max_test_images=10)).save(config)
    out = tmp_path / "out"
    assert cli.main(["datasets", "export", "--config", str(config), "--max-test", "12",
                     "--out", str(out)]) == 0
    manifest = json.loads((out / datasets.MANIFEST).read_text())
    assert manifest["class_names"] == ["7", "1"]
    assert manifest["splits"] == {"train": {"count": 40, "shards": 1},
                                  "test": {"count": 12, "shards": 1}}
