"""Folio against a REAL inference engine: llama-cpp-python's server with SmolLM2-135M.

What the server itself reports is the evidence: usage.prompt_tokens of a completion, its
tokenize endpoint, and its log lines "N prefix-match hit, remaining M prompt tokens to eval"
and "prompt eval time = ... / N tokens" (see tests/llama_engine.py).
"""

from __future__ import annotations

import re
import uuid

import jinja2

from lib.asking.answering import ask
from lib.config import Settings
from lib.reading.ingest import ingest_bytes
from lib.servers.openai import OpenAIBackend
from lib.servers.protocol import ChatRequest

from llama_engine import llama_engine  # noqa: F401 (session fixture)

SYSTEM = "You are a careful assistant. Answer from the document only, briefly."
CITATION_ID = re.compile(r"\[([a-z]{3}-\d+)\]")


def lease_text(tag: str, clauses: int = 12) -> str:
    """A lease whose wording is unique per test (tag), so no earlier prompt is in the cache."""
    return "\n\n".join(
        f"Clause {i} of lease {tag}. The lessee shall pay {100 + i} euros on day {i} of each month "
        f"to the lessor, by bank transfer to the account named in schedule {i}."
        for i in range(1, clauses + 1)
    )


def request_for(messages: list[dict], num_predict: int = 24) -> ChatRequest:
    return ChatRequest(model="smollm2", messages=messages, think=False, num_ctx=4096, num_keep=0,
                       num_predict=num_predict, keep_alive="30m", temperature=0.7, top_p=0.8, top_k=20, seed=1)


def settings_for(engine, **changes) -> Settings:
    return Settings(backend="openai", host=engine.url, context=engine.n_ctx, **changes)


def render(engine, messages: list[dict]) -> str:
    """The prompt as the server renders it: the GGUF's own chat template."""
    template = jinja2.Environment().from_string(engine.chat_template())
    return template.render(messages=messages, add_generation_prompt=True, bos_token="", eos_token="")


def run(backend: OpenAIBackend, request: ChatRequest):
    events = list(backend.chat(request))
    return "".join(e.text for e in events if e.kind == "content"), events[-1]


def test_streamed_answer_with_the_servers_own_prompt_count(llama_engine):
    backend = OpenAIBackend(settings_for(llama_engine))
    info = backend.check()
    assert info.model_present and backend.flavour == "llama-cpp-python"
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": lease_text(uuid.uuid4().hex[:8], 4) + "\n\nQuestion: how much is due on day 2?"}]
    request = request_for(messages)
    text, last = run(backend, request)
    assert last.kind == "done", last.reason
    assert text.strip()
    stats = last.stats
    assert stats.done_reason in ("stop", "length")
    assert 0 < stats.first_token_s <= stats.wall_s
    # usage.prompt_tokens of a real completion == the server's tokenize count of the rendered prompt
    assert stats.prompt_eval_count == llama_engine.tokenize_count(render(llama_engine, messages))
    assert backend.count_prompt(request) == stats.prompt_eval_count


def test_follow_up_reuses_the_cached_prefix(llama_engine):
    backend = OpenAIBackend(settings_for(llama_engine))
    first = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": lease_text(uuid.uuid4().hex[:8]) + "\n\nQuestion: how much is due on day 3?"}]
    mark = llama_engine.log_mark()
    answer, last = run(backend, request_for(first))
    assert last.kind == "done", last.reason
    first_log = llama_engine.log_since(mark)
    first_tokens = last.stats.prompt_eval_count
    first_evaluated = sum(llama_engine.evaluated_tokens(first_log))

    follow_up = first + [{"role": "assistant", "content": answer},
                         {"role": "user", "content": "Question: and on day 5?"}]
    mark = llama_engine.log_mark()
    _, last = run(backend, request_for(follow_up))
    assert last.kind == "done", last.reason
    log = llama_engine.log_since(mark)
    evaluated = sum(llama_engine.evaluated_tokens(log))
    reused = max(hit for hit, _ in llama_engine.prefix_hits(log))

    assert first_evaluated > first_tokens // 2  # the first question read the document
    assert reused >= first_tokens - 1  # the follow-up reused all of it...
    assert evaluated < last.stats.prompt_eval_count // 5  # ...and read only its new tail
    assert last.stats.prompt_eval_count > first_tokens


def test_ingest_ask_and_follow_up_through_folio(llama_engine):
    settings = settings_for(llama_engine, answer_reserve=96, think=False)
    tag = uuid.uuid4().hex[:8]
    document = ingest_bytes(lease_text(tag, 8).encode(), f"lease-{tag}.txt", settings=settings)
    backend = OpenAIBackend(settings)

    answer = ask([document], "How much is due on day 4?", settings, backend=backend)
    assert not answer.interrupted, answer.interrupt_reason
    assert answer.answer.strip()
    call = answer.calls[0]
    assert call["server_prompt_tokens"] == call["server_counted_prompt"] > 0
    assert call["num_predict"] == 96 and call["done_reason"] in ("stop", "length")
    # Whatever the small model wrote, every [id] in it was parsed and checked.
    cited = [c.id for c in answer.citations]
    assert sorted(set(cited)) == sorted(set(CITATION_ID.findall(answer.answer)))
    assert all(c.status in ("verified", "unverified", "invalid") for c in answer.citations)
    assert answer.uncited == (not cited and not answer.no_answer)

    mark = llama_engine.log_mark()
    follow_up = ask([document], "And on day 7?", settings, backend=backend, history=[answer.turn])
    assert not follow_up.interrupted, follow_up.interrupt_reason
    log = llama_engine.log_since(mark)
    assert max(hit for hit, _ in llama_engine.prefix_hits(log)) >= call["server_prompt_tokens"] - 1
    assert follow_up.calls[0]["server_prompt_tokens"] > call["server_prompt_tokens"]
