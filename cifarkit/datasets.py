"""Datasets as uint8 arrays plus class names: CIFAR-10/100, image folders or zips, TFRecord folders,
embedded digits.

Everything a user can get wrong (a missing, truncated or tampered archive, an empty folder, an
unknown class name) raises DatasetError whose message names the file or folder, because the app and
the command line show that message as it is.

scikit-learn is imported inside the functions that need it: `catalog()` backs the Home page and
`python -m cifarkit datasets list`, which should not wait a second for scikit-learn to import.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import io
import json
import math
import os
import pickle
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from PIL import Image

from cifarkit import images, settings
from cifarkit.config import (
    MAX_CLASSES,
    MAX_IMAGES,
    MAX_INPUT_SIZE,
    PATH_SOURCES,
    SOURCES,
    DataConfig,
)
from cifarkit.labels import (
    CIFAR10_LABELS,
    CIFAR100_COARSE_LABELS,
    CIFAR100_FINE_LABELS,
    CIFAR100_FINE_TO_COARSE,
    DIGITS_LABELS,
)
from cifarkit.sources import source_choice, source_title

Progress = Callable[[int, int | None], None]  # (bytes done, total bytes or None when unknown)

_CHUNK_BYTES = 1 << 20  # download read size: 1 MiB keeps progress updates frequent but cheap
_TIMEOUT_S = 30  # seconds without a byte from the server before a download counts as failed
_SPLIT_SEED = 0  # fixed, so every run of a dataset sees the same test split and the same caps
_SPLIT_FOLDERS = {"train": "train", "test": "test", "val": "test", "valid": "test",
                  "validation": "test"}


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message names the file or folder and what is wrong."""


class DatasetUnavailable(DatasetError):
    """An official archive neither on disk nor downloadable (offline, blocked, HTTP error)."""


@dataclass
class Dataset:
    """Images and labels of one dataset, already split into train and test."""

    name: str  # human readable, e.g. "CIFAR-100 fine (20 classes)"
    x_train: np.ndarray  # uint8 (N, S, S, 3)
    y_train: np.ndarray  # int64 (N,), values 0..len(class_names)-1
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    coarse_names: list[str] | None = None  # CIFAR-100 fine labels only: all 20 superclasses
    fine_to_coarse: np.ndarray | None = None  # class index (in THIS dataset) -> coarse index
    skipped: int = 0  # image-folder files that could not be read as images

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the dataset catalog shown on the Home page and by `datasets list`."""

    key: str
    title: str
    description: str
    num_classes: int | None
    available: bool
    location: str | None
    problem: str | None = None  # why an archive found on disk cannot be used (then not available)


@dataclass(frozen=True)
class _Archive:
    """Where an official CIFAR archive comes from and what it holds."""

    title: str
    file_name: str  # the official .tar.gz
    folder: str  # the folder the .tar.gz unpacks to
    url: str
    md5: str
    meta: str
    train: tuple[str, ...]
    test: str


_ARCHIVES = {
    "cifar10": _Archive(
        source_title("cifar10"), "cifar-10-python.tar.gz", "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a", "batches.meta",
        tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
    ),
    "cifar100": _Archive(
        source_title("cifar100"), "cifar-100-python.tar.gz", "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85", "meta", ("train",), "test",
    ),
}


ARCHIVE_SOURCES: tuple[str, ...] = tuple(_ARCHIVES)


def archive_file_name(source: str) -> str:
    """The official archive's file name, for users who place it by hand."""
    return _archive(source).file_name


def _archive(source: str) -> _Archive:
    if source not in _ARCHIVES:
        raise DatasetError(f"unknown CIFAR source {source!r}; expected one of {sorted(_ARCHIVES)}")
    return _ARCHIVES[source]


def _titled(title: str, num_classes: int) -> str:
    return f"{title} ({num_classes} classes)"


# --- the one entry point


def load(spec: DataConfig, progress: Progress | None = None) -> Dataset:
    """Load what a DataConfig describes: source, label mode, class subset, then the caps."""
    dataset = _load_source(spec, progress)
    dataset = _select_classes(dataset, spec.classes, spec.num_classes)
    return _cap(dataset, spec.max_train_images, spec.max_test_images)


def _load_source(spec: DataConfig, progress: Progress | None) -> Dataset:
    if spec.source in PATH_SOURCES and not spec.path:
        raise DatasetError(f"{PATH_SOURCES[spec.source]} (data.path)")
    if spec.source == "digits":
        return load_digits(spec.image_size)
    if spec.source == "folder":
        return load_image_folder(spec.path, spec.image_size, seed=_SPLIT_SEED)
    if spec.source == "tfrecord":
        return load_tfrecord_folder(spec.path)
    if spec.source in _ARCHIVES:
        path = Path(spec.path) if spec.path else ensure_archive(spec.source, progress)
        return load_cifar_archive(path, spec.source, spec.label_mode)
    raise DatasetError(f"unknown data source {spec.source!r}; expected one of {SOURCES}")


def _select_classes(dataset: Dataset, names: tuple[str, ...], count: int | None) -> Dataset:
    """Keep the named classes (or the first `count`), relabelled 0..k-1 in the order given."""
    if names:
        unknown = [name for name in names if name not in dataset.class_names]
        if unknown:
            raise DatasetError(f"unknown class name(s) {unknown} in {dataset.name}")
        indices = [dataset.class_names.index(name) for name in names]
    elif count is not None:
        if not 1 <= count <= dataset.num_classes:
            raise DatasetError(f"{dataset.name} has {dataset.num_classes} classes, cannot keep "
                               f"the first {count}")
        indices = list(range(count))
    else:
        return dataset
    lookup = np.full(dataset.num_classes, -1, dtype=np.int64)
    lookup[indices] = np.arange(len(indices))
    x_train, y_train = _relabel(dataset.x_train, dataset.y_train, lookup)
    x_test, y_test = _relabel(dataset.x_test, dataset.y_test, lookup)
    fine_to_coarse = None if dataset.fine_to_coarse is None else dataset.fine_to_coarse[indices]
    return replace(dataset, name=_titled(dataset.name.rsplit(" (", 1)[0], len(indices)),
                   x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=[dataset.class_names[i] for i in indices],
                   fine_to_coarse=fine_to_coarse)


