"""lib/output/outcome.py and lib/output/advice.py: what became of a question, in the app's words."""

from __future__ import annotations

import pytest

from lib.asking.answering import Answer
from lib.output import advice, outcome


def cut_turn() -> dict:
    """An answer whose prompt the server read only in part (lib's Answer.to_json() shape)."""
    answer = Answer(question="Who pays?", answer="The tenant.", status="prompt_cut",
                    prompt_check={"state": "read_fewer", "sent": 430, "read": 50, "reference": "Folio"},
                    warnings=["The server did not read what Folio sent: it read 50 prompt tokens, Folio counts "
                              "430 (380 fewer). Part of the documents may have been cut; do not rely on this "
                              "answer. Check the server with `python -m lib doctor`.",
                              "The answer cites no passage."])
    return answer.to_json()


def test_a_cut_prompt_is_the_answers_state_with_its_numbers_and_said_once():
    turn = cut_turn()
    state = outcome.answer_state(turn)
    assert (state.status, state.level, state.title) == ("prompt_cut", "error", "Not read whole")
    assert state.text.startswith("The server read only 50 of the 430 prompt tokens Folio sent")
    assert "Do not rely on it" in state.text
    assert outcome.turn_notes(turn) == ["The answer cites no passage."]  # the cut is not repeated


@pytest.mark.parametrize(
    "turn, status, level",
    [
        ({"status": "interrupted", "interrupted": True, "reason": "The server dropped the connection.",
          "warnings": ["Interrupted: The server dropped the connection."]}, "interrupted", "error"),
        ({"status": "stopped", "interrupted": True, "reason": "Stopped by you; the part that arrived is kept.",
          "warnings": []}, "stopped", "warning"),
        # saved before lib reported a status
        ({"interrupted": True, "reason": "Stopped by you before the model's first word."}, "stopped", "warning"),
        ({"interrupted": True, "interrupt_reason": "The server crashed.",
          "warnings": ["Interrupted: The server crashed."]}, "interrupted", "error"),
        ({"warnings": ["The server did not read what Folio sent: it read 5 prompt tokens, Folio counts 90 "
                       "(85 fewer)."], "calls": [{"prompt_tokens": 90, "server_prompt_tokens": 5}]},
         "prompt_cut", "error"),
        ({"answer": "Monthly.", "warnings": []}, "answered", "ok"),
    ],
)
def test_every_state_is_named_first_and_the_interruption_only_once(turn, status, level):
    state = outcome.answer_state(turn)
    assert (state.status, state.level) == (status, level)
    if status == "interrupted":
        reason = turn.get("reason") or turn["interrupt_reason"]
        assert state.text == reason and not any(n.startswith("Interrupted:") for n in outcome.turn_notes(turn))
    if status == "stopped":  # "Stopped by you" once: as the title
        assert state.title == "Stopped by you" and "Stopped by you" not in state.text
        assert state.text in ("The part that arrived is kept.", "Before the model's first word.")
    if status == "answered":
        assert state.text == "" and state.line == ""
    if status == "prompt_cut":
        assert "read only 5 of the 90" in state.text


def test_the_model_that_answered_is_named_with_the_server_and_the_configured_name():
    turn = {"model": "/models/smollm2-135m.gguf", "configured_model": "qwen3-128k:14b",
            "server": {"display": "llama.cpp server b4567"}}
    assert outcome.model_line(turn) == ("Answered by smollm2-135m.gguf (llama.cpp server b4567); "
                                        "Folio was set to qwen3-128k:14b.")
    same = {"model": "qwen3-128k:14b", "configured_model": "qwen3-128k:14b", "server": {"display": "Ollama 0.13.0"}}
    assert outcome.model_line(same) == "Answered by qwen3-128k:14b (Ollama 0.13.0)."
    assert outcome.short_model("Qwen/Qwen3-14B") == "Qwen/Qwen3-14B"
    assert outcome.conversation_model({"model": "qwen3-128k:14b", "answered_by": "/m/smollm2.gguf"}) == (
        "smollm2.gguf (set to qwen3-128k:14b)")
    assert outcome.conversation_model({"model": "qwen3-128k:14b"}) == "qwen3-128k:14b"


def test_times_count_from_the_question_and_say_what_came_before_the_answer():
    turn = {"timings": {"check_s": 0.0, "prompt_s": 0.03, "count_s": 69.1, "sent_s": 69.2,
                        "first_token_s": 71.0, "total_s": 73.5},
            "calls": [{"first_token_s": 0.07, "total_s": 1.9}]}  # what an old call record said
    line = outcome.time_line(turn)
    assert line == ("First token after 1 min 11 s; complete after 1 min 14 s, counted from the question "
                    "(the server's prompt count 1 min 09 s included).")
    old = {"calls": [{"first_token_s": 2.1, "total_s": 9.8}]}
    assert outcome.time_line(old).startswith("First token after 2.1 s; complete after 9.8 s")
    stopped = {"status": "stopped", "timings": {"total_s": 12.0, "check_s": 11.9}}
    assert outcome.time_line(stopped) == ("No word arrived; stopped after 12 s, counted from the question "
                                          "(checking the server 12 s included).")


