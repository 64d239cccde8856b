"""The token budget: computed from the real prompt, exact, and honest when it does not fit."""

from __future__ import annotations

import re

import pytest

from lib.asking.budget import compute_budget
from lib.asking.prompt import build_messages, count_prompt, render_document, system_block
from lib.config import Settings
from lib.reading.tokens import get_counter

from answer_fixtures import contract_zh, lease, long_document


@pytest.fixture(scope="module")
def counter():
    return get_counter("exact")


def test_numbers_add_up_to_the_real_prompt(counter):
    documents = [lease(), contract_zh()]
    settings = Settings()
    budget = compute_budget(documents, settings, question="Who pays the rent?", counter=counter)
    rendered_tokens = count_prompt(build_messages(documents, "Who pays the rent?"), False, counter)
    assert budget.prompt == rendered_tokens
    assert budget.system == counter.count(system_block())
    assert budget.documents == {d.name: counter.count(render_document(d)) for d in documents}
    assert budget.total_documents == sum(budget.documents.values())
    assert budget.question == counter.count("Question: Who pays the rent?")
    assert 0 < budget.template < 40
    assert budget.reserved == settings.answer_reserve
    assert budget.available == budget.context - budget.system - budget.template - budget.question - budget.reserved
    assert budget.left == budget.available - budget.total_documents
    assert budget.context - budget.prompt - budget.reserved == budget.left
    assert budget.fits and budget.overrun == 0 and budget.counter == "exact"


def test_exact_boundary_fits_and_one_token_less_does_not(counter):
    documents = [lease()]
    probe = compute_budget(documents, Settings(), question="q", counter=counter)
    needed = probe.prompt + probe.reserved
    exact = compute_budget(documents, Settings(context=needed), question="q", counter=counter)
    assert exact.fits and exact.left == 0
    short = compute_budget(documents, Settings(context=needed - 1), question="q", counter=counter)
    assert not short.fits and short.overrun == 1


def test_over_budget_refusal_lists_tokens_per_document(counter):
    big, small = long_document("big.pdf", 40), long_document("small.pdf", 10)
    budget = compute_budget([small, big], Settings(context=3000, answer_reserve=500), question="q", counter=counter)
    assert not budget.fits
    assert budget.overrun == budget.total_documents - budget.available > 0
    message = budget.refusal_message()
    assert f"need {budget.total_documents:,} tokens" in message
    assert f"only {budget.available:,} are available" in message
    assert f"over by {budget.overrun:,}" in message
    assert f"big.pdf {budget.documents['big.pdf']:,}, small.pdf {budget.documents['small.pdf']:,}" in message
    assert "To make it fit: deselect documents; or use a model that holds a larger context." in message
    assert budget.documents["big.pdf"] > 1000  # thousands separators are really exercised
    assert re.search(r"\d,\d{3}", message)


def test_thinking_reserves_more(counter):
    settings = Settings(answer_reserve=4096, thinking_reserve=8192)
    plain = compute_budget([lease()], settings, question="q", think=False, counter=counter)
    thinking = compute_budget([lease()], settings, question="q", think=True, counter=counter)
    assert plain.reserved == 4096 and thinking.reserved == 4096 + 8192
    # The template differs a little too (" /think" vs " /no_think" + the empty think block).
    assert plain.available - thinking.available == 8192 + (thinking.template - plain.template)
    assert thinking.template < plain.template


def test_think_defaults_to_the_setting(counter):
    budget = compute_budget([lease()], Settings(think=True), question="q", counter=counter)
    assert budget.think and budget.reserved == Settings().answer_reserve + Settings().thinking_reserve


def test_real_context_replaces_the_configured_one(counter):
    budget = compute_budget([lease()], Settings(context=131072), question="q", context=40960, counter=counter)
    assert budget.context == 40960
    assert budget.available == 40960 - budget.system - budget.template - budget.question - budget.reserved
    assert "40,960" in " ".join(budget.notes) and "131,072" in " ".join(budget.notes)


def test_history_is_counted(counter):
    history = [("Who pays the rent?", 'The lessee "shall pay the rent" [x-1].')]
    budget = compute_budget([lease()], Settings(), question="And the roof?", history=history, counter=counter)
    messages = build_messages([lease()], "And the roof?", history)
    assert budget.prompt == count_prompt(messages, False, counter)
    assert budget.history == counter.count("Question: Who pays the rent?") + counter.count(history[0][1])
    assert budget.question == counter.count("Question: And the roof?")


def test_json_shape_for_the_ingest_command(counter):
    budget = compute_budget([lease()], Settings(), counter=counter)
    data = budget.to_json()
    assert set(data) == {"context", "system", "reserved", "available", "documents", "fits"}
    assert data["documents"] == budget.total_documents and data["fits"] is True


def test_duplicate_names_stay_distinct(counter):
    a = lease()
    b = long_document("lease.pdf", 2)
    budget = compute_budget([a, b], Settings(), counter=counter)
    assert len(budget.documents) == 2
    assert sum(budget.documents.values()) == counter.count(render_document(a)) + counter.count(render_document(b))


def test_estimate_is_labelled_and_never_below_the_exact_count(counter):
    estimate = get_counter("estimate")
    documents = [lease(), contract_zh()]
    exact = compute_budget(documents, Settings(), question="q", counter=counter)
    rough = compute_budget(documents, Settings(), question="q", counter=estimate)
    assert rough.counter == "estimate" and rough.is_estimate
    assert rough.total_documents >= exact.total_documents
    assert rough.prompt >= exact.prompt
    over = compute_budget(documents, Settings(context=500), question="q", counter=estimate)
    assert "(estimated)" in over.refusal_message()


def test_refusal_advice_fits_the_situation(counter):
    """One document: split it; thinking on and over by less than its reserve: turn it off."""
    big = long_document("big.pdf", 40)
    settings = Settings(context=3000, answer_reserve=500, thinking_reserve=2000)
    alone = compute_budget([big], settings, question="q", think=False, counter=counter)
    assert not alone.fits
    assert "split the document into parts" in alone.refusal_message()
    assert "deselect documents" not in alone.refusal_message()
    near = compute_budget([big], settings.replace(context=alone.prompt + 500 + 1000), question="q",
                          think=True, counter=counter)
    assert not near.fits and near.overrun <= 2000
    assert "turn thinking off (frees 2,000 tokens)" in near.refusal_message()
    assert compute_budget([big], settings.replace(context=alone.prompt + 500 + 1000), question="q",
                          think=False, counter=counter).fits
