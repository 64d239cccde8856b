"""Folio's web app: the frame and router. Run with `streamlit run app.py`.

The pages in pages/ are thin: they read session state, call lib/, and render.
Session state is initialised here, in one place (ui/state.py: init_state).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # `streamlit run` from another folder must still find lib/
    sys.path.insert(0, str(ROOT))

import ui.jobs  # noqa: E402
import ui.server  # noqa: E402
import ui.state  # noqa: E402

# The tab icon is a file of ours: a Material icon there makes the browser fetch it from
# fonts.gstatic.com (Streamlit draws every other :material/...: icon from its own font).
st.set_page_config(page_title="Folio", page_icon=ROOT / "ui" / "icon.svg", layout="wide")
ui.state.init_state()

PAGES = [
    st.Page("pages/library.py", title="Library", icon=":material/library_books:", default=True),
    st.Page("pages/ask.py", title="Ask", icon=":material/forum:"),
    st.Page("pages/review.py", title="Review", icon=":material/table_view:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/tune:"),
]
page = st.navigation(PAGES)
deep_link = st.session_state.pop(ui.state.DEEP_LINK, None)
if deep_link:  # a page first opened without this router (see ui.state.require_router)
    st.switch_page(deep_link)
ui.server.sidebar_status(on_settings=page.url_path == "settings")
ui.jobs.sidebar_jobs()  # running and interrupted jobs, on every page
page.run()