def _relabel(x: np.ndarray, y: np.ndarray, lookup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    new = lookup[y]
    keep = new >= 0
    return x[keep], new[keep]


def _cap(dataset: Dataset, max_train: int | None, max_test: int | None) -> Dataset:
    x_train, y_train = _capped(dataset.x_train, dataset.y_train, max_train)
    x_test, y_test = _capped(dataset.x_test, dataset.y_test, max_test)
    return replace(dataset, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _capped(x: np.ndarray, y: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or limit >= len(y):
        return x, y
    if limit < 1:
        raise DatasetError(f"an image cap must be at least 1, got {limit}")
    keep, _ = _split(y, _SPLIT_SEED, train_size=limit)
    return x[keep], y[keep]


def _split(labels: np.ndarray, seed: int, **sizes: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (sorted) index split, stratified when every class has enough images for it."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    try:
        first, second = train_test_split(indices, random_state=seed, stratify=labels, **sizes)
    except ValueError:  # a class too rare to appear on both sides: fall back to a plain split
        first, second = train_test_split(indices, random_state=seed, **sizes)
    return np.sort(first), np.sort(second)


# --- embedded digits


def load_digits(image_size: int = 32) -> Dataset:
    """scikit-learn's 8×8 handwritten digits as RGB images: real data that needs no network."""
    from sklearn import datasets as sk_datasets

    if image_size < 1:
        raise DatasetError(f"image_size must be at least 1, got {image_size}")
    bunch = sk_datasets.load_digits()
    gray = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # pixel values are 0..16
    size = (image_size, image_size)
    big = np.stack([np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
                    for image in gray])
    images = np.repeat(big[..., None], 3, axis=-1)
    labels = bunch.target.astype(np.int64)
    train, test = _split(labels, _SPLIT_SEED, test_size=0.2)
    return Dataset(_titled("Digits", len(DIGITS_LABELS)), images[train], labels[train],
                   images[test], labels[test], list(DIGITS_LABELS))


# --- official CIFAR archives


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR pickle needs: what numpy uses to rebuild an array."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global but numpy's array rebuilders, so a tampered pickle runs no code."""

    def find_class(self, module: str, name: str) -> Any:
        target = _numpy_globals().get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR pickle holds "
                                         "only numpy arrays, lists and strings")
        return target


def _unpickle(data: bytes, where: str) -> dict[bytes, Any]:
    try:
        value = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, ImportError, OverflowError, MemoryError) as error:
        raise DatasetError(f"{where} is not a valid CIFAR pickle: {error}") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{where} is not a CIFAR pickle: expected a dict, got "
                           f"{type(value).__name__}")
    return value


def load_cifar_archive(path: str | Path, source: str, label_mode: str = "fine") -> Dataset:
    """Read an official CIFAR-10/100 python archive (.tar.gz or its extracted folder) safely."""
    archive = _archive(source)
    if label_mode not in ("fine", "coarse"):
        raise DatasetError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    members = _read_members(Path(path), archive)
    batches = {name: _unpickle(data, where) for name, (data, where) in members.items()}
    if source == "cifar10":
        return _cifar10(archive, batches, members)
    return _cifar100(archive, batches, members, label_mode)


def _cifar10(archive: _Archive, batches: dict[str, dict], members: dict) -> Dataset:
    names = _names(batches[archive.meta], b"label_names", members[archive.meta][1], CIFAR10_LABELS)
    train = [_batch(batches[m], b"labels", members[m][1], len(names)) for m in archive.train]
    x_test, y_test = _batch(batches[archive.test], b"labels", members[archive.test][1], len(names))
    return Dataset(_titled(archive.title, len(names)),
                   np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   x_test, y_test, names)


def _cifar100(archive: _Archive, batches: dict[str, dict], members: dict,
              label_mode: str) -> Dataset:
    meta, meta_where = batches[archive.meta], members[archive.meta][1]
    fine = _names(meta, b"fine_label_names", meta_where, CIFAR100_FINE_LABELS)
    coarse = _names(meta, b"coarse_label_names", meta_where, CIFAR100_COARSE_LABELS)
    names = fine if label_mode == "fine" else coarse
    key = b"fine_labels" if label_mode == "fine" else b"coarse_labels"
    (train,), test = archive.train, archive.test
    x_train, y_train = _batch(batches[train], key, members[train][1], len(names))
    x_test, y_test = _batch(batches[test], key, members[test][1], len(names))
    title = f"{archive.title} {label_mode}"
    if label_mode == "coarse":
        return Dataset(_titled(title, len(names)), x_train, y_train, x_test, y_test, names)
    return Dataset(_titled(title, len(names)), x_train, y_train, x_test, y_test, names,
                   coarse_names=coarse,
                   fine_to_coarse=np.asarray(CIFAR100_FINE_TO_COARSE, dtype=np.int64))


def _names(meta: dict, key: bytes, where: str, expected: tuple[str, ...]) -> list[str]:
    """Label names from the meta pickle; they must be the official ones the label tables assume."""
    raw = meta.get(key)
    if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
        raise DatasetError(f"{where} has no list of label names under {key.decode()!r}")
    names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw]
    if tuple(names) != expected:
        raise DatasetError(f"{where} lists unexpected label names under {key.decode()!r}: not "
                           "the official archive")
    return names


