"""Asking against the fake Ollama (a real HTTP server on 127.0.0.1): what Folio sends and
how it handles each server behaviour."""

from __future__ import annotations

import threading

import pytest

from lib.asking import answering
from lib.asking.answering import ask, ask_stream
from lib.asking.budget import compute_budget
from lib.asking.prompt import NO_ANSWER, SYSTEM_PROMPT, num_keep, render_chat, system_block
from lib.config import Settings
from lib.errors import BudgetExceeded, ModelNotFound, ServerCrashed, ThinkingUnsupported
from lib.reading.tokens import get_counter
from lib.servers.protocol import CallStats, ServerInfo, StreamEvent

from answer_fixtures import contract_zh, injection, lease, long_document
from fake_ollama import FakeOllama

IM_START, IM_END = 151644, 151645


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def settings_for(fake: FakeOllama, **changes) -> Settings:
    return Settings(host=fake.url, **changes)


# ------------------------------------------------------------------------ what is sent


def test_every_request_carries_the_fields_that_keep_answers_honest(fake):
    settings = settings_for(fake, keep_alive="45m")
    counter = get_counter("exact")
    first = ask([lease()], "Who pays the rent?", settings)
    second = ask([lease()], "Who repairs the roof?", settings)
    bodies = fake.chat_bodies
    assert len(bodies) == 2
    for body in bodies:
        options = body["options"]
        assert options["num_ctx"] == 131072  # min(configured 131,072, trained 131,072)
        assert options["num_keep"] == counter.count(system_block(SYSTEM_PROMPT)) == num_keep(counter)
        assert options["num_predict"] == settings.answer_reserve
        assert (options["temperature"], options["top_p"], options["top_k"], options["min_p"]) == (0.7, 0.8, 20, 0.0)
        assert body["truncate"] is False
        assert body["think"] is False
        assert body["keep_alive"] == "45m"
        assert body["shift"] is True
        assert body["stream"] is True
        assert body["model"] == settings.model
        assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert len(fake.loads) == 1  # the same load options: never reloaded between questions
    assert first.calls[0]["num_ctx"] == second.calls[0]["num_ctx"] == 131072


def test_thinking_mode_sends_think_true_its_sampling_and_more_room(fake):
    settings = settings_for(fake, answer_reserve=1000, thinking_reserve=3000)
    answer = ask([lease()], "Who pays?", settings, think=True)
    body = fake.last_chat
    assert body["think"] is True
    assert body["options"]["num_predict"] == 4000
    assert (body["options"]["temperature"], body["options"]["top_p"]) == (0.6, 0.95)
    assert answer.thinking == fake.reply.thinking
    assert answer.thinking not in answer.answer and answer.answer


def test_thinking_and_content_stream_apart_in_order(fake):
    events = list(ask_stream([lease()], "Who pays?", settings_for(fake), think=True))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "final"
    streamed = [k for k in kinds if k in ("thinking", "content")]
    assert streamed == sorted(streamed, key=lambda k: k != "thinking")  # all thinking, then content
    assert "".join(e.text for e in events if e.kind == "content") == events[-1].answer.answer


def test_stock_model_uses_its_trained_context_and_says_so(fake):
    answer = ask([lease()], "Who pays?", settings_for(fake, model="qwen3:14b"))
    assert fake.last_chat["options"]["num_ctx"] == 40960
    assert any("40,960" in w and "131,072" in w for w in answer.warnings)
    assert answer.budget.context == 40960


def test_numbers_in_calls_match_what_was_sent_and_read(fake):
    answer = ask([lease(), contract_zh()], "Who pays?", settings_for(fake))
    [call] = answer.calls
    assert call["prompt_tokens"] == fake.last_prompt_tokens == call["server_prompt_tokens"]
    assert call["num_keep"] == fake.last_chat["options"]["num_keep"]
    assert call["documents"] == ["lease.pdf", "合同.pdf"]
    assert call["done_reason"] == "stop" and call["total_s"] >= call["first_token_s"] >= 0
    assert not any("did not read" in w for w in answer.warnings)


# -------------------------------------------------------------------- refusing to send


def test_documents_that_do_not_fit_are_refused_before_sending(fake):
    big, small = long_document("big.pdf", 60), long_document("small.pdf", 20)
    settings = settings_for(fake, context=4000, answer_reserve=1000)
    with pytest.raises(BudgetExceeded) as caught:
        ask([big, small], "What is clause 3?", settings)
    assert fake.chat_bodies == []
    error = caught.value
    assert set(error.per_document) == {"big.pdf", "small.pdf"}
    assert error.overrun > 0
    assert f"big.pdf {error.per_document['big.pdf']:,}" in str(error)
    assert error.exit_status == 2


def test_thinking_on_a_model_that_cannot_think_is_refused_before_sending(fake):
    with pytest.raises(ThinkingUnsupported) as caught:
        ask([lease()], "Who pays?", settings_for(fake, model="qwen2.5:7b"), think=True)
    assert "qwen2.5:7b" in str(caught.value) and "--no-think" in str(caught.value)
    assert fake.chat_bodies == []


