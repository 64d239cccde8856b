"""What the app says about each answer and each setting, with AppTest against the fake Ollama
(and a scripted OpenAI-compatible server): the answer's state first, the model that answered,
times and cache, advice that points at the Settings page's fields, budget hints that fit,
questions that are never lost, and one clear message per problem.
"""

from __future__ import annotations

import io

import httpx
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.config import load_settings
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes

import fixtures
from test_app import (  # noqa: F401 (fixtures: clean_caches is autouse, fake, server_down, downloads)
    APP,
    add_and_open_ask,
    all_text,
    ask,
    assert_no_exception,
    clean_caches,
    downloads,
    fake,
    goto,
    server_down,
    start_app,
    submit,
    unescape,
    upload,
    values,
)


def assistant_messages(at: AppTest) -> list:
    return [m for m in at.chat_message if m.name == "assistant"]


def first_child(block):
    """The first element drawn inside a block (a chat message)."""
    return block.children[min(block.children)]


# --- the answer's state first ----------------------------------------------------------------


def test_a_prompt_the_server_cut_is_the_answers_state_in_the_page_history_and_exports(fake, downloads):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    fake.cut_prompt_next(keep=50)
    ask(at, "What did the committee decide?")
    assert_no_exception(at)
    [answer] = assistant_messages(at)
    state = first_child(answer)
    assert state.type == "alert" or hasattr(state, "icon"), state
    assert unescape(state.value).startswith("**Not read whole.** The server read only 50 of the ")
    assert "did not read what Folio sent" not in unescape(all_text(at))  # said once, as the state
    cid = at.session_state["chat"]["id"]

    goto(at, "history")
    at.button(key=f"open-{cid}").click()
    at.run()
    [saved] = assistant_messages(at)
    assert unescape(first_child(saved).value).startswith("**Not read whole.**")
    markdown = downloads["What-did-the-committee-decide.md"].decode("utf-8")
    assert markdown.split("## Answer", 1)[1].lstrip().startswith("**Not read whole.** The server read only 50")
    row = pd.read_csv(io.BytesIO(downloads["folio-history.csv"]), encoding="utf-8-sig").iloc[0]
    assert row["status"] == "prompt_cut" and row["warnings"].startswith("Not read whole:")


def test_the_model_that_answered_times_and_cache_are_shown_and_recorded(fake, downloads):
    fake.answer_as("other:7b")  # a proxy that swaps models: the answer names another model
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "Who decided?")
    assert_no_exception(at)
    captions = unescape(" ".join(values(at, "caption")))
    assert "Answered by other:7b (Ollama 0.13.0); Folio was set to qwen3-128k:14b." in captions
    assert "First token after " in captions and ", counted from the question" in captions
    turn = at.session_state["chat"]["turns"][0]
    assert turn["timings"]["first_token_s"] is not None
    cache = turn["calls"][0]["cache"]
    assert cache["state"] == "unknown" and "Cache: unknown (the server read " in captions  # a first, full read

    goto(at, "history")
    row_caption = unescape(" ".join(values(at, "caption")))
    assert "other:7b (set to qwen3-128k:14b)" in row_caption
    history = pd.read_csv(io.BytesIO(downloads["folio-history.csv"]), encoding="utf-8-sig").iloc[0]
    assert (history["model"], history["configured_model"]) == ("other:7b", "qwen3-128k:14b")
    assert history["first_token_s"] == pytest.approx(turn["timings"]["first_token_s"])


# --- a question is never lost -----------------------------------------------------------------


def test_a_question_the_server_failed_is_shown_kept_in_the_input_and_asked_again(fake):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    fake.fail_next(503, "server busy, try again")
    ask(at, "What did the committee decide?")
    assert_no_exception(at)
    assert any("What did the committee decide?" in unescape(m.markdown[0].value)
               for m in at.chat_message if m.name == "user")
    assert "busy" in unescape(" ".join(values(at, "error")))
    field = at.chat_input(key="question")
    assert field.proto.set_value and field.proto.value == "What did the committee decide?"  # back in the input
    assert Store(load_settings().data_dir).list_conversations() == []

    at.button(key="ask-again").click()
    at.run()
    assert_no_exception(at)
    assert len(at.session_state["chat"]["turns"]) == 1 and at.session_state["chat"]["unsent"] is None
    assert not [b for b in at.button if b.key == "ask-again"] and not values(at, "error")
    assert at.chat_input(key="question").proto.value == ""  # sent: the input is emptied


