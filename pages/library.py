"""Library: add documents (a few files, many files, a folder), follow the jobs that read them,
list, filter and tick documents a page at a time, manage collections, read and search."""

from __future__ import annotations

import streamlit as st

import ui.collections
import ui.documents
import ui.jobs
import ui.library_list
import ui.reader
import ui.state
import ui.uploads
from ui.document_list import library_formats


def ask_about_collection(shas: list[str], collection) -> None:
    ui.documents.select_documents(shas, origin=collection.id)
    st.switch_page("pages/ask.py")


def main() -> None:
    st.title("Library")
    st.caption(
        "Whole documents, counted exactly in Qwen3 tokens and cut into citable passages. "
        "Everything stays on this machine."
    )
    collections = ui.collections.list_collections()
    ui.uploads.add_panel(collections)
    ui.uploads.unlock_panel()
    ui.jobs.jobs_panel()
    ui.uploads.upload_log()

    ui.collections.flash_notice()  # what the last collection action did (above the tabs: seen from either)
    formats = library_formats()  # counts by format: the format filter, and the library's size
    if not sum(formats.values()):
        st.info("The library is empty. Drop judgments, manuals, books or theses above, or add a folder.",
                icon=":material/info:")
        return
    documents, groups, search = st.tabs(["Documents", "Collections", "Search all documents"])
    with documents:
        ui.library_list.documents_section(collections, formats)
    with groups:
        ui.collections.collections_panel(collections, on_ask=ask_about_collection)
    with search:
        ui.reader.passage_search(None)


ui.state.require_router("pages/library.py")
main()
