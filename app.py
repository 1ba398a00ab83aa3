"""cifarkit's Streamlit app: `streamlit run app.py`.

Only the router lives here; each page is a thin script of widgets over the cifarkit package, and
training runs in worker processes, never in this one. Every page starts with
ui.legacy.enter_app(): on a fresh server Streamlit may run a deep-linked page file without this
router (its legacy pages/ mode), and the page then reruns through here.
"""

from pathlib import Path

import streamlit as st

from ui import identity, script_cleanup
from ui.state import current_data_config

# The tab's icon is a file served by this server: Streamlit fetches a Material page_icon from
# fonts.gstatic.com, which a classroom without internet cannot reach.
PAGE_ICON = Path(__file__).parent / "assets" / "favicon.png"

st.set_page_config(page_title="cifarkit", page_icon=PAGE_ICON, layout="wide",
                   menu_items={"About": "cifarkit: explore CIFAR, train Keras image classifiers "
                               "and study their mistakes."})

CLASS_PAGE = "pages/teacher.py"
PAGES = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Learn": [
        st.Page("pages/data.py", title="Data", icon=":material/photo_library:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/tune.py", title="Tune", icon=":material/tune:"),
    ],
    "Analyse": [
        st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
        st.Page("pages/errors.py", title="Errors", icon=":material/error_med:"),
        st.Page("pages/predict.py", title="Predict", icon=":material/image_search:"),
    ],
}


def with_class_page(teacher: bool) -> dict[str, list[st.Page]]:
    """The menu, with the teacher's page in its own section for teachers; for anyone else it is
    hidden but still routed, so a student following its URL gets the page's own refusal rather
    than Streamlit's "page not found" (and no empty section heading shows)."""
    page = st.Page(CLASS_PAGE, title="Class", icon=":material/school:",
                   visibility="visible" if teacher else "hidden")
    return {**PAGES, "Teacher": [page]} if teacher else {**PAGES, "": [*PAGES[""], page]}


script_cleanup.install()  # no full gc.collect after every run (each 2 s live update included)
known = identity.known_person()
page = st.navigation(with_class_page(bool(known and known.teacher)))
current_data_config()  # every page keeps the data choice in its URL: reload, new tab, link
identity.sidebar(identity.current_person())  # asks for a name in place of the page until given
page.run()
