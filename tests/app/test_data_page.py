"""Data page: choosing a dataset, the sample grid, class balance, one image, augmentation."""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cifarkit import datasets, settings, uploads
from cifarkit.classroom import Person
from cifarkit.config import AugmentConfig, DataConfig
from tests.app.conftest import chart_spec, open_page, page_path, rerun
from tests.conftest import class_zip

PAGE = page_path("pages/data.py")
DIGITS_TRAIN, DIGITS_TEST = 1437, 360  # scikit-learn's 1,797 digits, 20 % held out for test


def open_data(**session: object) -> AppTest:
    return open_page(PAGE, 90, **session)


def captions(at: AppTest) -> list[str]:
    """Every image caption on the page, in order."""
    return [image.caption for element in at.get("image") for image in element.proto.imgs]


def metric(at: AppTest, label: str) -> str:
    return next(item.value for item in at.metric if item.label == label)


def test_digits_by_default_with_a_sample_grid() -> None:
    at = open_data()
    assert at.session_state["data_config"] == DataConfig(source="digits")
    assert metric(at, "Classes") == "10"
    assert metric(at, "Training images") == f"{DIGITS_TRAIN:,}"
    assert metric(at, "Test images") == f"{DIGITS_TEST:,}"
    shown = captions(at)
    assert len(shown) == 24 and set(shown) <= {str(digit) for digit in range(10)}


def test_class_filter_and_shuffle_show_other_images_of_that_class() -> None:
    at = open_data()
    at.selectbox(key="data_filter").select("7")
    rerun(at)
    assert captions(at) == ["7"] * 24
    before = [element.proto.imgs[0].url for element in at.get("image")]
    at.button(key="data_shuffle").click()
    rerun(at)
    assert captions(at) == ["7"] * 24
    assert [element.proto.imgs[0].url for element in at.get("image")] != before


def test_class_balance_counts_every_image() -> None:
    at = open_data(data_tab="Class balance")
    spec = chart_spec(at, 0)
    train, test = spec["data"]
    assert train["x"] == [str(digit) for digit in range(10)]
    assert sum(train["y"]) == DIGITS_TRAIN and sum(test["y"]) == DIGITS_TEST


def test_one_image_shows_its_label() -> None:
    at = open_data(data_tab="One image")
    at.number_input(key="data_index").set_value(5)
    rerun(at)
    assert captions(at) == ["train image #5"]
    heading = next(item.value for item in at.markdown if item.value.startswith("### "))
    assert heading[4:] in [str(digit) for digit in range(10)]
    # digit d is label d: people count classes from one
    assert f"Class number: **{int(heading[4:]) + 1} of 10**" in [item.value for item in at.markdown]


def test_class_names_are_shown_with_spaces_on_data_and_train(cifar100_archive: Path) -> None:
    spec = DataConfig(source="cifar100", classes=("maple_tree", "sweet_pepper"))
    at = open_data(data_config=spec, data_tab="One image")
    shown = [item.value for item in at.markdown]
    assert {"### maple tree", "### sweet pepper"} & set(shown)
    assert {"Superclass: **trees**", "Superclass: **fruit and vegetables**"} & set(shown)
    options = at.multiselect(key="data_classes").options
    assert "maple tree" in options and not any("_" in option for option in options)
    assert not any("_" in caption for caption in captions(at))
    train = open_page(page_path("pages/train.py"), 120, data_config=spec)
    assert any("2 classes: maple tree, sweet pepper" in item.value for item in train.markdown)


def test_a_tfrecord_folder_under_an_allowed_root_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = datasets.load(DataConfig(source="digits", max_train_images=200, max_test_images=50))
    folder = datasets.export_tfrecords(dataset, tmp_path / "shared" / "digits", "digits").folder
    monkeypatch.setenv("CIFARKIT_ALLOWED_DIRS", str(tmp_path / "shared"))
    at = open_data()
    assert at.selectbox(key="data_source").options[-1] == "TFRecord folder (from datasets export)"
    at.selectbox(key="data_source").select("tfrecord")
    rerun(at)
    assert "datasets export --format tfrecord" in at.info[0].value  # no path yet
    at.text_input(key="data_path").input(str(folder))
    rerun(at)
    assert at.session_state["data_config"] == DataConfig(source="tfrecord", path=str(folder))
    assert (metric(at, "Classes"), metric(at, "Training images"), metric(at, "Test images")) == (
        "10", "200", "50")
    train = open_page(page_path("pages/train.py"), 120,
                      data_config=at.session_state["data_config"])
    assert any(f"TFRecord folder · `{folder}`" in item.value for item in train.markdown)
    assert metric(train, "Trainable parameters")  # the model is sized from the manifest
    at.text_input(key="data_path").input("/usr")  # typed like a folder's: the same check
    rerun(at)
    assert at.error[0].value.startswith("/usr is outside the folders this app may read")
    assert at.session_state["data_config"].path == str(folder)  # the last usable choice


