"""The Ask page's token budget: the headline first, the hints that fit, then a table that stays short.

What to say is lib/output/presenting.py (budget_rows, refusal_headline, refusal_hints: pure,
tested); this module only lays it out. However many documents are selected, the headline
(fits or not, used, left or over) is drawn before anything that grows with the selection,
and the table folds the documents into one row beyond a handful, listing them apart.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.output import presenting as view

DOCUMENT_LIST_HEIGHT = 260  # pixels: the folded documents scroll inside their own list


def budget_panel(budget, without_thinking=None, *, model_context: int | None = None) -> None:
    """A bar (or the refusal) with the numbers, at most two hints, and the parts of the context."""
    estimate = " (estimate)" if budget.is_estimate else ""
    if budget.fits:
        st.progress(view.fraction_used(budget), text=view.budget_headline(budget) + estimate)
    else:
        st.error(view.escape_markdown(view.refusal_headline(budget)), icon=":material/block:")
        for hint in view.refusal_hints(budget, without_thinking, model_context=model_context):
            st.info(view.escape_markdown(hint), icon=":material/lightbulb:")
    rows, folded = view.budget_rows(budget)
    # At most a dozen rows: all of them in view ("Over the context by" is the last one).
    st.dataframe(_table(rows, budget.context), hide_index=True, column_config=_COLUMNS, height="content")
    if folded:
        with st.expander(f"The {len(folded):,} documents, largest first", icon=":material/description:"):
            st.dataframe(_table(folded, budget.context), hide_index=True, column_config=_COLUMNS,
                         height=DOCUMENT_LIST_HEIGHT)
    st.caption(
        f"Context {budget.context:,} tokens: the smaller of the configured context and what the model holds. "
        f"Reserved for the answer: {budget.reserved:,}" + (", including reasoning." if budget.think else ".")
        + (" Counts are estimates (the exact tokenizer did not load)." if budget.is_estimate else "")
    )
    for note in budget.notes:
        st.caption(view.escape_markdown(note))


def _table(segments, context: int) -> pd.DataFrame:
    return pd.DataFrame(
        [{"Part": s.label, "Tokens": s.tokens, "Share of the context": s.tokens / context} for s in segments],
        columns=["Part", "Tokens", "Share of the context"],
    )


_COLUMNS = {
    "Tokens": st.column_config.NumberColumn(format="localized"),
    "Share of the context": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
}