def test_a_question_asked_while_the_server_is_down_is_kept(server_down):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "Anyone there?")
    assert_no_exception(at)
    assert "Cannot reach" in unescape(" ".join(values(at, "error")))
    assert "Anyone there?" in unescape(" ".join(values(at, "markdown")))
    assert at.chat_input(key="question").proto.value == "Anyone there?"
    assert [b for b in at.button if b.key == "ask-again"]


# --- advice that points at fields ---------------------------------------------------------------


def test_advice_points_at_the_settings_fields_and_thinking_is_off_when_the_model_cannot_think(fake, monkeypatch):
    monkeypatch.setenv("FOLIO_MODEL", "qwen2.5:7b")  # installed in the fake, without the thinking capability
    monkeypatch.setenv("FOLIO_THINK", "1")
    at = goto(start_app(), "settings")
    assert_no_exception(at)
    warnings = unescape(" ".join(values(at, "warning")))
    assert "turn off “Thinking on by default” above" in warnings
    assert "--no-think" not in warnings and "FOLIO_" not in warnings

    add_and_open_ask(goto(at, "library"), "judgment.pdf", fixtures.english_pdf())
    goto(at, "ask")  # AppTest would otherwise return to the page it was last switched to
    toggle = at.toggle(key="think-toggle")
    assert toggle.disabled and toggle.value is False and "cannot think" in toggle.help
    ask(at, "Who decided?")
    assert_no_exception(at)
    assert fake.last_chat is not None, values(at, "error")
    assert fake.last_chat["think"] is False


def test_an_answer_cut_at_its_reserve_points_at_the_reserve_field(fake):
    fake.script(done_reason="length")
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "Summarise it.")
    warnings = unescape(" ".join(values(at, "warning")))
    assert "raise “Reserved for the answer” on the Settings page" in warnings
    assert "FOLIO_ANSWER_RESERVE" not in warnings


@pytest.fixture
def llama_cpp_python(monkeypatch):
    """The app's backend speaks to a scripted llama-cpp-python server (one GGUF, no context, no
    version) through httpx.MockTransport."""
    import lib.servers
    from lib.servers.openai import OpenAIBackend
    from test_openai_client import Server, delta, sse

    server = Server("llama-cpp-python", stream=sse(delta("None of the documents say."), delta(finish="stop")))
    transport = httpx.MockTransport(server)
    monkeypatch.setenv("FOLIO_BACKEND", "openai")
    monkeypatch.setenv("FOLIO_HOST", "http://gpu.test:8000")
    monkeypatch.setattr(lib.servers, "make_backend", lambda s: OpenAIBackend(s, transport=transport))


def test_a_one_model_server_is_named_readably_and_its_advice_names_fields(llama_cpp_python):
    at = start_app()
    [light] = [unescape(v) for v in values(at, "success") if "·" in v]  # the sidebar's server light
    assert light == "llama-cpp-python server · `smollm.gguf`", light  # never "Openai ?"
    goto(at, "settings")
    assert_no_exception(at)
    text = unescape(all_text(at))
    assert "Set “Context (tokens)” above to the server's context (n_ctx)." in text
    assert "set “Model” above to /models/smollm.gguf" in text
    assert "FOLIO_CONTEXT" not in text.replace("Default from FOLIO_CONTEXT", "")
    assert "--context" not in text and "--model" not in text


# --- the budget with many documents ---------------------------------------------------------------


def many_documents(count: int) -> list[str]:
    """`count` small text documents straight into the store; their sha256."""
    store = Store(load_settings().data_dir)
    shas = []
    for n in range(count):
        text = f"Exhibit {n}. " + "The witness described the meeting of the committee in detail. " * (60 + 4 * n)
        data = text.encode("utf-8")
        document = ingest_bytes(data, f"exhibit-{n:02}.txt")
        store.add_document(document, data)
        shas.append(document.sha256)
    return shas


