"""predict: images of every kind in, clear errors for broken ones, models loaded safely."""

from __future__ import annotations

import io
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import cifarkit.images as imaging
from cifarkit import calibration, rundir
from cifarkit.config import AugmentConfig, RunConfig
from cifarkit.models.layers import ImagePreprocess
from cifarkit.predict import (
    ImageError,
    Inference,
    ModelFileError,
    load_model,
    predict_probs,
    read_image,
    run_inference,
    to_input,
    top_k,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile: a BytesIO with a file name."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def pixel(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


# ---------------------------------------------------------------- read_image: formats and modes

def test_png_rgba_composited_over_white() -> None:
    array = np.zeros((6, 10, 4), dtype=np.uint8)  # fully transparent black
    array[:, 5:] = (255, 0, 0, 128)  # half-transparent red on the right
    image = read_image(encode(Image.fromarray(array, "RGBA"), "PNG"))
    assert image.size == (10, 6)
    assert pixel(image, (0, 0)) == WHITE
    assert pixel(image, (9, 0)) == pytest.approx((255, 127, 127), abs=1)


@pytest.mark.parametrize("fmt, params", [
    ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}),
])
def test_rgb_formats(fmt: str, params: dict) -> None:
    image = read_image(encode(Image.new("RGB", (12, 7), (200, 40, 90)), fmt, **params))
    assert image.mode == "RGB" and image.size == (12, 7)
    assert pixel(image, (6, 3)) == pytest.approx((200, 40, 90), abs=3)


def test_gif_palette_with_transparency() -> None:
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette_image.paste(1, (4, 0, 8, 8))  # right half blue, left half transparent index 0
    image = read_image(encode(palette_image, "GIF", transparency=0))
    assert pixel(image, (0, 0)) == WHITE
    assert pixel(image, (7, 7)) == BLUE


