"""Running review tables against the fake Ollama: one call per document, constrained output,
cells stored as they arrive, resume, new columns alone, failures, refusals, cancel, ask the table."""

from __future__ import annotations

import json
import threading

import pytest

from lib.asking import prompt
from lib.asking.review import (
    Column, add_columns, ask_table, create_table, edit_column, load_table, retry_cells, run_table,
)
from lib.asking.review.columns import apply_types, parse_column
from lib.config import Settings
from lib.library.reviews import ReviewStore
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes
from lib.reading.tokens import get_counter
from lib.servers import make_backend

from fake_ollama import FakeOllama
from review_fixtures import COLUMNS, ReviewModel, facts, judgment_text, passage_holding


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "data")


def settings_for(fake, **changes) -> Settings:
    return Settings(host=fake.url, **changes)


def columns(titles=None) -> list[Column]:
    specs = [c for c in COLUMNS if titles is None or c[0] in titles]
    cols = [parse_column(f"{title}: {question}") for title, question, _ in specs]
    return apply_types(cols, [f"{title}={kind}" for title, _, kind in specs])


def add_judgments(store, numbers, paragraphs=4):
    documents = []
    for number in numbers:
        data = judgment_text(number, paragraphs).encode()
        document = ingest_bytes(data, f"case-{number}.txt")
        store.add_document(document, data)
        documents.append(document)
    return documents


def test_every_column_in_one_constrained_call_per_document(fake, store):
    model = ReviewModel()
    fake.script(answer=model)
    documents = add_judgments(store, range(4))
    table = create_table(store, "Matter", documents, columns())
    report = run_table(store, table.id, settings_for(fake))

    bodies = fake.chat_bodies
    assert len(bodies) == 4 and sorted(model.calls) == sorted(d.name for d in documents)
    for body in bodies:
        schema = body["format"]
        assert schema["required"] == [c[0] for c in COLUMNS]  # all six columns in the one call
        assert body["truncate"] is False and body["think"] is False
        assert body["options"]["num_keep"] == get_counter().count(prompt.system_block())
        assert body["messages"][0]["content"] == prompt.SYSTEM_PROMPT
    assert len(report.calls) == 4
    assert all(c["prompt_tokens"] == c["server_prompt_tokens"] and c["constrained"] for c in report.calls)

    table = load_table(store, table.id)
    for row in table.rows:
        number = int(row.name.split("-")[1].split(".")[0])
        expected = facts(number)
        cells = {c.column: c for c in table.row_cells(row.sha256)}
        by_title = {col.title: cells[col.key] for col in table.columns}
        assert all(c.status == "answered" and not c.needs_review for c in cells.values())
        assert all(c.citations[0]["status"] == "verified" for c in cells.values())
        assert by_title["Date of judgment"].value == expected["Date of judgment"][0]
        assert by_title["Damages"].value == (number + 1) * 12_500 and by_title["Damages"].unit == "EUR"
        assert by_title["Limitation upheld?"].value is (number % 3 == 0)
        assert by_title["Outcome"].value == expected["Outcome"][0]
        assert by_title["Statutes"].value == expected["Statutes"][0]


def test_a_second_run_asks_nothing_and_a_new_column_alone(fake, store):
    model = ReviewModel()
    fake.script(answer=model)
    documents = add_judgments(store, range(3))
    table = create_table(store, "Matter", documents, columns(["Court", "Outcome"]))
    run_table(store, table.id, settings_for(fake))
    assert len(model.calls) == 3

    run_table(store, table.id, settings_for(fake))
    assert len(model.calls) == 3  # finished cells are never asked again

    [added] = add_columns(store, table.id, columns(["Damages"]))
    run_table(store, table.id, settings_for(fake))
    assert len(model.calls) == 6
    assert model.columns_asked[3:] == [["Damages"]] * 3  # one call per document, only the new column
    table = load_table(store, table.id)
    assert all(table.cell(r.sha256, added.key).status == "answered" for r in table.rows)


def test_a_review_run_leaves_its_speed_for_a_later_time_estimate(fake, store):
    """A plan's or probe's "estimated time" comes from earlier calls to the same server and model:
    the review table's calls count too, so a plan made after a review is not "time unknown"."""
    from lib.asking.plan import ServerSpeed

    fake.script(answer=ReviewModel())
    settings = settings_for(fake)
    assert not ServerSpeed.from_calls(store.recent_calls(settings.host, settings.model)).read_tokens_per_s
    table = create_table(store, "Matter", add_judgments(store, range(2)), columns(["Court"]))
    run_table(store, table.id, settings)
    calls = store.recent_calls(settings.host, settings.model)
    assert len(calls) == 2 and all(c["prompt_tokens"] > 0 for c in calls)
    assert ServerSpeed.from_calls(calls).read_tokens_per_s > 0
    assert store.recent_calls(settings.host, "another-model") == []


