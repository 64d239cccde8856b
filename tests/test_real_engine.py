"""Folio against a REAL inference engine: llama.cpp's own llama-server with SmolLM2-135M.

What the server itself reports is the evidence: GET /props (the slot's context), POST
/apply-template + /tokenize (its exact count of a prompt), and the `timings` and `usage` that
end every streamed answer (cache_n: prompt tokens reused from its cache; prompt_n: evaluated).
SmolLM2's tokenizer is not Qwen3's, so "Folio's own count" here is what Folio's OpenAI backend
counts before sending (count_prompt: the server's template and tokenizer); the tests check the
server then read exactly that many tokens, nothing cut, and that follow-ups reuse its cache.
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from lib.asking.answering import ask
from lib.config import Settings
from lib.errors import BudgetExceeded, PromptTooLong
from lib.reading.ingest import ingest_bytes
from lib.servers.openai import OpenAIBackend, build_chat_body
from lib.servers.protocol import ChatRequest

from llama_engine import llama_engine, llama_engines  # noqa: F401 (session fixtures)

SYSTEM = "You are a careful assistant. Answer from the document only, briefly."
CITATION_ID = re.compile(r"\[([a-z]{3}-\d+)\]")


def lease_text(tag: str, clauses: int = 12) -> str:
    """A lease whose wording is unique per test (tag), so no earlier prompt is in the cache."""
    return "\n\n".join(
        f"Clause {i} of lease {tag}. The lessee shall pay {100 + i} euros on day {i} of each month "
        f"to the lessor, by bank transfer to the account named in schedule {i}."
        for i in range(1, clauses + 1)
    )


def request_for(engine, messages: list[dict], num_predict: int = 24) -> ChatRequest:
    return ChatRequest(model="smollm2", messages=messages, think=False, num_ctx=engine.n_ctx, num_keep=0,
                       num_predict=num_predict, keep_alive="30m", temperature=0.7, top_p=0.8, top_k=20, seed=1)


def settings_for(engine, **changes) -> Settings:
    return Settings(backend="openai", host=engine.url, model="smollm2", **changes)


def run(backend: OpenAIBackend, request: ChatRequest):
    events = list(backend.chat(request))
    return "".join(e.text for e in events if e.kind == "content"), events[-1]


def raw_final_chunk(engine, request: ChatRequest) -> dict:
    """The last data chunk of a streamed completion, read without Folio (usage and timings)."""
    last = None
    with httpx.stream("POST", f"{engine.url}/v1/chat/completions", json=build_chat_body(request), timeout=300) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                last = json.loads(line[5:])
    return last


def test_the_server_reports_its_context_and_build(llama_engine):
    backend = OpenAIBackend(settings_for(llama_engine))  # configured for 131,072 tokens
    info = backend.check()
    props = llama_engine.props()
    assert backend.flavour == "llama.cpp" and info.model == "smollm2"
    assert info.loaded_context == props["default_generation_settings"]["n_ctx"] == llama_engine.n_ctx
    assert info.trained_context == llama_engine.n_ctx  # the slot, not the 8,192 SmolLM2 was trained for
    assert info.version == props["build_info"]
    assert any(f"holds {llama_engine.n_ctx:,} tokens, not the 131,072 configured" in w for w in info.warnings)


def test_folios_count_is_what_the_server_reads(llama_engine):
    backend = OpenAIBackend(settings_for(llama_engine))
    backend.check()
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": lease_text(uuid.uuid4().hex[:8], 4) + "\n\n特别条款：押金两个月。"
                 "\n\nQuestion: how much is due on day 2?"}]
    request = request_for(llama_engine, messages)
    counted = backend.count_prompt(request)
    assert counted == llama_engine.tokenize_count(llama_engine.apply_template(messages, enable_thinking=False))

    text, last = run(backend, request)
    assert last.kind == "done", last.reason
    assert text.strip() and last.stats.done_reason in ("stop", "length")
    assert last.stats.prompt_eval_count == counted  # read whole: nothing cut, nothing added
    assert 0 < last.stats.first_token_s <= last.stats.wall_s
    assert last.stats.eval_count > 0 and last.stats.eval_duration_s > 0 and last.stats.prompt_eval_duration_s > 0

    # The server's two reports of the same call agree with each other and with Folio's count.
    final = raw_final_chunk(llama_engine, request)
    timings, usage = final["timings"], final["usage"]
    assert timings["cache_n"] + timings["prompt_n"] == usage["prompt_tokens"] == counted


def test_follow_up_reuses_the_cached_prefix(llama_engine):
    backend = OpenAIBackend(settings_for(llama_engine))
    backend.check()
    first = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": lease_text(uuid.uuid4().hex[:8]) + "\n\nQuestion: how much is due on day 3?"}]
    answer, last = run(backend, request_for(llama_engine, first))
    assert last.kind == "done", last.reason
    read_first = last.stats.prompt_eval_count
    assert last.stats.cached_tokens < read_first // 4  # a new document: read, not reused (only the system block)

    follow_up = first + [{"role": "assistant", "content": answer},
                         {"role": "user", "content": "Question: and on day 5?"}]
    _, last = run(backend, request_for(llama_engine, follow_up))
    assert last.kind == "done", last.reason
    stats = last.stats
    assert stats.prompt_eval_count == backend.count_prompt(request_for(llama_engine, follow_up)) > read_first
    assert stats.cached_tokens >= read_first - 1  # the whole first prompt came from the cache...
    assert stats.prompt_eval_count - stats.cached_tokens < stats.prompt_eval_count // 5  # ...only the tail was read


def test_ingest_ask_and_follow_up_through_folio(llama_engine):
    settings = settings_for(llama_engine, answer_reserve=96, think=False)
    tag = uuid.uuid4().hex[:8]
    document = ingest_bytes(lease_text(tag, 8).encode(), f"lease-{tag}.txt", settings=settings)
    backend = OpenAIBackend(settings)

    answer = ask([document], "How much is due on day 4?", settings, backend=backend)
    assert not answer.interrupted, answer.interrupt_reason
    assert answer.answer.strip()
    assert answer.budget.context == llama_engine.n_ctx  # the real context, read from /props
    call = answer.calls[0]
    assert call["server_prompt_tokens"] == call["server_counted_prompt"] > 0
    assert not any("did not read what Folio sent" in w for w in answer.warnings), answer.warnings
    assert call["num_predict"] == 96 and call["done_reason"] in ("stop", "length")
    cited = [c.id for c in answer.citations]
    assert sorted(set(cited)) == sorted(set(CITATION_ID.findall(answer.answer)))
    assert all(c.status in ("verified", "unverified", "invalid") for c in answer.citations)

    follow_up = ask([document], "And on day 7?", settings, backend=backend, history=[answer.turn])
    assert not follow_up.interrupted, follow_up.interrupt_reason
    again = follow_up.calls[0]
    assert again["server_prompt_tokens"] == again["server_counted_prompt"] > call["server_prompt_tokens"]
    assert again["cached_tokens"] >= call["server_prompt_tokens"] - 1


def test_a_prompt_longer_than_the_slot_is_refused_never_cut(llama_engines):
    small = llama_engines.get(n_ctx=512)
    backend = OpenAIBackend(settings_for(small, answer_reserve=64))
    assert backend.check().loaded_context == 512
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": lease_text(uuid.uuid4().hex[:8], 20) + "\n\nQuestion: day 9?"}]
    request = request_for(small, messages)
    assert backend.count_prompt(request) > 512
    with pytest.raises(PromptTooLong) as info:  # the server refuses; it does not drop the start
        list(backend.chat(request))
    assert "context" in str(info.value)

    document = ingest_bytes(lease_text(uuid.uuid4().hex[:8], 20).encode(), "long-lease.txt",
                            settings=settings_for(small))
    with pytest.raises(BudgetExceeded):  # and Folio never sends it
        ask([document], "What is due on day 9?", settings_for(small, answer_reserve=64), backend=backend)
