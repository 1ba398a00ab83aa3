"""Augmentation widgets, the same words on the Data page and in the Train form."""

from __future__ import annotations

import streamlit as st

from cifarkit.config import AugmentConfig

# Augmentation strengths: (config field, label, slider max, step, help for a learner).
AUGMENT_SLIDERS = (
    ("rotation", "Rotation", 0.25, 0.01,
     "Turns each image by a random angle, up to this fraction of a full turn "
     "(0.05 ≈ ±18°). Teaches the network that a tilted object is the same object."),
    ("zoom", "Zoom", 0.5, 0.05,
     "Zooms in or out at random by up to this fraction of the image side (0.1 = ±10 %)."),
    ("shift", "Shift", 10 / 32, 1 / 32,  # steps of one pixel of a 32-px image
     "Moves the picture up/down/left/right at random by up to this fraction of its side; the "
     "gap is filled by mirroring the edge. Objects are not always centred. 0.0625 = 2 pixels "
     "of a 32-px image (whole pixels take the fast path)."),
    ("contrast", "Contrast", 0.8, 0.05,
     "Changes the contrast at random by up to ± this fraction: dull or punchy photos."),
    ("brightness", "Brightness", 0.5, 0.05,
     "Brightens or darkens at random by up to this fraction of the pixel range: "
     "photos taken in different light."),
)
FIELDS = ("horizontal_flip", "vertical_flip", *(row[0] for row in AUGMENT_SLIDERS))


def augment_controls(prefix: str, initial: AugmentConfig, columns: int = 1) -> AugmentConfig:
    """Toggles and strength sliders for random augmentation; keys start with `prefix`.

    Widget values start from `initial` the first time the widgets appear.
    """
    for name in FIELDS:
        st.session_state.setdefault(f"{prefix}{name}", getattr(initial, name))
    cells = st.columns(columns) if columns > 1 else [st.container()]
    cells[0].toggle("Mirror left ↔ right", key=f"{prefix}horizontal_flip",
                    help="Flips half of the images left–right at random. A car facing left is "
                    "still a car, so this doubles the variety for free (but a mirrored digit "
                    "or letter is not the same symbol).")
    cells[0].toggle("Flip upside down", key=f"{prefix}vertical_flip",
                    help="Flips half of the images top–bottom at random. Rarely right for photos "
                    "(the sky is up); fine for e.g. microscope or satellite images.")
    for index, (name, label, top, step, text) in enumerate(AUGMENT_SLIDERS):
        top = max(top, float(st.session_state[f"{prefix}{name}"]))  # a config may go further
        cells[(index + 1) % len(cells)].slider(label, 0.0, top, step=step, key=f"{prefix}{name}",
                                               help=text + " 0 switches it off.")
    return AugmentConfig(**{name: st.session_state[f"{prefix}{name}"] for name in FIELDS})


def forget_widgets(prefix: str) -> None:
    """Drop widget values whose key starts with `prefix`, so they restart from their defaults."""
    for key in [key for key in st.session_state if str(key).startswith(prefix)]:
        del st.session_state[key]
