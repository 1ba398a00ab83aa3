"""cifarkit.pipeline: splits, tf.data batching and TFRecord files on tiny synthetic arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cifarkit import pipeline


def tagged_images(n: int, size: int = 4) -> np.ndarray:
    """uint8 images whose first pixel is their index (n ≤ 256), so order can be read back."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    return images


def labels(n: int, num_classes: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % num_classes


def order(dataset: tf.data.Dataset) -> list[int]:
    """The example indices in the order one pass over `dataset` yields them."""
    return [int(tag) for images, _ in dataset for tag in images.numpy()[:, 0, 0, 0]]


# ---------------------------------------------------------------------------------------------
# split_validation


def test_split_sizes_and_no_overlap() -> None:
    x, y = tagged_images(50), labels(50, 5)
    (x_train, y_train), (x_val, y_val) = pipeline.split_validation(x, y, 0.2, seed=0)
    assert (len(x_train), len(y_train), len(x_val), len(y_val)) == (40, 40, 10, 10)
    train_ids, val_ids = set(x_train[:, 0, 0, 0]), set(x_val[:, 0, 0, 0])
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(50))
    # images and labels still belong together
    assert np.array_equal(y_val, y[x_val[:, 0, 0, 0]])


def test_split_is_stratified() -> None:
    y = np.repeat(np.arange(3), [60, 30, 10])
    (_, y_train), (_, y_val) = pipeline.split_validation(tagged_images(100), y, 0.2, seed=3)
    assert np.bincount(y_val).tolist() == [12, 6, 2]
    assert np.bincount(y_train).tolist() == [48, 24, 8]


def test_split_is_deterministic_per_seed() -> None:
    x, y = tagged_images(60), labels(60, 3)
    first = pipeline.split_validation(x, y, 0.25, seed=7)[1][0][:, 0, 0, 0]
    again = pipeline.split_validation(x, y, 0.25, seed=7)[1][0][:, 0, 0, 0]
    other = pipeline.split_validation(x, y, 0.25, seed=8)[1][0][:, 0, 0, 0]
    assert np.array_equal(first, again)
    assert not np.array_equal(np.sort(first), np.sort(other))


def test_split_without_stratification_when_a_class_is_a_singleton() -> None:
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])  # class 2 has one example: sklearn can't stratify
    (x_train, _), (x_val, _) = pipeline.split_validation(tagged_images(10), y, 0.3, seed=0)
    assert (len(x_train), len(x_val)) == (7, 3)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, 0.95, True, "0.2"])
