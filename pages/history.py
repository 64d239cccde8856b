"""History: every question and answer, searchable, reopenable, exportable."""

from __future__ import annotations

import streamlit as st

import ui.answers
import ui.exports
import ui.resources
import ui.state
from lib.errors import FolioError
from lib.output import outcome
from lib.output import presenting as view

SHOWN = 50


def conversation_row(summary: dict) -> None:
    """One conversation: title, when, documents; open, continue, export, delete."""
    cid = summary["id"]
    with st.container(border=True):
        st.markdown(f"**{view.escape_markdown(summary['title'])}**")
        documents = ", ".join(
            d["name"] + ("" if d.get("available", True) else " (deleted)") for d in summary["documents"]
        )
        st.caption(
            view.join_nonempty(
                [
                    summary["updated_at"][:16].replace("T", " "),
                    f"{summary['turns']} question(s)",
                    view.escape_markdown(documents),
                    view.escape_markdown(outcome.conversation_model(summary.get("settings") or {})),
                ]
            )
        )
        opened = st.session_state.get("history-open") == cid
        row = st.container(horizontal=True)
        if row.button("Hide" if opened else "Open", key=f"open-{cid}", icon=":material/visibility:"):
            st.session_state["history-open"] = None if opened else cid
            st.rerun()
        if row.button("Continue", key=f"continue-{cid}", icon=":material/forum:", type="primary"):
            reopen(cid)
        if row.button("Delete", key=f"delete-{cid}", icon=":material/delete:"):
            st.session_state[f"confirm-conv-{cid}"] = True
        if st.session_state.get(f"confirm-conv-{cid}"):
            confirm_delete(cid)
        if opened:
            conversation_detail(cid)


def confirm_delete(cid: int) -> None:
    """A saved conversation is gone for good once deleted: ask first."""
    st.warning("Delete this conversation and its answers? The documents stay in the library.")
    row = st.container(horizontal=True)
    if row.button("Delete for good", key=f"really-delete-{cid}", type="primary"):
        ui.resources.store().delete_conversation(cid)
        if ui.state.chat()["id"] == cid:
            ui.state.new_conversation()
        st.session_state.pop(f"confirm-conv-{cid}", None)
        st.rerun()
    if row.button("Keep it", key=f"keep-conv-{cid}"):
        st.session_state.pop(f"confirm-conv-{cid}", None)
        st.rerun()


def conversation_detail(cid: int) -> None:
    """The whole conversation, with exports of it and of each answer."""
    try:
        conversation = ui.resources.store().get_conversation(cid)
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return
    ui.exports.conversation_exports(conversation, key=f"conv-{cid}")
    for index, turn in enumerate(conversation["turns"]):
        ui.answers.render_turn(turn, key=f"h{cid}-{index}")


def reopen(cid: int) -> None:
    """Load a conversation into the Ask page and go there to continue it."""
    conversation = ui.resources.store().get_conversation(cid)
    available = [d["sha256"] for d in conversation["documents"] if d.get("available")]
    ui.state.set_selection(available)  # the Ask page's choosing widgets show this choice
    # Documents deleted since are named on the Ask page (pages/ask.py: deleted_documents_notice).
    ui.state.new_conversation(conversation_id=cid, turns=conversation["turns"])
    st.switch_page("pages/ask.py")


def main() -> None:
    st.title("History")
    query = st.text_input(
        "Search questions and answers", key="history-q", type="search", placeholder="e.g. limitation period"
    )
    try:
        conversations = ui.resources.store().list_conversations(query.strip())
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return
    if not conversations:
        st.info("Nothing saved yet." if not query else "No question or answer matches.", icon=":material/info:")
        return
    top = st.columns([3, 1])
    top[0].caption(f"{len(conversations)} conversation(s)" + (f" matching “{view.escape_markdown(query)}”" if query else ""))
    with top[1]:
        ui.exports.history_csv_button(conversations)
    for summary in conversations[:SHOWN]:
        conversation_row(summary)
    if len(conversations) > SHOWN:
        st.caption(f"{len(conversations) - SHOWN} older conversation(s) not shown: search to find them.")


ui.state.require_router("pages/history.py")
main()
