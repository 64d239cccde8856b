"""Running plans against the fake Ollama and the fake OpenAI-compatible server (real HTTP on
127.0.0.1) with a small context, so one question takes many calls."""

from __future__ import annotations

import json
import threading

import pytest

from lib.asking import prompt
from lib.asking.evidence import COMPOSE_PROMPT, EVIDENCE_PROMPT, REDUCE_PROMPT
from lib.asking.plan import make_plan
from lib.asking.several_calls import RunState, compose_answer, run_plan
from lib.config import Settings
from lib.errors import ServerUnreachable
from lib.reading.tokens import get_counter

from answer_fixtures import lease
from fake_ollama import FakeOllama
from fake_openai import EVIDENCE_ITEM, NOTHING, PLAN_PASSAGE, FakeOpenAI, folio_answer
from plan_fixtures import markdown_book, plain_book, small_documents, word_ranker

QUESTION = "Where is clause3x4?"
CONTEXT = 3000


@pytest.fixture
def ollama():
    with FakeOllama() as server:
        server.script(answer=folio_answer)
        yield server


@pytest.fixture
def openai():
    with FakeOpenAI(max_model_len=CONTEXT) as server:
        yield server


def ollama_settings(fake, **changes) -> Settings:
    return Settings(host=fake.url, **{"context": CONTEXT, "answer_reserve": 300, **changes})


def openai_settings(fake, **changes) -> Settings:
    return Settings(backend="openai", host=fake.url, model=fake.model,
                    **{"context": CONTEXT, "answer_reserve": 300, **changes})


def selection():
    return [markdown_book(), plain_book(), *small_documents(4), lease()]


def run(plan, settings, **kwargs):
    events = list(run_plan(plan, settings, **kwargs))
    return events, events[-1].answer


def system_of(body) -> str:
    return body["messages"][0]["content"]


# ----------------------------------------------------------------------------- what is sent


