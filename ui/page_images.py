"""Cited PDF pages as images (quote highlighted), and the password form for locked PDFs."""

from __future__ import annotations

import streamlit as st

from lib.errors import FolioError, PasswordRequired, WrongPassword
from ui.resources import settings, store_at

LOCKED = "locked"  # what the page cache holds for a PDF this session cannot open


def page_image(data: dict, key: str = "") -> None:
    """The cited PDF page as an image with the quote highlighted (when the original is kept)."""
    if data.get("format") != "pdf" or not data.get("sha") or not data.get("page"):
        return
    rendered = _page_png(data["sha"], int(data["page"]), data.get("quote") or "")
    if rendered == LOCKED:
        page_password_form(data["sha"], key)
        return
    if rendered is None:
        st.caption("The page image is not available (the document was deleted, or its original cannot be opened).")
        return
    png, found = rendered
    note = "quote highlighted" if found else "quote not located on the page image"
    st.image(png, caption=f"{data.get('document', '')}, page {data['page']} ({note})", width="stretch")


def page_password_form(sha: str, key: str) -> None:
    """A password-protected PDF whose password this session does not know: ask for it here."""
    tried = sha in st.session_state.passwords
    message = (
        "That password did not open this PDF. Check it (it is case-sensitive) and try again."
        if tried else
        "This PDF is password-protected, and Folio does not keep passwords between sessions. "
        "Type its password to see the page."
    )
    (st.error if tried else st.caption)(message)
    with st.form(f"page-pw-{key}", border=False):
        password = st.text_input("Password of this PDF", type="password", key=f"page-pw-field-{key}")
        if st.form_submit_button("Show the page", icon=":material/lock_open:") and password:
            st.session_state.passwords[sha] = password
            st.rerun()


@st.cache_data(max_entries=64, show_spinner=False)
def _page_png_cached(data_dir: str, sha: str, page: int, quote: str, password: str | None):
    from lib.output.page_image import render_page

    try:
        original = store_at(data_dir).get_original(sha)
        image = render_page(original, page, quote=quote or None, password=password, zoom=1.3)
    except (PasswordRequired, WrongPassword):
        return LOCKED
    except FolioError:
        return None
    return image.png, image.found


def _page_png(sha: str, page: int, quote: str):
    """(PNG, quote found on the page) or None when the page cannot be shown."""
    password = st.session_state.passwords.get(sha)
    return _page_png_cached(str(settings().data_dir), sha, page, quote, password)


def clear_page_images() -> None:
    """Forget every rendered page (a document was deleted)."""
    _page_png_cached.clear()