def _batch(batch: dict, label_key: bytes, where: str,
           num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 3072 bytes (R, G, B planes of 32×32) -> (N, 32, 32, 3) uint8, labels -> int64."""
    data = batch.get(b"data")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        raise DatasetError(f"{where} has no 'data' array of uint8 rows of 3072 values")
    try:
        labels = np.asarray(batch.get(label_key), dtype=np.int64)
    except (TypeError, ValueError):
        labels = np.full(0, -1)
    in_range = labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes)
    if labels.shape != (len(data),) or not in_range:
        raise DatasetError(f"{where} has no valid {label_key.decode()!r} for its "
                           f"{len(data)} images")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_members(path: Path, archive: _Archive) -> dict[str, tuple[bytes, str]]:
    """member name -> (bytes, where to name it in errors), from the .tar.gz or extracted folder."""
    wanted = _wanted(archive)
    if path.is_dir():
        root = _extracted_root(path, archive)
        found = {name: (root / name).read_bytes() for name in wanted if (root / name).is_file()}
        where = {name: str(root / name) for name in wanted}
    elif path.is_file():
        found = _read_tar(path, wanted)
        where = {name: f"{path} (member {name})" for name in wanted}
    else:
        raise DatasetError(f"{path} does not exist: expected {archive.file_name} or its extracted "
                           f"folder {archive.folder}/")
    missing = _missing(archive, wanted, set(found))
    if missing:
        raise DatasetError(f"{path} {missing}")
    return {name: (data, where[name]) for name, data in found.items()}


def _wanted(archive: _Archive) -> set[str]:
    return {archive.meta, archive.test, *archive.train}


def _extracted_root(path: Path, archive: _Archive) -> Path:
    return path if (path / archive.meta).is_file() else path / archive.folder


def _missing(archive: _Archive, wanted: set[str], found: set[str]) -> str | None:
    """What is wrong when members are missing (the message's tail), or None when none is."""
    missing = sorted(wanted - found)
    if not missing:
        return None
    return (f"lacks {', '.join(missing)}: not the official {archive.title} python archive "
            f"({archive.file_name}) or its folder {archive.folder}/")


_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)
_NOT_A_TAR = "is not a readable .tar.gz archive (truncated or another kind of file?)"


def _read_tar(path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The wanted members (by base name) read into memory in one pass; nothing is extracted."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted and name not in found:
                    handle = tar.extractfile(member)
                    found[name] = handle.read() if handle else b""
    except _TAR_ERRORS as error:
        raise DatasetError(f"{path} {_NOT_A_TAR}: {error}") from None
    return found


def archive_problem(path: Path, source: str) -> str | None:
    """Why an archive found on disk cannot be loaded (truncated, not a tar.gz, members missing),
    or None. A cheap check for listings: the member list, not the pickles inside."""
    archive = _archive(source)
    if path.is_dir():
        root = _extracted_root(path, archive)
        return _missing(archive, _wanted(archive), {p.name for p in root.iterdir() if p.is_file()}
                        if root.is_dir() else set())
    try:
        stat = path.stat()
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    return _tar_problem(path, source, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _tar_problem(path: Path, source: str, size: int, mtime_ns: int) -> str | None:
    """Cached by size and mtime: listing a 160 MB .tar.gz inflates it all (about a second), and
    the Home page lists archives on every render. A replaced file has a new mtime, so a new key."""
    archive = _archive(source)
    try:
        with tarfile.open(path, "r:*") as tar:
            names = {PurePosixPath(member.name).name for member in tar if member.isfile()}
    except _TAR_ERRORS as error:
        return f"{_NOT_A_TAR}: {error}"
    return _missing(archive, _wanted(archive), names)


# --- finding and downloading


def _candidates(folder: Path, archive: _Archive) -> list[Path]:
    """Our file name, its extracted folder, and where Keras 3 extracts it in its own cache."""
    return [folder / archive.file_name, folder / archive.folder,
            folder / f"{archive.folder}-target" / archive.folder]


def find_archive(source: str) -> Path | None:
    """The archive (or extracted folder) in settings.data_dir(), else settings.cache_dir()."""
    archive = _archive(source)
    for folder in (settings.data_dir(), settings.cache_dir()):
        if folder is None:
            continue
        for candidate in _candidates(folder, archive):
            if candidate.is_file() or (candidate / archive.meta).is_file():
                return candidate
    return None


def ensure_archive(source: str, progress: Progress | None = None, url: str | None = None) -> Path:
    """The archive on disk, downloaded into settings.cache_dir() on first use.

    The official md5 is checked only for the official URL: another `url` (a mirror, a test server)
    serves a file whose checksum we cannot know; loading it still validates its contents.
    """
    archive = _archive(source)
    found = find_archive(source)
    if found is not None:
        return found
    url = url or archive.url
    dest = settings.cache_dir() / archive.file_name
    try:
        return download(url, dest, md5=archive.md5 if url == archive.url else None,
                        progress=progress)
    except DatasetUnavailable as error:
        data_dir = settings.data_dir()
        named = f"(currently {data_dir})" if data_dir else "(currently unset)"
        raise DatasetUnavailable(
            f"{error}. To use {archive.title} offline, download {archive.file_name} from "
            f"{archive.url} elsewhere and put it in {dest.parent}, or in the folder that the "
            f"CIFARKIT_DATA_DIR environment variable names {named}.") from None


def download(url: str, dest: Path, md5: str | None = None,
             progress: Progress | None = None) -> Path:
    """Stream `url` to `dest` via a temp file in the same folder, so `dest` is whole or absent."""
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                             suffix=".part")
    except OSError as error:
        raise DatasetError(f"cannot write {dest.name} into {dest.parent}: {error}") from None
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _stream(url, out, dest.name, progress)
        if md5 and digest != md5.lower():
            raise DatasetError(f"{dest.name} downloaded from {url} is corrupt: md5 {digest}, "
                               f"expected {md5}")
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)
    return dest


def _stream(url: str, out: BinaryIO, file_name: str, progress: Progress | None) -> str:
    """Copy the response body to `out` in chunks, reporting progress; returns the md5 hex digest."""
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError is an OSError
        raise DatasetUnavailable(f"could not download {file_name} from {url} ({error})") from None
    if total is not None and done != total:
        raise DatasetUnavailable(f"could not download {file_name} from {url}: got {done} of "
                                 f"{total} bytes")
    return digest.hexdigest()


def catalog() -> list[DatasetInfo]:
    """What can be trained on here, and where each dataset is (or would be) found."""
    rows = [DatasetInfo("digits", source_choice("digits"),
                        "scikit-learn's 1,797 handwritten digits, 8×8 upscaled to RGB; always "
                        "available", len(DIGITS_LABELS), True, "embedded (scikit-learn)")]
    described = {"cifar10": ("60,000 32×32 colour images in 10 classes", len(CIFAR10_LABELS)),
                 "cifar100": ("60,000 32×32 colour images in 100 fine classes grouped into 20 "
                              "superclasses", len(CIFAR100_FINE_LABELS))}
    for key, (description, num_classes) in described.items():
        found = find_archive(key)
        problem = archive_problem(found, key) if found else None
        note = "" if found else f"; downloaded on first use ({_ARCHIVES[key].file_name})"
        rows.append(DatasetInfo(key, _ARCHIVES[key].title, description + note, num_classes,
                                found is not None and problem is None,
                                str(found) if found else None, problem))
    rows.append(DatasetInfo("folder", source_choice("folder"),
                            "upload a folder or .zip with one sub-folder of images per class "
                            "(optionally inside train/ and test/)", None, True, None))
    rows.append(DatasetInfo("tfrecord", source_choice("tfrecord"),
                            "a folder of .tfrecord shards and manifest.json, as written by "
                            "`python -m cifarkit datasets export --format tfrecord`", None, True,
                            None))
    return rows


# --- image folders and zips


@dataclass(frozen=True)
class FolderLimits:
    """What reading one image folder or .zip may cost; every cap is checked before the reading.

    Sized for a classroom dataset: a few classes of a few hundred phone photos (3-10 MB each as
    JPEG, so well under 2 GB even uncompressed), while a hostile or mistaken choice (a 600 MB
    zip bomb, `/usr`, a million tiny files) is refused in seconds with a message saying why.
    """

    max_entries: int = 200_000  # files and folders visited in a walk, or members in a zip
    max_walk_s: float = 30.0  # seconds a folder walk may take (a slow or huge network share)
    max_file_bytes: int = 50_000_000  # one zip member inflated: a 48-MP photo as PNG fits
    max_total_bytes: int = 2_000_000_000  # all image members of one zip inflated, together
    max_ratio: float = 100.0  # inflated/compressed: photos barely compress, bombs do 1000:1
    ratio_from_bytes: int = 1_000_000  # ...checked on members above this size only
    # The decoded arrays held in memory: CIFAR-100's 60,000 images take 184 MB at 32 px; this
    # admits 6,600 images at 224 px or 36,000 at 96 px (copies while splitting double it).
    max_array_bytes: int = 1_000_000_000


FOLDER_LIMITS = FolderLimits()


class _Entry(NamedTuple):
    """One file of an image tree: its path parts (shortened by unwrapping), its name for
    messages, and how to get it for decoding (a path, or a zip member's bytes)."""

    parts: tuple[str, ...]
    where: str
    read: Callable[[], images.ImageSource]


def load_image_folder(path: str | Path, image_size: int = 32, test_fraction: float = 0.2,
                      seed: int = 0, limits: FolderLimits | None = None) -> Dataset:
    """Images sorted into one sub-folder per class (a folder or a .zip), as a Dataset.

    Every file goes through cifarkit.images, like a Predict upload: centre crop to a square,
    one resize filter, transparency flattened onto white. Files that are not readable images are
    skipped and counted in `skipped`; an image over the pixel limit refuses the whole dataset.
    A train/ and test/ (or val/) pair of folders is used as the split; otherwise a seeded,
    stratified `test_fraction` of the images becomes the test set.
    """
    root = Path(path)
    limits = limits or FOLDER_LIMITS
    if image_size < 1:
        raise DatasetError(f"image_size must be at least 1, got {image_size}")
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be above 0 and below 1, got {test_fraction}")
    with _open_tree(root, limits) as entries:
        classified, loose = _unwrap(entries)
        _check_array_bytes(root, len(classified), image_size, limits)
        train_entries, test_entries = _split_layout(classified)
        train = _decode_all(root, train_entries, image_size)
        test = _decode_all(root, test_entries, image_size) if test_entries is not None else None
    return _folder_dataset(root, train, test, test_fraction, seed, loose)


@contextmanager
def _open_tree(root: Path, limits: FolderLimits) -> Iterator[list[_Entry]]:
    """Every non-hidden file under a folder or inside a .zip, read lazily and within limits."""
    if root.is_dir():
        yield _folder_entries(root, limits)
    elif root.is_file() and zipfile.is_zipfile(root):
        _check_declared_entries(root, limits)
        try:
            with zipfile.ZipFile(root) as archive:
                yield _zip_entries(archive, root, limits)
        except zipfile.BadZipFile as error:
            raise DatasetError(f"{root} is not a readable .zip file: {error}") from None
    elif root.exists():
        raise DatasetError(f"{root} is neither a folder nor a .zip file")
    else:
        raise DatasetError(f"{root} does not exist")


def _check_array_bytes(root: Path, files: int, size: int, limits: FolderLimits,
                       what: str = "files") -> None:
    """Refuse before decoding when the files, once decoded, could not fit the memory cap."""
    needed = files * size * size * 3
    if needed > limits.max_array_bytes:
        raise DatasetError(f"{root} holds {files:,} {what}: at {size}×{size} pixels they would "
                           f"take {_mb(needed)} of memory (limit {_mb(limits.max_array_bytes)}); "
                           "use fewer images or a smaller image size")


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _folder_entries(root: Path, limits: FolderLimits) -> list[_Entry]:
    """Regular files under `root`, walked within limits.max_entries and limits.max_walk_s.

    Symlinks are not followed, so a folder cannot lead the loader outside itself; hidden folders
    (.git, __MACOSX) are not entered at all.
    """
    deadline = time.monotonic() + limits.max_walk_s
    entries: list[_Entry] = []
    visited = 0
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                for item in listing:
                    visited += 1
                    if visited > limits.max_entries or time.monotonic() >= deadline:
                        raise DatasetError(_walk_stopped(root, visited - 1, limits))
                    if _hidden((item.name,)):
                        continue
                    if item.is_dir(follow_symlinks=False):
                        pending.append(Path(item.path))
                    elif item.is_file(follow_symlinks=False):
                        entries.append(_file_entry(root, Path(item.path)))
        except OSError as error:
            raise DatasetError(f"cannot read the folder {folder}: {error.strerror or error}"
                               ) from None
    return sorted(entries, key=lambda entry: entry.parts)


def _walk_stopped(root: Path, visited: int, limits: FolderLimits) -> str:
    bound = (f"{visited:,} files" if visited >= limits.max_entries
             else f"{limits.max_walk_s:g} s and {visited:,} files")
    return (f"stopped reading {root} after {bound}: pick a smaller folder (one sub-folder of "
            "images per class)")


def _file_entry(root: Path, file: Path) -> _Entry:
    parts = file.relative_to(root).parts
    return _Entry(parts, "/".join(parts), lambda: file)


def _zip_entries(archive: zipfile.ZipFile, root: Path, limits: FolderLimits) -> list[_Entry]:
    """The zip's files, refused as a whole when their declared sizes break the limits."""
    members = archive.infolist()
    if len(members) > limits.max_entries:  # a zip whose end record understates its entries
        raise DatasetError(_too_many_entries(root, len(members), limits))
    entries: list[_Entry] = []
    total = 0
    for info in members:
        parts = _safe_zip_parts(info.filename, root)
        if info.is_dir() or not parts or _hidden(parts):
            continue
        _check_member(info, root, limits)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise DatasetError(f"{root} would inflate to more than {_mb(limits.max_total_bytes)} "
                               "of files: pick a smaller zip")
        entries.append(_Entry(parts, "/".join(parts),
                              lambda info=info: _read_member(archive, info, root, limits)))
    return sorted(entries, key=lambda entry: entry.parts)


def _check_declared_entries(root: Path, limits: FolderLimits) -> None:
    """Refuse by the entry count in the zip's end record, before zipfile builds one object per
    entry (a 200 MB zip of empty entries would take gigabytes). zipfile's reader of that record
    is private: without it, the count is checked after opening instead."""
    read_end = getattr(zipfile, "_EndRecData", None)
    if read_end is None:
        return
    try:
        with open(root, "rb") as handle:
            end = read_end(handle)
    except OSError as error:
        raise DatasetError(f"cannot read {root}: {error.strerror or error}") from None
    count = end[zipfile._ECD_ENTRIES_TOTAL] if end else 0
    if count > limits.max_entries:
        raise DatasetError(_too_many_entries(root, count, limits))


def _too_many_entries(root: Path, count: int, limits: FolderLimits) -> str:
    return f"{root} holds {count:,} entries (limit {limits.max_entries:,}): pick a smaller zip"


def _check_member(info: zipfile.ZipInfo, root: Path, limits: FolderLimits) -> None:
    """Refuse a member by its declared sizes, before a byte of it is inflated."""
    name = info.filename
    if info.file_size > limits.max_file_bytes:
        raise DatasetError(f"{root}: member {name} would inflate to {_mb(info.file_size)} "
                           f"(limit {_mb(limits.max_file_bytes)})")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_from_bytes and ratio > limits.max_ratio:
        raise DatasetError(f"{root}: member {name} would inflate {ratio:,.0f} times (to "
                           f"{_mb(info.file_size)}; limit {limits.max_ratio:g} times): "
                           "not a zip of photos")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path,
                 limits: FolderLimits) -> bytes:
    """A member's bytes, never more than its declared size or the cap, even if it lies.

    The read asks for no more than that: zipfile inflates as much as one read() asks for before
    trimming to the declared size, so a member declaring 1 KB could still fill memory.
    """
    try:
        with archive.open(info) as handle:
            data = handle.read(min(info.file_size, limits.max_file_bytes) + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as error:
        raise DatasetError(f"{root}: member {info.filename} is damaged or not what its header "
                           f"says ({error})") from None
    if len(data) > limits.max_file_bytes:
        raise DatasetError(f"{root}: member {info.filename} inflates past "
                           f"{_mb(limits.max_file_bytes)} (limit)")
    return data


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def _safe_zip_parts(name: str, root: Path) -> tuple[str, ...]:
    """An entry's path parts; absolute paths and '..' (zip-slip) make the whole zip suspect."""
    posix = name.replace("\\", "/")
    parts = tuple(part for part in posix.split("/") if part not in ("", "."))
    if posix.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"{root} holds an unsafe entry {name!r} (absolute path or '..'); "
                           "refusing to read this zip")
    return parts