@pytest.mark.parametrize("mode, fill, expected", [
    ("L", 100, (100, 100, 100)),
    ("LA", (100, 0), WHITE),
    ("1", 1, WHITE),
    ("CMYK", (0, 255, 255, 0), RED),
])
def test_other_modes(mode: str, fill, expected: tuple[int, int, int]) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    image = read_image(encode(Image.new(mode, (5, 5), fill), fmt, quality=100))
    assert pixel(image, (2, 2)) == pytest.approx(expected, abs=2)


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    array = np.array([[0, 32768, 65535]], dtype=np.uint16)
    source = Image.fromarray(array)
    assert source.mode == "I;16"
    image = read_image(encode(source, "PNG"))
    assert [pixel(image, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_exif_orientation_applied() -> None:
    array = np.zeros((10, 20, 3), dtype=np.uint8)
    array[:, :10] = RED
    array[:, 10:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to display
    image = read_image(encode(Image.fromarray(array), "JPEG", exif=exif, quality=95))
    assert image.size == (10, 20)
    assert pixel(image, (5, 2)) == pytest.approx(RED, abs=20)  # left edge is now on top
    assert pixel(image, (5, 17)) == pytest.approx(BLUE, abs=20)


@pytest.mark.parametrize("size", [(1, 500), (3000, 20), (500, 1)])
def test_odd_sizes(size: tuple[int, int]) -> None:
    image = read_image(encode(Image.new("RGB", size, GREEN), "PNG"))
    assert image.size == size
    array = to_input(image, 32)
    assert array.shape == (32, 32, 3) and array.dtype == np.uint8
    assert np.all(array == GREEN)


def test_reads_paths_and_uploads(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (3, 4), RED), "PNG")
    path = tmp_path / "red.png"
    path.write_bytes(data)
    assert read_image(path).size == (3, 4)
    assert read_image(str(path)).size == (3, 4)
    upload = Upload(data, "red.png")
    upload.read()  # already consumed once, as after st.image(upload)
    assert pixel(read_image(upload)) == RED
    with open(path, "rb") as handle:
        assert read_image(handle).size == (3, 4)


# ---------------------------------------------------------------- read_image: failures

def test_broken_bytes_named() -> None:
    with pytest.raises(ImageError, match=r"'cat\.png' is not an image"):
        read_image(Upload(bytes(range(256)) * 4, "cat.png"))
    with pytest.raises(ImageError, match=r"'dog\.png' is damaged"):
        read_image(Upload(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "dog.png"))


def test_text_file_named(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("this is not a picture")
    with pytest.raises(ImageError, match=r"notes\.jpg.* is not an image"):
        read_image(notes)


def test_truncated_jpeg_named() -> None:
    data = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageError, match=r"'photo\.jpg' is damaged.*truncated"):
        read_image(Upload(data[: len(data) // 2], "photo.jpg"))


def test_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="the image is empty"):
        read_image(b"")
    with pytest.raises(ImageError, match=r"'empty\.png' is empty"):
        read_image(Upload(b"", "empty.png"))
    with pytest.raises(ImageError, match=r"cannot read .*missing\.png"):
        read_image(tmp_path / "missing.png")


def test_text_mode_and_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.new("RGB", (2, 2)), "PNG"))
    with open(path, encoding="latin-1") as handle, pytest.raises(ImageError, match="text mode"):
        read_image(handle)
    with pytest.raises(ImageError, match="int"):
        read_image(42)  # type: ignore[arg-type]


def test_decompression_bombs_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    over_twice = encode(Image.new("1", (100, 100)), "PNG")  # Pillow itself raises in open
    with pytest.raises(ImageError, match=r"'bomb\.png' is too large to decode safely"):
        read_image(Upload(over_twice, "bomb.png"))
    monkeypatch.setattr(imaging, "MAX_PIXELS", 1000)  # our own cap, checked on the header
    just_over = encode(Image.new("1", (40, 40)), "PNG")  # Pillow only warns here
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(
            ImageError, match=r"the image is 40×40 pixels \(0 megapixels; the limit is 0.001 "):
        read_image(just_over)
    assert read_image(encode(Image.new("1", (30, 30)), "PNG")).size == (30, 30)


def test_image_error_is_value_error() -> None:
    assert issubclass(ImageError, ValueError) and issubclass(ModelFileError, ValueError)


# ---------------------------------------------------------------- to_input and top_k

def test_to_input_crops_centre_instead_of_stretching() -> None:
    array = np.zeros((10, 30, 3), dtype=np.uint8)
    array[:, :10], array[:, 10:20], array[:, 20:] = RED, GREEN, BLUE
    result = to_input(Image.fromarray(array), 4)
    assert result.shape == (4, 4, 3) and result.dtype == np.uint8
    assert np.all(result == GREEN)  # the side thirds are cropped away, not squeezed in
    assert np.array_equal(to_input(array, 4), result)  # arrays are accepted too


def test_to_input_converts_modes_and_checks_size() -> None:
    assert to_input(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), 2).tolist() == [[list(WHITE)] * 2] * 2
    with pytest.raises(ValueError, match="size"):
        to_input(Image.new("RGB", (8, 8)), 0)
    with pytest.raises(ValueError, match="shape"):
        to_input(np.zeros((8, 8)), 4)


def test_top_k() -> None:
    names = ["a", "b", "c", "d"]
    probs = np.array([0.1, 0.4, 0.2, 0.3], dtype=np.float32)
    assert [name for name, _ in top_k(probs, names, k=3)] == ["b", "d", "c"]
    result = top_k(probs, names, k=10)
    assert [name for name, _ in result] == ["b", "d", "c", "a"]
    assert all(type(p) is float for _, p in result)
    assert result[0][1] == pytest.approx(0.4)
    assert top_k([0.5, 0.5], ["x", "y"], k=1) == [("x", 0.5)]  # ties: lower index first
    with pytest.raises(ValueError, match="expected 4"):
        top_k(probs[:3], names)
    with pytest.raises(ValueError, match="k must"):
        top_k(probs, names, k=0)


# ---------------------------------------------------------------- models

def tiny_model(num_classes: int = 3, size: int = 32, seed: int = 0, name: str = "tiny",
               preprocess: bool = False) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = ImagePreprocess("scale")(inputs) if preprocess else inputs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)


