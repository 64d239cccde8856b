"""Reading a review reply: whole JSON, a cut or damaged reply, free text; cells typed and verified."""

from __future__ import annotations

import json

import pytest

from lib.asking.review.cells import NOT_STATED, answered_cell
from lib.asking.review.columns import Column, with_keys
from lib.asking.review.reply import read_reply
from lib.asking.review.request import build_review_prompt, reply_schema, task_text
from lib.asking import prompt
from lib.reading.ingest import ingest_bytes
from lib.reading.passages import assign_unique_ids
from lib.reading.tokens import get_counter

from review_fixtures import facts, judgment_text

COLUMNS = with_keys([
    Column("Court", "Which court?"),
    Column("Date of judgment", "When?", "date"),
    Column("Outcome", "Outcome?", "options", ("Allowed", "Dismissed")),
    Column("Statutes", "Which statutes?", "list"),
])


@pytest.fixture(scope="module")
def judgment():
    data = judgment_text(1).encode()
    return assign_unique_ids([ingest_bytes(data, "case-1.txt")])[0]


def passage_with(document, words: str) -> str:
    return next(p.id for p in document.passages if words in p.text)


def test_whole_json_inside_a_fence_and_prose():
    reply = 'Here is the table:\n```json\n{"court": {"answer": "The High Court.", "value": "High Court", ' \
            '"citations": [{"id": "bcd-2", "quote": "the High Court"}]}, "Date of Judgment": {"answer": "x", ' \
            '"value": "2022-02-02", "citations": []}}\n```\nDone.'
    found = read_reply(reply, COLUMNS)
    assert found["c1"].value == "High Court" and found["c1"].citations == [("bcd-2", "the High Court")]
    assert found["c1"].source == "json"
    assert found["c2"].value == "2022-02-02"
    assert "c3" not in found  # the caller marks it unreadable


def test_a_reply_cut_short_keeps_its_complete_cells():
    full = json.dumps({"Court": {"answer": "a", "value": "High Court", "citations": []},
                       "Outcome": {"answer": "b", "value": "Dismissed", "citations": []},
                       "Statutes": {"answer": "c", "value": ["Limitation Act 1980"], "citations": []}})
    cut = full[: full.index('"Statutes"') + 30]
    found = read_reply(cut, COLUMNS)
    assert found["c1"].value == "High Court" and found["c1"].source == "salvaged"
    assert found["c3"].value == "Dismissed"
    assert "c4" not in found


def test_free_text_reply_is_read_per_column_title():
    reply = (
        '**Court**: the High Court "the High Court sitting in London" [bcd-2]\n'
        "2. Date of judgment - 2 February 2022\n"
        "Outcome: Not stated in this document.\n"
    )
    found = read_reply(reply, COLUMNS)
    assert found["c1"].source == "text"
    assert found["c1"].value == "the High Court"
    assert found["c1"].citations == [("bcd-2", "the High Court sitting in London")]
    assert found["c2"].value == "2 February 2022"
    assert found["c3"].not_stated


def test_thinking_block_and_list_shaped_answers():
    reply = '<think>{"Court": "wrong"}</think>{"answers": [{"column": "Court", "answer": "x", "value": "Court of Appeal", ' \
            '"citations": ["\\"sitting in London\\" [bcd-2]"]}]}'
    found = read_reply(reply, COLUMNS)
    assert found["c1"].value == "Court of Appeal"
    assert found["c1"].citations == [("bcd-2", "sitting in London")]


def test_cell_verifies_its_quotes_and_flags_what_needs_review(judgment):
    words = facts(1)["Court"][1]
    court = passage_with(judgment, words)
    good = answered_cell(COLUMNS[0], "Court of Appeal", "The Court of Appeal.", [(court, words)], judgment, "json")
    assert good.status == "answered" and good.citations[0]["status"] == "verified" and not good.needs_review
    assert good.citations[0]["index"] == judgment.passage(court).index

    invented = answered_cell(COLUMNS[0], "High Court", "x", [(court, "the Supreme Court of Mars")], judgment, "json")
    assert invented.citations[0]["status"] == "unverified" and invented.needs_review
    assert invented.review == ["no verified citation"]

    nowhere = answered_cell(COLUMNS[0], "High Court", "x", [("zzz-999", "the High Court")], judgment, "json")
    assert nowhere.citations[0]["status"] == "invalid" and nowhere.needs_review

    uncited = answered_cell(COLUMNS[0], "High Court", "x", [], judgment, "json")
    assert uncited.review == ["no citation"]


def test_value_not_in_its_type_keeps_the_words_and_needs_review(judgment):
    date = passage_with(judgment, "Judgment given")
    cell = answered_cell(COLUMNS[1], "early last year", "x", [(date, "Judgment given")], judgment, "json")
    assert cell.value is None and cell.text == "early last year"
    assert cell.needs_review and "as a date" in cell.review[0]
    option = answered_cell(COLUMNS[2], "Remitted", "x", [(date, "Judgment given")], judgment, "json")
    assert option.value is None and "not one of the options" in option.review[0]


def test_prompt_is_a_questions_layout_with_the_columns_last(judgment):
    """System block pinned, the document byte-identical to asking it a question, then the columns."""
    counter = get_counter()
    built = build_review_prompt(judgment, COLUMNS, think=False, counter=counter)
    asked = prompt.build_prompt([judgment], "Who won?", think=False, counter=counter)
    document_part = asked.rendered.split(prompt.QUESTION_LABEL)[0]
    assert built.rendered.startswith(document_part)
    assert built.num_keep == counter.count(prompt.system_block())
    tail = built.rendered[len(document_part):]
    assert task_text(COLUMNS).splitlines()[0] in tail and NOT_STATED in tail


def test_schema_requires_every_column_and_constrains_types():
    schema = reply_schema(COLUMNS)
    assert schema["required"] == ["Court", "Date of judgment", "Outcome", "Statutes"]
    assert schema["properties"]["Outcome"]["properties"]["value"] == {"enum": ["Allowed", "Dismissed", None]}
    assert schema["properties"]["Statutes"]["properties"]["value"]["type"] == "array"
    cell = schema["properties"]["Court"]
    assert cell["required"] == ["answer", "value", "citations"]
