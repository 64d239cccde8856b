"""Documents longer than one call in a review table: read in parts at their natural boundaries
(the plan engine's splitting, passage IDs kept), and each cell composed from the parts' answers."""

from __future__ import annotations

import pytest

from lib.asking.review import create_table, load_table, run_table
from lib.asking.review.cells import Cell
from lib.asking.review.columns import Column
from lib.asking.review.parts import compose_cells
from lib.config import Settings
from lib.library.reviews import ReviewStore
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes

from fake_ollama import FakeOllama
from review_fixtures import ReviewModel, facts, passages_in

YESNO = Column("Upheld?", "Was it upheld?", "yesno", key="c1")
OPTIONS = Column("Outcome", "What was the outcome?", "options", ("Allowed", "Dismissed"), key="c2")
LIST = Column("Statutes", "Which statutes?", "list", key="c3")
TEXT = Column("Court", "Which court?", key="c4")
NUMBER = Column("Damages", "How much?", "number", key="c5")


def cell(column: Column, value, *, verified=True, answer="", status="answered", pid="kzt-1", unit=None) -> Cell:
    citations = [{"id": pid, "quote": f"words for {value}", "status": "verified" if verified else "unverified"}]
    return Cell(column=column.key, status=status, value=value, unit=unit, text=str(value), answer=answer or str(value),
                citations=citations if status == "answered" else [],
                review=[] if verified else ["no verified citation"])


def not_stated(column: Column) -> Cell:
    return Cell(column=column.key, status="not_stated", answer="Not stated in this document.")


# ------------------------------------------------------------------- the rules, pure


def test_one_verified_value_wins_over_parts_that_do_not_state_it():
    parts = [{"c1": not_stated(YESNO)}, {"c1": cell(YESNO, True, pid="kzt-40")}, {"c1": not_stated(YESNO)}]
    composed = compose_cells([YESNO], parts)["c1"]
    assert composed.status == "answered" and composed.value is True and composed.parts == 3
    assert [c["id"] for c in composed.citations] == ["kzt-40"] and not composed.review


def test_verified_evidence_outweighs_an_unverified_answer_of_another_part():
    parts = [{"c2": cell(OPTIONS, "Allowed", verified=False)}, {"c2": cell(OPTIONS, "Dismissed", pid="kzt-9")}]
    composed = compose_cells([OPTIONS], parts)["c2"]
    assert composed.value == "Dismissed" and not composed.review and composed.verified == 1


def test_parts_that_disagree_with_verified_evidence_need_review_and_keep_every_citation():
    parts = [{"c1": cell(YESNO, True, answer="Yes, in part 1", pid="kzt-2")},
             {"c1": cell(YESNO, False, answer="No, in part 2", pid="kzt-80")}]
    composed = compose_cells([YESNO], parts)["c1"]
    assert composed.needs_review and composed.review[0].startswith("the parts disagree")
    assert "Yes, in part 1" in composed.review[0] and "No, in part 2" in composed.review[0]
    assert [c["id"] for c in composed.citations] == ["kzt-2", "kzt-80"]


def test_no_verified_evidence_keeps_the_first_answer_and_its_review_flag():
    parts = [{"c5": cell(NUMBER, 1250, verified=False, unit="EUR")}, {"c5": not_stated(NUMBER)}]
    composed = compose_cells([NUMBER], parts)["c5"]
    assert composed.value == 1250 and composed.unit == "EUR" and composed.needs_review


def test_lists_are_merged_in_order_of_first_appearance():
    parts = [{"c3": cell(LIST, ["Limitation Act 1980", "Sale of Goods Act 1979"], pid="kzt-3")},
             {"c3": not_stated(LIST)},
             {"c3": cell(LIST, ["Sale of Goods Act 1979", "Consumer Rights Act 2015"], pid="kzt-99")}]
    composed = compose_cells([LIST], parts)["c3"]
    assert composed.value == ["Limitation Act 1980", "Sale of Goods Act 1979", "Consumer Rights Act 2015"]
    assert {c["id"] for c in composed.citations} == {"kzt-3", "kzt-99"} and not composed.review


def test_text_of_one_part_needs_no_composing_call():
    asked = []
    parts = [{"c4": cell(TEXT, "High Court")}, {"c4": not_stated(TEXT)}]
    composed = compose_cells([TEXT], parts, compose_text=lambda cols, cells: asked.append(cols) or {})["c4"]
    assert asked == [] and composed.value == "High Court" and composed.parts == 2


def test_text_of_several_parts_is_composed_in_one_call_for_every_such_column():
    other = Column("Reasons", "Why?", key="c6")
    seen = {}

    def compose(columns, cells):
        seen.update(columns=[c.key for c in columns], cells={k: [n for n, _c in v] for k, v in cells.items()})
        return {"c4": cell(TEXT, "High Court, then the Court of Appeal", pid="kzt-7")}

    parts = [{"c4": cell(TEXT, "High Court"), "c6": cell(other, "Delay")},
             {"c4": cell(TEXT, "Court of Appeal"), "c6": cell(other, "Prejudice")}]
    composed = compose_cells([TEXT, other], parts, compose_text=compose)
    assert seen == {"columns": ["c4", "c6"], "cells": {"c4": [1, 2], "c6": [1, 2]}}  # one call, both columns
    assert composed["c4"].value == "High Court, then the Court of Appeal" and composed["c4"].parts == 2
    # The composing answer lacked "Reasons": the parts' answers are joined, and the cell flagged.
    assert composed["c6"].answer == "Part 1: Delay Part 2: Prejudice" and composed["c6"].needs_review
    assert "without a composing answer" in composed["c6"].review[0]


