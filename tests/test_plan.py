"""The plan, before anything is sent: modes, exact tokens, IDs across calls, estimates."""

from __future__ import annotations

import pytest

from lib.asking import prompt
from lib.asking.parts import render_piece
from lib.asking.plan import (SENTINEL, ServerSpeed, default_concurrency, describe_plan, make_plan,
                             reading_messages)
from lib.config import Settings, load_settings
from lib.errors import InputError
from lib.reading.passages import assign_unique_ids
from lib.reading.tokens import get_counter

from answer_fixtures import lease
from plan_fixtures import markdown_book, plain_book, small_documents, word_ranker

QUESTION = "What does clause3x4 say about the estate?"


def selection():
    return [markdown_book(), plain_book(), *small_documents(5), lease()]


def settings(**changes) -> Settings:
    return Settings(**{"context": 3000, "answer_reserve": 300, **changes})


def sent_prompt(plan, call) -> str:
    text = "".join(render_piece(p) for p in call.pieces)
    return prompt.render_chat(reading_messages(text, plan.question, plan.history), think=False)


def test_auto_is_one_call_when_everything_fits():
    documents = [lease(), *small_documents(2)]
    plan = make_plan(documents, "Who pays the rent?", Settings(), context=131072)
    assert plan.mode == "one" and plan.fits and len(plan.calls) == 1
    built = prompt.build_prompt(documents, "Who pays the rent?", think=False, counter=get_counter())
    assert plan.calls[0].prompt_tokens == built.total
    assert [d.name for d in plan.calls[0].documents] == [d.name for d in built.documents]


def test_auto_asks_nothing_and_plans_both_other_modes_when_one_call_cannot_hold_them():
    plan = make_plan(selection(), QUESTION, settings(), ranker=word_ranker)
    assert plan.mode == "auto" and not plan.fits and not plan.calls
    assert "Choose a mode" in plan.message
    assert set(plan.alternatives) == {"relevant", "all"}
    assert plan.alternatives["relevant"].fits and plan.alternatives["all"].fits
    data = plan.to_json()
    assert data["alternatives"]["all"]["call_count"] == len(plan.alternatives["all"].calls) + 1
    lines = describe_plan(plan)
    assert any(line.startswith("--mode relevant") for line in lines) and any(line.startswith("--mode all") for line in lines)


def test_read_everything_reads_every_passage_once_with_ids_unique_across_calls():
    documents = selection()
    plan = make_plan(documents, QUESTION, settings(), mode="all")
    whole = assign_unique_ids(prompt.sorted_documents(documents))
    ids = [p.id for call in plan.calls for piece in call.pieces for p in piece.passages]
    assert len(ids) == len(set(ids))  # unique across every call
    assert sorted(ids) == sorted(p.id for d in whole for p in d.passages)  # everything, once
    # a part keeps the IDs its passages have when the document is read whole
    by_name = {d.name: d for d in whole}
    for call in plan.calls:
        for piece in call.pieces:
            assert piece.passages == by_name[piece.document.name].passages[piece.start:piece.end]
    assert len(plan.calls) > 3
    again = make_plan(list(reversed(documents)), QUESTION, settings(), mode="all")  # another run, another order
    assert [p.id for c in again.calls for piece in c.pieces for p in piece.passages] == ids  # stable
    assert all(d.read for d in plan.documents)
    assert {d.name: d.parts for d in plan.documents}["book.md"] > 1


def test_every_planned_count_is_the_exact_prompt_and_fits_the_context():
    counter = get_counter()
    plan = make_plan(selection(), QUESTION, settings(), mode="all")
    for call in plan.calls:
        assert call.prompt_tokens == counter.count(sent_prompt(plan, call))
        assert call.prompt_tokens + call.num_predict <= plan.context
        assert call.num_predict == 300 and call.think is False
    assert plan.prompt_tokens == sum(c.prompt_tokens for c in plan.calls)


