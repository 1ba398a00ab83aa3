"""Class: the teacher's page (the queue, every student's jobs, the class limits)."""

from __future__ import annotations

import streamlit as st

from ui.identity import current_person
from ui.legacy import enter_app

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

st.title("Class")
person = current_person()
if not person.teacher:
    st.error("This page is for the teacher: sign in with the teacher passcode (sidebar) or a "
             "teacher's account.", icon=":material/block:")
    st.stop()
