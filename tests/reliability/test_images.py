"""Issue 7, defects 5 and 10b: one image decoder for folders, zips, uploads and the CLI; pixel
bombs refused on their header; a bad file in `predict` skipped and named, the rest predicted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from cifarkit import cli, datasets, predict
from cifarkit.datasets import DatasetError
from cifarkit.images import ImageError
from tests.app.conftest import fabricate_run


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _photo(mode: str, size: tuple[int, int]) -> Image.Image:
    """A non-flat picture (gradients), so a different filter or crop would change pixels."""
    width, height = size
    x = (np.arange(width) * 255 // max(width - 1, 1)).astype(np.uint8)
    y = (np.arange(height) * 255 // max(height - 1, 1)).astype(np.uint8)
    red, green = np.broadcast_to(x, (height, width)), np.broadcast_to(y[:, None], (height, width))
    rgba = np.dstack([red, green, red // 2 + green // 2, 255 - red])
    return Image.fromarray(rgba, "RGBA").convert(mode)


def _sideways_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways with a rotate tag, as phones do
    # 4200×2100: big enough that JPEG decodes at half scale (images.DRAFT_SIDE) on both paths
    return _encode(_photo("RGB", (4200, 2100)), "JPEG", exif=exif, quality=90)


# Each kind of file the two paths once decoded differently (filters, modes, EXIF, JPEG draft).
FILES = {
    "photo.jpg": _sideways_jpeg,
    "rgba.png": lambda: _encode(_photo("RGBA", (300, 200)), "PNG"),
    "palette.gif": lambda: _encode(_photo("P", (90, 130)), "GIF", transparency=3),
    "grey-alpha.png": lambda: _encode(_photo("LA", (64, 40)), "PNG"),
    "grey16.png": lambda: _encode(Image.fromarray(
        np.linspace(0, 65535, 50 * 70).reshape(50, 70).astype(np.uint16)), "PNG"),
    "cmyk.jpg": lambda: _encode(_photo("CMYK", (120, 80)), "JPEG"),
    "bilevel.png": lambda: _encode(_photo("1", (45, 45)), "PNG"),
}


def _two_class_folder(root: Path, name: str, data: bytes) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        (root / label / name).write_bytes(data)
    return root


class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile: a BytesIO with a file name."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


@pytest.mark.parametrize("name", list(FILES))
def test_folder_zip_and_predict_decode_identically(tmp_path: Path, name: str) -> None:
    data = FILES[name]()
    expected = predict.to_input(predict.read_image(Upload(data, name)), 24)  # the Predict page
    folder = datasets.load_image_folder(_two_class_folder(tmp_path / "f", name, data), 24,
                                        test_fraction=0.5)
    archive = tmp_path / "f.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for label in ("a", "b"):
            zipped.writestr(f"{label}/{name}", data)
    from_zip = datasets.load_image_folder(archive, 24, test_fraction=0.5)
    for dataset in (folder, from_zip):
        assert dataset.skipped == 0
        for array in (*dataset.x_train, *dataset.x_test):
            np.testing.assert_array_equal(array, expected)
    assert expected.std() > 10  # a real picture, not a blank that any decoder gets right


def _huge_png() -> bytes:
    """13000×13000 pixels (169 megapixels) in a few KB: what defect 4's zip held."""
    return _encode(Image.new("1", (13000, 13000)), "PNG")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding any image fails the test: refusals must come from the header alone."""
    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


HUGE = (r"'{name}' is 13000×13000 pixels \(169 megapixels; the limit is 50 megapixels\): "
        "too large to decode safely")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_png_refused_by_pixel_count_before_decoding(tmp_path: Path,
                                                         no_decoding: None) -> None:
    data = _huge_png()
    assert len(data) < 100_000
    with pytest.raises(ImageError, match="^" + HUGE.format(name=r"huge\.png") + "$"):
        predict.read_image(Upload(data, "huge.png"))
    root = _two_class_folder(tmp_path / "photos", "huge.png", data)
    with pytest.raises(DatasetError) as refused:
        datasets.load_image_folder(root)
    assert str(refused.value) == f"{root}: " + HUGE.format(name="a/huge.png").replace("\\", "")


def test_cli_predict_skips_and_names_each_bad_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    run = fabricate_run(0, "completed")
    good = [tmp_path / "a.jpg", tmp_path / "b.png"]
    _photo("RGB", (40, 30)).save(good[0])
    _photo("RGB", (50, 50)).save(good[1])
    empty, text = tmp_path / "empty.png", tmp_path / "notes.jpg"
    empty.write_bytes(b"")
    text.write_text("not a picture")
    paths = [good[0], empty, good[1], text]
    code = cli.main(["predict", *map(str, paths), "--run", run.run_id, "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 2
    assert [line.split(":")[0] for line in out.splitlines()] == [str(p) for p in good]
    assert all(line.count("%") == 2 for line in out.splitlines())
    assert err.splitlines() == [f"skipped: '{empty}' is empty (0 bytes)",
                                f"skipped: '{text}' is not an image (or not a format Pillow "
                                "can read)",
                                "error: 2 of 4 images could not be read"]


def test_cli_predict_all_good_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = fabricate_run(0, "completed")
    path = tmp_path / "a.png"
    _photo("RGB", (40, 30)).save(path)
    assert cli.main(["predict", str(path), "--run", run.run_id]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: ") and err == ""
