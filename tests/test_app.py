"""The web app, page by page, with Streamlit's AppTest against real fixtures and the fake Ollama.

Every test starts from clean Streamlit caches and its own data folder (conftest.py), so
"restart" means a new AppTest over the same folder.
"""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from docx import Document as DocxDocument
from streamlit.testing.v1 import AppTest

from lib.asking.budget import compute_budget
from lib.config import load_settings
from lib.library.store import Store
from lib.output.exports import read_footnotes
from lib.reading.ingest import ingest_bytes

import fixtures
from fake_ollama import FakeOllama, cite_first_passage
from apptest_support import clean_caches, downloads  # noqa: F401 (fixtures)

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PDF_MIME = "application/pdf"


# --- helpers ------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_down(monkeypatch):
    """OLLAMA_HOST points at a port nothing listens on."""
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{_free_port()}")


def start_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    return at.run()


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def values(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in at.get(kind)]


def all_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "title", "subheader", "code"):
        parts += [str(v) for v in values(at, kind)]
    parts += [e.label for e in at.expander]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def unescape(markdown: str) -> str:
    import re

    return re.sub(r"\\(.)", r"\1", markdown).replace("\u00a0", " ")


def library_rows(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="question").set_value(question)
    return at.run()


def goto(at: AppTest, page: str) -> AppTest:
    return at.switch_page(f"pages/{page}.py").run()


def add_and_open_ask(at: AppTest, name: str, data: bytes) -> AppTest:
    """Upload one file, press 'Ask about it' on it, land on the Ask page with it selected."""
    upload(at, (name, data))
    at.button(key=f"ask-{_sha(data)}").click()
    return at.run()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def password_field(at: AppTest):
    return [t for t in at.text_input if t.label == "Password"][0]


def submit(at: AppTest, label: str) -> AppTest:
    [b for b in at.get("form_submit_button") if b.label == label][0].click()
    return at.run()


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# --- Library --------------------------------------------------------------------------


def test_library_reads_many_files_refuses_one_and_keeps_all_after_restart(server_down):
    at = start_app()
    upload(
        at,
        ("judgment.pdf", fixtures.english_pdf()),
        ("notes.docx", fixtures.docx_with_headings_and_tables()),
        ("broken.pdf", fixtures.not_a_document()),
        ("page.html", fixtures.html_page()),
    )
    assert_no_exception(at)
    added = " ".join(values(at, "success"))
    for name in ("judgment", "notes", "page"):
        assert name in unescape(added)
    assert "tokens" in added and "passages" in added
    errors = [unescape(e) for e in values(at, "error")]
    assert len(errors) == 1 and errors[0].startswith("broken.pdf:"), errors
    rows = library_rows(at)
    assert sorted(rows["Document"]) == ["judgment.pdf", "notes.docx", "page.html"]
    assert set(rows["Format"]) == {"PDF", "DOCX", "HTML"}
    assert (rows["Tokens"] > 0).all() and (rows["Passages"] > 0).all()
    assert set(rows["Count"]) <= {"exact", "estimate"}
    pages = dict(zip(rows["Document"], rows["Pages"]))
    assert pages["judgment.pdf"].isdigit() and pages["page.html"] == "–", pages  # never "None"

    st.cache_resource.clear()  # a restart: a new process has no cached store
    again = start_app()
    assert sorted(library_rows(again)["Document"]) == ["judgment.pdf", "notes.docx", "page.html"]
    upload(again, ("judgment-copy.pdf", fixtures.english_pdf()))
    assert "already in the library" in unescape(" ".join(values(again, "info")))
    assert len(library_rows(again)) == 3


def test_encrypted_pdf_asks_for_its_password_in_place(server_down):
    at = start_app()
    data = fixtures.encrypted_pdf()
    upload(at, ("sealed.pdf", data), ("open.pdf", fixtures.english_pdf()))
    assert_no_exception(at)
    assert "open.pdf" in unescape(" ".join(values(at, "success")))  # the other file is not held up
    assert "password-protected" in unescape(all_text(at)) and "--password" not in unescape(all_text(at))
    password_field(at).set_value("not-it")
    submit(at, "Open")
    errors = [unescape(e) for e in values(at, "error")]
    assert len(errors) == 1 and "sealed.pdf" in errors[0], errors  # said once, in the file's panel
    assert not [b for b in at.get("status") if "password" in b.label]  # no stray reading box
    assert len(library_rows(at)) == 1
    password_field(at).set_value(fixtures.PASSWORD)
    submit(at, "Open")
    assert_no_exception(at)
    assert sorted(library_rows(at)["Document"]) == ["open.pdf", "sealed.pdf"]
    assert not [t for t in at.text_input if t.label == "Password"]