def _unwrap(entries: list[_Entry]) -> tuple[list[_Entry], int]:
    """Drop loose top-level files and single wrapping folders (a zip of one folder, say).

    Also returns how many dropped loose files were images: images with no class folder are
    the commonest layout mistake, and deserve their own message.
    """
    loose = 0
    while True:
        loose += sum(1 for entry in entries if len(entry.parts) < 2 and _looks_like_image(entry))
        entries = [entry for entry in entries if len(entry.parts) >= 2]
        tops = {entry.parts[0] for entry in entries}
        if (len(tops) != 1 or next(iter(tops)).lower() in _SPLIT_FOLDERS
                or any(len(entry.parts) < 3 for entry in entries)):
            return entries, loose
        entries = [entry._replace(parts=entry.parts[1:]) for entry in entries]


def _looks_like_image(entry: _Entry) -> bool:
    return PurePosixPath(entry.parts[-1]).suffix.lower() in Image.registered_extensions()


def _split_layout(entries: list[_Entry]) -> tuple[list[_Entry], list[_Entry] | None]:
    """(train, test) entries of a train/ + test/ layout (test None: carve one), else (all, None)."""
    by_top: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_top.setdefault(entry.parts[0].lower(), []).append(entry._replace(parts=entry.parts[1:]))
    if "train" not in by_top:
        return entries, None
    test_tops = [top for top, role in _SPLIT_FOLDERS.items() if role == "test" and top in by_top]
    test = by_top[test_tops[0]] if test_tops else None
    return by_top["train"], test


