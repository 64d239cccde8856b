"""Collections in the app: the list with counts, create, rename, delete, add and remove documents.

A collection is a named group of stored documents (a matter, a product's manuals, a thesis
with its sources); a document can be in several. Deleting a collection keeps its documents.
The store does the work (lib/library/catalog.py); this module draws it and says what happened.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.errors import FolioError
from lib.output import presenting as view
from ui.resources import store

NEW = "__new__"  # the "New collection…" option of a collection chooser


def list_collections() -> list:
    """Every collection with its counts (a few ms even at 10,000 documents); [] after an error, said."""
    try:
        return store().list_collections()
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return []


def describe(collection) -> str:
    """'Smith v Jones · 300 documents · 1,534,211 tokens'."""
    return f"{collection.name} · {view.count_noun(collection.documents, 'document')} · {collection.tokens:,} tokens"


FLASH = "collections-flash"  # (kind, text) shown once, after the rerun an action causes


def _said(action) -> bool:
    """Run a store action; a refusal (a name taken, a collection gone) is kept to show, not raised."""
    try:
        action()
    except FolioError as exc:
        st.session_state[FLASH] = ("error", exc.message)
        return False
    return True


def notice(text: str) -> None:
    """Say what an action did, after the rerun it causes."""
    st.session_state[FLASH] = ("success", text)


def flash_notice() -> None:
    """What the last collection action did, or why it was refused (once)."""
    kind, text = st.session_state.pop(FLASH, (None, ""))
    if kind == "error":
        st.error(view.escape_markdown(text), icon=":material/error:")
    elif kind == "success":
        st.success(view.escape_markdown(text), icon=":material/check_circle:")


# --- choosing a collection to add to ----------------------------------------------------


def target_chooser(key: str, collections: list, *, label: str = "Collection", allow_none: bool = False,
                   none_label: str = "No collection") -> str | None:
    """A collection by name, or a new one typed in place; None when none is chosen (or typed yet)."""
    names = [c.name for c in collections]
    options = ([None] if allow_none else []) + names + [NEW]
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]  # renamed or deleted meanwhile

    def shown(option):
        if option is None:
            return none_label
        return "New collection…" if option == NEW else option

    choice = st.selectbox(label, options, key=key, format_func=shown, index=0 if allow_none else None,
                          placeholder="Choose a collection…")
    if choice != NEW:
        return choice
    typed = st.text_input("Name of the new collection", key=f"{key}-new", placeholder="e.g. Smith v Jones (appeal)")
    return " ".join(typed.split()) or None


def add_documents(name: str, shas: list[str]) -> bool:
    """Add documents to the collection `name` (created if needed); says how many were new to it."""
    added = {}

    def work():
        collection = store().ensure_collection(name)
        added["n"] = store().add_to_collection(collection.id, shas)
        added["name"] = collection.name

    if not _said(work):
        return False
    already = len(shas) - added["n"]
    notice(f"Added {view.count_noun(added['n'], 'document')} to {added['name']}"
           + (f" ({already:,} were in it already)." if already else "."))
    return True


def remove_documents(collection_id: int, name: str, shas: list[str]) -> bool:
    """Take documents out of a collection; they stay in the library."""
    removed = {}
    if not _said(lambda: removed.update(n=store().remove_from_collection(collection_id, shas))):
        return False
    notice(f"Took {view.count_noun(removed['n'], 'document')} out of {name}; they stay in the library.")
    return True


# --- the Collections panel of the Library page -------------------------------------------


def collections_panel(collections: list, on_ask) -> None:
    """The collections with their counts; create, rename, delete, ask about one.

    `on_ask(shas, collection)` chooses a collection's documents on the Ask page.
    """
    create_form()
    if not collections:
        st.caption("No collections yet. Create one here, or add documents to a new one from the "
                   "**Documents** list or when you add files.")
        return
    collections_table(collections)
    manage(collections, on_ask)


def collections_table(collections: list) -> None:
    frame = pd.DataFrame(
        [{"Collection": c.name, "Documents": c.documents, "Tokens": c.tokens, "Size (MB)": c.size / 1_000_000,
          "Changed": c.updated_at[:16].replace("T", " ")} for c in collections]
    )
    st.dataframe(
        frame, hide_index=True, width="stretch",
        column_config={
            "Documents": st.column_config.NumberColumn(format="localized"),
            "Tokens": st.column_config.NumberColumn(format="localized", help="Exact Qwen3 tokens of its documents, each read whole"),
            "Size (MB)": st.column_config.NumberColumn(format="%.1f", help="Bytes of the original files"),
        },
    )


def create_form() -> None:
    with st.form("collection-create", border=False, clear_on_submit=True):
        row = st.columns([4, 1], vertical_alignment="bottom")
        name = row[0].text_input("New collection", placeholder="A matter, a product's manuals, a thesis and its sources",
                                 key="collection-new-name")
        submitted = row[1].form_submit_button("Create", icon=":material/create_new_folder:")
    if submitted:
        created = {}
        if _said(lambda: created.update(c=store().create_collection(name))):
            notice(f"Created the collection {created['c'].name}.")
        st.rerun()


def manage(collections: list, on_ask) -> None:
    """Rename, delete or ask about one collection."""
    by_id = {c.id: c for c in collections}
    key = "collection-manage"
    if key in st.session_state and st.session_state[key] not in by_id:
        del st.session_state[key]
    chosen = st.selectbox("Manage a collection", list(by_id), key=key, format_func=lambda cid: describe(by_id[cid]))
    collection = by_id.get(chosen)
    if collection is None:
        return
    row = st.container(horizontal=True)
    if row.button("Ask about it", key=f"collection-ask-{collection.id}", icon=":material/forum:", type="primary",
                  disabled=not collection.documents):
        on_ask(store().collection_shas(collection.id), collection)
    if row.button("Delete…", key=f"collection-delete-{collection.id}", icon=":material/folder_delete:"):
        st.session_state["collection-confirm"] = collection.id
    if st.session_state.get("collection-confirm") == collection.id:
        confirm_delete(collection)
    with st.form(f"collection-rename-{collection.id}", border=False):
        row = st.columns([4, 1], vertical_alignment="bottom")
        new_name = row[0].text_input("Rename to", value=collection.name, key=f"collection-rename-name-{collection.id}")
        submitted = row[1].form_submit_button("Rename", icon=":material/edit:")
    if submitted:
        renamed = {}
        if _said(lambda: renamed.update(c=store().rename_collection(collection.id, new_name))):
            notice(f"Renamed {collection.name} to {renamed['c'].name}.")
        st.rerun()


def confirm_delete(collection) -> None:
    st.warning(
        f"Delete the collection **{view.escape_markdown(collection.name)}**? Its "
        f"{view.count_noun(collection.documents, 'document')} stay in the library (and in any other collection)."
    )
    row = st.container(horizontal=True)
    if row.button("Delete the collection", key=f"collection-really-{collection.id}", type="primary"):
        st.session_state.pop("collection-confirm", None)
        if _said(lambda: store().delete_collection(collection.id)):
            notice(f"Deleted the collection {collection.name}; its "
                   f"{view.count_noun(collection.documents, 'document')} stay in the library.")
        st.rerun()
    if row.button("Keep it", key=f"collection-keep-{collection.id}"):
        st.session_state.pop("collection-confirm", None)
        st.rerun()


# --- one document's collections --------------------------------------------------------


def document_collections(sha: str, collections: list) -> None:
    """The collections one document is in, editable in place (few collections, not documents)."""
    if not collections:
        return
    by_name = {c.name: c for c in collections}
    try:
        current = [name for name in store().collections_of(sha) if name in by_name]
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return
    key = f"doc-collections-{sha}"

    def changed() -> None:
        wanted = set(st.session_state[key])
        for name in wanted - set(current):
            _said(lambda n=name: store().add_to_collection(by_name[n].id, [sha]))
        for name in set(current) - wanted:
            _said(lambda n=name: store().remove_from_collection(by_name[n].id, [sha]))

    st.session_state[key] = current  # what the store says, also after a change made elsewhere
    st.multiselect("In collections", list(by_name), key=key, on_change=changed,
                   placeholder="In no collection: choose one to add it")
