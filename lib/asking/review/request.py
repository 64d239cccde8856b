"""The one call that answers every column of a table for one document.

Laid out exactly like a question (lib/asking/prompt.py), so the bytes before the columns are
the same as when the document is asked a question, and the same for every run and column set:

    <|im_start|>system\\n SYSTEM_PROMPT <|im_end|>\\n                  <- num_keep pins exactly this
    <|im_start|>user\\n <documents> the document </documents>\\n\\n
    Question: Review this document ... the columns ... the JSON shape <|im_end|>\\n
    <|im_start|>assistant\\n ...

The answer is one JSON object, one key per column title; `reply_schema(columns)` is that
shape as a JSON schema, sent as constrained output where the server takes it (Ollama
`format`, OpenAI-compatible `response_format`). No I/O here.
"""

from __future__ import annotations

import json
from typing import Sequence

from ...documents import Document
from .. import prompt
from .cells import NOT_STATED
from .columns import Column

_TYPE_WORDS = {
    "text": "text",
    "yesno": "yes or no",
    "date": "a date",
    "number": "a number with its unit",
    "list": "a list of items",
}
_VALUE_RULES = {
    "text": "text: a few words",
    "yesno": 'yes or no: "yes" or "no"',
    "date": 'a date: "YYYY-MM-DD"',
    "number": 'a number with its unit: the number and its unit or currency as the document writes it, for '
              'example "1,250,000 EUR" or "24 months"',
    "options": "one of: exactly one of the options listed",
    "list": "a list of items: a JSON array of short strings",
}


def value_rules(columns: Sequence[Column]) -> str:
    """How to write each type of value, for the types these columns use (in a fixed order)."""
    used = {c.type for c in columns}
    return "Values by type: " + "; ".join(rule for kind, rule in _VALUE_RULES.items() if kind in used) + "."


def column_line(number: int, column: Column) -> str:
    kind = _TYPE_WORDS.get(column.type) or "one of: " + " | ".join(column.options)
    return f"{number}. {json.dumps(column.title, ensure_ascii=False)} ({kind}): {column.question}"


def task_text(columns: Sequence[Column]) -> str:
    """The review instructions that follow the document (they take the question's place)."""
    lines = [
        "Review this document: answer each column below from this document alone.",
        "",
        "Columns (title, type of value, question):",
        *(column_line(i, c) for i, c in enumerate(columns, start=1)),
        "",
        "Reply with one JSON object and nothing else. It has one key per column title, exactly as written "
        "above; each value is an object with three keys:",
        '{"answer": one sentence answering the question, "value": the value in the column\'s type, '
        '"citations": [{"id": the passage ID, "quote": the decisive words copied verbatim from that passage}]}',
        value_rules(columns),
        "Every value needs at least one citation; copy each quote character for character from the passage "
        "it cites (a few words up to one sentence).",
        f'If the document does not state the answer, give "value": null (an empty array for a list), '
        f'"answer": "{NOT_STATED}" and "citations": [].',
        "Example of the shape: " + _example(columns),
    ]
    return "\n".join(lines)


def _example(columns: Sequence[Column]) -> str:
    first = columns[0].title if columns else "Title"
    cell = '{"answer": "...", "value": ..., "citations": [{"id": "...", "quote": "..."}]}'
    more = ", ..." if len(columns) > 1 else ""
    return "{" + json.dumps(first, ensure_ascii=False) + ": " + cell + more + "}"


def build_review_prompt(document: Document, columns: Sequence[Column], *, think: bool, counter) -> prompt.PromptBuild:
    """The PromptBuild of reviewing one document: counted once, as a question is."""
    return prompt.build_prompt([document], task_text(columns), think=think, counter=counter)


# ------------------------------------------------------------------------- the schema

_CITATIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "quote": {"type": "string"}},
        "required": ["id", "quote"],
        "additionalProperties": False,
    },
}


def value_schema(column: Column) -> dict:
    if column.type == "yesno":
        return {"enum": ["yes", "no", None]}
    if column.type == "options":
        return {"enum": [*column.options, None]}
    if column.type == "list":
        return {"type": "array", "items": {"type": "string"}}
    return {"anyOf": [{"type": "string"}, {"type": "null"}]}


def cell_schema(column: Column) -> dict:
    return {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "value": value_schema(column), "citations": _CITATIONS},
        "required": ["answer", "value", "citations"],
        "additionalProperties": False,
    }


def reply_schema(columns: Sequence[Column]) -> dict:
    """The whole answer as a JSON schema: one object, every column title a required key."""
    return {
        "type": "object",
        "properties": {c.title: cell_schema(c) for c in columns},
        "required": [c.title for c in columns],
        "additionalProperties": False,
    }
