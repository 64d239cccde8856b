"""Download buttons: one answer, a whole conversation (Markdown, Word), the history (CSV)."""

from __future__ import annotations

import streamlit as st

from lib.errors import FolioError
from ui.resources import store


def _file_stem(text: str, fallback: str = "folio") -> str:
    """A short, safe file name from a question or title."""
    import re

    stem = re.sub(r"[^\w\- ]+", "", text, flags=re.UNICODE).strip().replace(" ", "-")[:48]
    return stem or fallback


def answer_exports(turn: dict, key: str) -> None:
    """Download one answer as Markdown or Word (citations as footnotes)."""
    from lib.output import exports

    stem = _file_stem(turn.get("question", ""), "answer")
    row = st.container(horizontal=True)
    row.download_button(
        "Markdown", exports.answer_markdown(turn).encode("utf-8"), file_name=f"{stem}.md",
        mime="text/markdown", key=f"md-{key}", icon=":material/download:", on_click="ignore",
    )
    row.download_button(
        "Word", _docx(exports.answer_docx, turn), file_name=f"{stem}.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        key=f"docx-{key}", icon=":material/download:", on_click="ignore",
    )


def _docx(make, data) -> bytes:
    try:
        return make(data)
    except Exception as exc:  # noqa: BLE001 - an export failing must not hide the answer
        st.caption(f"Word export failed: {type(exc).__name__}: {exc}")
        return b""


def conversation_exports(conversation: dict, key: str) -> None:
    """Download a whole conversation as Markdown or Word."""
    from lib.output import exports

    stem = "conversation-" + _file_stem(conversation.get("title", ""), "untitled")
    row = st.container(horizontal=True)
    row.download_button(
        "Conversation (Markdown)", exports.conversation_markdown(conversation).encode("utf-8"),
        file_name=f"{stem}.md", mime="text/markdown", key=f"cmd-{key}", icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        "Conversation (Word)", _docx(exports.conversation_docx, conversation), file_name=f"{stem}.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        key=f"cdocx-{key}", icon=":material/download:", on_click="ignore",
    )


def history_csv_button(summaries: list[dict]) -> None:
    """The whole (or searched) history as CSV, one row per question."""
    from lib.output import exports

    conversations = []
    for summary in summaries:
        try:
            conversations.append(store().get_conversation(summary["id"]))
        except FolioError:
            continue  # deleted in another tab meanwhile
    st.download_button(
        "History (CSV)", exports.history_csv(conversations), file_name="folio-history.csv", mime="text/csv",
        key="history-csv", icon=":material/table:", on_click="ignore",
    )