class _Decoded(NamedTuple):
    images: list[np.ndarray]
    classes: list[str]  # the class folder of each image
    skipped: int  # files that were not readable images


def _decode_all(root: Path, entries: list[_Entry], size: int) -> _Decoded:
    decoded = _Decoded([], [], 0)
    skipped = 0
    for entry in entries:
        if len(entry.parts) < 2:  # a loose file beside the class folders
            continue
        image = _decode(root, entry, size)
        if image is None:
            skipped += 1
        else:
            decoded.images.append(image)
            decoded.classes.append(entry.parts[0])
    return decoded._replace(skipped=skipped)


def _decode(root: Path, entry: _Entry, size: int) -> np.ndarray | None:
    """One file as a (size, size, 3) uint8 array, or None when it is not a readable image."""
    try:
        return images.load_input(entry.read(), size, name=entry.where)
    except images.ImageTooLarge as error:
        raise DatasetError(f"{root}: {error}") from None
    except images.ImageError:
        return None


def _folder_dataset(root: Path, train: _Decoded, test: _Decoded | None, test_fraction: float,
                    seed: int, loose: int) -> Dataset:
    class_names = sorted(set(train.classes))
    if len(class_names) < 2 and loose:
        raise DatasetError(f"{root} has {loose} images at its top level: put each class's "
                           "images in a sub-folder named after the class (at least 2 classes)")
    if len(class_names) < 2:
        raise DatasetError(f"found {len(train.images)} readable images in {len(class_names)} "
                           f"class folder(s) in {root}: expected one sub-folder of images per "
                           "class, at least 2 classes")
    index = {name: i for i, name in enumerate(class_names)}
    x = np.stack(train.images)
    y = np.asarray([index[name] for name in train.classes], dtype=np.int64)
    skipped = train.skipped
    if test is None:
        train_idx, test_idx = _split(y, seed, test_size=test_fraction)
        x_test, y_test = x[test_idx], y[test_idx]
        x, y = x[train_idx], y[train_idx]
    else:
        skipped += test.skipped
        strangers = sorted(set(test.classes) - set(class_names))
        if strangers:
            raise DatasetError(f"the test folder in {root} has classes missing from train/: "
                               f"{strangers}")
        if not test.images:
            raise DatasetError(f"the test folder in {root} holds no readable images")
        x_test = np.stack(test.images)
        y_test = np.asarray([index[name] for name in test.classes], dtype=np.int64)
    title = f"Folder {root.stem if root.is_file() else root.name}"
    return Dataset(_titled(title, len(class_names)), x, y, x_test, y_test,
                   class_names, skipped=skipped)


