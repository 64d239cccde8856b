"""Library: upload documents, see what each holds and costs, browse and search passages."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

import ui.documents
import ui.resources
import ui.state
from lib.errors import FolioError, PasswordRequired, WrongPassword
from lib.output import presenting as view

ACCEPTED = ["pdf", "docx", "epub", "html", "htm", "txt", "md"]
PASSAGES_PER_SCREEN = 12
SEARCH_LIMIT = 50  # lib.library.store.search_passages' default limit


# --- reading uploads ----------------------------------------------------------------


def read_upload(data: bytes, name: str, password: str | None = None) -> tuple[str, str]:
    """Ingest one file with live progress and store it: (outcome, message)."""
    sha = hashlib.sha256(data).hexdigest()
    if ui.documents.has_document(sha):
        return "duplicate", f"{name}: already in the library (same content as “{ui.documents.document_name(sha)}”)."
    shown = view.escape_markdown(name)  # status labels are Markdown; a file name is not trusted
    slot = st.empty()  # a locked file leaves no box behind: its password panel says it all
    with slot.status(f"Reading {shown}…", expanded=True) as box:  # open: the progress bar is inside
        bar = st.progress(0.0, text="Starting")
        try:
            document = ui.documents.ingest(data, name, password=password, progress=_progress_to(bar))
            ui.documents.add_document(document, data, password=password)
        except (PasswordRequired, WrongPassword):
            slot.empty()
            raise
        except FolioError as exc:
            box.update(label=f"{shown}: refused", state="error", expanded=False)
            bar.empty()
            return "refused", exc.message
        tokens = f"{document.tokens:,} tokens" + ("" if document.counter == "exact" else " (estimate)")
        box.update(label=f"{shown}: {tokens}, {view.count_noun(len(document.passages), 'passage')}", state="complete", expanded=False)
        bar.progress(1.0, text="Done")
    warning = f" {view.count_noun(len(document.warnings), 'warning')}." if document.warnings else ""
    return "added", f"{name}: added, {tokens}, {view.count_noun(len(document.passages), 'passage')}.{warning}"


def locked_message(exc: FolioError, name: str) -> str:
    """What the password panel says: lib's words for a wrong password, the app's for a first ask."""
    if isinstance(exc, WrongPassword):
        return exc.message
    return f"{name} is password-protected: type its password and press Open."


def _progress_to(bar):
    """A lib progress callback that moves a Streamlit progress bar (stage, done, total), no
    faster than the bar can draw (presenting.StageProgress)."""
    progress = view.StageProgress()

    def report(stage: str, done: int, total: int | None) -> None:
        shown = progress.update(stage, done, total)
        if shown:
            bar.progress(shown[0], text=shown[1])

    return report


def handle_uploads(files) -> None:
    """Read each new upload once; one bad file never stops the others."""
    seen = st.session_state.seen_uploads
    new = [f for f in files or [] if f.file_id not in seen]
    for upload in new:
        seen.append(upload.file_id)
        data = upload.getvalue()
        try:
            outcome, message = read_upload(data, upload.name)
        except (PasswordRequired, WrongPassword) as exc:
            st.session_state.locked[upload.file_id] = {
                "name": upload.name, "data": data, "message": locked_message(exc, upload.name), "wrong": False,
            }
            continue
        st.session_state.upload_log.append({"outcome": outcome, "message": message})
    if new:
        st.session_state.uploader_key += 1  # an empty uploader for the next batch
        st.rerun()


def unlock_panel() -> None:
    """Encrypted PDFs waiting for their password, each with a field and a retry."""
    for key, item in list(st.session_state.locked.items()):
        with st.container(border=True):
            st.markdown(f":material/lock: **{view.escape_markdown(item['name'])}**")
            if item.get("wrong"):
                st.error(view.escape_markdown(item["message"]), icon=":material/key_off:")
            else:
                st.caption(view.escape_markdown(item["message"]))
            with st.form(f"unlock-{key}", border=False):
                password = st.text_input("Password", type="password", key=f"pw-{key}")
                row = st.container(horizontal=True)
                unlock = row.form_submit_button("Open", type="primary")
                forget = row.form_submit_button("Skip")
            if forget:
                del st.session_state.locked[key]
                st.rerun()
            if unlock:
                _try_password(key, item, password)


def _try_password(key: str, item: dict, password: str) -> None:
    try:
        outcome, message = read_upload(item["data"], item["name"], password=password or None)
    except (PasswordRequired, WrongPassword) as exc:
        # Shown once, in the file's own panel (rerun: the panel was drawn before this check).
        item.update(message=locked_message(exc, item["name"]), wrong=bool(password))
        st.session_state.locked[key] = item
        st.rerun()
    del st.session_state.locked[key]
    st.session_state.upload_log.append({"outcome": outcome, "message": message})
    st.rerun()


def upload_log() -> None:
    """What happened to each file of this session's uploads, newest first."""
    log = st.session_state.upload_log
    if not log:
        return
    with st.expander(f"This session's uploads ({len(log)})", expanded=True, icon=":material/upload_file:"):
        for entry in reversed(log[-30:]):
            text = view.message_markdown(entry["message"])
            if entry["outcome"] == "added":
                st.success(text, icon=":material/check_circle:")
            elif entry["outcome"] == "duplicate":
                st.info(text, icon=":material/content_copy:")
            else:
                st.error(text, icon=":material/block:")
        if st.button("Clear this list", type="tertiary"):
            st.session_state.upload_log = []
            st.rerun()