def test_passage_browser_reads_page_by_page_and_searches_english_and_chinese(server_down):
    at = start_app()
    upload(at, ("judgment.pdf", fixtures.english_pdf()))
    sha = _sha(fixtures.english_pdf())
    page_one = unescape(" ".join(values(at, "markdown")))
    at.number_input(key=f"page-{sha}").set_value(2)
    at.run()
    page_two = unescape(" ".join(values(at, "markdown")))
    assert page_one != page_two
    stored = Store(load_settings().data_dir)
    for passage in stored.passages_on_page(sha, 2):
        assert " ".join(passage.text.split())[:40] in " ".join(page_two.split())
    word = stored.passages_on_page(sha, 2)[0].text.split()[1]
    at.text_input(key=f"q-{sha}").set_value(word)
    at.run()
    assert any(":orange-background[" in v for v in values(at, "markdown"))

    upload(at, ("合同.pdf", fixtures.chinese_pdf()))
    at.text_input(key="q-all").set_value("合同")
    at.run()
    hits = [v for v in values(at, "markdown") if ":orange-background[**合同**]" in v]
    assert hits, "a two-character Chinese word is searchable across the library"


def test_delete_removes_a_document_everywhere(server_down):
    at = start_app()
    data = fixtures.english_pdf()
    upload(at, ("judgment.pdf", data))
    sha = _sha(data)
    at.button(key=f"del-{sha}").click()
    at.run()
    at.button(key=f"really-{sha}").click()
    at.run()
    assert_no_exception(at)
    assert "library is empty" in " ".join(values(at, "info"))
    stored = Store(load_settings().data_dir)
    assert not stored.has_document(sha)
    assert not stored.search_passages("the")
    assert not (load_settings().data_dir / "files" / sha).exists()


# --- Ask ------------------------------------------------------------------------------


def test_ask_streams_a_cited_answer_with_the_page_image_and_statistics(fake):
    at = start_app()
    data = fixtures.english_pdf()
    add_and_open_ask(at, "judgment.pdf", data)
    assert [t.value for t in at.title] == ["Ask"]
    assert at.session_state["selected"] == [_sha(data)]
    ask(at, "What does the judgment say first?")
    assert_no_exception(at)
    answer = [v for v in values(at, "markdown") if "**\\[1\\]**" in v]
    assert answer and answer[0].startswith("The document says"), values(at, "markdown")
    assert ":green[**\\[1\\]**]" in answer[0] and "judgment" not in answer[0].split("[**")[0][-5:]
    labels = [unescape(e.label) for e in at.expander]
    assert any(label.startswith("[1] judgment.pdf") and label.endswith("verified") for label in labels), labels
    assert any("verified" in v and "badge" in v for v in values(at, "markdown"))
    assert any(":orange-background[" in v for v in values(at, "markdown")), "the quote is highlighted"
    images = at.get("image")
    assert images, "the cited PDF page is shown as an image"
    captions = " ".join(values(at, "caption"))
    body = fake.last_chat
    assert f"{body['options']['num_ctx']:,}" in captions
    assert "read by the server" in captions and "First token after" in captions and "tokens/s" in captions
    assert fake.last_prompt_tokens and f"{fake.last_prompt_tokens:,}" in captions


def test_thinking_is_collapsed_beside_the_answer(fake):
    fake.script(thinking="Looking for <b>the</b> rent clause.")
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    at.toggle(key="think-toggle").set_value(True)
    at.run()
    ask(at, "Who pays?")
    assert_no_exception(at)
    assert fake.last_chat["think"] is True
    reasoning = [e for e in at.expander if e.label == "Reasoning"]
    assert reasoning and "Looking for \\<b\\>the\\</b\\> rent clause" in " ".join(
        m.value for m in reasoning[0].markdown
    )