def test_split_rejects_bad_fraction(fraction: object) -> None:
    with pytest.raises(ValueError, match="fraction"):
        pipeline.split_validation(tagged_images(10), labels(10, 2), fraction, seed=0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# make_dataset


def test_make_dataset_batches_float_images_and_one_hot_labels() -> None:
    x, y = tagged_images(10), labels(10, 3)
    batches = list(pipeline.make_dataset(x, y, 3, 4, training=False))
    assert [len(images) for images, _ in batches] == [4, 4, 2]
    images, onehot = batches[0]
    assert images.dtype == tf.float32 and onehot.dtype == tf.float32
    assert images.shape == (4, 4, 4, 3) and onehot.shape == (4, 3)
    all_images = np.concatenate([b[0].numpy() for b in batches])
    all_onehot = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(all_images, x.astype(np.float32))  # 0..255, not rescaled
    np.testing.assert_array_equal(all_onehot, np.eye(3, dtype=np.float32)[y])


def test_make_dataset_keeps_integer_labels_without_one_hot() -> None:
    y = labels(6, 3)
    dataset = pipeline.make_dataset(tagged_images(6), y, 3, 6, training=False, one_hot=False)
    _, batch_labels = next(iter(dataset))
    assert batch_labels.dtype.is_integer
    assert batch_labels.numpy().tolist() == y.tolist()


def test_training_reshuffles_each_epoch_and_evaluation_keeps_order() -> None:
    x, y = tagged_images(64), labels(64, 4)
    train = pipeline.make_dataset(x, y, 4, 16, training=True, seed=1)
    epoch1, epoch2 = order(train), order(train)
    assert sorted(epoch1) == sorted(epoch2) == list(range(64))
    assert epoch1 != list(range(64))
    assert epoch1 != epoch2
    evaluation = pipeline.make_dataset(x, y, 4, 16, training=False)
    assert order(evaluation) == order(evaluation) == list(range(64))


def test_shuffle_is_seeded() -> None:
    x, y = tagged_images(64), labels(64, 4)

    def first_epoch(seed: int) -> list[int]:
        return order(pipeline.make_dataset(x, y, 4, 16, training=True, seed=seed))

    assert first_epoch(5) == first_epoch(5)
    assert first_epoch(5) != first_epoch(6)


def test_repeat_runs_past_one_epoch_in_whole_epochs() -> None:
    x, y = tagged_images(10), labels(10, 2)
    steps = pipeline.steps_for(10, 4)
    dataset = pipeline.make_dataset(x, y, 2, 4, training=True, seed=0, repeat=True)
    batches = list(dataset.take(3 * steps))
    assert [len(images) for images, _ in batches] == [4, 4, 2] * 3
    ids = [int(tag) for images, _ in batches for tag in images.numpy()[:, 0, 0, 0]]
    epochs = [ids[0:10], ids[10:20], ids[20:30]]
    assert all(sorted(epoch) == list(range(10)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1  # reshuffled between epochs


@pytest.mark.parametrize(("n", "batch", "steps"), [(10, 4, 3), (8, 4, 2), (1, 64, 1)])
def test_steps_for_is_ceil(n: int, batch: int, steps: int) -> None:
    assert pipeline.steps_for(n, batch) == steps


# ---------------------------------------------------------------------------------------------
# TFRecords


def test_tfrecords_round_trip(tmp_path: Path) -> None:
    x, y = tagged_images(12, size=5), labels(12, 4)
    path = pipeline.write_tfrecords(tmp_path / "sub" / "train.tfrecord", x, y)
    assert path == tmp_path / "sub" / "train.tfrecord" and path.is_file()
    assert list(path.parent.iterdir()) == [path]  # no leftover partial file
    elements = list(pipeline.read_tfrecords(path))
    images = np.stack([image.numpy() for image, _ in elements])
    assert elements[0][0].dtype == tf.uint8 and elements[0][1].dtype == tf.int64
    np.testing.assert_array_equal(images, x)
    assert [int(label) for _, label in elements] == y.tolist()
    assert pipeline.read_tfrecords(path).element_spec[0].shape == (5, 5, 3)


def test_read_tfrecords_chains_several_files(tmp_path: Path) -> None:
    x, y = tagged_images(10), labels(10, 2)
    first = pipeline.write_tfrecords(tmp_path / "a.tfrecord", x[:6], y[:6])
    second = pipeline.write_tfrecords(tmp_path / "b.tfrecord", x[6:], y[6:])
    tags = [int(image.numpy()[0, 0, 0]) for image, _ in pipeline.read_tfrecords([first, second])]
    assert tags == list(range(10))


def test_write_tfrecords_reports_progress_every_thousand_records(tmp_path: Path) -> None:
    x = np.zeros((2500, 2, 2, 3), dtype=np.uint8)
    calls: list[int] = []
    pipeline.write_tfrecords(tmp_path / "data.tfrecord", x, labels(2500, 2), calls.append)
    assert calls == [1000, 2000, 2500]


def test_read_tfrecords_fails_on_a_record_of_another_size(tmp_path: Path) -> None:
    """The shape comes from the first record; a later one of another size fails when read."""
    y = labels(2, 2)
    first = pipeline.write_tfrecords(tmp_path / "a.tfrecord", tagged_images(2, size=4), y)
    other = pipeline.write_tfrecords(tmp_path / "b.tfrecord", tagged_images(2, size=5), y)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(pipeline.read_tfrecords([first, other]))


def refusal(paths: object) -> str:
    with pytest.raises(pipeline.RecordFileError) as refused:
        pipeline.read_tfrecords(paths)  # type: ignore[arg-type]
    return str(refused.value)


def test_read_tfrecords_rejects_missing_empty_and_foreign_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tfrecord"
    assert refusal(missing) == f"no such TFRecord file(s): {missing}"
    assert refusal([]) == "no TFRecord files given"
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    assert refusal(empty) == f"{empty} holds no records"
    foreign = tmp_path / "foreign.tfrecord"
    foreign.write_bytes(b"this is not a TFRecord file at all")
    assert refusal(foreign) == f"{foreign} is not a TFRecord file (or is truncated)"


def test_read_tfrecords_rejects_records_of_another_kind(tmp_path: Path) -> None:
    """A real TFRecord file whose records are not our tf.train.Example images."""
    path = tmp_path / "text.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"just some bytes")
    assert refusal(path) == (f"{path} holds records cifarkit did not write (each needs the "
                             "features height, image, label, width)")


# ---------------------------------------------------------------------------------------------
# Bad arguments

X, Y = tagged_images(6), labels(6, 2)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (X, Y[:5], "x, y: 6 images but 5 labels"),
        (X.astype(np.float32), Y, "x: images must be uint8"),
        (X[0], Y, r"x: images must have shape"),
        (X[..., :1], Y, r"x: images must have shape"),
        (X, Y.reshape(6, 1), "y: labels must be a 1-D integer"),
        (X, Y.astype(np.float32), "y: labels must be a 1-D integer"),
        (X, Y - 1, "y: labels must be ≥ 0"),
        (X[:0], Y[:0], "x: no images"),
    ],
)
def test_bad_arrays_raise_value_error_naming_the_argument(
    tmp_path: Path, x: np.ndarray, y: np.ndarray, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        pipeline.make_dataset(x, y, 2, 4, training=False)
    with pytest.raises(ValueError, match=match):
        pipeline.split_validation(x, y, 0.5, seed=0)
    with pytest.raises(ValueError, match=match):
        pipeline.write_tfrecords(tmp_path / "out" / "bad.tfrecord", x, y)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("num_classes", "batch_size", "match"),
    [(1, 4, "y: label 1 is out of range"), (0, 4, "num_classes"), (2, 0, "batch_size"),
     (2, 2.5, "batch_size")],
)
def test_bad_sizes_raise_value_error(num_classes: int, batch_size: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pipeline.make_dataset(X, Y, num_classes, batch_size, training=False)


def test_steps_for_rejects_zero() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.steps_for(10, 0)