# --- TFRecord folders: `python -m cifarkit datasets export --format tfrecord` writes them
#
# A folder holds manifest.json (what the shards contain) and train-00000-of-00002.tfrecord ...
# test-00000-of-00001.tfrecord. It loads into memory like every other source (CIFAR-100 is
# 184 MB at 32 px), so Browse, Errors and Predict work on it unchanged; the manifest is checked
# against the config's maxima and the memory cap before a shard is read.

MANIFEST = "manifest.json"
TFRECORD_FORMAT = "cifarkit-tfrecord"  # the manifest's "format": says who wrote the folder
TFRECORD_VERSION = 1
TFRECORD_SPLITS = ("train", "test")
_SHARD_BYTES = 100_000_000  # pixels per shard file: TensorFlow's guide advises 100-200 MB
_RECORD_BYTES = 256  # a record's bytes beyond its pixels (framing, CRCs, feature keys): generous
_MANIFEST_BYTES = 16_000_000  # MAX_CLASSES names of 100 characters fit with room to spare
_READ_BATCH = 4096  # records decoded per step while reading a shard into memory


@dataclass(frozen=True)
class TFRecordManifest:
    """What a TFRecord folder holds, checked: each split's image count and shard count."""

    class_names: list[str]
    image_size: int
    counts: dict[str, int]  # split -> images
    shards: dict[str, int]  # split -> shard files
    source: str = ""  # what it was exported from (for people; not used to load)
    coarse_names: list[str] | None = None
    fine_to_coarse: list[int] | None = None

    def shard_paths(self, root: Path, split: str) -> list[Path]:
        total = self.shards[split]
        return [root / f"{split}-{index:05d}-of-{total:05d}.tfrecord" for index in range(total)]

    def to_dict(self) -> dict[str, Any]:
        return {"format": TFRECORD_FORMAT, "version": TFRECORD_VERSION, "source": self.source,
                "image_size": self.image_size, "class_names": self.class_names,
                "coarse_names": self.coarse_names, "fine_to_coarse": self.fine_to_coarse,
                "splits": {split: {"count": self.counts[split], "shards": self.shards[split]}
                           for split in TFRECORD_SPLITS}}


