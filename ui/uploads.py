"""Files dropped on the Library page: a few read right here, many read as a job.

Up to UPLOAD_JOB_FILES - 1 files are read in the page, one after the other, each with its
progress (page x of y, OCR) and, for a locked PDF, its password asked in place. From
UPLOAD_JOB_FILES files on, they are kept in the data folder and read by a job (ui/jobs.py):
the page stays free, the work goes on if the user leaves, and an app restart can resume it.
Either way the documents can go into a collection at once.
"""

from __future__ import annotations

import hashlib

import streamlit as st

import ui.documents
import ui.jobs
from lib.errors import FolioError, PasswordRequired, WrongPassword
from lib.output import presenting as view
from ui.resources import settings, store

ACCEPTED = ["pdf", "docx", "epub", "html", "htm", "txt", "md"]


def read_upload(data: bytes, name: str, password: str | None = None, collection: str | None = None) -> tuple[str, str]:
    """Ingest one file with live progress and store it (and add it to `collection`): (outcome, message)."""
    sha = hashlib.sha256(data).hexdigest()
    if ui.documents.has_document(sha):
        message = f"{name}: already in the library (same content as “{ui.documents.document_name(sha)}”)."
        return "duplicate", message + _into(collection, sha)
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
    message = f"{name}: added, {tokens}, {view.count_noun(len(document.passages), 'passage')}.{warning}"
    return "added", message + _into(collection, sha)


def _into(collection: str | None, sha: str) -> str:
    """Add a stored document to the collection chosen for the upload; what to append to its message."""
    if not collection:
        return ""
    try:
        target = store().ensure_collection(collection)
        store().add_to_collection(target.id, [sha])
    except FolioError as exc:
        return f" Not added to the collection: {exc.message}"
    return f" In the collection {target.name}."


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


def handle_uploads(files, collection: str | None) -> None:
    """Read each new upload once (many at once: as a job); one bad file never stops the others."""
    seen = st.session_state.seen_uploads
    new = [f for f in files or [] if f.file_id not in seen]
    if len(new) >= ui.jobs.UPLOAD_JOB_FILES:
        seen.extend(f.file_id for f in new)
        info = ui.jobs.start_uploads([(f.name, f.getvalue()) for f in new], collection)
        if info is not None:
            st.session_state.upload_log.append({
                "outcome": "job",
                "message": f"{len(new):,} files: read by a job (its progress is under Jobs). You can leave this "
                           "page meanwhile; if Folio stops, resume the job and it goes on where it stopped.",
            })
    else:
        for upload in new:
            seen.append(upload.file_id)
            _read_one(upload.name, upload.getvalue(), upload.file_id, collection)
    if new:
        st.session_state.uploader_key += 1  # an empty uploader for the next batch
        st.rerun()


def _read_one(name: str, data: bytes, key: str, collection: str | None) -> None:
    try:
        outcome, message = read_upload(data, name, collection=collection)
    except (PasswordRequired, WrongPassword) as exc:
        st.session_state.locked[key] = {
            "name": name, "data": data, "message": locked_message(exc, name), "wrong": False, "collection": collection,
        }
        return
    st.session_state.upload_log.append({"outcome": outcome, "message": message})


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
        outcome, message = read_upload(item["data"], item["name"], password=password or None,
                                       collection=item.get("collection"))
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
            elif entry["outcome"] in ("duplicate", "job"):
                st.info(text, icon=":material/content_copy:" if entry["outcome"] == "duplicate" else ":material/pending_actions:")
            else:
                st.error(text, icon=":material/block:")
        if st.button("Clear this list", type="tertiary"):
            st.session_state.upload_log = []
            st.rerun()


def add_panel(collections: list) -> None:
    """The uploader, the collection new documents go into, and a folder or .zip on this computer."""
    import ui.collections

    cols = st.columns([3, 1])
    with cols[1]:
        collection = ui.collections.target_chooser("upload-collection", collections, label="Add to collection",
                                                   allow_none=True, none_label="No collection")
    with cols[0]:
        files = st.file_uploader(
            "Add documents",
            type=ACCEPTED,
            accept_multiple_files=True,
            key=f"uploader-{st.session_state.uploader_key}",
            max_upload_size=settings().max_file_mb,  # the browser's limit is lib's (FOLIO_MAX_FILE_MB)
            help=f"PDF, Word (DOCX), EPUB, HTML, text and Markdown. The format is read from the file itself. "
            f"{ui.jobs.UPLOAD_JOB_FILES} or more files at once are read as a job you can leave running.",
        )
    with st.expander("Add a folder or a .zip from this computer", icon=":material/folder_open:"):
        folder_form(collection)
    handle_uploads(files, collection)


def folder_form(collection: str | None) -> None:
    st.caption("Every document in the folder and its subfolders (or in the archive) is read by a job: progress and an "
               "estimate below, Cancel and Resume; files already in the library are not read again. What is not a "
               "document (images, programs) is skipped and listed.")
    with st.form("add-folder", border=False):
        row = st.columns([4, 1], vertical_alignment="bottom")
        path = row[0].text_input("Folder, .zip or file", key="folder-path", placeholder="/home/me/Matters/Smith v Jones")
        submitted = row[1].form_submit_button("Read it", icon=":material/play_arrow:", type="primary")
    if submitted:
        ui.jobs.start_path(path, collection)
        st.rerun()