def test_a_changed_question_asks_that_column_again(fake, store):
    model = ReviewModel()
    fake.script(answer=model)
    documents = add_judgments(store, range(2))
    table = create_table(store, "Matter", documents, columns(["Court", "Outcome"]))
    run_table(store, table.id, settings_for(fake))
    court = table.columns[0]
    edit_column(store, table.id, Column(court.title, "Which court, exactly?", key=court.key))
    assert load_table(store, table.id).cell(documents[0].sha256, court.key).status == "pending"
    run_table(store, table.id, settings_for(fake))
    assert model.columns_asked[2:] == [["Court"], ["Court"]]


def test_reviewer_edit_and_marks_survive_a_rerun(fake, store):
    fake.script(answer=ReviewModel())
    documents = add_judgments(store, range(2))
    table = create_table(store, "Matter", documents, columns(["Outcome"]))
    run_table(store, table.id, settings_for(fake))
    key, sha = table.columns[0].key, documents[0].sha256
    reviews = ReviewStore(store)
    reviews.set_edit(table.id, sha, key, {"value": "Allowed in part", "answer": "Partly allowed.", "at": "now"})
    reviews.set_checked(table.id, sha, key, True)
    retry_cells(store, table.id, [(sha, key)])
    run_table(store, table.id, settings_for(fake))
    cell = load_table(store, table.id).cell(sha, key)
    assert cell.status == "answered" and cell.value == "Allowed"  # the model's answer, asked again
    assert cell.edit["value"] == "Allowed in part" and cell.checked  # the reviewer's, kept beside it
    assert cell.shown() == ("Allowed in part", None)


def test_a_failed_row_says_why_and_is_retried_alone(fake, store):
    model = ReviewModel()
    fake.script(answer=model)
    documents = add_judgments(store, range(3))
    table = create_table(store, "Matter", documents, columns(["Court", "Outcome"]))
    fake.fail_next(500, "llama runner process has terminated: exit status 2")
    fake.fail_next(500, "llama runner process has terminated: exit status 2")  # the automatic retry fails too
    run_table(store, table.id, settings_for(fake))
    table = load_table(store, table.id)
    failed = [r for r in table.rows if table.cell(r.sha256, "c1").status == "failed"]
    assert len(failed) == 1 and len(model.calls) == 2
    cell = table.cell(failed[0].sha256, "c1")
    assert "terminated" in cell.reason and cell.needs_review

    run_table(store, table.id, settings_for(fake))
    assert model.calls[2:] == [failed[0].name]
    table = load_table(store, table.id)
    assert table.cell(failed[0].sha256, "c1").status == "answered"


def test_a_passing_failure_is_retried_once(fake, store):
    fake.script(answer=ReviewModel())
    documents = add_judgments(store, range(1))
    table = create_table(store, "Matter", documents, columns(["Court"]))
    fake.interrupt_next("error", after=1)
    run_table(store, table.id, settings_for(fake))
    assert len(fake.chat_bodies) == 2
    assert load_table(store, table.id).cell(documents[0].sha256, "c1").status == "answered"


def test_free_text_and_unreadable_replies(fake, store):
    documents = add_judgments(store, [5])
    words = facts(5)["Court"][1]

    def prose(body, text):
        passage = passage_holding(text, words)
        return f'Court: {facts(5)["Court"][0]} "{words}" [{passage}]\nOutcome - I could not tell.'

    fake.script(answer=prose)
    table = create_table(store, "Matter", documents, columns(["Court", "Outcome"]))
    run_table(store, table.id, settings_for(fake))
    table = load_table(store, table.id)
    court, outcome = table.row_cells(documents[0].sha256)
    assert court.status == "answered" and court.source == "text" and court.citations[0]["status"] == "verified"
    assert outcome.status == "answered" and outcome.value is None and outcome.needs_review  # not an option

    fake.script(answer="I am sorry, I cannot help with that.")
    [extra] = add_columns(store, table.id, columns(["Damages"]))
    run_table(store, table.id, settings_for(fake))
    cell = load_table(store, table.id).cell(documents[0].sha256, extra.key)
    assert cell.status == "unreadable" and cell.raw == "I am sorry, I cannot help with that."
    assert cell.needs_review and "no readable answer" in cell.reason


def test_a_document_longer_than_one_call_is_read_in_parts_beside_the_others(fake, store):
    model = ReviewModel(strict=True)
    fake.script(answer=model)
    small = add_judgments(store, [1])
    big = add_judgments(store, [2], paragraphs=400)
    table = create_table(store, "Matter", small + big, columns(["Court"]))
    report = run_table(store, table.id, settings_for(fake, context=4096, answer_reserve=512))
    parts = [c for c in report.calls if c["sha256"] == big[0].sha256]
    assert len(parts) >= 2 and model.calls.count(small[0].name) == 1  # the small one read whole, once
    assert all(name.startswith("case-2.txt (part ") for name in model.calls if name != small[0].name)
    table = load_table(store, table.id)
    cell = table.cell(big[0].sha256, "c1")
    assert cell.status == "answered" and cell.value == facts(2)["Court"][0] and cell.parts == len(parts)
    assert table.cell(small[0].sha256, "c1").parts == 1


