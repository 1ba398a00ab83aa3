"""Class names typed by a user (Runs page import): lines or commas, blanks ignored."""

from __future__ import annotations

import pytest

from cifarkit.labels import parse_names


@pytest.mark.parametrize(("text", "names"), [
    ("cat, dog ,horse", ["cat", "dog", "horse"]),
    ("cat\n\n dog \nhorse\n", ["cat", "dog", "horse"]),
    ("bus, double-decker\ntram", ["bus, double-decker", "tram"]),  # lines win over commas
    ("cat,,dog,", ["cat", "dog"]),
    ("  \n ", []),
])
def test_parse_names(text: str, names: list[str]) -> None:
    assert parse_names(text) == names