# --- the library --------------------------------------------------------------------


def library_table(docs: list) -> None:
    rows = [
        {
            "Document": d["name"],
            "Format": d["format"].upper(),
            "Pages": f"{d['pages']:,}" if d["pages"] else "–",  # Markdown, DOCX: no pages (not "None")
            "Tokens": d["tokens"],
            "Count": d["counter"],
            "Passages": d["passages"],
            "Warnings": len(d["warnings"]),
            "Added": d.get("added", ""),
        }
        for d in docs
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            "Tokens": st.column_config.NumberColumn(format="localized", help="Qwen3 tokens of the whole document"),
            "Passages": st.column_config.NumberColumn(format="localized"),
            "Count": st.column_config.TextColumn(help="exact: Qwen3's own tokenizer; estimate: an upper bound"),
            "Pages": st.column_config.TextColumn(help="Pages of PDFs (and of DOCX/EPUB when they say)", alignment="right"),
        },
    )
    total = sum(d["tokens"] for d in docs)
    st.caption(f"{len(docs)} document(s), {total:,} tokens in all.")


def document_panel(doc: dict) -> None:
    """One document: its facts, warnings, actions, and the passage browser."""
    sha = doc["sha256"]
    facts = view.join_nonempty(
        [
            doc["format"].upper(),
            f"{doc['pages']} pages" if doc["pages"] else "",
            f"{doc['tokens']:,} tokens" + ("" if doc["counter"] == "exact" else " (estimate)"),
            view.count_noun(doc["passages"], "passage"),
            f"sha256 {sha[:12]}…",
        ]
    )
    st.caption(facts)
    for warning in doc["warnings"]:
        st.warning(view.escape_markdown(warning), icon=":material/warning:")
    row = st.container(horizontal=True)
    if row.button("Ask about it", key=f"ask-{sha}", icon=":material/forum:", type="primary"):
        ui.documents.select_documents([sha])
        st.switch_page("pages/ask.py")
    if row.button("Delete", key=f"del-{sha}", icon=":material/delete:"):
        st.session_state[f"confirm-{sha}"] = True
    if st.session_state.get(f"confirm-{sha}"):
        _confirm_delete(doc)
    browse, search = st.tabs(["Read", "Search"])
    with browse:
        passage_browser(sha, doc)
    with search:
        passage_search(sha)


def _confirm_delete(doc: dict) -> None:
    sha = doc["sha256"]
    st.warning(
        f"Delete **{view.escape_markdown(doc['name'])}** with its passages and original file? "
        "Saved answers keep their text."
    )
    row = st.container(horizontal=True)
    if row.button("Delete for good", key=f"really-{sha}", type="primary"):
        ui.documents.delete_document(sha)
        st.session_state.pop(f"confirm-{sha}", None)
        st.toast(f"Deleted {view.escape_markdown(doc['name'])}")
        st.rerun()
    if row.button("Keep it", key=f"keep-{sha}"):
        st.session_state.pop(f"confirm-{sha}", None)
        st.rerun()


