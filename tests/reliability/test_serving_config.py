"""The serving defaults in .streamlit/config.toml, as written and as Streamlit applies them.

A class shares one server: it reaches the network only when asked to, uploads are capped to what
a class needs, students never see an error's message or traceback (they name server paths), and
uploads need the page's XSRF token.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from streamlit import config as streamlit_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".streamlit" / "config.toml"

SERVING = {  # option -> the value a classroom server must run with
    "server.address": "127.0.0.1",  # serving the network is an explicit --server.address
    "server.maxUploadSize": 200,
    "client.showErrorDetails": "type",
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "browser.gatherUsageStats": False,
}


def test_config_file_sets_every_serving_option_explicitly() -> None:
    """Written out, so a change in Streamlit's own defaults cannot loosen them silently."""
    written = tomllib.loads(CONFIG.read_text())
    for option, value in SERVING.items():
        section, name = option.split(".")
        assert written[section][name] == value, option


def test_streamlit_applies_the_serving_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `streamlit run app.py` from the repo really uses, parsed by Streamlit itself."""
    monkeypatch.chdir(ROOT)
    options = streamlit_config.get_config_options(force_reparse=True)
    for option, value in SERVING.items():
        assert options[option].value == value, option
        assert options[option].where_defined == str(CONFIG), option

