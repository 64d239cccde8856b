"""The composing call of a document read in parts: one short call that turns the answers several
parts gave to text columns into one answer per column, citing the parts' verified quotes.

    built = build_compose_prompt(document, columns, {key: [(part, cell), ...]}, parts, think=False, counter=c)
    cells = composed_cells(document, columns, reply_text)      # typed, verified against the whole document

Laid out like a question (pinned system block, the material, then the task): the material is
one <document> block holding, per column, each part's answer (not citable) and the quotes it
rests on under their passage IDs, so a composed quote is checked against the original passage.
No I/O here.
"""

from __future__ import annotations

from typing import Sequence

from ...documents import Document
from .. import prompt
from .cells import Cell, answered_cell, not_stated_cell
from .columns import Column
from .reply import read_reply
from .request import column_line, value_rules

TASK = (
    "This document was read in {parts} parts, and each part answered the columns below on its own (their "
    "answers and quotes are above). Compose one answer per column for the whole document from those answers: "
    "keep what each part established, say where parts differ, and leave out nothing a part found."
)


def _part_lines(column: Column, numbered: Sequence[tuple[int, Cell]]) -> list[str]:
    lines = [f"{column.title}:"]
    for number, cell in numbered:
        lines.append(f"- part {number}: {prompt.neutralise(cell.answer or cell.text)}")
    quotes: dict[str, list[str]] = {}
    for _number, cell in numbered:
        for citation in cell.citations:
            if citation.get("status") == "verified" and citation.get("quote"):
                quotes.setdefault(citation["id"], []).append(citation["quote"])
    for passage_id, said in quotes.items():
        joined = " … ".join(f"“{prompt.neutralise(q)}”" for q in dict.fromkeys(said))
        lines.append(f"[{passage_id}] {joined}")
    return lines


def material(document: Document, columns: Sequence[Column], cells: dict[str, list[tuple[int, Cell]]]) -> str:
    """The <document> block: per column the parts' answers (not citable), then their quotes by passage."""
    head = f'<document name="{prompt._attribute(document.name)}" format="{document.format}"'
    lines = [head + ">", "Answers of the parts (a summary: do not cite it), each followed by the quotes it rests on:"]
    for column in columns:
        lines += _part_lines(column, cells.get(column.key, []))
    lines.append("</document>")
    return "\n".join(lines)


def task_text(columns: Sequence[Column], parts: int) -> str:
    lines = [
        TASK.format(parts=parts),
        "",
        "Columns (title, type of value, question):",
        *(column_line(i, c) for i, c in enumerate(columns, start=1)),
        "",
        "Reply with one JSON object and nothing else, one key per column title, each value an object "
        '{"answer": one or two sentences, "value": the value, "citations": [{"id": the passage ID, "quote": the '
        'words copied verbatim from the quotes above}]}.',
        value_rules(columns),
        "Cite at least one of the quotes above for every answer, under its passage ID.",
    ]
    return "\n".join(lines)


def build_compose_prompt(document: Document, columns: Sequence[Column], cells: dict[str, list[tuple[int, Cell]]],
                         parts: int, *, think: bool, counter) -> prompt.PromptBuild:
    """The composing call's prompt, counted exactly."""
    block = material(document, columns, cells)
    question = task_text(columns, parts)
    user = prompt.documents_block([block]) + "\n\n" + prompt.render_question(question)
    messages = ({"role": "system", "content": prompt.SYSTEM_PROMPT}, {"role": "user", "content": user})
    rendered = prompt.render_chat(messages, think)
    counts = prompt._count_all(counter, [rendered, prompt.system_block(), prompt.render_question(question), block])
    return prompt.PromptBuild(
        documents=(document,), messages=messages, think=bool(think), rendered=rendered, total=counts[0],
        system=counts[1], question=counts[2], history=0, per_document={document.name: counts[3]},
        counter=counter.kind,
    )


def composed_cells(document: Document, columns: Sequence[Column], text: str) -> dict[str, Cell]:
    """The composed cells the reply holds (a column it lacks is left out: the caller joins the parts)."""
    raw = read_reply(text, columns)
    out: dict[str, Cell] = {}
    for column in columns:
        found = raw.get(column.key)
        if found is None:
            continue
        if found.not_stated:
            out[column.key] = not_stated_cell(column, found.answer, "composed")
        else:
            out[column.key] = answered_cell(column, found.value, found.answer, found.citations, document, "composed")
    return out