def open_ask_with(shas: list[str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["selected"] = shas  # chosen (the chooser itself is another page's concern)
    at.run()
    return goto(at, "ask")


def test_with_many_documents_the_budget_headline_and_its_last_row_stay_in_view(fake, monkeypatch):
    shas = many_documents(40)
    at = open_ask_with(shas)
    assert_no_exception(at)
    [table] = [d.value for d in at.dataframe if "Part" in d.value.columns and "40 documents" in set(d.value["Part"])]
    assert len(table) <= 8 and table["Part"].iloc[-1] == "Left"
    assert "40 documents, largest first" in " ".join(e.label for e in at.expander)
    assert "Fits:" in at.get("progress")[0].proto.text

    # A model that holds 40,960 tokens (as stock qwen3:14b). The most documents that the whole
    # context could hold, but not with the instructions and the answer's room: the budget names
    # the overrun in one line and the fewest documents to remove. (A choice larger than the whole
    # context is refused before anything is loaded: tests/test_app_library.py.)
    monkeypatch.setenv("FOLIO_MODEL", "qwen3:14b")
    st.cache_data.clear()
    st.cache_resource.clear()
    store = Store(load_settings().data_dir)
    tokens = {row.sha256: row.tokens for row in store.document_summaries(shas)}
    chosen, total = [], 0
    for sha in shas:
        if total + tokens[sha] > 40_960:
            break
        chosen.append(sha)
        total += tokens[sha]
    assert len(chosen) > 20
    over = open_ask_with(chosen)
    [refusal] = [unescape(e) for e in values(over, "error")]
    assert refusal.startswith(f"The {len(chosen)} selected documents need ") and "exhibit-" not in refusal  # one line
    hints = [unescape(h) for h in values(over, "info")]
    assert 1 <= len(hints) <= 2 and any(h.startswith("Remove ") and h.endswith("and it fits.") for h in hints)
    [table] = [d.value for d in over.dataframe
               if "Part" in d.value.columns and f"{len(chosen)} documents" in set(d.value["Part"])]
    assert table["Part"].iloc[-1] == "Over the context by"


# --- one message per problem, and the page the user is on --------------------------------------


def _sidebar(on_settings: bool) -> None:
    import ui.server
    import ui.state

    ui.state.init_state()
    ui.server.sidebar_status(on_settings=on_settings)


def test_settings_says_the_server_is_down_once_without_sending_the_user_to_settings(server_down):
    at = goto(start_app(), "settings")
    assert_no_exception(at)
    text = unescape(all_text(at))
    assert text.count("does not answer at") == 1, text
    assert "Settings page" not in text, text[text.find("Settings page") - 300:]
    assert "set its address in **Address** above" in text
    # The sidebar (AppTest does not keep it across page switches: drawn here by itself): on the
    # Settings page only the light; on the other pages the light and what to do.
    there = AppTest.from_function(_sidebar, kwargs={"on_settings": True}).run()
    assert [e.value for e in there.sidebar.error] == ["Model server not reachable"]
    assert not any("does not answer" in c.value for c in there.sidebar.caption)
    elsewhere = AppTest.from_function(_sidebar, kwargs={"on_settings": False}).run()
    assert any("does not answer" in c.value and "on the **Settings** page" in c.value for c in elsewhere.sidebar.caption)


def test_switching_the_server_kind_moves_a_default_address_and_keeps_a_custom_one(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)  # Ollama's usual address (nothing listens in tests)
    at = goto(start_app(), "settings")
    at.selectbox[0].set_value("openai")
    submit(at, "Apply")
    assert at.session_state["overrides"]["host"] == "http://127.0.0.1:8000"
    assert "The address is now http://127.0.0.1:8000" in unescape(" ".join(values(at, "success"))).replace("\u2060", "")
    [t for t in at.text_input if t.label == "Address"][0].set_value("http://gpu-box:8000")
    at.selectbox[0].set_value("ollama")
    submit(at, "Apply")
    assert at.session_state["overrides"]["host"] == "http://gpu-box:8000"  # the user's own address stays


def test_the_two_search_boxes_of_the_library_have_distinct_labels(server_down):
    at = start_app()
    upload(at, ("judgment.pdf", fixtures.english_pdf()))
    labels = [t.label for t in at.text_input if t.key and t.key.startswith("q-")]
    assert sorted(labels) == ["Search every document", "Search this document"]
