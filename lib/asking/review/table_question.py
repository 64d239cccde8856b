"""Ask the table: one question over the whole table, answered from its cells and their evidence
in one call, citing the original passages, verified as every answer is.

    answer = ask_table(store, table_id, "Which judgments upheld the limitation defence?", settings)
    answer.answer, answer.citations          # lib.asking.answering.Answer, citations verified

The prompt keeps a question's layout (pinned system block, then the material, then the
question). Each row becomes a <document> block holding the reviewed answers (the reviewer's
edit where there is one), labelled as not citable, then the passages the cells cite, under
their IDs: IDs are made unique across the table and point into the original documents, so a
quote is checked against the original passage. When the passages do not fit one call, only
the verified quotes are sent; when even those do not fit, Folio refuses and says how much to
filter (`rows=` asks over part of the table).
"""

from __future__ import annotations

import threading
from typing import Sequence

from ...config import Settings
from ...documents import Document
from ...errors import BudgetExceeded, InputError
from ...reading.passages import assign_unique_ids
from ...reading.tokens import get_counter
from .. import prompt
from ..answering import Answer, build_request, call_record, refuse_if_over
from ..budget import budget_of
from ..citations import check_answer
from .cells import Cell
from .columns import Column
from .row import stream_reply
from .runner import prepare
from .table import ReviewTable, load_table
from .values import display

TABLE_NOTE = (
    "Each document above is one row of a review table: first the reviewed answers to the table's columns "
    "(a summary to guide you: do not cite it), then the passages those answers rest on, under their IDs. "
    "Answer the question about the whole table from these; cite the passages with their IDs and verbatim "
    "quotes as usual, and name the document each point comes from."
)


def _cell_line(column: Column, cell: Cell) -> str:
    value, unit = cell.shown()
    if cell.status == "not_stated" and cell.edit is None:
        text = "not stated in this document"
    elif cell.status not in ("answered", "not_stated") and cell.edit is None:
        text = f"(no answer: {cell.status})"
    else:
        text = display(column.type, value, unit) or cell.answer
        if cell.answer and cell.answer != text:
            text += f" ({cell.answer})"
        if cell.edit is not None:
            text += " [reviewer's edit]"
    return f"- {column.title}: {prompt.neutralise(text)}"


def _evidence(document: Document, cells: list[Cell], full: bool) -> list[str]:
    """The cited passages (full text) or just their verified quotes, in document order, with page markers."""
    wanted: dict[int, list[str]] = {}
    for cell in cells:
        for citation in cell.citations:
            index = citation.get("index")
            if index is not None and 0 <= index < len(document.passages):
                if full or citation.get("status") == "verified":
                    wanted.setdefault(index, []).append(citation.get("quote") or "")
    lines, page = [], None
    for index in sorted(wanted):
        passage = document.passages[index]
        if passage.page is not None and passage.page != page:
            page = passage.page
            lines.append(f"--- page {page} ---")
        if full:
            text = passage.text
        else:
            text = " … ".join(f"“{q}”" for q in dict.fromkeys(q for q in wanted[index] if q))
        lines.append(f"[{passage.id}] {prompt.neutralise(text).strip()}")
    return lines


def render_row(document: Document, columns: Sequence[Column], cells: list[Cell], full: bool) -> str:
    head = f'<document name="{prompt._attribute(document.name)}" format="{document.format}"'
    if document.pages is not None:
        head += f' pages="{document.pages}"'
    lines = [head + ">", "Reviewed answers (not citable):"]
    lines += [_cell_line(c, cell) for c, cell in zip(columns, cells)]
    lines.append("Passages:")
    lines += _evidence(document, cells, full) or ["(none cited)"]
    lines.append("</document>")
    return "\n".join(lines)


