"""cifarkit's Streamlit app: `streamlit run app.py`.

Only the router lives here; each page is a thin script of widgets over the cifarkit package, and
training runs in worker processes, never in this one. Every page starts with
ui.legacy.enter_app(): on a fresh server Streamlit may run a deep-linked page file without this
router (its legacy pages/ mode), and the page then reruns through here.
"""

from pathlib import Path

import streamlit as st

from ui.state import current_data_config

# The tab's icon is a file served by this server: Streamlit fetches a Material page_icon from
# fonts.gstatic.com, which a classroom without internet cannot reach.
PAGE_ICON = Path(__file__).parent / "assets" / "favicon.png"

st.set_page_config(page_title="cifarkit", page_icon=PAGE_ICON, layout="wide",
                   menu_items={"About": "cifarkit: explore CIFAR, train Keras image classifiers "
                               "and study their mistakes."})

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

page = st.navigation(PAGES)
current_data_config()  # every page keeps the data choice in its URL: reload, new tab, link
page.run()