def test_missing_model_is_a_server_error_with_the_next_step(fake):
    with pytest.raises(ModelNotFound) as caught:
        ask([lease()], "Who pays?", settings_for(fake, model="nothere:1b"))
    assert "ollama" in str(caught.value).lower() and caught.value.exit_status == 3


def test_a_crash_before_streaming_raises(fake):
    fake.fail_next(500)
    with pytest.raises(ServerCrashed):
        ask([lease()], "Who pays?", settings_for(fake))


# ------------------------------------------------------------------ interrupted answers


@pytest.mark.parametrize("mode, words", [("error", "error"), ("no_done", "without"), ("drop", "connection")])
def test_interrupted_answers_keep_what_arrived(fake, mode, words):
    full = 'The lessee pays "the lessee shall pay the rent" [xxx-1] on the first day of each month.'
    fake.script(answer=full, words_per_chunk=2)
    fake.interrupt_next(mode, after=3)
    answer = ask([lease()], "Who pays?", settings_for(fake))
    assert answer.interrupted
    assert words in answer.interrupt_reason.lower()
    assert answer.answer and full.startswith(answer.answer) and answer.answer != full
    assert any(w.startswith("Interrupted:") for w in answer.warnings)
    assert not answer.uncited  # an unfinished answer is not blamed for missing citations


def test_user_cancel_while_the_server_is_silent(fake):
    gate = fake.hold_next()
    cancel = threading.Event()
    result = {}

    def run():
        result["answer"] = ask([lease()], "Who pays?", settings_for(fake), cancel=cancel)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert fake.wait_for(fake.holding.is_set, timeout=10)
        cancel.set()
        worker.join(timeout=10)
        assert not worker.is_alive()
    finally:
        gate.set()
    answer = result["answer"]
    assert answer.interrupted and answer.answer == ""
    assert "stopped by you" in answer.interrupt_reason.lower()
    assert fake.wait_for(lambda: fake.disconnects >= 1, timeout=10)


def test_answer_cut_by_num_predict_is_reported(fake):
    fake.script(answer=" ".join(["word"] * 300))
    answer = ask([lease()], "Who pays?", settings_for(fake, answer_reserve=20))
    assert answer.calls[0]["done_reason"] == "length"
    assert any("cut at the 20 tokens reserved" in w for w in answer.warnings)


# ------------------------------------------------------------------ reading what was sent


def test_server_reading_less_than_folio_sent_is_a_warning(fake, monkeypatch):
    """A server that ignores truncate:false (too old, or a proxy) silently cut the prompt."""
    import lib.servers.ollama as client

    original = client.build_chat_body

    def ignoring_truncate(request):
        body = original(request)
        del body["truncate"]
        return body

    monkeypatch.setattr(client, "build_chat_body", ignoring_truncate)
    big = long_document("big.pdf", 600)
    # Folio is told the model holds 131,072 tokens; the stock model really holds 40,960.
    info = ServerInfo(backend="ollama", host=fake.url, version="0.13.0", model="qwen3:14b", model_present=True,
                      capabilities=["completion", "thinking"], trained_context=131072)
    answer = ask([big], "What is clause 3?", settings_for(fake, model="qwen3:14b"), server_info=info)
    assert fake.last_truncated
    call = answer.calls[0]
    assert call["server_prompt_tokens"] < call["prompt_tokens"] - 1000
    assert any("did not read what Folio sent" in w for w in answer.warnings)


def test_prompt_count_uses_the_servers_own_count_when_it_has_one():
    """For OpenAI-compatible servers with a tokenize endpoint, their count is the reference."""

    class CountingBackend:
        def __init__(self, server_count, read):
            self.server_count, self.read = server_count, read

        def check(self):
            return ServerInfo(backend="openai", host="http://127.0.0.1:1", model="m", model_present=True,
                              trained_context=8192)

        def count_prompt(self, request):
            return self.server_count

        def chat(self, request, cancel=None):
            yield StreamEvent("content", text=NO_ANSWER)
            yield StreamEvent("done", stats=CallStats(prompt_eval_count=self.read, done_reason="stop"))

    settings = Settings(backend="openai", model="m", context=8192, answer_reserve=512)
    fine = ask([lease()], "q", settings, backend=CountingBackend(700, 700))
    assert fine.calls[0]["server_counted_prompt"] == 700
    assert not any("did not read" in w for w in fine.warnings)
    cut = ask([lease()], "q", settings, backend=CountingBackend(700, 350))
    assert any("did not read what Folio sent" in w and "350" in w for w in cut.warnings)
    with pytest.raises(BudgetExceeded):
        ask([lease()], "q", settings, backend=CountingBackend(8000, 8000))


# ---------------------------------------------------------------- citations and caching


def test_default_answer_is_cited_and_verified(fake):
    answer = ask([lease()], "Who pays?", settings_for(fake))
    assert answer.citations and all(c.status == "verified" for c in answer.citations)
    assert answer.citations[0].document == "lease.pdf" and answer.citations[0].page == 1
    assert not answer.uncited and not answer.no_answer