def test_follow_up_continues_the_conversation_and_reuses_the_cache(fake, downloads):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "First question?")
    first_prompt = fake.last_prompt
    ask(at, "And a follow-up?")
    assert_no_exception(at)
    messages = fake.last_chat["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "First question?" in messages[1]["content"] and "And a follow-up?" in messages[3]["content"]
    documents_block = first_prompt.split("Question: First question?")[0]
    assert fake.last_prompt.startswith(documents_block)  # byte-identical prefix: the cache can serve it
    assert fake.last_cached > 0
    captions = unescape(" ".join(values(at, "caption")))
    assert "Cache: reused" in captions
    assert len(at.session_state["chat"]["turns"]) == 2
    conversations = Store(load_settings().data_dir).list_conversations()
    assert len(conversations) == 1 and conversations[0]["turns"] == 2
    whole = downloads["conversation-First-question.md"].decode("utf-8")
    assert whole.index("First question?") < whole.index("And a follow-up?")


def test_budget_bar_shows_the_exact_numbers_and_refuses_what_does_not_fit(fake, monkeypatch):
    at = start_app()
    data = fixtures.english_pdf()
    add_and_open_ask(at, "judgment.pdf", data)
    table = [d.value for d in at.dataframe if "Part" in d.value.columns][0]
    document = Store(load_settings().data_dir).get_document(_sha(data))
    budget = compute_budget([document], load_settings(), think=False, context=131072)
    numbers = dict(zip(table["Part"], table["Tokens"]))
    assert numbers["System instructions"] == budget.system
    assert numbers["judgment.pdf"] == budget.documents["judgment.pdf"]
    assert numbers["Reserved for the answer"] == budget.reserved
    assert numbers["Left"] == budget.left
    assert f"{budget.left:,} left" in " ".join(p.proto.text for p in at.get("progress"))

    monkeypatch.setenv("FOLIO_CONTEXT", str(budget.system + budget.reserved + 50))
    st.cache_data.clear()
    small = start_app()
    add_and_open_ask(small, "judgment.pdf", data)
    refusal = unescape(" ".join(values(small, "error")))
    assert "over by" in refusal and "judgment.pdf" in refusal
    assert small.chat_input(key="question").proto.disabled


def test_unverified_and_invalid_citations_are_flagged(fake):
    at = start_app()
    data = fixtures.english_pdf()
    add_and_open_ask(at, "judgment.pdf", data)
    first = Store(load_settings().data_dir).get_document(_sha(data)).passages[0]
    fake.script(answer=f'It says "words that are nowhere" [{first.id}] and "more" [zzz-999].')
    ask(at, "Anything?")
    assert_no_exception(at)
    labels = [unescape(e.label) for e in at.expander]
    assert any(label.startswith("[1]") and label.endswith("unverified") for label in labels), labels
    assert any(label.startswith("[2]") and label.endswith("invalid") for label in labels), labels
    answer = [v for v in values(at, "markdown") if "\\[2\\]" in v][0]
    assert ":orange[**\\[1\\]**]" in answer and ":red[**\\[2\\]**]" in answer
    assert "could not be verified" in " ".join(values(at, "warning"))


def test_an_interrupted_answer_keeps_what_arrived_and_is_saved_as_interrupted(fake):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    fake.script(answer="The first words arrive and then the server dies mid answer.", words_per_chunk=2)
    fake.interrupt_next("drop", after=3)
    ask(at, "Tell me.")
    assert_no_exception(at)
    state = " ".join(values(at, "error"))  # said first, as the answer's state
    assert "**Interrupted.**" in state
    assert any(v.startswith("The first words") for v in values(at, "markdown"))
    saved = Store(load_settings().data_dir).get_conversation(at.session_state["chat"]["id"])["turns"]
    assert saved[0]["interrupted"] is True and saved[0]["answer"].startswith("The first words")


def test_server_errors_are_one_clear_line(fake):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    fake.fail_next(500, "llama runner process has terminated: exit status 2")
    ask(at, "Will it crash?")
    assert_no_exception(at)
    errors = unescape(" ".join(values(at, "error")))
    assert "runner" in errors and "Traceback" not in errors


def test_script_and_javascript_links_stay_inert(fake):
    hostile = (
        "Clause 1. <script>alert('doc')</script> Read [the terms](javascript:alert(1)) now. "
        "<img src=x onerror=alert(2)>"
    ).encode()
    fake.script(answer=lambda body, prompt: cite_first_passage(body, prompt)
                + " See <script>alert('model')</script> and [click](javascript:alert(3)).")
    at = start_app()
    add_and_open_ask(at, "[x](javascript:alert(4)).md", hostile)
    ask(at, "Is it safe?")
    assert_no_exception(at)
    goto(at, "library")
    rendered = [e for kind in ("markdown", "caption", "success", "warning", "error", "info") for e in at.get(kind)]
    at_ask = goto(at, "ask")
    rendered += [e for kind in ("markdown", "caption", "success", "warning", "error", "info") for e in at_ask.get(kind)]
    assert not at.get("html")
    assert rendered
    labels = [e.label for e in at_ask.expander] + [s.label for s in at_ask.get("status")]
    assert any("javascript" in label for label in labels), "the hostile file name is in a citation label"
    for label in labels:
        assert "](javascript:" not in label and not re.search(r"(?<!\\)[<\[]", label), label
    for element in rendered:
        body = element.proto.body if hasattr(element.proto, "body") else ""
        assert not re.search(r"(?<!\\)<", body), body  # every < is escaped: no HTML can form
        assert "](javascript:" not in body, body
        assert not getattr(element.proto, "allow_html", False)
    shown = unescape(" ".join(e.proto.body for e in rendered if hasattr(e.proto, "body")))
    assert "<script>alert('doc')</script>" in shown, "document text is shown literally"
    assert "<script>alert('model')</script>" in shown, "model output is shown literally"


def test_a_password_protected_page_image_asks_for_the_password_in_a_later_session(fake):
    at = start_app()
    data = fixtures.encrypted_pdf()
    upload(at, ("sealed.pdf", data))
    password_field(at).set_value(fixtures.PASSWORD)
    submit(at, "Open")
    at.button(key=f"ask-{_sha(data)}").click()
    at.run()
    ask(at, "What does it say?")
    assert at.get("image"), "this session knows the password: the page is shown"
    cid = at.session_state["chat"]["id"]

    st.cache_data.clear()  # page images are cached by password; a new session starts without one
    later = goto(start_app(), "history")  # a new browser session: passwords are not kept
    later.button(key=f"open-{cid}").click()
    later.run()
    assert not later.get("image")
    assert "password-protected" in unescape(" ".join(values(later, "caption")))
    field = [t for t in later.text_input if t.label == "Password of this PDF"][0]
    field.set_value("wrong")
    submit(later, "Show the page")
    assert "did not open" in " ".join(values(later, "error")) and not later.get("image")
    [t for t in later.text_input if t.label == "Password of this PDF"][0].set_value(fixtures.PASSWORD)
    submit(later, "Show the page")
    assert_no_exception(later)
    assert later.get("image"), "with the password, the cited page is shown"


def test_a_refusal_says_what_would_make_it_fit(fake, monkeypatch):
    data = fixtures.english_pdf()
    document = ingest_bytes(data, "judgment.pdf")
    plain = compute_budget([document], load_settings(), think=False, context=131072)
    monkeypatch.setenv("FOLIO_CONTEXT", str(131072 - plain.left + 100))  # fits, but not with Thinking
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", data)
    assert not values(at, "error")
    at.toggle(key="think-toggle").set_value(True)
    at.run()
    assert "over by" in unescape(" ".join(values(at, "error")))
    assert "Turn Thinking off and it fits" in unescape(" ".join(values(at, "info")))
    assert "do not fit" in at.chat_input(key="question").proto.placeholder

    monkeypatch.setenv("FOLIO_CONTEXT", str(plain.system + plain.reserved + 50))
    st.cache_data.clear()
    small = start_app()
    add_and_open_ask(small, "judgment.pdf", data)
    hints = [unescape(h) for h in values(small, "info")]
    # The changes a user can make at once, with numbers, in the order of their cost; at most two.
    assert len(hints) == 2, hints
    assert hints[0].startswith("Lower the answer reserve from 4,096 to ") and "(Settings › Reserved for the answer)" in hints[0]
    assert hints[1].startswith("Raise the context from ") and "the model holds 131,072" in hints[1]
    lowered = int(re.search(r"to ([\d,]+) tokens", hints[0]).group(1).replace(",", ""))
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", str(lowered))  # doing what the hint says makes it fit
    st.cache_data.clear()
    followed = start_app()
    add_and_open_ask(followed, "judgment.pdf", data)
    assert not values(followed, "error") and "Fits:" in followed.get("progress")[0].proto.text


def test_a_question_too_long_for_the_room_left_is_refused_and_kept_to_copy(fake, monkeypatch):
    data = fixtures.english_pdf()
    document = ingest_bytes(data, "judgment.pdf")
    plain = compute_budget([document], load_settings(), think=False, context=131072)
    monkeypatch.setenv("FOLIO_CONTEXT", str(131072 - plain.left + 100))  # 100 tokens left for a question
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", data)
    question = "Please compare this clause with the minutes: " + "the committee approved the budget " * 60
    ask(at, question)
    assert_no_exception(at)
    assert not fake.chat_bodies, "nothing is sent"
    refusal = unescape(" ".join(values(at, "error")))
    assert "The question is too long by" in refusal and "Deselect documents" not in refusal
    assert question.strip() in values(at, "code"), "the question is kept, to copy"


def test_a_follow_up_after_a_warm_first_question_does_not_claim_the_cache_was_lost(fake):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "First question?")
    [b for b in at.button if b.label == "New conversation"][0].click()
    at.run()
    ask(at, "First question?")  # the server still holds these documents from the first conversation
    assert fake.last_cached > 0
    ask(at, "And a follow-up?")
    assert_no_exception(at)
    captions = " ".join(values(at, "caption"))
    assert "not reused" not in captions, captions


