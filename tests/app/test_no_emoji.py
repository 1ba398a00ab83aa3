"""No page draws emoji: on a machine without an emoji font (classroom Linux) they are empty
boxes. Status marks are Material icons (drawn from Streamlit's own font) or coloured badges."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.protobuf import json_format

from cifarkit import jobs
from tests.app.conftest import STATUSES, open_page, page_path
from ui.format import STATUS_BADGES, status_label

# Emoji blocks (pictographs, dingbats, misc symbols and technical, arrows/stars supplement)
# and the emoji presentation selector: none of these may reach a page.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
PAGES = ("home", "data", "train", "tune", "runs", "errors", "predict")
LISTS_RUNS = {"home", "runs", "errors", "predict"}  # pages that name the runs at first sight
# Streamlit's badge colours (st.badge's `color`).
BADGE_COLORS = {"red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"}


def page_texts(node: Any) -> list[str]:
    """Every string an AppTest element tree holds: widget labels, options and help, markdown,
    captions, chart specs, and the cells of every table."""
    if hasattr(node, "children"):
        return [text for child in node.children.values() for text in page_texts(child)]
    texts = [json_format.MessageToJson(node.proto, ensure_ascii=False)]
    if type(node).__name__ == "Dataframe":
        texts.append(node.value.to_csv())
    return texts


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_an_emoji_with_runs_in_every_status(page: str, run_factory) -> None:
    for status in STATUSES:
        run_factory(status, name=f"{status} run")
    at = open_page(page_path(f"pages/{page}.py"), 120)
    texts = page_texts(at._tree)
    assert len(texts) > 5  # the page drew itself
    if page in LISTS_RUNS:
        assert any("completed run" in text for text in texts), page
    found = {char for text in texts for char in EMOJI.findall(text)}
    assert not found, f"emoji on {page}: {sorted(found)}"


def test_every_status_has_a_material_badge() -> None:
    statuses = {*jobs.STATUSES, "interrupted", "damaged"}
    assert statuses <= set(STATUS_BADGES)
    for status, (color, icon) in STATUS_BADGES.items():
        assert color in BADGE_COLORS and re.fullmatch("[a-z_]+", icon), status
        assert status_label(status) == f":{color}-badge[:material/{icon}: {status}]"
    assert status_label("completed") == ":green-badge[:material/check_circle: completed]"
    assert status_label("odd") == ":gray-badge[:material/help: odd]"  # unknown: still a badge