def test_many_calls_each_with_the_single_call_guarantees(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    events, answer = run(plan, settings)
    counter = get_counter()
    bodies = ollama.chat_bodies
    assert len(bodies) == len(plan.calls) + 1  # every reading call, then the composing call
    for body in bodies:
        options = body["options"]
        assert options["num_ctx"] == CONTEXT  # the same every time: the model is never reloaded
        assert options["num_keep"] == counter.count(prompt.system_block(system_of(body)))
        assert body["truncate"] is False and body["shift"] is True
    assert len(ollama.loads) == 1
    assert [system_of(b) for b in bodies[:-1]] == [EVIDENCE_PROMPT] * len(plan.calls)
    assert system_of(bodies[-1]) == COMPOSE_PROMPT
    # the plan's numbers are what was sent, and what the server read
    records = answer.calls
    assert [r["index"] for r in records] == list(range(1, len(plan.calls) + 2))
    for call, record in zip(plan.calls, records):
        assert record["prompt_tokens"] == record["planned_prompt_tokens"] == call.prompt_tokens
        assert record["server_prompt_tokens"] == call.prompt_tokens
        assert record["reads"] == [p.to_json() for p in call.pieces]
        assert record["kind"] == "evidence" and record["status"] == "done" and record["attempts"] == 1
    assert records[-1]["kind"] == "compose" and records[-1]["server_prompt_tokens"] == records[-1]["prompt_tokens"]
    assert not any("did not read what Folio sent" in w for w in answer.warnings)


def test_evidence_is_collected_and_the_answer_cites_it_verified(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    events, answer = run(plan, settings)
    arrived = [e for event in events if event.kind == "call_done" for e in event.evidence]
    verified = [e for e in arrived if e.verified]
    assert verified and answer.evidence == [e.to_json() for e in arrived]
    assert all(e.quote in e.to_json()["quote"] for e in verified)
    assert answer.citations and all(c.status == "verified" for c in answer.citations)
    assert {c.id for c in answer.citations} == {e.id for e in verified}
    # a citation resolves to the original passage, whichever part of which document it came from
    passages = {p.id: p for d in plan.selection for p in d.passages}
    for citation in answer.citations:
        assert citation.quote in passages[citation.id].text
        assert citation.document == next(d.name for d in plan.selection if passages[citation.id] in d.passages)
    assert not answer.interrupted and not answer.unread and answer.mode == "all"
    data = answer.to_json()
    assert data["plan"]["key"] == plan.key and len(data["calls"]) == len(plan.calls) + 1


def test_progress_arrives_per_call_with_tokens_and_evidence(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    events, _answer = run(plan, settings)
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "final"
    assert kinds.count("call_start") == kinds.count("call_done") == len(plan.calls)
    done = [e.progress for e in events if e.kind == "call_done"]
    assert [p.calls_done for p in done] == list(range(1, len(plan.calls) + 1))
    assert done[-1].tokens_read == done[-1].tokens_total == plan.prompt_tokens
    assert all(p.remaining_s is not None for p in done)
    assert done[-1].evidence == sum(1 for e in _answer.evidence if e["status"] == "verified")


# ----------------------------------------------------------------------------- checking evidence


def _first_passage_reply(body, prompt_text, quote=None):
    found = PLAN_PASSAGE.findall(prompt_text)
    pid, text = found[0]
    return f'"{quote or " ".join(text.split()[:6])}" [{pid}] the first passage'


def test_invented_quotes_and_passages_from_other_parts_do_not_reach_the_answer(ollama):
    settings = ollama_settings(ollama)
    documents = [plain_book()]
    plan = make_plan(documents, QUESTION, settings, mode="all")
    assert len(plan.calls) >= 3
    first_of_first_part = plan.calls[0].pieces[0].first_id
    calls = {"n": 0}

    def reply(body, prompt_text):
        if system_of(body) != EVIDENCE_PROMPT:
            return folio_answer(body, prompt_text)
        calls["n"] += 1
        if calls["n"] == 1:
            return _first_passage_reply(body, prompt_text)  # quotes its own part: verified
        if calls["n"] == 2:
            return _first_passage_reply(body, prompt_text, quote="the tenant owes nothing at all")  # invented
        return f'"In chapter" [{first_of_first_part}] a passage this call did not read'  # not in its part

    ollama.script(answer=reply)
    _events, answer = run(plan, settings)
    by_call = {}
    for item in answer.evidence:
        by_call.setdefault(item["call"], []).append(item)
    assert [e["status"] for e in by_call[1]] == ["verified"]
    assert [e["status"] for e in by_call[2]] == ["unverified"]
    assert by_call[2][0]["reason"] == "The quoted words were not found in this passage."
    assert all(e["status"] == "invalid" for c in list(by_call)[2:] for e in by_call[c])
    assert "did not read" in by_call[3][0]["reason"]
    # only the verified item reached the composing call, so only it is cited
    assert [c.id for c in answer.citations] == [by_call[1][0]["id"]]
    assert answer.citations[0].status == "verified"
    assert any("left out of the answer" in w for w in answer.warnings)


def test_the_answer_citing_a_passage_no_call_reported_is_invalid(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    unreported = plan.calls[0].pieces[0].passages[-1]

    def reply(body, prompt_text):
        if system_of(body) == COMPOSE_PROMPT:
            [(pid, quote), *_rest] = EVIDENCE_ITEM.findall(prompt_text)
            made_up = "the estate passes to the crown"
            real = " ".join(unreported.text.split()[:5])
            return (f'It says "{quote}" [{pid}]. Also "{made_up}" [{pid}]. And "{real}" [{unreported.id}].')
        return folio_answer(body, prompt_text)

    ollama.script(answer=reply)
    _events, answer = run(plan, settings)
    statuses = [(c.id, c.status) for c in answer.citations]
    assert statuses[0][1] == "verified" and statuses[1][1] == "unverified"
    assert statuses[2] == (unreported.id, "invalid")
    assert "no reading call reported it" in answer.citations[2].reason
    assert any("could not be verified" in w for w in answer.warnings)
    assert any("not in the evidence" in w for w in answer.warnings)


@pytest.mark.parametrize("reply", [NOTHING, prompt.NO_ANSWER])
def test_nothing_relevant_anywhere_answers_without_a_composing_call(ollama, reply):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), "Who won the 1998 World Cup final?", settings, mode="all")
    ollama.script(answer=lambda body, p: reply)
    _events, answer = run(plan, settings)
    assert len(ollama.chat_bodies) == len(plan.calls)
    assert answer.no_answer and answer.answer == prompt.NO_ANSWER and not answer.citations
    assert any("no composing call" in w for w in answer.warnings)
    assert not any("could not be read as evidence" in w for w in answer.warnings)


# ----------------------------------------------------------------------------- failures and cancel


def test_a_failing_call_is_retried_once(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    ollama.fail_next(500, "llama runner process has terminated: exit status 2")
    events, answer = run(plan, settings)
    assert [e.kind for e in events].count("call_retry") == 1
    assert answer.calls[0]["attempts"] == 2 and answer.calls[0]["status"] == "done"
    assert not answer.unread


def test_a_call_that_fails_twice_is_named_in_the_warnings(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan([plain_book()], QUESTION, settings, mode="all")
    failing = {"n": 0}
    # a part without the answer gets a stream that breaks off, twice
    broken = next(c for c in plan.calls if not any("clause3x4" in p.text for p in c.pieces[0].passages))

    def breaking(body, prompt_text):
        if system_of(body) == EVIDENCE_PROMPT and f"[{broken.pieces[0].first_id}]" in prompt_text:
            failing["n"] += 1
            ollama.interrupt_next("error", after=0, error="CUDA error: out of memory")
        return folio_answer(body, prompt_text)

    ollama.script(answer=breaking)
    events, answer = run(plan, settings)
    assert failing["n"] == 2
    failed = [e for e in events if e.kind == "call_failed"]
    assert [e.call.index for e in failed] == [broken.index]
    piece = broken.pieces[0]
    warning = f"Part {piece.part} of {piece.parts} of {piece.document.name} was not read: "
    assert any(w.startswith(warning) and "out of memory" in w for w in answer.warnings)
    assert answer.unread == [{**piece.to_json(), "reason": failed[0].result.error, "call": broken.index}]
    record = answer.calls[broken.index - 1]
    assert record["status"] == "failed" and record["attempts"] == 2
    assert answer.answer and answer.calls[-1]["kind"] == "compose"  # the others still answer


def test_an_unreachable_server_stops_the_run_with_its_error(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    info = None
    from lib.servers import make_backend

    backend = make_backend(settings)
    info = backend.check()
    ollama.stop()
    with pytest.raises(ServerUnreachable):
        list(run_plan(plan, settings, backend=backend, server_info=info))


def test_cancel_keeps_the_evidence_and_an_answer_can_be_composed_from_it(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    cancel = threading.Event()
    state = RunState(plan.key)
    events = []
    for event in run_plan(plan, settings, cancel=cancel, state=state):
        events.append(event)
        if event.kind == "call_done" and event.progress.calls_done == 2:
            gate = ollama.hold_next()  # the next call stays silent until cancelled
            cancel.set()
    gate.set()
    assert events[-1].kind == "cancelled"
    done = [c for c in plan.calls if state.is_done(c.key)]
    assert 2 <= len(done) < len(plan.calls)
    kept = state.evidence(plan)
    assert kept == [e for event in events if event.kind == "call_done" for e in event.evidence]
    requests = len(ollama.chat_bodies)

    answer = list(compose_answer(plan, state, settings))[-1].answer
    # one composing call, and nothing read again (the cancelled call's request may be recorded late)
    assert [system_of(b) for b in ollama.chat_bodies].count(COMPOSE_PROMPT) == 1
    assert all(system_of(b) == EVIDENCE_PROMPT and not any(f" [{c.pieces[0].first_id}]\n" in b["messages"][1]["content"]
                                                             for c in done)
               for b in ollama.chat_bodies[requests:] if system_of(b) != COMPOSE_PROMPT)
    assert answer.answer and {c.id for c in answer.citations} <= {e.id for e in kept}
    unread = {(u["document"], u["part"]) for u in answer.unread}
    expected = {(p.document.name, p.part) for c in plan.calls if not state.is_done(c.key) for p in c.pieces}
    assert unread == expected
    assert sum("was not read" in w for w in answer.warnings) == len(expected)


def test_a_stored_run_resumes_without_reading_a_finished_call_again(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    cancel = threading.Event()
    state = RunState(plan.key)
    for event in run_plan(plan, settings, cancel=cancel, state=state):
        if event.kind == "call_done" and event.progress.calls_done == 2:
            cancel.set()
    stored = json.loads(json.dumps(state.to_json()))  # what a job keeps between processes
    finished = {k for k, v in stored["results"].items() if v["status"] == "done"}
    before = len(ollama.chat_bodies)

    resumed = RunState.from_json(stored)
    again = make_plan(selection(), QUESTION, settings, mode="all")  # a new process plans again
    events, answer = run(again, settings, state=resumed)
    skipped = [e.call.key for e in events if e.kind == "call_skipped"]
    assert set(skipped) == finished
    # which calls the resumed run sent (a request the first run cancelled may be recorded late)
    sent = {call.key for body in ollama.chat_bodies[before:] for call in plan.calls
            if f" [{call.pieces[0].first_id}]\n" in body["messages"][1]["content"]}
    assert sent == {c.key for c in plan.calls} - finished
    assert not answer.unread and [r["status"] for r in answer.calls[:-1]] == ["done"] * len(plan.calls)


def test_a_stored_run_of_another_plan_is_refused(ollama):
    settings = ollama_settings(ollama)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    with pytest.raises(Exception, match="another plan"):
        list(run_plan(plan, settings, state=RunState("0123456789abcdef")))


# ----------------------------------------------------------------------------- the OpenAI-compatible server


def test_calls_run_side_by_side_on_an_openai_compatible_server(openai):
    settings = openai_settings(openai)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    assert plan.concurrency == 4 and len(plan.calls) >= 4
    gates = [openai.hold_next() for _ in range(4)]
    outcome = {}

    def consume():
        outcome["events"] = list(run_plan(plan, settings))

    worker = threading.Thread(target=consume)
    worker.start()
    assert _wait(lambda: openai.in_flight == 4)  # four calls in flight at once...
    for gate in gates:
        gate.set()
    worker.join(timeout=60)
    answer = outcome["events"][-1].answer
    assert openai.peak == 4  # ...and never more
    assert answer.citations and all(c.status == "verified" for c in answer.citations)
    for call, record in zip(plan.calls, answer.calls):
        assert record["prompt_tokens"] == call.prompt_tokens
        # the server's own count (its /tokenize and its usage) agree: nothing was cut
        assert record["server_prompt_tokens"] == record["server_counted_prompt"]


def test_concurrency_can_be_lowered(openai):
    settings = openai_settings(openai, concurrency=2)
    plan = make_plan(selection(), QUESTION, settings, mode="all")
    _events, answer = run(plan, settings)
    assert plan.concurrency == 2 and openai.peak <= 2 and len(answer.calls) == len(plan.calls) + 1


def test_evidence_too_large_for_one_call_is_condensed_in_rounds(openai):
    settings = openai_settings(openai)
    documents = selection()

    def everything(body, prompt_text):
        if system_of(body) == EVIDENCE_PROMPT:  # report every passage: far more than one call holds
            return "\n".join(f'"{" ".join(t.split()[:12])}" [{pid}] relevant' for pid, t in PLAN_PASSAGE.findall(prompt_text))
        if system_of(body) == REDUCE_PROMPT:  # keep one item in four
            items = EVIDENCE_ITEM.findall(prompt_text)
            return "\n".join(f'"{q}" [{pid}] kept' for pid, q in items[::4])
        return folio_answer(body, prompt_text)

    openai.script(answer=everything)
    plan = make_plan(documents, QUESTION, settings, mode="all")
    events, answer = run(plan, settings)
    rounds = [e for e in events if e.kind == "round"]
    assert rounds and answer.rounds == len(rounds)
    reduce_records = [r for r in answer.calls if r["kind"] == "reduce"]
    assert reduce_records and all(r["status"] == "done" for r in reduce_records)
    assert answer.calls[-1]["kind"] == "compose"
    assert answer.calls[-1]["prompt_tokens"] + answer.calls[-1]["num_predict"] <= CONTEXT
    assert answer.citations and all(c.status == "verified" for c in answer.citations)  # quotes and IDs kept


def test_thinking_applies_to_the_composing_call_only(openai):
    settings = openai_settings(openai, context=12000, answer_reserve=300, thinking_reserve=2000)
    openai.max_model_len = 12000
    plan = make_plan(selection(), QUESTION, settings, mode="all", think=True)
    _events, answer = run(plan, settings)
    bodies = openai.chat_bodies
    assert [b["chat_template_kwargs"]["enable_thinking"] for b in bodies] == [False] * len(plan.calls) + [True]
    assert bodies[-1]["max_tokens"] == 2300 and answer.thinking


# ----------------------------------------------------------------------------- one call and relevant


def test_one_call_mode_is_todays_single_call_with_its_plan_recorded(ollama):
    settings = ollama_settings(ollama, context=131072, answer_reserve=4096)
    ollama.script()  # the fake's default: cite the first passage of a one-call prompt
    plan = make_plan([lease()], "Who pays the rent?", settings)
    assert plan.mode == "one"
    _events, answer = run(plan, settings)
    assert len(ollama.chat_bodies) == 1 and system_of(ollama.chat_bodies[0]) == prompt.SYSTEM_PROMPT
    [record] = answer.calls
    assert record["prompt_tokens"] == record["planned_prompt_tokens"] == plan.calls[0].prompt_tokens
    assert answer.to_json()["plan"]["mode"] == "one" and answer.citations[0].status == "verified"


def test_relevant_mode_sends_only_the_documents_it_chose(ollama):
    settings = ollama_settings(ollama, context=4000)
    ollama.script()
    plan = make_plan(selection(), "clause3x4 estate", settings, mode="relevant", ranker=word_ranker)
    _events, answer = run(plan, settings)
    [body] = ollama.chat_bodies
    sent = body["messages"][1]["content"]
    for entry in plan.documents:
        assert (f'<document name="{entry.name}"' in sent) == entry.read
    assert answer.calls[0]["prompt_tokens"] == plan.calls[0].prompt_tokens
    assert any("not read" in w for w in answer.warnings)


def _wait(condition, timeout: float = 20.0) -> bool:
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if condition():
                return True
            deadline.wait(0.01)
        return condition()
    finally:
        timer.cancel()
