"""Files that app users bring: uploads kept per owner, and the folders a typed path may read.

One server serves a whole class, so nothing one user uploads or types may reach another's files.
An upload is stored as uploads/<owner>/<sha256[:16]>/<sanitised name>: the owner keeps sessions
(later: user accounts) apart, the content hash keeps two different files with the same name
apart and lets the same file uploaded twice be reused. Uploads are never cleaned up here: a
run's config refers to its data or weights file by path, and resume reads it again.

A typed path is only read inside an allowed root (the owner's own uploads, CIFARKIT_DATA_DIR,
CIFARKIT_ALLOWED_DIRS), and never inside another owner's uploads. The check belongs to the
app: the training worker re-reads data by the path in its RunConfig unchecked, since a config
made in the app was checked when it was made, and a config given to the CLI comes from the
server's operator, who can read those files anyway.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cifarkit import atomicfile, settings

OWNER_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a folder name, never a path
HASH_CHARS = 16  # hex digits of sha256 naming an upload's folder (64 bits)
MAX_NAME_CHARS = 100  # a stored file name is cut to this, keeping its suffixes
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class PathRefused(ValueError):
    """A typed path outside the folders this user may read; the message names those folders."""


def owner_dir(owner: str) -> Path:
    """The owner's own upload folder; an owner key that is not a plain folder name is refused."""
    if not OWNER_PATTERN.fullmatch(owner):
        raise ValueError(f"an upload owner must be 1-64 letters, digits, '_' or '-', got {owner!r}")
    return settings.uploads_dir() / owner


def safe_name(name: str) -> str:
    """A file name without folders or odd characters, keeping its suffixes (.weights.h5, .zip)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_CHARS.sub("_", base).lstrip(".")  # no hidden files, no '.' or '..'
    suffix = "".join(Path(cleaned).suffixes)[-MAX_NAME_CHARS // 2:]
    stem = cleaned[:len(cleaned) - len(suffix)] if suffix else cleaned
    return (stem[:MAX_NAME_CHARS - len(suffix)] or "upload") + suffix


def save(data: bytes | memoryview, name: str, owner: str) -> Path:
    """Store an upload under the owner's folder, named by its content; the stored path.

    The same content under the same name is written once and then reused (a rerun of the page
    resends the upload). The file appears in one step, so no reader sees half of it.
    """
    content = memoryview(data)
    digest = hashlib.sha256(content).hexdigest()[:HASH_CHARS]
    target = owner_dir(owner) / digest / safe_name(name)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, content)
    return target


def _write_atomic(target: Path, content: memoryview) -> None:
    atomicfile.write_atomic(target, lambda file: file.write(content), binary=True, suffix=".part")


def allowed_roots(owner: str) -> list[Path]:
    """The folders a typed path may lie in: the owner's uploads, CIFARKIT_DATA_DIR, and
    CIFARKIT_ALLOWED_DIRS (the uploads folder as a whole never: it holds everyone's files)."""
    data = settings.data_dir()
    return [owner_dir(owner), *([data] if data else []), *settings.allowed_dirs()]


def readable_path(text: str, owner: str) -> Path:
    """The typed path, resolved (~, '..' and symlinks), if this owner may read it.

    Raises PathRefused before anything at that path is read, also for another owner's uploads
    inside an allowed root; whether the path exists is not revealed outside the roots.
    """
    typed = text.strip()
    roots = allowed_roots(owner)
    try:
        path = Path(typed).expanduser().resolve()
        inside = any(_within(path, root) for root in roots)
        foreign = _within(path, settings.uploads_dir()) and not _within(path, owner_dir(owner))
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte, no home folder
        inside, foreign = False, True
    if inside and not foreign:
        return path
    listed = ", ".join(str(root) for root in roots)
    raise PathRefused(f"{typed} is outside the folders this app may read ({listed}): upload a "
                      ".zip instead, or ask whoever runs the app to add the folder to "
                      "CIFARKIT_ALLOWED_DIRS")


def _within(path: Path, root: Path) -> bool:
    """Whether a resolved path is the root or lies under it (the root's symlinks followed)."""
    return path.is_relative_to(root.expanduser().resolve())
