"""Small wording helpers shared by the CLI, the pages and the charts (no streamlit)."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """ "1 epoch", "3 epochs", "1,200 images": one rule instead of "1 epochs" in places.

    Only "s" is appended; pass plural_form for any other ending (plural(2, "class", "classes")).
    """
    word = noun if count == 1 else (plural_form or noun + "s")
    return f"{count:,} {word}"
