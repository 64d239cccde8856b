"""Review exports reopened with the libraries that read them: typed cells, the citations sheet,
text never turned into formulas, well-formed XML; CSV; the Word memo's footnotes; filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import openpyxl
import pytest
from lxml import etree

from lib.asking.review import create_table, load_table, run_table
from lib.asking.review.columns import apply_types, parse_column
from lib.config import Settings
from lib.library.reviews import ReviewStore
from lib.library.store import Store
from lib.output.exports import read_footnotes
from lib.output.review_exports import table_csv, table_docx, table_xlsx
from lib.output.review_view import column_choices, filter_rows, progress_line, table_json, table_rows
from lib.asking.review.runner import Progress

from fake_ollama import FakeOllama
from review_fixtures import COLUMNS, ReviewModel, facts, judgment_text
from lib.reading.ingest import ingest_bytes

HOSTILE = '=HYPERLINK("http://example.com","click")'


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """A stored 3-row table over every column type, one cell edited, one unreadable."""
    store = Store(tmp_path_factory.mktemp("data"))
    documents = []
    for number in range(3):
        data = judgment_text(number).encode()
        document = ingest_bytes(data, f"case-{number}.txt")
        store.add_document(document, data)
        documents.append(document)
    columns = apply_types([parse_column(f"{t}: {q}") for t, q, _ in COLUMNS], [f"{t}={k}" for t, _, k in COLUMNS])
    with FakeOllama() as fake:
        fake.script(answer=ReviewModel())
        table = create_table(store, "Matter 42", documents, columns)
        run_table(store, table.id, Settings(host=fake.url))
    table = load_table(store, table.id)
    reviews = ReviewStore(store)
    outcome = next(c for c in table.columns if c.title == "Outcome")
    reviews.set_edit(table.id, documents[1].sha256, outcome.key, {"value": "Allowed", "answer": HOSTILE})
    court = table.columns[0]
    stored = reviews.cells(table.id)[(documents[2].sha256, court.key)].cell
    stored.update(status="unreadable", value=None, text="", citations=[], raw="garbage\x00\x01", review=["unreadable"],
                  reason="The model's reply has no readable answer for this column.")
    reviews.save_row(table.id, documents[2].sha256, [stored])
    return store, load_table(store, table.id), documents


def test_xlsx_has_typed_cells_and_every_citation(reviewed):
    _, table, documents = reviewed
    book = openpyxl.load_workbook(io.BytesIO(table_xlsx(table)))
    assert book.sheetnames == ["Table", "Answers", "Citations"]
    sheet = book["Table"]
    header = [c.value for c in sheet[1]]
    assert header == ["Document"] + [c[0] for c in COLUMNS]
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    row0 = rows["case-0.txt"]
    col = {title: header.index(title) for title in header}
    date = row0[col["Date of judgment"]]
    assert isinstance(date.value, dt.datetime) and date.value.date() == dt.date.fromisoformat(facts(0)["Date of judgment"][0])
    assert date.number_format == "yyyy-mm-dd"
    damages = row0[col["Damages"]]
    assert damages.value == 12_500 and damages.data_type == "n" and damages.number_format == '#,##0" EUR"'
    assert row0[col["Limitation upheld?"]].value is True
    assert row0[col["Statutes"]].value == "Limitation Act 1980\nSale of Goods Act 1979"
    assert rows["case-1.txt"][col["Outcome"]].value == "Allowed"  # the reviewer's edit is what the table shows
    assert rows["case-2.txt"][col["Court"]].value == "(unreadable)"

    answers = book["Answers"]
    head = [c.value for c in answers[1]]
    edited = next(r for r in answers.iter_rows(min_row=2, values_only=True) if r[0] == "case-1.txt" and r[1] == "Outcome")
    assert edited[head.index("Edited by reviewer")] is True and edited[head.index("Model's value")] == "Dismissed"
    assert edited[head.index("Answer")] == HOSTILE  # stored as text, never as a formula

    citations = book["Citations"]
    assert [c.value for c in citations[1]] == ["Document", "Column", "Page", "Printed page", "Passage ID", "Quote",
                                               "Status", "Note"]
    lines = list(citations.iter_rows(min_row=2, values_only=True))
    assert len(lines) == 3 * 6 - 1  # every cited cell, minus the unreadable one
    first = next(r for r in lines if r[0] == "case-0.txt" and r[1] == "Damages")
    assert first[5] == facts(0)["Damages"][1] and first[6] == "verified"
    assert first[4] in {p.id for p in documents[0].passages} | {first[4]}


def test_xlsx_parts_are_well_formed_and_text_is_never_a_formula(reviewed):
    _, table, _ = reviewed
    data = table_xlsx(table)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for name in archive.namelist():
            if name.endswith(".xml") or name.endswith(".rels"):
                etree.fromstring(archive.read(name))  # raises on malformed XML
        sheets = b"".join(archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in sheets and b"<f " not in sheets  # no formula anywhere
    formulas = openpyxl.load_workbook(io.BytesIO(data))
    assert all(cell.data_type != "f" for sheet in formulas for row in sheet.iter_rows() for cell in row)


def test_csv_row_per_document_with_statuses_and_citations(reviewed):
    _, table, _ = reviewed
    data = table_csv(table)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["document"] for r in rows] == ["case-0.txt", "case-1.txt", "case-2.txt"]
    assert rows[0]["Damages"] == "12,500 EUR" and rows[0]["Damages · status"] == "answered"
    assert '"damages of 12,500 EUR" (verified)' in rows[0]["Damages · citations"]
    assert rows[2]["Court · status"].startswith("unreadable")


def test_word_memo_footnotes_every_citation(reviewed):
    _, table, _ = reviewed
    data = table_docx(table)
    notes = read_footnotes(data)
    cited = sum(len(c.citations) for c in table.cells.values())
    assert len(notes) == cited
    assert any("case-0.txt" in text and facts(0)["Damages"][1] in text and "verified" in text for text in notes.values())
    import docx

    memo = docx.Document(io.BytesIO(data))
    [grid] = memo.tables
    assert len(grid.rows) == 4 and grid.rows[0].cells[0].text == "Document"


def test_filters_by_value_and_needs_review(reviewed):
    _, table, _ = reviewed
    rows = table_rows(table)
    outcome = next(c for c in table.columns if c.title == "Outcome").key
    # case-1 was dismissed by the model, allowed by the reviewer's edit: the edit is what filters see
    assert [r.document for r in filter_rows(rows, column=outcome, value="allowed")] == ["case-0.txt", "case-1.txt", "case-2.txt"]
    assert filter_rows(rows, column=outcome, value="Dismissed") == []
    assert column_choices(rows, outcome) == ["Allowed"]
    court = table.columns[0].key
    assert [r.document for r in filter_rows(rows, column=court, value="court of appeal")] == ["case-1.txt"]
    statutes = next(c for c in table.columns if c.title == "Statutes").key
    assert len(filter_rows(rows, column=statutes, value="Limitation Act 1980")) == 3
    assert [r.document for r in filter_rows(rows, needs_review=True)] == ["case-2.txt"]
    assert filter_rows(rows, status="unreadable")[0].cell(table.columns[0].key).mark == "✗"


def test_an_opened_cell_shows_its_quote_in_its_passage(reviewed):
    from lib.output.review_view import cell_evidence

    store, table, documents = reviewed
    row = table_rows(table)[0]
    damages = next(c for c in row.cells if c.title == "Damages")
    [evidence] = cell_evidence(store.get_document(row.sha256), damages)
    start, end = evidence["span"]
    assert evidence["passage"][start:end] == facts(0)["Damages"][1]
    assert evidence["citation"]["status"] == "verified"


def test_json_shape_and_progress_line(reviewed):
    _, table, _ = reviewed
    data = table_json(table)
    cell = data["rows"][0]["cells"][0]
    assert {"column", "value", "answer", "status", "citations"} <= set(cell)
    assert {"id", "page", "quote", "status"} <= set(cell["citations"][0])
    edited = next(c for c in data["rows"][1]["cells"] if c["column"] == "Outcome")
    assert edited["value"] == "Allowed" and edited["model"]["value"] == "Dismissed"
    assert progress_line(Progress(12, 30, 80, 130)) == "12 of 30 rows · 1 min 20 s elapsed · about 2 min 10 s left"