def test_a_document_deleted_in_another_tab_is_named_and_the_answers_stay(fake):
    at = start_app()
    data = fixtures.english_pdf()
    add_and_open_ask(at, "judgment.pdf", data)
    ask(at, "Who decided?")
    other = start_app()  # a second browser tab: its own session, the same library
    upload(other, ("page.html", fixtures.html_page()))  # stays in the library
    other.selectbox(key="library-open").set_value(_sha(data))
    other.run()
    other.button(key=f"del-{_sha(data)}").click()
    other.run()
    other.button(key=f"really-{_sha(data)}").click()
    other.run()
    at.run()
    assert_no_exception(at)
    assert "No longer in the library" in unescape(" ".join(values(at, "warning")))
    assert at.session_state["selected"] == []  # the deleted document is no longer chosen
    assert "Who decided?" in unescape(" ".join(values(at, "markdown")))  # the conversation is still shown


# --- History and export ---------------------------------------------------------------


def test_history_lists_searches_reopens_and_exports(fake, downloads):
    at = start_app()
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    ask(at, "Who decided the case?")
    goto(at, "history")
    assert_no_exception(at)
    assert "Who decided the case?" in unescape(" ".join(values(at, "markdown")))

    at.text_input(key="history-q").set_value("nothing-like-this")
    at.run()
    assert "No question or answer matches" in " ".join(values(at, "info"))
    at.text_input(key="history-q").set_value("decided")
    at.run()
    cid = at.session_state["chat"]["id"]
    at.button(key=f"open-{cid}").click()
    at.run()
    assert_no_exception(at)
    md_names = [name for name in downloads if name.endswith(".md")]
    docx_names = [name for name in downloads if name.endswith(".docx")]
    assert md_names and docx_names and "folio-history.csv" in downloads
    assert "conversation-Who-decided-the-case.docx" in downloads
    markdown = downloads[[n for n in md_names if n.startswith("Who-decided")][0]].decode("utf-8")
    assert "Who decided the case?" in markdown and "[1]" in markdown and "judgment.pdf" in markdown
    word = downloads[[n for n in docx_names if n.startswith("Who-decided")][0]]
    text = "\n".join(p.text for p in DocxDocument(io.BytesIO(word)).paragraphs)
    assert "The document says" in text
    assert any("judgment.pdf" in note for note in read_footnotes(word).values())
    history = pd.read_csv(io.BytesIO(downloads["folio-history.csv"]), encoding="utf-8-sig")
    assert len(history) == 1 and "Who decided the case?" in history.to_csv()

    at.button(key=f"delete-{cid}").click()
    at.run()
    assert "Delete this conversation" in " ".join(values(at, "warning"))
    at.button(key=f"keep-conv-{cid}").click()
    at.run()
    assert Store(load_settings().data_dir).list_conversations(), "one click does not delete a saved answer"
    at.button(key=f"continue-{cid}").click()
    at.run()
    assert [t.value for t in at.title] == ["Ask"]
    assert "Who decided the case?" in unescape(" ".join(values(at, "markdown")))
    goto(at, "ask")  # AppTest would otherwise return to the page it was last switched to
    ask(at, "And why?")
    assert_no_exception(at)
    assert "Who decided the case?" in fake.last_chat["messages"][1]["content"]
    assert fake.last_chat["messages"][-1]["content"].endswith("And why?")
    assert Store(load_settings().data_dir).get_conversation(cid)["turns"][-1]["question"] == "And why?"