def test_augmentation_preview_follows_the_sliders_and_is_kept_for_training() -> None:
    at = open_data(data_tab="Augmentation")
    # Digits start without mirroring: a mirrored digit is another symbol.
    assert at.session_state["augment_config"] == AugmentConfig(horizontal_flip=False,
                                                               rotation=0.03, shift=0.1)
    shown = captions(at)
    assert len(shown) == 4 * 5 and shown[1:5] == [f"variant {n}" for n in range(1, 5)]
    first_row = [image.url for image in at.get("image")[0].proto.imgs]
    at.slider(key="aug_rotation").set_value(0.1)
    at.toggle(key="aug_horizontal_flip").set_value(True)
    rerun(at)
    assert at.session_state["augment_config"].rotation == pytest.approx(0.1)
    assert at.session_state["augment_config"].horizontal_flip
    assert any("±36°" in caption.value for caption in at.caption)
    new_row = [image.url for image in at.get("image")[0].proto.imgs]
    assert new_row[0] == first_row[0] and new_row[1:] != first_row[1:]
    at.button(key="aug_reset").click()
    rerun(at)
    assert at.slider(key="aug_rotation").value == pytest.approx(0.03)


def test_cifar_without_archive_says_where_to_put_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    at = open_data()
    at.selectbox(key="data_source").select("cifar10")
    rerun(at)
    message = at.info[0].value
    assert "cifar-10-python.tar.gz" in message and str(settings.cache_dir()) in message
    assert not at.get("image")
    assert at.session_state["data_config"].source == "digits"  # nothing unusable is kept
    at.button(key="data_use_digits").click()
    rerun(at)
    assert at.selectbox(key="data_source").value == "digits"
    assert len(captions(at)) == 24


def test_failed_download_keeps_its_message_and_one_way_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    with socket.socket() as probe:  # a port nobody listens on: the download fails at once
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/cifar-10-python.tar.gz"
    monkeypatch.setattr(datasets, "ensure_archive",
                        functools.partial(datasets.ensure_archive, url=url))
    at = open_data()
    at.selectbox(key="data_source").select("cifar10")
    rerun(at)
    at.button(key="data_download_cifar10").click()
    rerun(at)
    assert "could not download cifar-10-python.tar.gz" in at.warning[0].value
    assert str(settings.cache_dir()) in at.warning[0].value
    digits_buttons = [button.key for button in at.button if "digits" in button.key]
    assert digits_buttons == ["data_use_digits"]


def test_cifar100_subset_by_name_shows_fine_and_coarse_labels(
        cifar100_archive: Path) -> None:
    at = open_data()
    at.selectbox(key="data_source").select("cifar100")
    rerun(at)
    at.radio(key="data_subset").set_value("names")
    rerun(at)
    at.multiselect(key="data_classes").set_value(["apple", "orange", "bee"])
    rerun(at)
    spec = at.session_state["data_config"]
    assert spec.source == "cifar100" and spec.classes == ("apple", "orange", "bee")
    assert metric(at, "Classes") == "3"
    shown = set(captions(at))
    assert shown <= {"apple (fruit and vegetables)", "orange (fruit and vegetables)",
                     "bee (insects)"}
    assert shown
    at.radio(key="data_label_mode").set_value("coarse")
    rerun(at)
    spec = at.session_state["data_config"]
    assert spec.label_mode == "coarse" and len(spec.classes) == 5  # fine names were dropped
    at.radio(key="data_subset").set_value("count")
    rerun(at)
    at.slider(key="data_num_classes").set_value(4)
    rerun(at)
    assert at.session_state["data_config"].num_classes == 4
    assert metric(at, "Classes") == "4"


def test_a_single_class_is_refused_with_the_field_name() -> None:
    at = open_data()
    at.radio(key="data_subset").set_value("names")
    rerun(at)
    valid = at.session_state["data_config"]
    assert valid.classes == ("0", "1", "2", "3", "4")  # a first pick to start from
    at.multiselect(key="data_classes").set_value(["3"])
    rerun(at)
    assert "data.classes" in at.error[0].value
    assert at.session_state["data_config"] == valid  # the last usable choice stays
    assert not at.get("image")