@dataclass(frozen=True)
class TFRecordExport:
    """What an export wrote: the folder, its manifest and the bytes on disk."""

    folder: Path
    manifest: TFRecordManifest
    size_bytes: int


ExportProgress = Callable[[str, int, int], None]  # (split, images written, images in the split)


def check_export_target(out: str | Path) -> Path:
    """The export folder, if it is new or empty: an export never mixes with other files."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} already exists and is not an empty folder: export into a new "
                           "or empty folder (nothing was written)")
    return out


def export_tfrecords(dataset: Dataset, out: str | Path, source: str = "",
                     progress: ExportProgress | None = None) -> TFRecordExport:
    """Write a Dataset as a TFRecord folder that `load_tfrecord_folder` reads back exactly.

    The manifest is written last, and a failed or interrupted export removes what it wrote, so
    a folder with a manifest is always complete.
    """
    from cifarkit import pipeline  # TensorFlow: only when exporting

    root = check_export_target(out)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    manifest = _manifest_of(dataset, source)
    arrays = {"train": (dataset.x_train, dataset.y_train), "test": (dataset.x_test, dataset.y_test)}
    written: list[Path] = []
    try:
        for split in TFRECORD_SPLITS:
            x, y = arrays[split]
            shards = manifest.shard_paths(root, split)
            for path, rows in zip(shards, np.array_split(np.arange(len(y)), len(shards)),
                                  strict=True):
                report = functools.partial(_shard_progress, progress, split, int(rows[0]),
                                           len(y)) if progress else None
                written.append(pipeline.write_tfrecords(path, x[rows], y[rows], report))
        written.append(root / MANIFEST)
        _write_text_atomic(root / MANIFEST, json.dumps(manifest.to_dict(), indent=2))
    except BaseException:
        _remove_export(root, written, created)
        raise
    return TFRecordExport(root, manifest, sum(path.stat().st_size for path in written))


def _shard_progress(progress: ExportProgress, split: str, before: int, total: int,
                    done: int) -> None:
    progress(split, before + done, total)


def _manifest_of(dataset: Dataset, source: str) -> TFRecordManifest:
    counts = {"train": len(dataset.y_train), "test": len(dataset.y_test)}
    side = int(dataset.x_train.shape[1])
    per_shard = max(1, _SHARD_BYTES // (side * side * 3))
    shards = {split: max(1, math.ceil(count / per_shard)) for split, count in counts.items()}
    coarse = dataset.fine_to_coarse
    return TFRecordManifest(list(dataset.class_names), side, counts, shards, source,
                            dataset.coarse_names, None if coarse is None else coarse.tolist())


def _write_text_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _remove_export(root: Path, written: list[Path], created: bool) -> None:
    """Undo a failed export: its own files only, and the folder if the export made it."""
    for path in written:
        path.unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):  # not empty: something else is in there now
            root.rmdir()


def load_tfrecord_folder(path: str | Path, limits: FolderLimits | None = None) -> Dataset:
    """A TFRecord folder (export's layout) as a Dataset, checked against its manifest."""
    root = Path(path)
    manifest = read_tfrecord_manifest(root, limits)
    (x_train, y_train), (x_test, y_test) = (_read_split(root, manifest, split)
                                            for split in TFRECORD_SPLITS)
    coarse = manifest.fine_to_coarse
    return Dataset(_titled(f"TFRecords {root.name}", len(manifest.class_names)), x_train, y_train,
                   x_test, y_test, list(manifest.class_names), manifest.coarse_names,
                   None if coarse is None else np.asarray(coarse, dtype=np.int64))


def read_tfrecord_manifest(root: str | Path, limits: FolderLimits | None = None
                           ) -> TFRecordManifest:
    """The folder's manifest.json, checked: every value in range, the images within the
    memory cap. Cheap (no shard is opened), for pages that only need the classes and size."""
    root = Path(root)
    file = root / MANIFEST
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder: a TFRecord dataset is a folder holding "
                           f"{MANIFEST} and its .tfrecord shards")
    if not file.is_file():
        raise DatasetError(f"{root} has no {MANIFEST}: not a TFRecord folder written by "
                           "`python -m cifarkit datasets export`")
    raw = _manifest_json(file)
    manifest = _parse_manifest(raw, file)
    _check_array_bytes(root, sum(manifest.counts.values()), manifest.image_size,
                       limits or FOLDER_LIMITS, what="images")
    return manifest