# --- Settings and the server ----------------------------------------------------------


def test_settings_check_panel_reports_the_server_and_the_context(fake):
    at = goto(start_app(), "settings")
    assert_no_exception(at)
    text = unescape(all_text(at))
    assert "0.13.0" in text and "qwen3-128k:14b" in text
    assert "131,072" in text and "thinking" in text
    assert "q8_0" in text and "GiB" in text
    [t for t in at.text_input if t.label == "Model"][0].set_value("qwen3:14b")
    submit(at, "Apply")
    text = unescape(all_text(at))
    assert "40,960" in text and "131,072" in text
    assert any("`qwen3:14b`" in w for w in values(at, "warning")), values(at, "warning")  # no "qwen3\\:14b"
    create = " ".join(values(at, "code"))
    assert "ollama create qwen3-128k:14b" in create and "ollama create qwen3:14b" not in create
    goto(at, "ask")  # the budget follows the smaller, real context
    assert at.session_state["overrides"] == {"model": "qwen3:14b"}


def test_calls_at_once_is_a_setting_of_the_page_that_plans_and_tables_follow(fake):
    from lib.servers.concurrency import concurrency_and_reason
    from lib.output.advice import for_app

    at = goto(start_app(), "settings")
    [field] = [n for n in at.number_input if n.label == "Calls at once"]
    assert field.value == 0  # by the server, unless FOLIO_CONCURRENCY says otherwise
    field.set_value(3)
    submit(at, "Apply")
    assert_no_exception(at)
    assert at.session_state["overrides"] == {"concurrency": 3}
    settings = load_settings(**at.session_state["overrides"])
    n, why = concurrency_and_reason(settings)
    assert n == 3 and for_app(why) == "“Calls at once” on the Settings page"  # not an environment variable