@pytest.mark.parametrize(
    "cache, expected",
    [
        ({"state": "reused", "tokens": 5236, "source": "server", "read_s": 0.4},
         "Cache: 5,236 of 5,300 prompt tokens reused (the server says so)."),
        ({"state": "not_reused", "tokens": 0, "source": "server", "read_s": 40.0},
         "Cache: nothing reused (the server says so): it read the whole prompt."),
        ({"state": "reused", "tokens": None, "source": "timing", "read_s": 0.02},
         "Cache: reused (the server read 5,300 prompt tokens in 0.02 s: only what was new)."),
        ({"state": "unknown", "tokens": None, "source": None, "read_s": None},
         "Cache: unknown (the server does not say whether it reused its cache)."),
        ({"state": "unknown", "tokens": None, "source": "timing", "read_s": 9.0},
         "Cache: unknown (the server read 5,300 prompt tokens in 9.0 s and does not say whether any came "
         "from its cache)."),
    ],
)
def test_the_cache_line_says_what_the_server_reported_and_unknown_otherwise(cache, expected):
    call = {"prompt_tokens": 5290, "server_prompt_tokens": 5300, "cache": cache}
    assert outcome.cache_text(call) == expected


def test_the_cache_line_of_a_follow_up_compares_with_the_first_full_read():
    first_read = 40.0 / 5300
    fast = {"server_prompt_tokens": 5300, "cache": {"state": "unknown", "source": "timing", "read_s": 9.0}}
    assert outcome.cache_text(fast, first_read, follow_up=True).startswith("Cache: reused")
    slow = {"server_prompt_tokens": 5300, "cache": {"state": "unknown", "source": "timing", "read_s": 39.0}}
    assert outcome.cache_text(slow, first_read, follow_up=True).startswith("Cache: not reused")


# --- advice: the app points at its fields --------------------------------------------------------


@pytest.mark.parametrize(
    "message, elsewhere, here",
    [
        ("Set --context / FOLIO_CONTEXT to the server's context (n_ctx).",
         "Set “Context (tokens)” on the Settings page to the server's context (n_ctx).",
         "Set “Context (tokens)” above to the server's context (n_ctx)."),
        ("Ask a narrower question, or raise FOLIO_ANSWER_RESERVE / FOLIO_THINKING_RESERVE.",
         "Ask a narrower question, or raise “Reserved for the answer” and “Extra reserve when thinking” on the "
         "Settings page.", None),
        ("Point --host / OLLAMA_HOST (or the Address on the Settings page) at Ollama; for vLLM or llama.cpp "
         "use --backend openai.",
         "Point “Address” on the Settings page at Ollama; for vLLM or llama.cpp use Server “OpenAI-compatible” "
         "on the Settings page.",
         "Point “Address” above at Ollama; for vLLM or llama.cpp use Server “OpenAI-compatible” above."),
        ("Use a smaller context (--context or FOLIO_CONTEXT), or start Ollama with OLLAMA_KV_CACHE_TYPE=q8_0.",
         "Use a smaller context (“Context (tokens)” on the Settings page), or start Ollama with "
         "OLLAMA_KV_CACHE_TYPE=q8_0.", None),
        ("Thinking is on, but m does not say it can think: ask without thinking (--no-think) or use a Qwen3 model.",
         None, "Thinking is on, but m does not say it can think: ask without thinking (turn off “Thinking on by "
               "default” above) or use a Qwen3 model."),
        ("Do not rely on this answer. Check the server with `python -m lib doctor`.",
         "Do not rely on this answer. Check the server on the Settings page.", None),
        ("Set the server's API key in FOLIO_API_KEY.", "Set the server's API key in FOLIO_API_KEY.", None),
    ],
)
def test_advice_names_the_field_a_user_can_change_not_a_flag_or_a_variable(message, elsewhere, here):
    if elsewhere is not None:
        assert advice.for_app(message) == elsewhere
    if here is not None:
        assert advice.for_app(message, here=True) == here


def test_the_settings_page_uses_the_labels_advice_names():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "pages" / "settings.py").read_text(encoding="utf-8")
    for setting in advice.SETTING_LABELS:
        assert f'LABELS["{setting}"]' in page, setting
    assert advice.field_ref("answer_reserve") == "Settings › Reserved for the answer"