def build_table_prompt(table: ReviewTable, documents: Sequence[Document], question: str, *, think: bool,
                       counter, full: bool = True) -> prompt.PromptBuild:
    """The prompt of asking `question` over the table's rows (documents carry table-wide IDs)."""
    blocks = [render_row(d, table.columns, table.row_cells(d.sha256), full) for d in documents]
    user = "<documents>\n" + "\n\n".join(blocks) + "\n</documents>\n\n" + TABLE_NOTE + "\n\n" + prompt.render_question(question)
    messages = ({"role": "system", "content": prompt.SYSTEM_PROMPT}, {"role": "user", "content": user})
    rendered = prompt.render_chat(messages, think)
    counts = prompt._count_all(counter, [rendered, prompt.system_block(), prompt.render_question(question), *blocks])
    return prompt.PromptBuild(
        documents=tuple(documents), messages=messages, think=bool(think), rendered=rendered, total=counts[0],
        system=counts[1], question=counts[2], history=0,
        per_document=dict(zip(prompt.unique_names(list(documents)), counts[3:])), counter=counter.kind,
    )


def table_documents(store, table: ReviewTable, rows: Sequence[str] | None = None) -> list[Document]:
    """The rows' documents (those with an answer and still in the library), with table-wide unique IDs."""
    wanted = set(rows) if rows is not None else None
    shas = [r.sha256 for r in table.rows if (wanted is None or r.sha256 in wanted)
            and any(c.status in ("answered", "not_stated") or c.edit is not None for c in table.row_cells(r.sha256))]
    documents = [store.get_document(sha) for sha in shas if store.has_document(sha)]
    return assign_unique_ids(documents)


def _with_table_ids(table: ReviewTable, documents: Sequence[Document]) -> ReviewTable:
    """Cells whose citations carry the table-wide IDs (the row call used the document's own IDs)."""
    by_sha = {d.sha256: d for d in documents}
    cells = {}
    for (sha, key), cell in table.cells.items():
        document = by_sha.get(sha)
        copy = Cell.from_json(cell.to_json())
        if document is not None:
            copy.citations = [dict(c, id=document.passages[c["index"]].id) if c.get("index") is not None
                              and c["index"] < len(document.passages) else c for c in cell.citations]
        cells[(sha, key)] = copy
    return ReviewTable(table.id, table.title, table.columns, table.rows, cells, table.settings, table.updated_at)


def ask_table(store, table_id: int, question: str, settings: Settings, *, rows: Sequence[str] | None = None,
              think: bool | None = None, backend=None, server_info=None,
              cancel: threading.Event | None = None) -> Answer:
    """Answer `question` from the table's cells and evidence in one call; citations verified."""
    if not question.strip():
        raise InputError("The question is empty: type a question about the table.")
    think = settings.think if think is None else bool(think)
    table = load_table(store, table_id)
    documents = table_documents(store, table, rows)
    if not documents:
        raise InputError("No row of this table has an answer yet: run the table first.")
    table = _with_table_ids(table, documents)
    backend, context, _info = prepare(settings, backend, server_info, think)
    counter = get_counter()
    answer = Answer(question=question, think=think, model=settings.model)
    built, budget = None, None
    for full in (True, False):
        built = build_table_prompt(table, documents, question, think=think, counter=counter, full=full)
        budget = budget_of(built, settings, context=context)
        if budget.fits:
            if not full:
                answer.warnings.append("The cited passages did not fit one call: only their verified quotes were sent.")
            break
    answer.budget = budget
    if not budget.fits:
        raise BudgetExceeded(
            f"The table's answers and quotes need {budget.prompt:,} tokens but one call holds "
            f"{budget.context - budget.reserved:,}: ask over fewer rows (filter the table), about "
            f"{max(1, len(documents) * (budget.context - budget.reserved) // max(budget.prompt, 1))} of "
            f"{len(documents)}.", budget.overrun, budget.documents)
    refuse_if_over(budget)
    request = build_request(built, settings, budget)
    streamed = stream_reply(backend, request, cancel)
    answer.answer, answer.thinking = streamed.text, streamed.thinking
    if streamed.interrupted:
        answer.interrupted, answer.interrupt_reason = True, streamed.interrupted
        answer.warnings.append(f"Interrupted: {streamed.interrupted}")
    answer.calls.append(call_record(documents, request, budget.prompt, streamed.stats, streamed.started,
                                    streamed.first_token_s))
    report = check_answer(answer.answer, documents)
    answer.citations, answer.no_answer = report.citations, report.no_answer
    answer.uncited = report.uncited and not answer.interrupted
    answer.warnings.extend(report.warnings)
    return answer
