"""A read-everything plan on the REAL engine (llama.cpp with SmolLM2-135M), Folio's context
set to 2,048 tokens: a multi-document selection and a document larger than the context.

The small model's answers are poor; the test checks the machinery: the calls of the plan,
the prompt count the server read for each (equal to the count it gave before the call: the
server read everything, nothing was cut), every passage read exactly once.
"""

from __future__ import annotations

import uuid

from lib.asking.several_calls import plan_question, run_plan
from lib.config import Settings
from lib.reading.ingest import ingest_bytes

from llama_engine import llama_engine  # noqa: F401 (session fixture)

CONTEXT = 2048
RESERVE = 96


def clauses(tag: str, first: int, count: int) -> str:
    return "\n\n".join(
        f"Clause {i} of agreement {tag}. The tenant shall pay {100 + i} euros on day {i % 28 + 1} of each month "
        f"to the landlord, by bank transfer to the account named in schedule {i}."
        for i in range(first, first + count)
    )


def test_read_everything_on_the_real_engine(llama_engine):
    tag = uuid.uuid4().hex[:8]  # wording unique to this run: nothing is in the server's cache
    settings = Settings(backend="openai", host=llama_engine.url, context=CONTEXT, answer_reserve=RESERVE, think=False)
    documents = [
        ingest_bytes(clauses(tag, 1, 3).encode(), f"memo-{tag}.txt", settings=settings),
        ingest_bytes(clauses(tag, 10, 4).encode(), f"letter-{tag}.txt", settings=settings),
        ingest_bytes(("CHAPTER I\n\n" + clauses(tag, 20, 25) + "\n\nCHAPTER II\n\n" + clauses(tag, 50, 25)).encode(),
                     f"lease-{tag}.txt", settings=settings),
    ]
    long = documents[2]
    assert long.tokens > CONTEXT

    plan, backend, info = plan_question(documents, "How much is due on day 5?", settings, mode="all")
    assert plan.context == CONTEXT and len(plan.calls) >= 3
    assert {d.name: d.parts for d in plan.documents}[long.name] >= 2
    read = [p.id for call in plan.calls for piece in call.pieces for p in piece.passages]
    assert sorted(read) == sorted(p.id for d in plan.selection for p in d.passages)  # each passage once

    events = list(run_plan(plan, settings, backend=backend, server_info=info, concurrency=1))
    answer = events[-1].answer
    assert events[-1].kind == "final" and not answer.unread, answer.warnings
    reading = [r for r in answer.calls if r["kind"] == "evidence"]
    assert len(reading) == len(plan.calls)
    for call, record in zip(plan.calls, reading):
        assert record["status"] == "done" and record["attempts"] == 1
        assert record["prompt_tokens"] == call.prompt_tokens  # what was sent is what was planned
        assert record["num_ctx"] == CONTEXT and record["num_predict"] == RESERVE
        # the server read exactly the prompt it had counted before the call, within the budget
        assert record["server_prompt_tokens"] == record["server_counted_prompt"] > 0
        assert record["server_prompt_tokens"] <= CONTEXT - RESERVE
    assert not any("did not read what Folio sent" in w for w in answer.warnings)
    assert all(c.status in ("verified", "unverified", "invalid") for c in answer.citations)