def test_no_answer_and_uncited_answers(fake):
    fake.script(answer=NO_ANSWER)
    none = ask([lease()], "Who is the president?", settings_for(fake))
    assert none.no_answer and not none.uncited and none.citations == []
    fake.script(answer="The lessee pays the rent.")
    bare = ask([lease()], "Who pays?", settings_for(fake))
    assert bare.uncited and any("cites no passage" in w for w in bare.warnings)


def test_invented_ids_are_invalid(fake):
    fake.script(answer='The rent "is due" [zzz-404].')
    answer = ask([lease()], "Who pays?", settings_for(fake))
    assert [c.status for c in answer.citations] == ["invalid"]


def test_prompt_injection_document_changes_nothing_in_the_system_role(fake):
    counter = get_counter("exact")
    clean = ask([lease()], "Who pays the rent?", settings_for(fake))
    clean_body = fake.last_chat
    hostile = ask([lease(), injection()], "Who pays the rent?", settings_for(fake))
    body = fake.last_chat
    assert body["messages"][0] == clean_body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert body["options"]["num_keep"] == clean_body["options"]["num_keep"]
    ids = counter.encode(fake.last_prompt)  # the prompt as the server rendered it
    assert ids.count(IM_START) == 3 and ids.count(IM_END) == 2
    assert fake.last_prompt.startswith(system_block(SYSTEM_PROMPT))
    assert hostile.citations[0].status == clean.citations[0].status == "verified"


def test_follow_up_reuses_the_servers_cached_prefix(fake):
    documents = [lease(), contract_zh()]
    settings = settings_for(fake)
    first = ask(documents, "Who pays the rent?", settings)
    follow = ask(documents, "And who repairs the roof?", settings, history=[first.turn])
    assert len(fake.loads) == 1
    # Everything up to the end of the first question came from the cache.
    assert fake.last_cached >= first.budget.system + first.budget.total_documents
    assert follow.calls[0]["server_prompt_tokens"] == follow.calls[0]["prompt_tokens"]
    assert follow.budget.history > 0
    # A new question on the same documents reuses system + documents as well.
    ask(documents, "What deposit is held?", settings)
    assert fake.last_cached >= first.budget.system + first.budget.total_documents


def test_ids_are_unique_even_for_two_copies_of_one_file(fake):
    import dataclasses

    a = lease()
    b = dataclasses.replace(lease(), name="lease copy.pdf")  # same bytes, so the same code
    assert a.passages[0].id == b.passages[0].id
    answer = ask([a, b], "Who pays?", settings_for(fake))
    ids = [line.split("]")[0][1:] for line in fake.last_chat["messages"][1]["content"].splitlines() if line.startswith("[")]
    assert len(ids) == len(set(ids)) == len(a.passages) + len(b.passages)
    assert answer.citations[0].status == "verified"


def test_empty_question_and_no_documents_are_input_errors(fake):
    from lib.errors import InputError

    with pytest.raises(InputError):
        ask([lease()], "   ", settings_for(fake))
    with pytest.raises(InputError):
        ask([], "Who pays?", settings_for(fake))
    assert fake.chat_bodies == []


def test_budget_in_the_answer_is_the_budget_of_the_sent_prompt(fake):
    answer = ask([lease()], "Who pays?", settings_for(fake))
    documents = answering.prepare_documents([lease()])
    expected = compute_budget(documents, Settings(host=fake.url), question="Who pays?", context=131072)
    assert answer.budget.to_dict() == expected.to_dict()
    assert answer.budget.prompt == get_counter().count(render_chat(fake.last_chat["messages"], False))


def test_json_shape(fake):
    data = ask([lease()], "Who pays?", settings_for(fake)).to_json()
    assert {"answer", "thinking", "citations", "warnings", "calls"} <= set(data)
    assert set(data["citations"][0]) >= {"id", "document", "page", "quote", "status"}
    assert set(data["calls"][0]) >= {"documents", "prompt_tokens", "server_prompt_tokens", "num_ctx", "num_keep",
                                     "first_token_s", "total_s", "done_reason"}


def test_estimated_counts_warn_only_when_the_server_reads_far_less_or_more(fake, monkeypatch):
    estimate = get_counter("estimate")
    monkeypatch.setattr(answering, "get_counter", lambda: estimate)
    answer = ask([lease()], "Who pays?", settings_for(fake))
    call = answer.calls[0]
    assert call["prompt_tokens"] > call["server_prompt_tokens"]  # the estimate errs high
    assert not any("did not read" in w for w in answer.warnings)
    assert any("ESTIMATES" in w for w in answer.warnings)
    assert answering.prompt_mismatch(1000, 300, (650, 20), "Folio") is not None
    assert answering.prompt_mismatch(1000, 1100, (650, 20), "Folio") is not None
    assert answering.prompt_mismatch(1000, 500, (650, 20), "Folio") is None
