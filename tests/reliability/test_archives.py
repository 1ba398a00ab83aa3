"""Issue 7, defects 4, 2 (bounded walk), 10a and 10c: zip bombs refused by their declared sizes
before a byte is inflated, folder walks bounded, images without class folders explained, and
broken CIFAR archives listed as broken instead of available."""

from __future__ import annotations

import io
import struct
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from cifarkit import datasets
from cifarkit.datasets import DatasetError, FolderLimits
from tests.unit.test_datasets import _tar_gz, _tiny_cifar10_members

MB = 1_000_000


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def _class_zip(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Two small classes (red, blue), plus any extra members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(f"red/{i}.png", _png((255, 0, 0)))
            archive.writestr(f"blue/{i}.png", _png((0, 0, 255)))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def _declare_size(path: Path, member: str, size: int) -> None:
    """Rewrite a member's declared uncompressed size (local and central headers): a lying zip."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.index(b"PK\x03\x04")
    while data[local + 30:local + 30 + len(name)] != name:
        local = data.index(b"PK\x03\x04", local + 4)
    struct.pack_into("<I", data, local + 22, size)
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, size)
    path.write_bytes(bytes(data))


def _peak_mb(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / MB


# --- defect 4: zip bombs


def test_member_declared_600_mb_refused_before_reading(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip", {"red/bomb.png": bytes(2 * MB)})
    _declare_size(path, "red/bomb.png", 600 * MB)

    def load() -> None:
        with pytest.raises(DatasetError) as refused:
            datasets.load_image_folder(path)
        assert str(refused.value) == (f"{path}: member red/bomb.png would inflate to 600 MB "
                                      "(limit 50 MB)")

    assert _peak_mb(load) < 20


def test_real_60_mb_member_of_zeros_refused_by_size(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("blue/zeros.bmp", "w") as member:
        for _ in range(60):
            member.write(bytes(MB))
    assert path.stat().st_size < MB

    def load() -> None:
        with pytest.raises(DatasetError, match=r"member blue/zeros\.bmp would inflate to 60 MB "
                                               r"\(limit 50 MB\)$"):
            datasets.load_image_folder(path)

    assert _peak_mb(load) < 20


def test_compression_ratio_refused(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip", {"red/flat.bmp": bytes(20 * MB)})
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: member red/flat.bmp would inflate ")
    assert message.endswith(" times (to 20 MB; limit 100 times): not a zip of photos")


def test_total_size_refused(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip")
    total = sum(info.file_size for info in zipfile.ZipFile(path).infolist())
    with pytest.raises(DatasetError, match=r"would inflate to more than 0 MB of files: pick a "
                                           "smaller zip"):
        datasets.load_image_folder(path, limits=FolderLimits(max_total_bytes=total - 1))
    assert datasets.load_image_folder(path, limits=FolderLimits(max_total_bytes=total)
                                      ).num_classes == 2


def test_member_count_refused_before_the_zip_is_parsed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = _class_zip(tmp_path / "photos.zip")
    assert datasets.load_image_folder(path, limits=FolderLimits(max_entries=6)).num_classes == 2

    def parse(self: zipfile.ZipFile) -> None:
        raise AssertionError("parsed the central directory")

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", parse)
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(path, limits=FolderLimits(max_entries=5))
    assert str(refused.value) == f"{path} holds 6 entries (limit 5): pick a smaller zip"


def test_decoded_size_refused_before_decoding(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip")
    assert datasets.load_image_folder(path, image_size=224).num_classes == 2  # default limit
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(path, image_size=224,
                                   limits=FolderLimits(max_array_bytes=6 * 224 * 224 * 3 - 1))
    assert str(refused.value) == (f"{path} holds 6 files: at 224×224 pixels they would take "
                                  "1 MB of memory (limit 1 MB); use fewer images or a smaller "
                                  "image size")


def test_member_lying_about_its_size_is_read_only_to_its_declared_size(tmp_path: Path) -> None:
    path = _class_zip(tmp_path / "photos.zip", {"red/liar.png": bytes(30 * MB)})
    _declare_size(path, "red/liar.png", 1000)  # declares 1 KB, inflates to 30 MB

    def load() -> None:
        with pytest.raises(DatasetError, match=r"member red/liar\.png is damaged or not what its "
                                               r"header says \(Bad CRC-32"):
            datasets.load_image_folder(path)

    assert _peak_mb(load) < 20


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_zip_with_a_13000_px_png_refused_by_pixel_count(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("1", (13000, 13000)).save(buffer, "PNG")
    path = _class_zip(tmp_path / "photos.zip", {"blue/huge.png": buffer.getvalue()})
    assert path.stat().st_size < 100_000

    def load() -> None:
        with pytest.raises(DatasetError) as refused:
            datasets.load_image_folder(path)
        assert str(refused.value) == (f"{path}: 'blue/huge.png' is 13000×13000 pixels "
                                      "(169 megapixels; the limit is 50 megapixels): too large "
                                      "to decode safely")

    assert _peak_mb(load) < 50  # decoded, the 1-bit image alone would be 21 MB, as RGB 507 MB


# --- defect 10a: images with no class folders


@pytest.mark.parametrize("wrapped", [False, True])
def test_images_at_the_top_level_are_explained(tmp_path: Path, wrapped: bool) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(12):
            archive.writestr(f"{i}.jpg", _png((255, 0, 0)))
        archive.writestr("README.txt", "not an image: not counted")
    target = path
    if wrapped:  # the same mistake in a folder
        target = tmp_path / "folder"
        zipfile.ZipFile(path).extractall(target)
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(target)
    assert str(refused.value) == (f"{target} has 12 images at its top level: put each class's "
                                  "images in a sub-folder named after the class (at least 2 "
                                  "classes)")


# --- defect 2: a bounded folder walk


def _many_files(root: Path, count: int) -> Path:
    for label in ("red", "blue"):
        (root / label).mkdir(parents=True)
        for i in range(count // 2):
            (root / label / f"{i}.png").write_bytes(_png((255, 0, 0)))
    return root


def test_walk_stops_after_max_entries(tmp_path: Path) -> None:
    root = _many_files(tmp_path / "big", 30)
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(root, limits=FolderLimits(max_entries=10))
    assert str(refused.value) == (f"stopped reading {root} after 10 files: pick a smaller folder "
                                  "(one sub-folder of images per class)")
    # 32 entries: 2 folders + 30 files
    assert datasets.load_image_folder(root, limits=FolderLimits(max_entries=32)).num_classes == 2


def test_walk_stops_after_max_seconds(tmp_path: Path) -> None:
    root = _many_files(tmp_path / "slow", 4)
    with pytest.raises(DatasetError, match=r"^stopped reading .* after 0 s and 0 files: pick a "
                                           "smaller folder"):
        datasets.load_image_folder(root, limits=FolderLimits(max_walk_s=0))


def test_walk_does_not_follow_symlinks_out(tmp_path: Path) -> None:
    root = _many_files(tmp_path / "mine", 4)
    outside = _many_files(tmp_path / "someone-else", 6)
    (root / "green").symlink_to(outside / "red", target_is_directory=True)
    (root / "red" / "linked.png").symlink_to(outside / "blue" / "0.png")
    dataset = datasets.load_image_folder(root, test_fraction=0.5)
    assert dataset.class_names == ["blue", "red"]
    assert len(dataset.x_train) + len(dataset.x_test) == 4


# --- defect 10c: broken CIFAR archives are not "available"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(folder))
    monkeypatch.setenv("CIFARKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    return folder


def _fake_cifar10(folder: Path) -> Path:
    return _tar_gz(folder / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                   _tiny_cifar10_members())


def test_whole_fake_archive_is_available(data_dir: Path) -> None:
    path = _fake_cifar10(data_dir)
    row = {info.key: info for info in datasets.catalog()}["cifar10"]
    assert row.available and row.problem is None and row.location == str(path)
    assert datasets.load_cifar_archive(path, "cifar10").num_classes == 10


def test_truncated_archive_listed_as_broken(data_dir: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    from cifarkit import cli

    path = _fake_cifar10(data_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    row = {info.key: info for info in datasets.catalog()}["cifar10"]
    assert not row.available and row.location == str(path)
    assert row.problem.startswith("is not a readable .tar.gz archive (truncated or another kind "
                                  "of file?): ")
    assert cli.main(["datasets", "list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("cifar10 "))
    assert f"[BROKEN: {path} is not a readable .tar.gz archive" in line


def test_archive_missing_members_listed_as_broken(data_dir: Path) -> None:
    path = _tar_gz(data_dir / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                   {"batches.meta": _tiny_cifar10_members()["batches.meta"]})
    row = {info.key: info for info in datasets.catalog()}["cifar10"]
    assert not row.available
    assert row.problem == ("lacks data_batch_1, data_batch_2, data_batch_3, data_batch_4, "
                           "data_batch_5, test_batch: not the official CIFAR-10 python archive "
                           "(cifar-10-python.tar.gz) or its folder cifar-10-batches-py/")
    extracted = data_dir / "cifar-10-batches-py"
    path.unlink()
    with tarfile.open(_fake_cifar10(data_dir)) as tar:
        tar.extractall(data_dir, filter="data")
    path.unlink()
    (extracted / "test_batch").unlink()
    row = {info.key: info for info in datasets.catalog()}["cifar10"]
    assert not row.available and row.location == str(extracted)
    assert row.problem.startswith("lacks test_batch: ")


def test_replaced_archive_is_checked_again(data_dir: Path) -> None:
    """The check is cached by size and mtime: fixing the file shows at once."""
    path = _fake_cifar10(data_dir)
    whole = path.read_bytes()
    path.write_bytes(whole[:100])
    assert not {info.key: info for info in datasets.catalog()}["cifar10"].available
    path.write_bytes(whole)
    assert {info.key: info for info in datasets.catalog()}["cifar10"].available


def test_home_page_shows_the_broken_archive_and_why(data_dir: Path) -> None:
    from tests.app.conftest import open_page, page_path

    path = _fake_cifar10(data_dir)
    path.write_bytes(path.read_bytes()[:200])
    at = open_page(page_path("pages/home.py"), 90)
    shown = "\n".join(element.value for element in [*at.markdown, *at.caption])
    assert ":red-badge[:material/error: broken]" in shown
    assert ("Cannot be used: it is not a readable .tar.gz archive (truncated or another kind "
            "of file?): ") in shown
    assert not [button for button in at.button if button.key == "home_download_cifar10"]
    assert [button for button in at.button if button.key == "home_download_cifar100"]