def test_packing_fills_calls_near_the_minimum():
    plan = make_plan(small_documents(24), QUESTION, settings(), mode="all")
    room = plan.context - 300 - plan.layout.prefix_tokens - plan.layout.packing_suffix_tokens
    pieces = sum(p.tokens for c in plan.calls for p in c.pieces)
    assert len(plan.calls) <= -(-pieces // room) + 1
    assert all(p.whole for c in plan.calls for p in c.pieces)  # small documents are never split
    assert "first-fit decreasing" in plan.packing


def test_the_bytes_before_the_question_stay_the_same_from_one_question_to_the_next():
    first = make_plan(selection(), QUESTION, settings(), mode="all")
    second = make_plan(selection(), "And who inherits the estate after the second marriage?", settings(), mode="all")
    assert [c.names for c in first.calls] == [c.names for c in second.calls]
    for a, b in zip(first.calls, second.calls):
        before_a = sent_prompt(first, a).split("Question: ")[0]
        before_b = sent_prompt(second, b).split("Question: ")[0]
        assert before_a == before_b


def test_most_relevant_first_reads_the_best_ranked_documents_that_fit():
    documents = selection()
    plan = make_plan(documents, "clause3x4 estate", settings(context=4000), mode="relevant", ranker=word_ranker)
    assert plan.mode == "relevant" and plan.fits and len(plan.calls) == 1
    ranked = word_ranker("clause3x4 estate", assign_unique_ids(prompt.sorted_documents(documents)))
    assert [d.rank for d in plan.documents] == list(range(1, len(documents) + 1))
    assert [d.name for d in plan.documents] == [r.name for r in ranked]
    read = [d for d in plan.documents if d.read]
    unread = [d for d in plan.documents if not d.read]
    assert read and unread and all("does not fit" in d.reason for d in unread)
    # the call holds exactly the documents marked read, counted as one call would send them
    built = prompt.build_prompt(list(plan.calls[0].documents), "clause3x4 estate", think=False, counter=get_counter())
    assert plan.calls[0].prompt_tokens == built.total
    assert sorted(d.name for d in built.documents) == sorted(d.name for d in read)
    assert any(f"(rank {unread[0].rank})" in note for note in plan.notes)
    assert any("NOT READ" in line for line in describe_plan(plan))


def test_without_a_ranker_relevant_mode_says_what_to_do(monkeypatch):
    import lib.asking.plan as plan_module

    def missing():
        raise InputError("Ranking by relevance is not available in this installation")

    monkeypatch.setattr(plan_module, "default_ranker", missing)
    with pytest.raises(InputError, match="not available"):
        make_plan(selection(), QUESTION, settings(), mode="relevant")
    auto = make_plan(selection(), QUESTION, settings())
    assert not auto.alternatives["relevant"].fits and "not available" in auto.alternatives["relevant"].message
    assert auto.alternatives["all"].fits


def test_a_context_too_small_for_the_instructions_is_refused():
    with pytest.raises(InputError, match="raise the context"):
        make_plan(selection(), QUESTION, Settings(context=900, answer_reserve=300), mode="all")


@pytest.mark.parametrize("question,mode", [("  ", "all"), ("q", "sideways")])
def test_bad_input(question, mode):
    with pytest.raises(InputError):
        make_plan([lease()], question, settings(), mode=mode)


def test_the_estimate_is_unknown_until_the_server_has_been_timed():
    plan = make_plan(selection(), QUESTION, settings(), mode="all")
    assert plan.estimate.seconds is None and plan.estimate.text.startswith("unknown")
    calls = [{"server_prompt_tokens": 10_000, "cached_tokens": 2_000, "prompt_eval_s": 8.0,
              "eval_count": 300, "eval_s": 10.0}]
    speed = ServerSpeed.from_calls(calls)
    assert (speed.read_tokens_per_s, speed.write_tokens_per_s) == (1000.0, 30.0)
    one_at_a_time = make_plan(selection(), QUESTION, settings(), mode="all", speed=speed, concurrency=1)
    four = make_plan(selection(), QUESTION, settings(), mode="all", speed=speed, concurrency=4)
    reading = sum(c.prompt_tokens / 1000 + 300 / 30 for c in one_at_a_time.calls)
    assert one_at_a_time.estimate.seconds > reading
    assert four.estimate.seconds < one_at_a_time.estimate.seconds
    assert one_at_a_time.to_json()["estimate"]["read_tokens_per_s"] == 1000.0


def test_concurrency_defaults_by_server_kind(monkeypatch):
    assert default_concurrency(Settings(backend="openai")) == 4
    assert default_concurrency(Settings(backend="ollama")) == 1
    monkeypatch.setenv("FOLIO_CONCURRENCY", "3")
    assert default_concurrency(load_settings(backend="ollama")) == 3


def test_the_plan_is_fast_to_describe_and_serialise():
    plan = make_plan(selection(), QUESTION, settings(), mode="all")
    data = plan.to_json()
    assert data["mode"] == "all" and data["final"]["kind"] == "compose"
    assert data["calls"][0]["reads"][0].keys() >= {"document", "sha256", "part", "parts", "passages", "tokens"}
    assert data["key"] == plan.key and len(plan.key) == 16
    assert SENTINEL not in "".join(describe_plan(plan))


class _CountingBackend:
    """A server whose tokenizer counts `ratio` times Folio's (a model other than Qwen3)."""

    def __init__(self, ratio: float):
        self.ratio = ratio

    def count_prompt(self, request):
        text = prompt.render_chat(request.messages, request.think)
        return int(get_counter().count(text) * self.ratio)


def test_a_server_counting_more_tokens_gets_calls_packed_below_its_budget():
    from lib.asking.several_calls import server_token_ratio

    documents = selection()
    assert server_token_ratio(_CountingBackend(0.98), settings(), documents) == 1.0
    ratio = server_token_ratio(_CountingBackend(1.2), settings(), documents)
    assert 1.2 <= ratio < 1.25
    plain = make_plan(documents, QUESTION, settings(), mode="all")
    packed = make_plan(documents, QUESTION, settings(), mode="all", server_ratio=ratio)
    assert len(packed.calls) > len(plain.calls)
    assert all(c.prompt_tokens * ratio <= plain.context - 300 for c in packed.calls)
    assert any("counts 2" in note for note in packed.notes)


def test_a_follow_up_question_carries_the_earlier_questions_after_the_documents():
    history = [("Who owns the estate?", "The heir does.")]
    first = make_plan(selection(), QUESTION, settings(), mode="all")
    follow = make_plan(selection(), "And after the sale?", settings(), mode="all", history=history)
    text = sent_prompt(follow, follow.calls[0])
    assert "Earlier questions in this conversation:\n- Who owns the estate?" in text
    assert text.index("</documents>") < text.index("Earlier questions")  # after the documents: cache kept
    assert sent_prompt(first, first.calls[0]).split("</documents>")[0] == text.split("</documents>")[0]
    assert follow.key != first.key
