"""cifarkit.datasets on the real CIFAR samples, tiny hand-built archives, folders, zips and a
local HTTP server (127.0.0.1 only: no other network)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import shlex
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit import datasets
from cifarkit.config import DataConfig
from cifarkit.datasets import DatasetError, DatasetUnavailable
from cifarkit.labels import (
    CIFAR10_LABELS,
    CIFAR100_COARSE_LABELS,
    CIFAR100_FINE_LABELS,
    CIFAR100_FINE_TO_COARSE,
)

# --- helpers


def _tar_gz(path: Path, folder: str, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _tiny_cifar10_members(numpy_module: str = "numpy._core.multiarray") -> dict[str, bytes]:
    """An official-layout CIFAR-10 in miniature: 4 images a batch with R=10, G=20, B=30 planes."""
    data = np.zeros((4, 3072), dtype=np.uint8)
    data[:, :1024], data[:, 1024:2048], data[:, 2048:] = 10, 20, 30
    batch = pickle.dumps({b"data": data, b"labels": [0, 1, 2, 9]}, protocol=3)
    batch = batch.replace(b"numpy._core.multiarray\n", f"{numpy_module}\n".encode())
    meta = pickle.dumps({b"label_names": [name.encode() for name in CIFAR10_LABELS]}, protocol=3)
    batches = {f"data_batch_{i}": batch for i in range(1, 6)}
    return {"batches.meta": meta, **batches, "test_batch": batch}


def _image_bytes(mode: str, size: tuple[int, int], color: object, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def _gif(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), color).convert("P").save(buffer, format="GIF")
    return buffer.getvalue()


# Class -> files of mixed sizes, modes and formats. Every "red" image is red, every "blue" one
# blue; every "white" one is white once transparency is flattened onto white.
_FOLDER_FILES: dict[str, dict[str, bytes]] = {
    "red": {
        "a.png": _image_bytes("RGB", (40, 30), (255, 0, 0)),
        "b.jpg": _image_bytes("RGB", (17, 64), (255, 0, 0), "JPEG"),
        "c.png": _image_bytes("RGBA", (64, 64), (255, 0, 0, 255)),
        "d.bmp": _image_bytes("RGB", (8, 8), (255, 0, 0), "BMP"),
        "e.png": _image_bytes("RGB", (100, 20), (255, 0, 0)),
    },
    "blue": {
        "a.gif": _gif((0, 0, 255)),  # a palette ("P") image
        "b.png": _image_bytes("RGB", (33, 33), (0, 0, 255)),
        "c.png": _image_bytes("RGB", (5, 90), (0, 0, 255)),
        "d.png": _image_bytes("RGB", (64, 48), (0, 0, 255)),
        "e.webp": _image_bytes("RGB", (30, 31), (0, 0, 255), "WEBP"),
    },
    "white": {
        "a.png": _image_bytes("L", (10, 50), 255),
        "b.png": _image_bytes("RGBA", (40, 40), (255, 0, 0, 0)),  # fully transparent red
        "c.jpg": _image_bytes("L", (70, 70), 255, "JPEG"),
        "d.png": _image_bytes("LA", (12, 12), (0, 0)),  # transparent black
        "e.png": _image_bytes("RGB", (16, 16), (255, 255, 255)),
        "corrupt.png": b"\x89PNG\r\n\x1a\n this is not really a png",
    },
}

_EXPECTED_RGB = {"blue": (0, 0, 255), "red": (255, 0, 0), "white": (255, 255, 255)}


def _write_tree(root: Path, files: dict[str, dict[str, bytes]]) -> Path:
    for class_name, members in files.items():
        (root / class_name).mkdir(parents=True)
        for name, data in members.items():
            (root / class_name / name).write_bytes(data)
    return root


def _zip_tree(path: Path, files: dict[str, dict[str, bytes]], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for class_name, members in files.items():
            for name, data in members.items():
                archive.writestr(f"{prefix}{class_name}/{name}", data)
    return path


def _assert_colours_match_labels(x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    for image, label in zip(x, y, strict=True):
        mean = image.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, _EXPECTED_RGB[names[label]], atol=12)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """(folder served, base URL) of a threaded HTTP server on 127.0.0.1 with a free port."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def no_data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """No hand-placed archives: only the (per-test, empty) cache dir is searched."""
    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    return Path(os.environ["CIFARKIT_CACHE_DIR"])


# --- official archives (real samples)


def test_cifar10_sample_loads_with_official_pixel_layout(cifar10_archive: Path) -> None:
    dataset = datasets.load_cifar_archive(cifar10_archive, "cifar10")
    assert dataset.x_train.shape == (4135, 32, 32, 3) and dataset.x_test.shape == (1035, 32, 32, 3)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    assert set(np.unique(dataset.y_test)) == set(range(10))
    assert dataset.class_names == list(CIFAR10_LABELS) and dataset.coarse_names is None
    with tarfile.open(cifar10_archive) as tar:  # the trusted sample, read the plain way
        member = tar.extractfile("cifar-10-batches-py/data_batch_1")
        raw = pickle.loads(member.read(), encoding="bytes")
    row = raw[b"data"][0]
    for channel in range(3):  # rows hold R, G and B planes of 32x32
        plane = row[channel * 1024:(channel + 1) * 1024].reshape(32, 32)
        np.testing.assert_array_equal(dataset.x_train[0, :, :, channel], plane)
    assert dataset.y_train[0] == raw[b"labels"][0]


def test_cifar100_fine_and_coarse_labels_agree(cifar100_archive: Path) -> None:
    fine = datasets.load_cifar_archive(cifar100_archive, "cifar100", "fine")
    coarse = datasets.load_cifar_archive(cifar100_archive, "cifar100", "coarse")
    assert fine.x_train.shape == (486, 32, 32, 3) and fine.x_test.shape == (458, 32, 32, 3)
    np.testing.assert_array_equal(fine.x_train, coarse.x_train)
    assert fine.class_names == list(CIFAR100_FINE_LABELS)
    assert coarse.class_names == list(CIFAR100_COARSE_LABELS) == fine.coarse_names
    assert coarse.fine_to_coarse is None and coarse.coarse_names is None
    np.testing.assert_array_equal(fine.fine_to_coarse, CIFAR100_FINE_TO_COARSE)
    # The archive's own coarse_labels are what the fine -> coarse table predicts.
    np.testing.assert_array_equal(fine.fine_to_coarse[fine.y_train], coarse.y_train)
    np.testing.assert_array_equal(fine.fine_to_coarse[fine.y_test], coarse.y_test)
    assert fine.name == "CIFAR-100 fine (100 classes)"


def test_subset_by_name_is_relabelled_in_the_order_given(cifar100_archive: Path) -> None:
    full = datasets.load(DataConfig(source="cifar100", path=str(cifar100_archive)))
    picked = ("whale", "apple", "bee")
    subset = datasets.load(DataConfig(source="cifar100", path=str(cifar100_archive),
                                      classes=picked))
    assert subset.class_names == list(picked) and subset.name == "CIFAR-100 fine (3 classes)"
    for new, name in enumerate(picked):
        old = full.class_names.index(name)
        np.testing.assert_array_equal(subset.x_train[subset.y_train == new],
                                      full.x_train[full.y_train == old])
        np.testing.assert_array_equal(subset.x_test[subset.y_test == new],
                                      full.x_test[full.y_test == old])
    assert set(subset.y_train) <= {0, 1, 2}
    expected = [CIFAR100_FINE_TO_COARSE[CIFAR100_FINE_LABELS.index(n)] for n in picked]
    np.testing.assert_array_equal(subset.fine_to_coarse, expected)
    assert subset.coarse_names == list(CIFAR100_COARSE_LABELS)


def test_coarse_subset_and_unknown_names(cifar100_archive: Path) -> None:
    spec = DataConfig(source="cifar100", label_mode="coarse", path=str(cifar100_archive),
                      classes=("trees", "people"))
    subset = datasets.load(spec)
    assert subset.class_names == ["trees", "people"] and subset.fine_to_coarse is None
    full = datasets.load_cifar_archive(cifar100_archive, "cifar100", "coarse")
    trees, people = (CIFAR100_COARSE_LABELS.index(name) for name in ("trees", "people"))
    assert np.bincount(subset.y_test).tolist() == [np.sum(full.y_test == trees),
                                                   np.sum(full.y_test == people)]
    with pytest.raises(DatasetError, match="unicorn"):
        datasets.load(DataConfig(source="cifar100", path=str(cifar100_archive),
                                 classes=("whale", "unicorn")))


def test_first_n_classes_and_caps_keep_classes_balanced(cifar10_archive: Path) -> None:
    spec = DataConfig(source="cifar10", path=str(cifar10_archive), num_classes=3,
                      max_train_images=60, max_test_images=30)
    capped = datasets.load(spec)
    assert capped.class_names == list(CIFAR10_LABELS[:3])
    assert capped.x_train.shape == (60, 32, 32, 3) and capped.x_test.shape == (30, 32, 32, 3)
    # Stratified: each class keeps its share (414/435/398 train images -> about 20 each).
    assert all(abs(count - 20) <= 1 for count in np.bincount(capped.y_train))
    assert all(abs(count - 10) <= 1 for count in np.bincount(capped.y_test))
    full = datasets.load(DataConfig(source="cifar10", path=str(cifar10_archive), num_classes=3))
    originals = {(image.tobytes(), label) for image, label in zip(full.x_train, full.y_train,
                                                                 strict=True)}
    assert all((image.tobytes(), label) in originals
               for image, label in zip(capped.x_train, capped.y_train, strict=True))
    again = datasets.load(spec)  # seeded: the same images every time
    np.testing.assert_array_equal(again.x_train, capped.x_train)


def test_too_many_classes_requested_is_an_error(cifar10_archive: Path) -> None:
    with pytest.raises(DatasetError, match="10 classes"):
        datasets.load(DataConfig(source="cifar10", path=str(cifar10_archive), num_classes=11))


def test_extracted_folder_loads_like_the_archive(cifar100_archive: Path, tmp_path: Path) -> None:
    with tarfile.open(cifar100_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    from_tar = datasets.load_cifar_archive(cifar100_archive, "cifar100")
    for path in (tmp_path, tmp_path / "cifar-100-python"):
        from_folder = datasets.load_cifar_archive(path, "cifar100")
        np.testing.assert_array_equal(from_folder.x_train, from_tar.x_train)
        np.testing.assert_array_equal(from_folder.y_test, from_tar.y_test)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(DatasetError, match="lacks test"):
        datasets.load_cifar_archive(tmp_path, "cifar100")


# --- official archives (hand-built, hostile)


@pytest.mark.parametrize("numpy_module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_tiny_official_layout_archive(tmp_path: Path, numpy_module: str) -> None:
    """Both numpy module names (Python 2 era and numpy 2) pass the allow-list."""
    members = _tiny_cifar10_members(numpy_module)
    path = _tar_gz(tmp_path / "c10.tar.gz", "cifar-10-batches-py", members)
    dataset = datasets.load_cifar_archive(path, "cifar10")
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.x_test.shape == (4, 32, 32, 3)
    assert dataset.x_train[0, 5, 7].tolist() == [10, 20, 30]
    assert dataset.y_test.tolist() == [0, 1, 2, 9]


class _Exploit:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"echo pwned > {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("member", ["batches.meta", "data_batch_3"])
def test_tampered_pickle_is_refused_without_running_it(tmp_path: Path, member: str) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    pickle.loads(payload)  # the payload is live: plain pickle would run it
    assert marker.exists()
    marker.unlink()
    members = {**_tiny_cifar10_members(), member: payload}
    path = _tar_gz(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", members)
    with pytest.raises(DatasetError, match=rf"{member}.*refusing to load (posix|nt)\.system"):
        datasets.load_cifar_archive(path, "cifar10")
    assert not marker.exists()


def test_truncated_archive_error_names_the_file(cifar100_archive: Path, tmp_path: Path) -> None:
    path = tmp_path / "cifar-100-python.tar.gz"
    path.write_bytes(cifar100_archive.read_bytes()[:500_000])
    with pytest.raises(DatasetError, match="truncated") as error:
        datasets.load_cifar_archive(path, "cifar100")
    assert str(path) in str(error.value)


def test_text_file_posing_as_archive_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_text("this is a text file, not an archive\n")
    with pytest.raises(DatasetError) as error:
        datasets.load_cifar_archive(path, "cifar10")
    assert str(path) in str(error.value)


def test_archive_of_the_wrong_dataset_is_an_error(tmp_path: Path) -> None:
    path = _tar_gz(tmp_path / "x.tar.gz", "cifar-10-batches-py", _tiny_cifar10_members())
    with pytest.raises(DatasetError, match="lacks meta, test, train") as error:
        datasets.load_cifar_archive(path, "cifar100")
    assert str(path) in str(error.value)


def test_missing_path_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.load_cifar_archive(tmp_path / "nope.tar.gz", "cifar10")
    with pytest.raises(DatasetError, match="unknown CIFAR source"):
        datasets.load_cifar_archive(tmp_path, "cifar1000")
    with pytest.raises(DatasetError, match="label_mode"):
        datasets.load_cifar_archive(tmp_path, "cifar100", "medium")


# --- image folders and zips


def test_image_folder_of_mixed_sizes_and_modes(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "colours", _FOLDER_FILES)
    (root / "red" / ".DS_Store").write_bytes(b"\0\0junk")  # hidden: ignored, not counted
    (root / "README.txt").write_text("loose files beside the class folders are ignored")
    dataset = datasets.load_image_folder(root, image_size=16)
    assert dataset.class_names == ["blue", "red", "white"] and dataset.skipped == 1
    assert dataset.name == "Folder colours (3 classes)"
    assert dataset.x_train.shape == (12, 16, 16, 3) and dataset.x_test.shape == (3, 16, 16, 3)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    assert sorted(dataset.y_test.tolist()) == [0, 1, 2]  # stratified test split
    _assert_colours_match_labels(dataset.x_train, dataset.y_train, dataset.class_names)
    _assert_colours_match_labels(dataset.x_test, dataset.y_test, dataset.class_names)


@pytest.mark.parametrize("prefix", ["", "colours/"])
def test_zip_loads_like_the_folder(tmp_path: Path, prefix: str) -> None:
    """Class folders at the top of the zip, or wrapped in one folder, as zipping a folder does."""
    folder = datasets.load_image_folder(_write_tree(tmp_path / "colours", _FOLDER_FILES))
    path = _zip_tree(tmp_path / "colours.zip", _FOLDER_FILES, prefix=prefix)
    zipped = datasets.load(DataConfig(source="folder", path=str(path)))
    assert zipped.class_names == folder.class_names and zipped.skipped == 1
    assert zipped.name == "Folder colours (3 classes)"
    np.testing.assert_array_equal(zipped.x_train, folder.x_train)
    np.testing.assert_array_equal(zipped.y_test, folder.y_test)


def test_16_bit_grey_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    def grey16(value: int) -> bytes:
        return _image_bytes("I;16", (20, 20), value)

    root = _write_tree(tmp_path / "grey", {"dark": {f"{i}.png": grey16(8192) for i in range(3)},
                                           "light": {f"{i}.png": grey16(57344) for i in range(3)}})
    dataset = datasets.load_image_folder(root, image_size=8, test_fraction=0.5)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    assert np.all(np.abs(x[y == 0].astype(int) - 32) <= 1)  # 8192 / 65535 * 255
    assert np.all(np.abs(x[y == 1].astype(int) - 223) <= 1)


@pytest.mark.parametrize("evil", ["../evil.png", "/abs/evil.png", "red/../../evil.png"])
def test_zip_slip_entries_are_refused(tmp_path: Path, evil: str) -> None:
    path = _zip_tree(tmp_path / "evil.zip", _FOLDER_FILES)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(evil, _FOLDER_FILES["red"]["a.png"])
    with pytest.raises(DatasetError, match="unsafe entry") as error:
        datasets.load_image_folder(path)
    assert str(path) in str(error.value)
    assert not (tmp_path.parent / "evil.png").exists() and not Path("/abs").exists()


@pytest.mark.parametrize("test_folder", ["test", "val"])
def test_train_and_test_folders_are_used_as_the_split(tmp_path: Path, test_folder: str) -> None:
    root = tmp_path / "data"
    _write_tree(root / "train", {name: files for name, files in _FOLDER_FILES.items()})
    _write_tree(root / test_folder, {"red": {"x.png": _FOLDER_FILES["red"]["a.png"]},
                                     "blue": {"y.png": _FOLDER_FILES["blue"]["b.png"]}})
    dataset = datasets.load_image_folder(root, image_size=8)
    assert dataset.x_train.shape == (15, 8, 8, 3) and dataset.x_test.shape == (2, 8, 8, 3)
    assert [dataset.class_names[i] for i in dataset.y_test] == ["blue", "red"]
    _assert_colours_match_labels(dataset.x_test, dataset.y_test, dataset.class_names)


def test_folders_without_images_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="found 0 readable images"):
        datasets.load_image_folder(empty)
    one_class = _write_tree(tmp_path / "one", {"red": _FOLDER_FILES["red"]})
    with pytest.raises(DatasetError, match="at least 2 classes"):
        datasets.load_image_folder(one_class)
    not_zip = tmp_path / "photos.rar"
    not_zip.write_bytes(b"Rar!")
    with pytest.raises(DatasetError, match=r"neither a folder nor a \.zip"):
        datasets.load_image_folder(not_zip)
    with pytest.raises(DatasetError, match="a folder dataset needs"):
        datasets.load(DataConfig(source="folder"))


# --- embedded digits


def test_digits_are_real_sklearn_digits_as_rgb() -> None:
    from sklearn.datasets import load_digits

    dataset = datasets.load(DataConfig())  # the default source
    assert dataset.x_train.shape[1:] == (32, 32, 3) and dataset.x_train.dtype == np.uint8
    assert len(dataset.x_train) + len(dataset.x_test) == 1797
    assert len(dataset.x_test) == 360 and set(np.unique(dataset.y_test)) == set(range(10))
    assert dataset.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(dataset.x_train[..., 0], dataset.x_train[..., 2])  # grey
    native = datasets.load_digits(image_size=8)  # no resampling at the native size
    pixels = np.concatenate([native.x_train[..., 0].ravel(), native.x_test[..., 0].ravel()])
    expected = np.rint(load_digits().images * 255 / 16)
    assert pixels.sum() == expected.sum() and pixels.max() == 255


# --- finding and downloading


def test_find_archive_looks_in_data_dir_then_cache(cifar10_archive: Path, no_data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert datasets.find_archive("cifar10") is None
    keras_folder = no_data_dir / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    keras_folder.mkdir(parents=True)  # where Keras 3 extracts it in the shared cache
    (keras_folder / "batches.meta").write_bytes(b"")
    assert datasets.find_archive("cifar10") == keras_folder
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(cifar10_archive.parent))
    assert datasets.find_archive("cifar10") == cifar10_archive


def test_catalog_reports_what_is_on_disk(cifar100_archive: Path) -> None:
    rows = {row.key: row for row in datasets.catalog()}
    assert list(rows) == ["digits", "cifar10", "cifar100", "folder", "tfrecord"]
    assert rows["digits"].available and rows["digits"].location == "embedded (scikit-learn)"
    assert rows["cifar100"].available and rows["cifar100"].location == str(cifar100_archive)
    assert rows["folder"].available and "zip" in rows["folder"].description
    assert rows["cifar100"].num_classes == 100 and rows["folder"].location is None


def test_catalog_without_archives(no_data_dir: Path) -> None:
    rows = {row.key: row for row in datasets.catalog()}
    assert not rows["cifar10"].available and rows["cifar10"].location is None
    assert "cifar-10-python.tar.gz" in rows["cifar10"].description


def test_download_reports_progress_and_checks_md5(http_root: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    served, base = http_root
    payload = np.random.default_rng(0).bytes(3 * 1024 * 1024 + 17)  # several chunks
    (served / "blob.bin").write_bytes(payload)
    calls: list[tuple[int, int | None]] = []
    dest = datasets.download(f"{base}/blob.bin", tmp_path / "cache" / "blob.bin",
                             md5=hashlib.md5(payload).hexdigest(),
                             progress=lambda done, total: calls.append((done, total)))
    assert dest.read_bytes() == payload
    assert calls[0] == (0, len(payload)) and calls[-1] == (len(payload), len(payload))
    assert len(calls) >= 4 and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_with_wrong_md5_leaves_no_file(http_root: tuple[Path, str],
                                                tmp_path: Path) -> None:
    served, base = http_root
    (served / "blob.bin").write_bytes(b"x" * 1000)
    dest = tmp_path / "cache" / "blob.bin"
    with pytest.raises(DatasetError, match="md5"):
        datasets.download(f"{base}/blob.bin", dest, md5="0" * 32)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(DatasetUnavailable, match="404"):
        datasets.download(f"{base}/missing.bin", dest)
    assert list(dest.parent.iterdir()) == []


def test_ensure_archive_downloads_once_into_the_cache(
        cifar100_archive: Path, http_root: tuple[Path, str], no_data_dir: Path) -> None:
    served, base = http_root
    (served / "c100.tar.gz").write_bytes(cifar100_archive.read_bytes())
    calls: list[tuple[int, int | None]] = []
    path = datasets.ensure_archive("cifar100", lambda *call: calls.append(call),
                                   url=f"{base}/c100.tar.gz")
    assert path == no_data_dir / "cifar-100-python.tar.gz"
    assert calls[-1] == (cifar100_archive.stat().st_size,) * 2
    assert datasets.find_archive("cifar100") == path
    # Found now: no second download (this URL would fail), and load() needs no path.
    assert datasets.ensure_archive("cifar100", url="http://127.0.0.1:9/") == path
    assert datasets.load(DataConfig(source="cifar100", label_mode="coarse")).num_classes == 20


def test_offline_error_names_the_file_and_where_to_put_it(no_data_dir: Path) -> None:
    with pytest.raises(DatasetUnavailable) as error:
        datasets.ensure_archive("cifar10", url="http://127.0.0.1:9/cifar-10-python.tar.gz")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and str(no_data_dir) in message
    assert "CIFARKIT_DATA_DIR" in message
    assert not no_data_dir.exists() or list(no_data_dir.iterdir()) == []