def test_predict_probs_averages_exactly(images: np.ndarray) -> None:
    first, second = tiny_model(seed=1, name="a"), tiny_model(seed=2, name="b")
    expected = [m.predict(images.astype(np.float32), verbose=0) for m in (first, second)]
    assert not np.allclose(expected[0], expected[1])
    probs = predict_probs([first, second], images)
    assert probs.shape == (5, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, (expected[0] + expected[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(predict_probs([first], images), expected[0], rtol=1e-6)


def test_predict_probs_resizes_per_model(images: np.ndarray) -> None:
    small = tiny_model(size=16, seed=3)
    resized = np.stack([to_input(image, 16) for image in images]).astype(np.float32)
    np.testing.assert_allclose(predict_probs([small], images),
                               small.predict(resized, verbose=0), rtol=1e-6)
    mixed = predict_probs([small, tiny_model(seed=4)], images)
    assert mixed.shape == (5, 3)


def test_predict_probs_rejects_mismatches(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="number of classes: 'three' has 3, 'four' has 4"):
        predict_probs([tiny_model(3, name="three"), tiny_model(4, name="four")], images)
    with pytest.raises(ValueError, match="at least one model"):
        predict_probs([], images)
    with pytest.raises(ValueError, match="batch"):
        predict_probs([tiny_model()], images[0])


def test_flip_tta_averages_the_mirror_image_then_applies_the_temperature(
        images: np.ndarray) -> None:
    model = tiny_model(seed=5)
    plain = model.predict(images.astype(np.float32), verbose=0)
    mirror = model.predict(images[:, :, ::-1].astype(np.float32), verbose=0)
    assert not np.allclose(plain, mirror)  # a Flatten+Dense model is not mirror-symmetric
    tta = predict_probs([model], images, inference=[Inference(flip_tta=True)])
    np.testing.assert_allclose(tta, (plain + mirror) / 2, rtol=1e-6)
    sharp = predict_probs([model], images, inference=[Inference(flip_tta=True, temperature=0.5)])
    np.testing.assert_allclose(sharp, calibration.apply_temperature((plain + mirror) / 2, 0.5),
                               rtol=1e-5)
    np.testing.assert_allclose(predict_probs([model], images, inference=[Inference()]), plain,
                               rtol=1e-6)


def test_each_ensemble_member_gets_its_own_inference(images: np.ndarray) -> None:
    first, second = tiny_model(seed=6, name="a"), tiny_model(seed=7, name="b")
    settings = [Inference(flip_tta=True), Inference(temperature=2.0)]
    expected = (predict_probs([first], images, inference=settings[:1])
                + predict_probs([second], images, inference=settings[1:])) / 2
    np.testing.assert_allclose(predict_probs([first, second], images, inference=settings),
                               expected, rtol=1e-6)
    with pytest.raises(ValueError, match="1 inference settings for 2 models"):
        predict_probs([first, second], images, inference=settings[:1])


def test_progress_counts_mirror_passes(images: np.ndarray) -> None:
    seen: list[tuple[int, int]] = []
    predict_probs([tiny_model(), tiny_model(seed=8)], images, batch_size=2,
                  progress=lambda done, total: seen.append((done, total)),
                  inference=[Inference(flip_tta=True), Inference()])
    assert {total for _, total in seen} == {15}  # 5 images, plus 5 mirrored, plus 5
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (15, 15)


def test_inference_refuses_bad_values() -> None:
    for temperature in (0, -2.0, float("inf"), True, "1"):
        with pytest.raises(ValueError, match=r"Inference\.temperature"):
            Inference(temperature=temperature)
    with pytest.raises(ValueError, match=r"Inference\.flip_tta"):
        Inference(flip_tta=1)


def test_run_inference_reads_the_run_folder(tmp_path: Path) -> None:
    RunConfig().save(tmp_path / rundir.CONFIG)  # flip_tta defaults on
    assert run_inference(tmp_path) == Inference(flip_tta=True)  # no temperature yet: T = 1
    rundir.update_status(tmp_path, status="completed", temperature=0.65)
    assert run_inference(tmp_path) == Inference(flip_tta=True, temperature=0.65)
    RunConfig(augment=AugmentConfig(flip_tta=False)).save(tmp_path / rundir.CONFIG)
    assert run_inference(tmp_path) == Inference(temperature=0.65)


def test_old_imported_and_damaged_runs_get_plain_inference(tmp_path: Path) -> None:
    old = RunConfig().to_dict()
    del old["augment"]["flip_tta"]  # written before the setting existed
    rundir.write_json_atomic(tmp_path / rundir.CONFIG, old)
    assert run_inference(tmp_path) == Inference()
    RunConfig().save(tmp_path / rundir.CONFIG)
    rundir.update_status(tmp_path, imported=True, temperature=2.0)
    assert run_inference(tmp_path) == Inference(temperature=2.0)  # imports: never TTA
    for broken in (-1, 0, "hot", True, None):
        rundir.update_status(tmp_path, imported=False, temperature=broken)
        assert run_inference(tmp_path) == Inference(flip_tta=True)
    assert run_inference(tmp_path / "missing") == Inference()


def test_load_model_round_trip(tmp_path: Path, images: np.ndarray) -> None:
    model = tiny_model(preprocess=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(predict_probs([loaded], images), predict_probs([model], images),
                               rtol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_model_refuses_lambda_layers(tmp_path: Path, suffix: str) -> None:
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / f"lambda{suffix}"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelFileError, match=r"contains arbitrary code .* was refused"):
        load_model(path)


def test_load_model_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match=r"notes\.keras is not a Keras model"):
        load_model(text)
    other = tmp_path / "model.txt"
    other.write_text("not a model")
    with pytest.raises(ModelFileError, match=r"model\.txt is not a loadable Keras model"):
        load_model(other)