def test_a_missing_model_can_be_pulled_with_progress(fake):
    fake.installed.discard("qwen3-128k:14b")
    at = goto(start_app(), "settings")
    assert "missing" in unescape(all_text(at)) or "not installed" in unescape(all_text(at))
    [b for b in at.button if b.label == "Pull"][0].click()
    at.run()
    assert_no_exception(at)
    assert "Pulled" in unescape(" ".join(values(at, "success")))
    assert any(r.path == "/api/pull" for r in fake.requests)


def test_without_a_server_the_app_starts_reads_and_budgets_and_says_what_to_start(server_down):
    at = start_app()
    assert_no_exception(at)
    assert "Model server not reachable" in " ".join(values(at, "error"))
    assert "ollama serve" in " ".join(values(at, "caption"))
    add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
    assert_no_exception(at)
    assert at.get("progress") and "left" in at.get("progress")[0].proto.text
    assert "ollama serve" in " ".join(values(at, "warning"))
    ask(at, "Anyone there?")
    assert "Cannot reach" in unescape(" ".join(values(at, "error")))
    settings_page = goto(at, "settings")
    assert "ollama serve" in all_text(settings_page)


def test_streamlit_config_is_local_private_and_matches_lib_upload_limit():
    import tomllib

    from lib.config import Settings

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["maxUploadSize"] == Settings().max_file_mb
    assert config["runner"]["magicEnabled"] is False  # no bare string reaches a page by accident


def test_the_uploader_takes_its_limit_from_folio_max_file_mb(server_down, monkeypatch):
    monkeypatch.setenv("FOLIO_MAX_FILE_MB", "7")
    at = start_app()
    assert at.file_uploader[0].proto.max_upload_size_mb == 7


def test_pages_holds_only_page_scripts_so_no_helper_takes_a_pages_url():
    # Before any session routes, Streamlit serves a deep link from every pages/*.py, naming each
    # by its file without the leading "_": a helper there would take a URL of its own (or collide
    # with a page: "Multiple Pages specified with URL pathname"). The helpers live in ui/.
    from streamlit.source_util import page_icon_and_name

    pages_dir = Path(APP).parent / "pages"
    urls = sorted(page_icon_and_name(p)[1] for p in pages_dir.glob("*.py"))
    assert urls == ["ask", "history", "library", "review", "settings"]
    assert (Path(APP).parent / "ui" / "state.py").is_file()