def passage_browser(sha: str, doc: dict) -> None:
    """Page by page for paged formats; screens of passages otherwise."""
    if doc["pages"]:
        page = st.number_input("Page", min_value=1, max_value=int(doc["pages"]), value=1, key=f"page-{sha}")
        passages = ui.documents.passages_on_page(sha, int(page))
        label = ui.documents.page_label(sha, int(page))
        st.caption(f"Page {page} of {doc['pages']}" + (f" (printed {view.escape_markdown(label)})" if label and label != str(page) else ""))
        if not passages:
            st.info("No text on this page.")
    else:
        screens = max(1, -(-doc["passages"] // PASSAGES_PER_SCREEN))
        screen = st.number_input("Part", min_value=1, max_value=screens, value=1, key=f"screen-{sha}")
        passages = ui.documents.passages_slice(sha, (int(screen) - 1) * PASSAGES_PER_SCREEN, PASSAGES_PER_SCREEN)
        st.caption(f"Part {screen} of {screens}")
    for passage in passages:
        passage_card(passage)


def passage_card(passage, highlight: tuple[int, int] | None = None, document_name: str = "") -> None:
    """A passage: ID, place and heading above, its exact text below."""
    where = view.join_nonempty(
        [
            view.inline_code(passage.id),
            view.escape_markdown(document_name),
            passage.pages_text,
            view.escape_markdown(passage.heading) if passage.heading else "",
            f"{passage.tokens} tokens",
        ]
    )
    with st.container(border=True):
        st.caption(where)
        if highlight:
            st.markdown(view.highlight(passage.text, *highlight))
        else:
            st.markdown(view.escape_markdown(passage.text))


def passage_search(sha: str | None) -> None:
    """Full-text search (SQLite FTS5, trigram: Chinese works too)."""
    query = st.text_input(
        "Search this document" if sha else "Search every document",
        key=f"q-{sha or 'all'}",
        placeholder="Words or a phrase, e.g. “duty of care” or 合同",
        type="search",
    )
    if not query.strip():
        return
    hits = ui.documents.search_passages(query, sha)
    if len(hits) >= SEARCH_LIMIT:  # the store returns at most this many: there may be more
        st.caption(f"The first {len(hits)} matching passages are shown; add words to narrow the search.")
    else:
        st.caption(f"{len(hits)} passage(s) found")
    for hit in hits:
        hit_card(hit, with_document=sha is None)


def hit_card(hit, with_document: bool) -> None:
    """A search hit: where it is, and a snippet with the matched words highlighted."""
    pages = ""
    if hit.page:
        first = view.escape_markdown(hit.page_label or str(hit.page))
        pages = f"pp. {first}-{hit.page_end}" if hit.page_end and hit.page_end != hit.page else f"p. {first}"
    where = view.join_nonempty(
        [
            view.inline_code(hit.passage_id),
            view.escape_markdown(hit.document) if with_document else "",
            pages,
            view.escape_markdown(hit.heading) if hit.heading else "",
        ]
    )
    with st.container(border=True):
        st.caption(where)
        st.markdown(view.highlight_spans(hit.snippet, hit.spans))


# --- page ---------------------------------------------------------------------------


def main() -> None:
    st.title("Library")
    st.caption(
        "Whole documents, counted exactly in Qwen3 tokens and cut into citable passages. "
        "Everything stays on this machine."
    )
    files = st.file_uploader(
        "Add documents",
        type=ACCEPTED,
        accept_multiple_files=True,
        key=f"uploader-{st.session_state.uploader_key}",
        max_upload_size=ui.resources.settings().max_file_mb,  # the browser's limit is lib's (FOLIO_MAX_FILE_MB)
        help="PDF, Word (DOCX), EPUB, HTML, text and Markdown. The format is read from the file itself.",
    )
    handle_uploads(files)
    unlock_panel()
    upload_log()

    docs = ui.documents.list_documents()
    if not docs:
        st.info("The library is empty. Drop judgments, manuals, books or theses above.", icon=":material/info:")
        return
    st.subheader("Documents")
    library_table(docs)
    with st.expander("Search all documents", icon=":material/search:"):
        passage_search(None)
    st.subheader("Open a document")
    names = {d["sha256"]: d for d in docs}
    chosen = st.selectbox(
        "Document",
        options=list(names),
        format_func=lambda sha: names[sha]["name"],
        key="library-open",
        label_visibility="collapsed",
    )
    if chosen:
        document_panel(names[chosen])


ui.state.require_router("pages/library.py")
main()