def _manifest_json(file: Path) -> dict[str, Any]:
    try:
        with open(file, "rb") as handle:
            data = handle.read(_MANIFEST_BYTES + 1)
    except OSError as error:
        raise DatasetError(f"cannot read {file}: {error.strerror or error}") from None
    if len(data) > _MANIFEST_BYTES:
        raise DatasetError(f"{file} is damaged: over {_mb(_MANIFEST_BYTES)}, far more than a "
                           "manifest holds")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{file} is damaged: not valid JSON ({error})") from None
    if not isinstance(raw, dict) or raw.get("format") != TFRECORD_FORMAT:
        raise DatasetError(f"{file} is not a cifarkit TFRecord manifest (its \"format\" must be "
                           f"{TFRECORD_FORMAT!r})")
    if raw.get("version") != TFRECORD_VERSION:
        raise DatasetError(f"{file} has version {raw.get('version')!r}; this cifarkit reads "
                           f"version {TFRECORD_VERSION}")
    return raw


def _parse_manifest(raw: dict[str, Any], file: Path) -> TFRecordManifest:
    def check(ok: bool, key: str, wanted: str) -> None:
        if not ok:
            raise DatasetError(f"{file} is damaged: {key!r} must be {wanted}, got "
                               f"{repr(raw.get(key))[:60]}")

    names, size, splits = raw.get("class_names"), raw.get("image_size"), raw.get("splits")
    check(_names_ok(names) and 2 <= len(names) <= MAX_CLASSES, "class_names",
          f"a list of 2 to {MAX_CLASSES:,} different names")
    check(_whole(size, 8, MAX_INPUT_SIZE), "image_size", f"a whole number from 8 to "
          f"{MAX_INPUT_SIZE}")
    check(isinstance(splits, dict) and all(
        isinstance(splits.get(s), dict) and _whole(splits[s].get("count"), 1, MAX_IMAGES)
        and _whole(splits[s].get("shards"), 1, splits[s]["count"]) for s in TFRECORD_SPLITS),
        "splits", f"{{train, test}} each with a count of 1 to {MAX_IMAGES:,} images and 1 to "
        "count shards")
    coarse, fine_to_coarse = raw.get("coarse_names"), raw.get("fine_to_coarse")
    check(coarse is None or _names_ok(coarse), "coarse_names", "null or a list of names")
    check(fine_to_coarse is None if coarse is None else (
        isinstance(fine_to_coarse, list) and len(fine_to_coarse) == len(names)
        and all(_whole(i, 0, len(coarse) - 1) for i in fine_to_coarse)), "fine_to_coarse",
        "null, or one coarse index per class when coarse_names is given")
    source = raw.get("source")
    return TFRecordManifest(names, size, {s: splits[s]["count"] for s in TFRECORD_SPLITS},
                            {s: splits[s]["shards"] for s in TFRECORD_SPLITS},
                            source if isinstance(source, str) else "", coarse, fine_to_coarse)


def _names_ok(names: Any) -> bool:
    return (isinstance(names, list) and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == len(names))


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _read_split(root: Path, manifest: TFRecordManifest,
                split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's shards into arrays: never more records than the manifest's count, and
    refused before reading when the files are bigger than that count of images can be."""
    count, size = manifest.counts[split], manifest.image_size
    files = manifest.shard_paths(root, split)
    _check_shard_files(root, split, files, count, size)
    x = np.empty((count, size, size, 3), dtype=np.uint8)
    y = np.empty(count, dtype=np.int64)
    done = 0
    for file in files:
        done += _read_shard(file, x[done:], y[done:], size)
    if done < count:
        raise DatasetError(f"{root}: the {split} shards hold {done:,} images, but {MANIFEST} "
                           f"says {count:,}")
    if y.min() < 0 or y.max() >= len(manifest.class_names):
        bad = y.min() if y.min() < 0 else y.max()
        raise DatasetError(f"{root}: a {split} shard has label {bad}, but {MANIFEST} names "
                           f"{len(manifest.class_names)} classes")
    return x, y


def _check_shard_files(root: Path, split: str, files: list[Path], count: int, size: int) -> None:
    for file in files:
        if file.is_symlink() or not file.is_file():
            raise DatasetError(f"{root}: {file.name} is missing or a link ({MANIFEST} lists "
                               f"{len(files)} {split} shard(s), plain files in the folder)")
    total = sum(file.stat().st_size for file in files)
    most = count * (size * size * 3 + _RECORD_BYTES)
    if total > most:
        raise DatasetError(f"{root}: the {split} shards take {total:,} bytes, more than "
                           f"{count:,} images of {size}×{size} can fill ({most:,}): not the "
                           f"files {MANIFEST} describes")


def _read_shard(file: Path, x: np.ndarray, y: np.ndarray, size: int) -> int:
    """Fill x, y from one shard; the number of records read. More records than room is an
    error, and so is a record that is damaged or of another size."""
    import tensorflow as tf

    from cifarkit import pipeline

    try:
        records = pipeline.read_tfrecords(file)
    except pipeline.RecordFileError as error:
        raise DatasetError(str(error)) from None
    side = tuple(records.element_spec[0].shape[:2])
    if side != (size, size):
        raise DatasetError(f"{file} holds {side[0]}×{side[1]} images, but {MANIFEST} says "
                           f"{size}×{size}")
    done = 0
    try:
        for images, labels in records.take(len(y) + 1).batch(_READ_BATCH):
            if done + len(labels) > len(y):
                raise DatasetError(f"{file} holds more images than {MANIFEST} counts")
            x[done:done + len(labels)] = images.numpy()
            y[done:done + len(labels)] = labels.numpy()
            done += len(labels)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        reason = " ".join(error.message.split())[:120]
        raise DatasetError(f"{file} is damaged or holds records cifarkit did not write "
                           f"({reason})") from None
    return done
