"""Turn records (lib/output/turns.py): what the Ask page saves after an answer, a Stop or an error."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from lib.asking.answering import Answer
from lib.asking.budget import Budget
from lib.asking.citations import Citation, verify_citations
from lib.config import load_settings
from lib.errors import ServerBusy
from lib.library.store import Store
from lib.output import turns

from answer_fixtures import lease


@pytest.fixture(scope="module")
def doc():
    return lease()


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data", model="qwen-test", host="127.0.0.1:9")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "data")


def _job(doc, store, settings, question="Who pays the rent?", conversation=None):
    conversation = conversation or {"id": None, "turns": [], "error": None, "pending": None}
    pending = turns.new_pending(question, False, [doc], prompt_tokens=1234)
    conversation["pending"] = pending
    return turns.new_job(conversation, pending, store=store, settings=settings, documents=[doc])


def _quoted(doc, quote="the first day of each month", index=0) -> str:
    return f'Rent is due on "{quote}" [{doc.passages[index].id}].'


def _call(prompt_eval_s: float, server_prompt_tokens: int) -> dict:
    return {"prompt_eval_s": prompt_eval_s, "server_prompt_tokens": server_prompt_tokens}


# --- pending and job ----------------------------------------------------------------


def test_new_pending_records_the_documents_and_starts_empty(doc):
    pending = turns.new_pending("Q?", True, [doc], prompt_tokens=77)
    assert pending["shas"] == [doc.sha256] and pending["names"] == ["lease.pdf"]
    assert pending["formats"] == {doc.sha256: "pdf"}
    assert (pending["answer"], pending["thinking"], pending["phase"]) == ("", "", "")
    assert pending["think"] is True and pending["prompt_tokens"] == 77
    assert not pending["done"].is_set()
    started = dt.datetime.fromisoformat(pending["started"])
    assert abs((dt.datetime.now() - started).total_seconds()) < 5 and started.microsecond == 0


# --- citation records -----------------------------------------------------------------


def test_a_verified_citation_keeps_its_sha_format_passage_and_page(doc):
    [citation] = verify_citations(_quoted(doc), [doc])
    pending = turns.new_pending("Q", False, [doc], 0)
    record = turns.citation_record(citation, pending)
    assert record["status"] == "verified" and record["sha"] == doc.sha256 and record["format"] == "pdf"
    assert record["passage_text"] == doc.passages[0].text
    assert record["page_text"] == "p. 1"
    assert record["id"] == doc.passages[0].id and record["quote"] == "the first day of each month"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"page": 3}, "p. 3"),
        ({"page": 3, "page_end": 5}, "pp. 3-5"),
        ({"page": 3, "page_end": 3}, "p. 3"),  # a passage within one page
        ({"page": 3, "page_label": "xii"}, "p. xii"),  # the printed label wins
        ({"page": 3, "page_end": 4, "page_label": "xii"}, "pp. xii-xiii"),  # counted on from the label
    ],
)
def test_page_text_names_the_page_or_the_range(fields, expected):
    record = turns.citation_record(Citation(id="P1", status="verified", quote="q", **fields), {"formats": {}})
    assert record["page_text"] == expected


def test_a_citation_without_a_page_gets_no_page_text_and_an_unknown_sha_no_format():
    pending = {"formats": {"abc": "pdf"}}
    record = turns.citation_record(Citation(id="X9", status="invalid", quote=None), pending)
    assert "page_text" not in record and record["sha"] is None and record["format"] is None
    record = turns.citation_record(Citation(id="X9", status="verified", quote="q", sha256="other"), pending)
    assert record["sha"] == "other" and record["format"] is None


def test_a_stored_citation_dict_is_copied_not_changed():
    stored = {"id": "P1", "status": "verified", "sha256": "abc", "passage": "The text.", "page": 2}
    record = turns.citation_record(stored, {"formats": {"abc": "docx"}})
    assert record["sha"] == "abc" and record["format"] == "docx" and record["passage_text"] == "The text."
    assert record["page_text"] == "p. 2"
    assert "sha" not in stored and "page_text" not in stored


# --- turns from answers -------------------------------------------------------------------


def test_turn_from_answer_is_plain_json_without_the_budget(doc):
    text = _quoted(doc)
    answer = Answer(
        question="Who pays?", answer=text, thinking="hmm", citations=verify_citations(text, [doc]),
        warnings=["w1"], calls=[{"prompt_tokens": 10}], interrupted=True, interrupt_reason="Server stopped.",
        no_answer=False, think=True, model="m",
        budget=Budget(context=1000, system=10, template=5, question=5, history=0, reserved=100,
                      documents={"lease.pdf": 20}, counter="exact", think=True),
    )
    record = turns.turn_from_answer(answer, turns.new_pending("Who pays?", True, [doc], 0))
    assert "budget" not in record
    assert record["answer"] == text and record["thinking"] == "hmm" and record["warnings"] == ["w1"]
    assert record["interrupted"] is True and record["reason"] == "Server stopped."
    assert record["no_answer"] is False and record["calls"] == [{"prompt_tokens": 10}]
    [citation] = record["citations"]
    assert citation["sha"] == doc.sha256 and citation["format"] == "pdf" and citation["page_text"] == "p. 1"


def test_an_interrupted_turn_keeps_the_text_and_checks_its_citations(doc):
    pending = turns.new_pending("Q", False, [doc], 0)
    pending["answer"], pending["thinking"] = _quoted(doc) + " And more", "partial reasoning"
    record = turns.interrupted_turn(pending, [doc])
    assert record["answer"] == pending["answer"] and record["thinking"] == "partial reasoning"
    assert record["interrupted"] is True and record["reason"] == turns.STOPPED_REASON
    assert [c["status"] for c in record["citations"]] == ["verified"]
    assert record["calls"] == [] and record["no_answer"] is False


def test_an_interrupted_turn_drops_the_cites_no_passage_warning_but_keeps_others(doc):
    pending = turns.new_pending("Q", False, [doc], 0)
    pending["answer"] = "The rent is monthly, so far"
    assert turns.interrupted_turn(pending, [doc])["warnings"] == []
    missing = doc.passages[0].id.rsplit("-", 1)[0] + "-99"
    pending["answer"] = f'Rent "the first day of each month" [{missing}]'
    [warning] = turns.interrupted_turn(pending, [doc])["warnings"]
    assert f"[{missing}]" in warning


def test_an_interrupted_turn_keeps_the_text_when_checking_fails(doc):
    pending = turns.new_pending("Q", False, [doc], 0)
    pending["answer"] = _quoted(doc)
    record = turns.interrupted_turn(pending, documents=None)  # not iterable: check_answer raises
    assert record["answer"] == pending["answer"] and record["citations"] == [] and record["warnings"] == []


def test_with_context_adds_question_documents_time_and_model(doc, settings):
    pending = turns.new_pending("Who pays?", True, [doc], 0)
    record = {"answer": "a"}
    assert turns.with_context(record, pending, settings) is record
    assert record == {
        "answer": "a", "question": "Who pays?", "think": True, "documents": ["lease.pdf"], "shas": [doc.sha256],
        "asked_at": pending["started"], "model": "qwen-test", "configured_model": "qwen-test",
        "backend": settings.backend,
    }


# --- reading speed and settings ---------------------------------------------------------


def test_slowest_read_is_the_highest_seconds_per_token_of_a_full_read():
    history = [
        {"calls": [_call(2.0, 1000), _call(0.1, 1000)]},  # 0.002 s/token, then a cached follow-up
        {"calls": [_call(9.0, 3000)]},  # 0.003 s/token: the slowest
        {"calls": [{"prompt_eval_s": 5.0}, _call(0.0, 10), _call(1.0, 0)]},  # nothing measurable
        {"calls": None},
        {},
    ]
    assert turns.slowest_read(history) == pytest.approx(0.003)
    assert turns.slowest_read([]) is None and turns.slowest_read([{"calls": [_call(0, 5)]}]) is None


def test_public_settings_are_the_model_settings_only(settings):
    public = turns.public_settings(settings)
    assert list(public) == list(turns.PUBLIC_SETTINGS)
    assert public["model"] == "qwen-test" and public["host"] == settings.host
    assert "data_dir" not in public and "max_file_mb" not in public


# --- finishing and saving -------------------------------------------------------------------


def test_a_finished_answer_is_saved_in_a_new_conversation_then_as_a_follow_up(doc, store, settings):
    job = _job(doc, store, settings, question="Who pays the rent? " + "x" * 200)
    text = _quoted(doc)
    first = Answer(question="q", answer=text, citations=verify_citations(text, [doc]),
                   calls=[_call(4.0, 2000)])
    turns.finish_job(job, SimpleNamespace(kind="final", answer=first))
    conversation = job["chat"]
    assert conversation["pending"] is None and job["pending"]["done"].is_set() and conversation["error"] is None
    [turn] = conversation["turns"]
    assert turn["follow_up"] is False and turn["slowest_s_per_token"] is None
    assert turn["question"].startswith("Who pays the rent?") and turn["documents"] == ["lease.pdf"]

    saved = store.get_conversation(conversation["id"])
    assert saved["title"] == job["pending"]["question"][:120]
    assert [d["sha256"] for d in saved["documents"]] == [doc.sha256]
    assert saved["settings"] == turns.public_settings(settings) | {"answered_by": "qwen-test"}
    [stored] = saved["turns"]
    assert stored["id"] == turn["id"] and stored["citations"][0]["sha"] == doc.sha256
    assert stored["settings"] == turns.public_settings(settings)

    follow = _job(doc, store, settings, question="And the deposit?", conversation=conversation)
    turns.finish_job(follow, SimpleNamespace(kind="final", answer=Answer(question="q2", answer="Two months.")))
    assert [t["follow_up"] for t in conversation["turns"]] == [False, True]
    assert conversation["turns"][1]["slowest_s_per_token"] == pytest.approx(0.002)
    assert [t["question"] for t in store.get_conversation(conversation["id"])["turns"]][1] == "And the deposit?"


def test_a_stop_without_a_final_event_saves_the_part_that_arrived(doc, store, settings):
    job = _job(doc, store, settings)
    job["pending"]["answer"] = _quoted(doc)
    turns.finish_job(job, None)
    [turn] = job["chat"]["turns"]
    assert turn["interrupted"] is True and turn["answer"] == _quoted(doc)
    assert store.get_conversation(job["chat"]["id"])["turns"][0]["reason"] == turns.STOPPED_REASON


def test_an_error_before_any_text_is_shown_and_saves_nothing(doc, store, settings):
    job = _job(doc, store, settings)
    turns.finish_job(job, ServerBusy("The server is busy. Try again."))
    assert job["chat"]["error"] == "The server is busy. Try again."
    assert job["chat"]["turns"] == [] and job["chat"]["id"] is None and store.list_conversations() == []
    assert job["chat"]["pending"] is None and job["pending"]["done"].is_set()


def test_an_unexpected_error_after_some_text_keeps_the_text_and_names_the_error(doc, store, settings):
    job = _job(doc, store, settings)
    job["pending"]["thinking"] = "half a thought"
    turns.finish_job(job, ValueError("boom"))
    assert job["chat"]["error"] == "Unexpected problem while answering (ValueError: boom)."
    [turn] = job["chat"]["turns"]
    assert turn["interrupted"] is True and turn["thinking"] == "half a thought"
    assert len(store.get_conversation(job["chat"]["id"])["turns"]) == 1


def test_a_turn_that_cannot_be_saved_is_still_shown_with_the_reason(doc, store, settings):
    conversation = {"id": 999, "turns": [], "error": None, "pending": None}  # deleted in another tab
    job = _job(doc, store, settings, conversation=conversation)
    turns.finish_job(job, SimpleNamespace(kind="final", answer=Answer(question="q", answer="Monthly.")))
    assert conversation["error"].startswith("The answer is shown but could not be saved: Conversation 999")
    assert [t["answer"] for t in conversation["turns"]] == ["Monthly."] and "id" not in conversation["turns"][0]


def test_the_pending_answer_is_released_even_when_saving_breaks(doc, settings):
    class Broken:
        def create_conversation(self, *args):
            raise RuntimeError("disk on fire")

    job = _job(doc, Broken(), settings)
    with pytest.raises(RuntimeError):
        turns.finish_job(job, SimpleNamespace(kind="final", answer=Answer(question="q", answer="a")))
    assert job["chat"]["pending"] is None and job["pending"]["done"].is_set()


def test_turns_survive_a_json_round_trip(doc):
    import json

    text = _quoted(doc)
    answer = Answer(question="q", answer=text, citations=verify_citations(text, [doc]))
    record = turns.turn_from_answer(answer, turns.new_pending("q", False, [doc], 0))
    assert json.loads(json.dumps(record)) == record


def test_a_stop_before_any_word_does_not_claim_a_part_was_kept(doc):
    pending = turns.new_pending("Who pays?", False, [doc], 0)
    record = turns.interrupted_turn(pending, [doc])
    assert record["reason"] == "Stopped by you before the model's first word." and record["status"] == "stopped"
    assert "kept" not in record["reason"]


def test_a_stop_before_any_word_is_shown_but_not_saved(doc, store, settings):
    job = _job(doc, store, settings, question="Who repairs the roof?")
    stopped = Answer(question="Who repairs the roof?", interrupted=True, status="stopped",
                     interrupt_reason="Stopped while the server was checked. No part of an answer had arrived.")
    turns.finish_job(job, SimpleNamespace(kind="final", answer=stopped))
    conversation = job["chat"]
    assert conversation["turns"] == [] and conversation["id"] is None and store.list_conversations() == []
    unsent = conversation["unsent"]
    assert unsent["question"] == "Who repairs the roof?" and unsent["why"] == "stopped"
    assert unsent["message"].startswith("Stopped while the server was checked")
    assert conversation["pending"] is None and job["pending"]["done"].is_set()

    late = _job(doc, store, settings)  # Stop before lib could hand back its final answer
    turns.finish_job(late, None)
    assert late["chat"]["turns"] == [] and late["chat"]["unsent"]["message"] == turns.STOPPED_EARLY_REASON


def test_a_question_the_server_did_not_answer_is_kept_to_ask_again(doc, store, settings):
    job = _job(doc, store, settings, question="Who pays?")
    turns.finish_job(job, ServerBusy("The server is busy. Try again."))
    assert job["chat"]["unsent"] == {"question": "Who pays?", "think": False, "shas": [doc.sha256], "why": "error",
                                     "message": "The server is busy. Try again.", "prefilled": False}
    silent = _job(doc, store, settings, question="And the deposit?")
    ended = Answer(question="q", interrupted=True, status="interrupted",
                   interrupt_reason="No text for 900 s: no part of an answer arrived.")
    turns.finish_job(silent, SimpleNamespace(kind="final", answer=ended))
    assert silent["chat"]["turns"] == [] and store.list_conversations() == []
    assert silent["chat"]["error"] == "No text for 900 s: no part of an answer arrived."
    assert silent["chat"]["unsent"]["question"] == "And the deposit?"
