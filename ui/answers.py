"""How a turn is shown: question, reasoning, answer with numbered citations, their cards, statistics.

Everything that decides *what* to show lives in lib/output/presenting.py (pure, tested); this
module only decides *how* Streamlit shows it. Model output and document text always go
through presenting.escape_markdown: never unsafe_allow_html.
"""

from __future__ import annotations

import streamlit as st

from lib.output import advice, exports, outcome, plan_view
from lib.output import presenting as view
from ui.exports import answer_exports
from ui.page_images import page_image


def safe_markdown(text: str, **kwargs) -> None:
    """Untrusted text (documents, model output) shown literally."""
    st.markdown(view.escape_markdown(text), **kwargs)


def status_badge(status: str) -> None:
    st.badge(
        view.STATUS_LABELS.get(status, status or "unknown"),
        icon=view.STATUS_ICONS.get(status),
        color=view.STATUS_COLORS.get(status, "gray"),
        help=view.STATUS_HELP.get(status),
    )


def render_answer_text(turn: dict) -> list:
    """The answer with numbered, status-coloured markers; returns the markers."""
    citations = [_CitationView(c) for c in turn.get("citations", [])]
    text, markers = view.mark_citations(turn.get("answer", ""), citations)
    if text.strip():
        st.markdown(text)
    elif not turn.get("interrupted"):
        st.caption("(empty answer)")
    return markers


class _CitationView:
    """Attribute access over a stored citation dict (what presenting.mark_citations reads)."""

    def __init__(self, data: dict):
        self.data = data
        self.passage_id = data.get("id", "")
        self.status = data.get("status", "")


def render_turn(turn: dict, key: str, *, exports: bool = True) -> None:
    """One question and its answer: reasoning, answer, citations, statistics, exports."""
    with st.chat_message("user", avatar=":material/person:"):
        safe_markdown(turn.get("question", ""))
    with st.chat_message("assistant", avatar=":material/menu_book:"):
        answer_state(turn)
        if turn.get("thinking"):
            with st.expander("Reasoning", icon=":material/psychology:"):
                safe_markdown(turn["thinking"])
        markers = render_answer_text(turn)
        answer_flags(turn)
        citation_list(markers, key)
        if plan_view.planned(turn):
            plan_panel(turn, key)
        stats_panel(turn)
        if exports:
            answer_exports(turn, key)


_STATE_BOXES = {"error": (st.error, ":material/report:"), "warning": (st.warning, ":material/stop_circle:")}


def answer_state(turn: dict) -> None:
    """The state of the answer, first and plainly, unless it simply answered: the server read
    only part of the prompt, the server interrupted it, or it was stopped."""
    state = outcome.answer_state(turn)
    if not state.text:
        return
    box, icon = _STATE_BOXES.get(state.level, (st.info, ":material/info:"))
    box(f"**{state.title}.** " + view.message_markdown(advice.for_app(state.text)), icon=icon)


def answer_flags(turn: dict) -> None:
    """No answer in the documents, no citations, the other warnings (the state is said above)."""
    if turn.get("no_answer"):
        st.info("The selected documents do not answer this question.", icon=":material/search_off:")
    for note in outcome.turn_notes(turn):
        st.warning(view.message_markdown(advice.for_app(note)), icon=":material/warning:")


def citation_list(markers: list, key: str) -> None:
    """Each numbered citation opens to its document, page, passage and badge."""
    if not markers:
        return
    counts = {}
    for marker in markers:
        status = getattr(marker.citation, "status", "invalid")
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    st.caption(f"Sources: {len(markers)} citation(s): {summary}.")
    for marker in markers:
        citation_card(marker, key)


