"""Issue 7, defects 2 and 3: typed paths read only allowed folders; uploads are kept per owner.

Package-level tests of cifarkit.uploads (the pages call it), plus the Train page's weights
upload; the Data page's refusal message and two browser sessions are in tests/app/test_data_page.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit import atomicfile, datasets, settings, uploads
from tests.app.conftest import open_page, page_path, rerun
from tests.conftest import class_zip

TAIL = ("upload a .zip instead, or ask whoever runs the app to add the folder to "
        "CIFARKIT_ALLOWED_DIRS")


def class_folder(root: Path, classes: tuple[str, ...], per_class: int = 3) -> Path:
    """The same layout as class_zip, as real files under `root`."""
    rng = np.random.default_rng(1)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                root / name / f"{index}.png")
    return root


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def refusal(typed: str, owner: str) -> str:
    listed = ", ".join(str(root) for root in uploads.allowed_roots(owner))
    return f"{typed} is outside the folders this app may read ({listed}): {TAIL}"


# --- defect 3: uploads per owner, by content


def test_same_file_name_from_two_owners_gives_each_their_own_images() -> None:
    alice = uploads.save(class_zip(("cats", "dogs")), "photos.zip", "alice")
    bob = uploads.save(class_zip(("birds", "fish", "frogs"), seed=1), "photos.zip", "bob")
    assert alice != bob and alice.name == bob.name == "photos.zip"
    assert alice.parent.parent == settings.uploads_dir() / "alice"
    assert bob.parent.parent == settings.uploads_dir() / "bob"
    assert datasets.load_image_folder(alice).class_names == ["cats", "dogs"]
    assert datasets.load_image_folder(bob).class_names == ["birds", "fish", "frogs"]


def test_same_name_different_content_in_one_session_keeps_both() -> None:
    first = uploads.save(class_zip(("cats", "dogs")), "photos.zip", "alice")
    second = uploads.save(class_zip(("birds", "fish")), "photos.zip", "alice")
    assert first != second
    assert datasets.load_image_folder(first).class_names == ["cats", "dogs"]  # not overwritten
    assert files_under(settings.uploads_dir()) == sorted([first, second])


def test_the_same_upload_twice_is_stored_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data = class_zip(("cats", "dogs"))
    first = uploads.save(data, "photos.zip", "alice")
    assert first == settings.uploads_dir() / "alice" / hashlib.sha256(data).hexdigest()[:16] / (
        "photos.zip")

    def no_second_write(*_: object) -> None:
        raise AssertionError("an upload already stored was written again")

    monkeypatch.setattr(uploads, "_write_atomic", no_second_write)
    assert uploads.save(memoryview(data), "photos.zip", "alice") == first
    assert files_under(settings.uploads_dir()) == [first]
    assert first.read_bytes() == data


@pytest.mark.parametrize(("name", "stored"), [
    ("../../etc/photos.zip", "photos.zip"),
    ("/abs/path/photos.zip", "photos.zip"),
    ("C:\\Users\\ann\\photos.zip", "photos.zip"),
    ("my photos (1).weights.h5", "my_photos_1_.weights.h5"),
    ("..", "upload"),
    ("", "upload"),
    (".bashrc", "bashrc"),
    ("fotos-ñ.zip", "fotos-_.zip"),
    ("a" * 300 + ".weights.h5", "a" * 89 + ".weights.h5"),
])
def test_upload_names_lose_folders_and_odd_characters(name: str, stored: str) -> None:
    assert uploads.safe_name(name) == stored
    path = uploads.save(b"PK", name, "alice")
    assert path.name == stored and path.parent.parent == settings.uploads_dir() / "alice"


@pytest.mark.parametrize("owner", ["../bob", "a/b", "", ".", "a.b", "x" * 65, "ann\n"])
def test_owner_keys_that_are_not_plain_folder_names_are_refused(owner: str) -> None:
    with pytest.raises(ValueError, match="an upload owner must be 1-64 letters, digits"):
        uploads.save(b"PK", "photos.zip", owner)
    assert not settings.uploads_dir().exists()


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        uploads.save(b"PK data", "photos.zip", "alice")
    assert files_under(settings.uploads_dir()) == []


def test_upload_files_are_written_whole_or_not_at_all() -> None:
    path = uploads.save(b"x" * 100_000, "photos.zip", "alice")
    assert path.stat().st_size == 100_000
    assert [entry.name for entry in path.parent.iterdir()] == ["photos.zip"]  # no .part left


# --- defect 2: typed paths only inside allowed roots


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """CIFARKIT_DATA_DIR and two CIFARKIT_ALLOWED_DIRS folders, each holding a class folder."""
    folders = {name: tmp_path / name for name in ("data", "shared", "more", "outside")}
    for folder in folders.values():
        class_folder(folder / "pets", ("cats", "dogs"))
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(folders["data"]))
    monkeypatch.setenv("CIFARKIT_ALLOWED_DIRS",
                       os.pathsep.join([str(folders["shared"]), " ", str(folders["more"])]))
    monkeypatch.setenv("CIFARKIT_UPLOADS_DIR", str(tmp_path / "uploads"))
    return folders


def test_allowed_roots_are_own_uploads_data_dir_and_the_listed_folders(
        roots: dict[str, Path]) -> None:
    assert settings.allowed_dirs() == [roots["shared"], roots["more"]]
    assert uploads.allowed_roots("alice") == [settings.uploads_dir() / "alice", roots["data"],
                                              roots["shared"], roots["more"]]


def test_allowed_folders_load(roots: dict[str, Path]) -> None:
    for name in ("data", "shared", "more"):
        path = uploads.readable_path(f"  {roots[name] / 'pets'}  ", "alice")
        assert path == (roots[name] / "pets").resolve()
        assert datasets.load_image_folder(path).class_names == ["cats", "dogs"]
    own = uploads.save(class_zip(("birds", "fish")), "photos.zip", "alice")
    assert uploads.readable_path(str(own), "alice") == own.resolve()
    missing = roots["data"] / "not-there"  # allowed: the loader then says it does not exist
    assert uploads.readable_path(str(missing), "alice") == missing.resolve()


@pytest.mark.parametrize("typed", ["/usr", "/", "/etc/passwd", "relative/folder"])
def test_paths_outside_the_roots_are_refused(roots: dict[str, Path], typed: str) -> None:
    with pytest.raises(uploads.PathRefused) as refused:
        uploads.readable_path(typed, "alice")
    assert str(refused.value) == refusal(typed, "alice")


def test_dot_dot_out_of_an_allowed_root_is_refused(roots: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    escape = f"{roots['data']}/../outside/pets"
    with pytest.raises(uploads.PathRefused) as refused:
        uploads.readable_path(escape, "alice")
    assert str(refused.value) == refusal(escape, "alice")
    monkeypatch.chdir(roots["data"])  # the server's working folder is an allowed root
    assert uploads.readable_path("pets", "alice") == (roots["data"] / "pets").resolve()
    with pytest.raises(uploads.PathRefused, match=r"^\.\./ is outside the folders"):
        uploads.readable_path("../", "alice")


def test_home_folder_shortcut_is_resolved_before_the_check(
        roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(roots["outside"]))
    with pytest.raises(uploads.PathRefused, match=r"^~/pets is outside the folders"):
        uploads.readable_path("~/pets", "alice")


def test_a_symlink_inside_an_allowed_root_pointing_out_is_refused(
        roots: dict[str, Path]) -> None:
    link = roots["shared"] / "escape"
    link.symlink_to(roots["outside"], target_is_directory=True)
    (roots["data"] / "loop").symlink_to(roots["data"] / "loop")
    for typed in (str(link), str(link / "pets"), str(roots["data"] / "loop")):
        with pytest.raises(uploads.PathRefused) as refused:
            uploads.readable_path(typed, "alice")
        assert str(refused.value) == refusal(typed, "alice")


def test_another_owners_uploads_are_refused_even_inside_an_allowed_root(
        tmp_path: Path, roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_ALLOWED_DIRS", str(tmp_path))  # holds uploads/ too
    bob = uploads.save(class_zip(("birds", "fish")), "photos.zip", "bob")
    alice = uploads.save(class_zip(("cats", "dogs")), "photos.zip", "alice")
    assert uploads.readable_path(str(alice), "alice") == alice.resolve()
    assert uploads.readable_path(str(roots["outside"]), "alice") == roots["outside"].resolve()
    for typed in (str(bob), str(bob.parent), str(settings.uploads_dir()),
                  f"{settings.uploads_dir()}/alice/../bob"):
        with pytest.raises(uploads.PathRefused) as refused:
            uploads.readable_path(typed, "alice")
        assert str(refused.value) == refusal(typed, "alice")


# --- the Train page's backbone weights upload


def test_train_page_weights_uploads_are_kept_per_session() -> None:
    stored = []
    for content in (b"weights of session one", b"weights of session two"):
        at = open_page(page_path("pages/train.py"), 120)
        at.radio(key="train_kind").set_value("transfer")
        rerun(at)
        at.radio(key="train_weights").set_value("file")
        rerun(at)
        at.file_uploader(key="train_weights_file").set_value(
            ("../backbone.weights.h5", content, "application/octet-stream"))
        rerun(at)
        owner = at.session_state["upload_owner"]
        stored.append(uploads.owner_dir(owner) / hashlib.sha256(content).hexdigest()[:16]
                      / "backbone.weights.h5")
    assert files_under(settings.uploads_dir()) == sorted(stored)
    assert [path.read_bytes() for path in stored] == [b"weights of session one",
                                                      b"weights of session two"]