def test_cancel_keeps_finished_rows_and_drops_the_one_in_flight(fake, store):
    model = ReviewModel(block_at=2)
    fake.script(answer=model)
    documents = add_judgments(store, range(4))
    table = create_table(store, "Matter", documents, columns(["Court"]))
    cancel = threading.Event()
    seen = []
    runner = threading.Thread(target=lambda: seen.append(run_table(store, table.id, settings_for(fake), cancel=cancel)))
    runner.start()
    assert model.blocked.wait(30)
    cancel.set()
    model.release.set()
    runner.join(30)
    assert seen and seen[0].cancelled and seen[0].rows_run == 1
    table = load_table(store, table.id)
    statuses = sorted(table.cell(r.sha256, "c1").status for r in table.rows)
    assert statuses == ["answered", "pending", "pending", "pending"]
    assert len(model.calls) == 2


def test_progress_reports_rows_time_and_an_estimate(fake, store):
    fake.script(answer=ReviewModel())
    documents = add_judgments(store, range(3))
    table = create_table(store, "Matter", documents, columns(["Court"]))
    seen = []
    run_table(store, table.id, settings_for(fake), progress=seen.append)
    assert [p.done for p in seen] == [0, 1, 2, 3] and all(p.total == 3 for p in seen)
    assert seen[0].remaining_s is None and seen[-1].remaining_s == 0
    assert seen[1].last and all(p.elapsed_s >= 0 for p in seen)


def test_ask_the_table_cites_original_passages(fake, store):
    fake.script(answer=ReviewModel())
    documents = add_judgments(store, range(3))
    table = create_table(store, "Matter", documents, columns(["Limitation upheld?", "Outcome"]))
    run_table(store, table.id, settings_for(fake))
    words = facts(0)["Limitation upheld?"][1]

    def answer(body, text):
        passage = passage_holding(text, words)
        return f'In case 0 "{words}" [{passage}], and "a defence of laches" [{passage}].'

    fake.script(answer=answer)
    result = ask_table(store, table.id, "Which judgments upheld the limitation defence?", settings_for(fake))
    sent = fake.last_prompt
    assert "Reviewed answers (not citable):" in sent and "- Outcome: Allowed" in sent
    assert len(fake.chat_bodies) == 4 and "format" not in fake.last_chat  # one more call, free text
    verified, unverified = result.citations
    assert verified.status == "verified" and verified.document == "case-0.txt"
    original = next(d for d in documents if d.name == "case-0.txt")
    assert words in original.passages[next(i for i, p in enumerate(original.passages) if words in p.text)].text
    assert unverified.status == "unverified"
    assert result.calls and result.calls[0]["prompt_tokens"] == result.calls[0]["server_prompt_tokens"]


def test_stored_cells_are_exactly_what_loads(fake, store):
    """The runner's state is the store: a fresh Store on the same folder sees the same table."""
    fake.script(answer=ReviewModel())
    documents = add_judgments(store, range(2))
    table = create_table(store, "Matter", documents, columns(["Court", "Damages"]))
    run_table(store, table.id, settings_for(fake))
    again = load_table(Store(store.data_dir), table.id)
    first = load_table(store, table.id)
    assert {k: c.to_json() for k, c in again.cells.items()} == {k: c.to_json() for k, c in first.cells.items()}
    calls = ReviewStore(store).calls(table.id)
    assert len(calls) == 2 and {c["document"] for c in calls} == {"case-0.txt", "case-1.txt"}
    assert json.loads(json.dumps(calls))  # plain data


def test_process_document_is_the_job_runners_unit(fake, store):
    """One document's work, by (table, document): asks and stores what is left, then nothing."""
    from lib.asking.review import process_document

    model = ReviewModel()
    fake.script(answer=model)
    documents = add_judgments(store, range(2))
    table = create_table(store, "Matter", documents, columns(["Court", "Outcome"]))
    settings = settings_for(fake)
    row = process_document(store, table.id, documents[1].sha256, settings, backend=make_backend(settings),
                           context=settings.context)
    assert set(row.cells) == {"c1", "c2"} and model.calls == ["case-1.txt"]
    stored = load_table(store, table.id)
    assert stored.cell(documents[1].sha256, "c1").status == "answered"
    assert stored.cell(documents[0].sha256, "c1").status == "pending"
    again = process_document(store, table.id, documents[1].sha256, settings, backend=None, context=settings.context)
    assert again.cells == {} and again.call is None and len(model.calls) == 1