def test_caps_are_part_of_the_choice() -> None:
    at = open_data()
    at.number_input(key="data_max_train").set_value(300)
    at.number_input(key="data_max_test").set_value(100)
    rerun(at)
    spec = at.session_state["data_config"]
    assert (spec.max_train_images, spec.max_test_images) == (300, 100)
    assert metric(at, "Training images") == "300" and metric(at, "Test images") == "100"


def pets_zip(per_class: int = 5) -> bytes:
    """A .zip with cats/ and dogs/ folders of small PNGs, plus one broken file."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("cats", "dogs"):
            for index in range(per_class):
                image = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
                png = io.BytesIO()
                image.save(png, format="PNG")
                archive.writestr(f"pets/{name}/{index}.png", png.getvalue())
        archive.writestr("pets/cats/notes.png", b"not an image")
    return buffer.getvalue()


def test_uploaded_zip_is_saved_for_the_workers_and_used() -> None:
    at = open_data()
    at.selectbox(key="data_source").select("folder")
    rerun(at)
    assert "Upload a .zip" in at.info[0].value
    data = pets_zip()
    at.file_uploader(key="data_upload").set_value(("pets.zip", data, "application/zip"))
    rerun(at)
    spec = at.session_state["data_config"]
    folder = uploads.owner_dir(at.session_state["upload_owner"])  # this session's own
    digest = hashlib.sha256(data).hexdigest()[:16]
    assert spec.source == "folder" and spec.path == str((folder / digest / "pets.zip").resolve())
    assert Path(spec.path).is_file()
    assert metric(at, "Classes") == "2"
    assert "1 file(s) were skipped" in at.warning[0].value
    assert set(captions(at)) == {"cats", "dogs"}


def spy_on_loading(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The data paths datasets.load is asked for (the pages' cached loader calls it)."""
    asked: list[str | None] = []
    real = datasets.load

    def load(spec: DataConfig, *args: object, **kwargs: object) -> datasets.Dataset:
        asked.append(spec.path)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(datasets, "load", load)
    return asked


def type_path(at: AppTest, text: str) -> AppTest:
    if at.selectbox(key="data_source").value != "folder":
        at.selectbox(key="data_source").select("folder")
        rerun(at)
    at.text_input(key="data_path").input(text)
    return rerun(at)


def test_a_typed_folder_outside_the_allowed_ones_is_refused_unread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CIFARKIT_ALLOWED_DIRS", raising=False)
    asked = spy_on_loading(monkeypatch)
    at = type_path(open_data(), "/usr")
    assert "/usr" not in asked and not at.get("image")
    own = uploads.owner_dir(at.session_state["upload_owner"])
    assert at.error[0].value == (
        f"/usr is outside the folders this app may read ({own}, {tmp_path / 'data'}): upload a "
        ".zip instead, or ask whoever runs the app to add the folder to CIFARKIT_ALLOWED_DIRS")
    assert at.session_state["data_config"] == DataConfig(source="digits")  # the last usable one


def test_two_sessions_uploading_the_same_name_each_see_their_own_images(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Two people: one person's sessions (a reload, another tab) share their uploads.
    first, second = (open_data(person=Person(key, key.title())) for key in ("first", "second"))
    for at, classes in ((first, ("cats", "dogs")), (second, ("birds", "fish", "frogs"))):
        at.selectbox(key="data_source").select("folder")
        rerun(at)
        at.file_uploader(key="data_upload").set_value(("pets.zip", class_zip(classes, 4),
                                                       "application/zip"))
        rerun(at)
    assert first.session_state["upload_owner"] != second.session_state["upload_owner"]
    paths = [at.session_state["data_config"].path for at in (first, second)]
    assert paths[0] != paths[1] and all(path.endswith("/pets.zip") for path in paths)
    assert set(captions(first)) == {"cats", "dogs"} and metric(first, "Classes") == "2"
    assert set(captions(second)) <= {"birds", "fish", "frogs"} and metric(second, "Classes") == "3"
    asked = spy_on_loading(monkeypatch)
    type_path(second, paths[0])  # the other session's upload, typed by hand
    assert second.error[0].value.startswith(f"{paths[0]} is outside the folders this app may read")
    assert paths[0] not in asked
    assert second.session_state["data_config"].path == paths[1]

