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


def test_display_name_and_one_based_class_number() -> None:
    from cifarkit.labels import class_number, display_name

    assert display_name("maple_tree") == "maple tree"
    assert display_name("large_man-made_outdoor_things") == "large man-made outdoor things"
    assert class_number(5, 10) == "6 of 10"
    assert class_number(0, 100) == "1 of 100"