def citation_card(marker, key: str) -> None:
    """One citation: label with document and page; inside the passage and the page image."""
    data = getattr(marker.citation, "data", None) or {
        "id": getattr(marker.citation, "passage_id", ""),
        "status": "invalid",
    }
    status = data.get("status", "invalid")
    place = view.join_nonempty([data.get("document", ""), exports.page_text(data)])
    # Expander labels render Markdown links: the document name is escaped like any text.
    label = f"\\[{marker.number}\\] {view.escape_markdown(place or data.get('id', ''))} · {status}"
    with st.expander(label, icon=view.STATUS_ICONS.get(status)):
        has_page = data.get("format") == "pdf" and data.get("sha") and data.get("page") and status != "invalid"
        text_side, page_side = st.columns([5, 4]) if has_page else (st.container(), None)
        with text_side:
            status_badge(status)
            st.caption(view.join_nonempty([f"passage {view.inline_code(data.get('id', ''))}", view.escape_markdown(place)]))
            quote_in_passage(data.get("quote"), status, data.get("reason"), data.get("passage_text"), data.get("span"),
                             invalid="No passage with this ID exists in the documents that were asked.")
        if page_side is not None:
            with page_side:
                page_image(data, key=f"{key}-{marker.number}")


def quote_in_passage(quote: str | None, status: str, reason: str | None, passage: str | None, span=None, *,
                     invalid: str, heading: str = "") -> None:
    """A citation's quote, why it is not verified (`invalid` when its passage does not exist), and
    its passage (under its heading) with the quoted words highlighted: an answer's and a cell's."""
    if quote:
        st.markdown("Quoted: “" + view.escape_markdown(quote) + "”")
    if status == "invalid":
        st.caption(invalid)
    elif reason:
        st.caption(view.escape_markdown(reason))
    if passage and status != "invalid":
        span = span or view.find_span(passage, quote or "") or (None, None)
        if heading:
            st.caption(view.escape_markdown(heading))
        with st.container(border=True):
            st.markdown(view.highlight(passage, *span))


def plan_panel(turn: dict, key: str) -> None:
    """How a planned answer was asked: per call, what it read, tokens sent and read, times."""
    import pandas as pd

    rows = plan_view.call_rows(turn)
    with st.expander(f"How this was asked: {view.count_noun(len(rows), 'call')} "
                     f"({plan_view.MODE_WORDS.get(turn.get('mode'), turn.get('mode'))})", icon=":material/account_tree:"):
        st.caption(view.escape_markdown(plan_view.plan_summary(turn)))
        ranks = plan_view.documents_line(turn)
        if ranks:
            st.caption(view.escape_markdown(ranks))
        frame = pd.DataFrame([{"Call": r["call"], "Kind": r["kind"], "Reads": r["reads"], "Tokens sent": r["sent"],
                               "Read by the server": r["read"], "Evidence": r["evidence"], "Status": r["status"],
                               "First token (s)": r["first_token_s"], "Total (s)": r["total_s"]} for r in rows])
        st.dataframe(frame, hide_index=True, key=f"{key}-plan", column_config={
            "Tokens sent": st.column_config.NumberColumn(format="localized"),
            "Read by the server": st.column_config.NumberColumn(format="localized"),
            "First token (s)": st.column_config.NumberColumn(format="%.1f"),
            "Total (s)": st.column_config.NumberColumn(format="%.1f")})


def stats_panel(turn: dict) -> None:
    """After the answer: the model that answered, prompt sent vs read, times, speed, cache reuse."""
    calls = turn.get("calls") or []
    model = outcome.model_line(turn)
    if plan_view.planned(turn):  # per call in the panel above; here the whole question
        text = view.join_nonempty([model, outcome.time_line(turn)], sep="  \n")
        if text:
            st.caption(view.escape_markdown(text))
        return
    if not calls:
        text = view.join_nonempty([model, outcome.time_line(turn)], sep="  \n")
        if text:
            st.caption(view.escape_markdown(text))
        return
    call = calls[-1]
    line, differs = view.prompt_check(call.get("prompt_tokens"), call.get("server_prompt_tokens"))
    parts = [
        model,
        line,
        outcome.time_line(turn),
        view.speed_line(call.get("eval_count"), call.get("eval_s")),
        outcome.cache_text(call, turn.get("slowest_s_per_token"),
                           follow_up=bool(turn.get("follow_up") or turn.get("previous_prompt_eval_s"))),
        f"Context {call['num_ctx']:,}, system block pinned ({call.get('num_keep', 0):,} tokens)." if call.get("num_ctx") else "",
    ]
    text = view.join_nonempty([view.escape_markdown(p) for p in parts if p], sep="  \n")
    if differs and outcome.turn_status(turn) != "prompt_cut":  # a cut prompt is said first, above
        st.warning(text, icon=":material/report:")
    else:
        st.caption(text)
