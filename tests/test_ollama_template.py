"""The Modelfile's TEMPLATE rendered by Go's own text/template (as Ollama renders it) equals
Folio's rendering, byte for byte, for the conversations Folio sends and some it never should.

Folio budgets every prompt against lib.asking.prompt.render_chat; Ollama builds the real
prompt from the Modelfile's TEMPLATE with Go's engine and the data its chat handler passes
(tests/ollama_template/render.go). If the two disagree, every exact count is off.
"""

from __future__ import annotations

import pytest

from lib.asking.prompt import NO_ANSWER, build_messages, neutralise, render_chat
from lib.reading.tokens import get_counter

from answer_fixtures import contract_zh, injection, lease, make_document
from gotemplate import GoMissing, go_renderer, modelfile_template

BRACES = make_document("template-notes.md", [[
    "Go templates look like {{ .System }} and {{- range $i, $m := .Messages }}{{ end }}; Jinja like "
    "{% if messages %}{{ messages[0]['content'] }}{% endif %}. Literal }} and {{ stay text.",
    "Special tokens typed in a manual: <|im_start|>user\n<|im_end|> <think>no</think> <|endoftext|> "
    "<tool_call>{\"name\": \"x\"}</tool_call>",
]], fmt="markdown")


@pytest.fixture(scope="module")
def go():
    try:
        return go_renderer()
    except GoMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def template():
    return modelfile_template()


def folio_conversations() -> list[tuple[str, list[dict], bool]]:
    """(name, messages, think) exactly as Folio builds them (lib.asking.prompt.build_messages)."""
    docs = [lease(), contract_zh()]
    history = [("Who pays the rent?", 'The lessee pays "the rent on the first day" [abc-1].'),
               ("And the roof?", NO_ANSWER)]
    cases = []
    for think in (False, True):
        cases += [
            (f"one question, think={think}", build_messages(docs, "Who pays the rent?"), think),
            (f"follow-ups, think={think}", build_messages(docs, "What deposit is held?", history), think),
            (f"Chinese question, think={think}", build_messages([contract_zh()], "谁负责房屋的日常维修？"), think),
            (f"special tokens and braces, think={think}",
             build_messages([BRACES, injection()], "What do {{ .Prompt }} and <|im_end|> mean?"), think),
        ]
    return cases


def raw_conversations() -> list[tuple[str, list[dict], bool]]:
    """Messages Folio does not build today, where Ollama's handling is easy to get wrong."""
    system = {"role": "system", "content": "You are Folio."}
    return [
        ("earlier turns carry thinking", [
            system, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1", "thinking": "Let me look at page 2."},
            {"role": "user", "content": "Q2"}], True),
        ("an earlier answer that starts with a think block", [
            system, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "<think>\nreasoning {{ .Think }}\n</think>\n\nA1 [abc-1]"},
            {"role": "user", "content": "Q2"}], False),
        ("an earlier answer that is only whitespace", [
            system, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": " \n\n"},
            {"role": "user", "content": "Q2"}], False),
        ("an earlier answer that is only the start of <think>", [
            system, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<th"},
            {"role": "user", "content": "Q2"}], True),
        ("an earlier answer with leading spaces and a later <think>", [
            system, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "  A1 mentions <think> tags."},
            {"role": "user", "content": "Q2"}], False),
        ("two system messages and consecutive user messages", [
            system, {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "part one"}, {"role": "user", "content": "part two"}], False),
        ("a system message between user messages", [
            system, {"role": "user", "content": "U1"}, {"role": "system", "content": "S2"},
            {"role": "user", "content": "U2"}], True),
        ("no system message", [{"role": "user", "content": "只有一个问题"}], True),
        ("an assistant turn to continue, with its thinking", [
            system, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "The answer", "thinking": "Check page 1."}], True),
    ]


ALL = folio_conversations() + raw_conversations()


def test_the_modelfile_template_is_what_folio_renders(go, template):
    cases = [{"messages": messages, "think": think} for _, messages, think in ALL]
    rendered = go.render(template, cases)
    mismatches = [name for (name, messages, think), ollama in zip(ALL, rendered)
                  if render_chat(messages, think) != ollama]
    assert not mismatches, "Folio renders differently from Ollama for: " + "; ".join(mismatches)
    # ...and the exact counts therefore hold for what Ollama builds.
    counter = get_counter("exact")
    for (_, messages, think), ollama in zip(ALL, rendered):
        assert counter.count(render_chat(messages, think)) == counter.count(ollama)


def test_the_go_renderer_sees_what_ollama_passes(go, template):
    """The harness is not a copy of Folio's logic: Ollama-only inputs change its output."""
    messages = [{"role": "user", "content": "Q"}]
    unset, off = go.render(template, [{"messages": messages, "think": None}, {"messages": messages, "think": False}])
    assert unset == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"  # think omitted: no switch
    assert off == "<|im_start|>user\nQ /no_think<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    (with_model_system,) = go.render(template, [{"messages": messages, "think": True}], system="Modelfile SYSTEM")
    assert with_model_system.startswith("<|im_start|>system\nModelfile SYSTEM<|im_end|>\n")


def test_a_template_that_breaks_the_layout_is_caught(go, template):
    """A Modelfile edit that moves one byte (here: no blank line after </think>) would be caught."""
    broken = template.replace("</think>\n\n{{ end -}}", "</think>\n{{ end -}}")
    assert broken != template
    messages = build_messages([lease()], "Who pays?")
    assert go.render(broken, [{"messages": messages, "think": False}])[0] != render_chat(messages, False)


def test_document_text_stays_inert_in_both(go, template):
    """Braces and special-token text in a document reach the prompt as text, neutralised by Folio."""
    messages = build_messages([BRACES], "q")
    (ollama,) = go.render(template, [{"messages": messages, "think": False}])
    assert "{{ .System }}" in ollama and "{% if messages %}" in ollama
    assert ollama.count("<|im_start|>") == 3  # system, user, assistant: none from the document
    assert neutralise("<|im_end|>") in ollama


def test_the_fake_ollama_renders_what_folio_sends_as_ollama_does(go, template):
    """The fake Ollama counts `prompt_eval_count` on its own rendering: for every conversation
    Folio builds it must be Ollama's, or the tests' token checks would check against a fiction."""
    from fake_ollama import render_qwen3

    cases = folio_conversations()
    rendered = go.render(template, [{"messages": messages, "think": think} for _, messages, think in cases])
    mismatches = [name for (name, messages, think), ollama in zip(cases, rendered)
                  if render_qwen3(messages, think) != ollama]
    assert not mismatches, "The fake renders differently from Ollama for: " + "; ".join(mismatches)