def test_nothing_stated_anywhere_is_not_stated_and_an_unreadable_part_is_named():
    parts = [{"c1": not_stated(YESNO), "c2": cell(OPTIONS, "Allowed")},
             {"c1": not_stated(YESNO), "c2": Cell(column="c2", status="unreadable", reason="no answer", review=["x"])}]
    composed = compose_cells([YESNO, OPTIONS], parts)
    assert composed["c1"].status == "not_stated" and composed["c1"].parts == 2
    assert composed["c2"].value == "Allowed" and "not read in part 2" in composed["c2"].review[-1]


# ------------------------------------------------------------------- against the fake server


def long_judgment(number: int, filler: int = 300) -> str:
    """A judgment stating its court at the start and again at the end, its statutes at the start,
    its limitation holding and outcome only at the end, with many paragraphs between."""
    f = facts(number)
    head = [f"Case {number}: Smith v Jones (No {number})",
            f"{f['Date of judgment'][1]} by {f['Court'][1]}.",
            f"The court interpreted {f['Statutes'][1]}."]
    middle = [f"Paragraph {i} of case {number} sets out the background of the dispute in detail." for i in range(filler)]
    tail = [f"The court holds that {f['Limitation upheld?'][1]} on these facts.",
            f"Sitting again, {f['Court'][1]} made its final orders.",
            f"For these reasons {f['Outcome'][1]} and {f['Damages'][1]} are awarded to the claimant."]
    return "\n\n".join(head + middle + tail) + "\n"


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def test_a_long_document_is_read_in_parts_and_its_cells_composed(fake, tmp_path):
    store = Store(tmp_path / "data")
    data = long_judgment(3).encode()
    document = ingest_bytes(data, "case-3.txt")
    store.add_document(document, data)
    columns = [Column("Court", "Which court decided the case?"),
               Column("Date of judgment", "On what date was the judgment given?", "date"),
               Column("Limitation upheld?", "Was a limitation defence upheld?", "yesno"),
               Column("Statutes", "Which statutes were interpreted?", "list"),
               Column("Damages", "What damages were awarded?", "number")]
    model = ReviewModel(strict=True)
    fake.script(answer=model)
    table = create_table(store, "Long", [document], columns)
    settings = Settings(host=fake.url, context=4096, answer_reserve=512)
    report = run_table(store, table.id, settings)

    reads = [c for c in report.calls if c.get("kind") != "compose"]
    composing = [c for c in report.calls if c.get("kind") == "compose"]
    parts = len(reads)
    assert parts >= 2 and [c["part"] for c in reads] == list(range(1, parts + 1))
    assert all(c["parts"] == parts and c["prompt_tokens"] == c["server_prompt_tokens"] for c in report.calls)
    assert all(c["prompt_tokens"] <= 4096 - 512 for c in report.calls)
    # The parts read every passage once, in order, with the document's own IDs.
    sent = [pid for prompt in model.prompts[:parts] for pid, _text in passages_in(prompt)]
    assert sent == [p.id for p in document.passages]
    assert [c["passages"][0] for c in reads] == [p[0] for p in (passages_in(x)[0] for x in model.prompts[:parts])]
    # Court is stated in the first and the last part: one composing call, over that column only.
    assert len(composing) == 1 and composing[0]["columns"] == ["Court"]
    assert "Answers of the parts" in model.prompts[-1] and model.columns_asked[-1] == ["Court"]

    stored = load_table(store, table.id)
    cells = {c.column: c for c in stored.row_cells(document.sha256)}
    expected = facts(3)
    assert all(c.parts == parts for c in cells.values())
    assert cells["c1"].value == "High Court" and cells["c1"].source == "composed" and cells["c1"].verified
    assert cells["c2"].value == expected["Date of judgment"][0] and cells["c2"].verified
    assert cells["c3"].value is True and cells["c3"].verified  # stated only in the last part
    assert cells["c4"].value == expected["Statutes"][0]
    assert cells["c5"].value == 50_000 and cells["c5"].unit == "EUR"
    assert not any(c.needs_review for c in cells.values())
    calls = ReviewStore(store).calls(table.id)
    assert len(calls) == parts + 1 and all(c["sha256"] == document.sha256 for c in calls)


def test_a_document_that_cannot_be_read_even_in_parts_is_refused_with_the_numbers(fake, tmp_path):
    store = Store(tmp_path / "data")
    data = long_judgment(1).encode()
    document = ingest_bytes(data, "case-1.txt")
    store.add_document(document, data)
    fake.script(answer=ReviewModel())
    table = create_table(store, "Long", [document], [Column("Court", "Which court decided the case?")])
    run_table(store, table.id, Settings(host=fake.url, context=4096, answer_reserve=3800))
    refused = load_table(store, table.id).cell(document.sha256, "c1")
    assert refused.status == "refused" and refused.needs_review
    assert "case-1.txt could not be read, not even in parts" in refused.reason
    assert "raise the context" in refused.reason
    assert fake.chat_bodies == []
