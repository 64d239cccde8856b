"""Shared Streamlit helpers for Folio's pages: state, cached resources, and the widgets
more than one page shows (sidebar status, server hints, citations, answers, exports).

Everything that decides *what* to show lives in lib/presenting.py (pure, tested);
this module only decides *how* Streamlit shows it. Model output and document text
always go through presenting.escape_markdown: never unsafe_allow_html.
"""

from __future__ import annotations

import copy
import datetime as _dt
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from lib import presenting as view
from lib.config import Settings, load_settings
from lib.errors import FolioError, PasswordRequired, ServerUnreachable, WrongPassword

ROOT = Path(__file__).resolve().parent.parent

# Session state, initialised once per browser session (plain data only).
DEFAULT_STATE: dict[str, Any] = {
    "selected": [],  # sha256 of the documents chosen on the Ask page
    # The conversation on the Ask page, one plain dict held by reference while an answer
    # streams (a Stop ends the script, and session state cannot be touched after that):
    # id (store id or None), turns (dicts, see turn_from_answer), error (str), pending (dict).
    "chat": {"id": None, "turns": [], "error": None, "pending": None},
    "overrides": {},  # Settings fields changed on the Settings page
    "upload_log": [],  # one line per file of the uploads of this session
    "locked": {},  # encrypted uploads waiting for a password: key -> {name, data, message}
    "seen_uploads": [],  # file_ids of uploads already handled
    "uploader_key": 0,
    "passwords": {},  # sha256 -> password of encrypted PDFs opened this session (memory only)
}


def init_state() -> None:
    """Give every session-state key its default, once."""
    for key, value in DEFAULT_STATE.items():
        if key not in st.session_state:
            st.session_state[key] = copy.deepcopy(value)


def require_router(page: str) -> None:
    """Pages run only inside app.py's router; `page` is the calling script ("pages/ask.py").

    On a freshly started server, Streamlit serves a deep link (a bookmark of /ask, a tab the
    browser restores) straight from the pages/ folder, without app.py, until some session has
    called st.navigation: no session state, Streamlit's own page list. Go through app.py,
    which then opens the page that was asked for.
    """
    if any(key not in st.session_state for key in DEFAULT_STATE):
        st.session_state[DEEP_LINK] = page
        st.switch_page("app.py")


DEEP_LINK = "deep-link"  # the page a deep link asked for, opened by app.py once it routes


def chat() -> dict:
    """The Ask page's conversation: {'id', 'turns', 'error', 'pending'}."""
    return st.session_state.chat


# --- settings and shared resources ------------------------------------------------


def settings() -> Settings:
    """Effective settings: Settings-page overrides > environment > defaults."""
    try:
        return load_settings(**st.session_state.get("overrides", {}))
    except FolioError as exc:  # a malformed FOLIO_* variable: say which, run on defaults
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return Settings()


@st.cache_resource(show_spinner=False)
def _store(data_dir: str):
    from lib.store import Store

    return Store(Path(data_dir))


def store():
    """The one Store of this data folder, shared by every session (SQLite WAL)."""
    return _store(str(settings().data_dir))


@st.cache_resource(show_spinner=False)
def _backend(key: str, _settings: Settings):
    from lib.backends import make_backend

    return make_backend(_settings)


def backend():
    """The model backend for the current settings (one client per configuration)."""
    return backend_for(settings())


def backend_for(s: Settings):
    return _backend(repr(s), s)


# --- server status ------------------------------------------------------------------


def start_hint(s: Settings) -> str:
    """What to start, and how, when the model server cannot be reached (Markdown)."""
    if s.backend == "openai":
        return (
            f"No OpenAI-compatible server answers at {view.inline_code(s.host)}. Start it, e.g. "
            f"`vllm serve Qwen/Qwen3-14B --max-model-len 131072` or llama.cpp's `llama-server`, "
            "then set its address on the **Settings** page or with `FOLIO_HOST`."
        )
    return (
        f"Ollama does not answer at {view.inline_code(s.host)}. Start it with `ollama serve` "
        f"(then {view.inline_code('ollama create ' + s.model + ' -f Modelfile')} once), or set its address with "
        "`OLLAMA_HOST` or on the **Settings** page. Reading documents and the token budget work without it."
    )


@st.cache_data(ttl=15, show_spinner=False)
def _server_status(backend: str, host: str, model: str, _settings: Settings) -> dict:
    try:
        from lib.backends import make_backend

        client = make_backend(_settings)
        try:
            info = getattr(client, "inspect", client.check)()  # inspect: raises only when unreachable
        finally:
            getattr(client, "close", lambda: None)()
    except ServerUnreachable as exc:
        return {"reachable": False, "message": exc.message}
    except FolioError as exc:  # it answered, but not as hoped (model missing, too old, ...)
        return {"reachable": True, "model_present": False, "message": exc.message, "warnings": [exc.message]}
    except Exception as exc:  # noqa: BLE001 - a status light must never break the app
        return {"reachable": False, "message": f"{type(exc).__name__}: {exc}"}
    return {
        "reachable": True,
        "version": info.version,
        "model_present": info.model_present,
        "trained_context": info.trained_context,
        "thinking": info.supports_thinking,
        "loaded_context": info.loaded_context,
        "warnings": list(info.warnings),
    }


def server_status() -> dict:
    """Reachability of the model server, checked at most every 15 s."""
    s = settings()
    return _server_status(s.backend, s.host, s.model, s)


def sidebar_status() -> None:
    """Server light and the data folder in the sidebar of every page."""
    s = settings()
    status = server_status()
    with st.sidebar:
        if not status["reachable"]:
            st.error("Model server not reachable", icon=":material/cloud_off:")
            st.caption(start_hint(s))
        elif not status.get("model_present"):
            st.warning(f"Server up, model {view.inline_code(s.model)} missing", icon=":material/warning:")
            st.caption("Pull or build it on the **Settings** page.")
        else:
            version = status.get("version") or "?"
            st.success(f"{s.backend.capitalize()} {version} · {view.inline_code(s.model)}", icon=":material/cloud_done:")
        st.caption(f"Data folder: {view.inline_code(str(s.data_dir))}")


def need_server_notice() -> bool:
    """Say what to start (or get) when the server or the model is missing; True when it is up."""
    status = server_status()
    s = settings()
    if not status["reachable"]:
        st.warning(start_hint(s), icon=":material/cloud_off:")
        return False
    if not status.get("model_present"):
        st.warning(
            f"The server is up but has no model {view.inline_code(s.model)}. Pull it or build it from "
            "the Modelfile on the **Settings** page, or choose another model there.",
            icon=":material/warning:",
        )
    return True


# --- rendering ----------------------------------------------------------------------


def safe_markdown(text: str, **kwargs) -> None:
    """Untrusted text (documents, model output) shown literally."""
    st.markdown(view.escape_markdown(text), **kwargs)


def status_badge(status: str) -> None:
    st.badge(
        view.STATUS_LABELS.get(status, status or "unknown"),
        icon=view.STATUS_ICONS.get(status),
        color=view.STATUS_COLORS.get(status, "gray"),
        help=view.STATUS_HELP.get(status),
    )


def now_iso() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


# --- answers and citations ----------------------------------------------------------


def render_answer_text(turn: dict) -> list:
    """The answer with numbered, status-coloured markers; returns the markers."""
    citations = [_CitationView(c) for c in turn.get("citations", [])]
    text, markers = view.mark_citations(turn.get("answer", ""), citations)
    if text.strip():
        st.markdown(text)
    elif not turn.get("interrupted"):
        st.caption("(empty answer)")
    return markers


class _CitationView:
    """Attribute access over a stored citation dict (what presenting.mark_citations reads)."""

    def __init__(self, data: dict):
        self.data = data
        self.passage_id = data.get("id", "")
        self.status = data.get("status", "")


def render_turn(turn: dict, key: str, *, exports: bool = True) -> None:
    """One question and its answer: reasoning, answer, citations, statistics, exports."""
    with st.chat_message("user", avatar=":material/person:"):
        safe_markdown(turn.get("question", ""))
    with st.chat_message("assistant", avatar=":material/menu_book:"):
        if turn.get("thinking"):
            with st.expander("Reasoning", icon=":material/psychology:"):
                safe_markdown(turn["thinking"])
        markers = render_answer_text(turn)
        answer_flags(turn)
        citation_list(markers, key)
        stats_panel(turn)
        if exports:
            answer_exports(turn, key)


def answer_flags(turn: dict) -> None:
    """Interrupted, no answer in the documents, no citations, other warnings."""
    if turn.get("interrupted"):
        reason = turn.get("reason") or turn.get("interrupt_reason") or "The answer was stopped."
        st.warning("Interrupted: " + view.escape_markdown(reason), icon=":material/stop_circle:")
    if turn.get("no_answer"):
        st.info("The selected documents do not answer this question.", icon=":material/search_off:")
    for warning in turn.get("warnings", []):
        if warning.startswith("Interrupted:"):
            continue  # said above
        st.warning(view.escape_markdown(warning), icon=":material/warning:")


def citation_list(markers: list, key: str) -> None:
    """Each numbered citation opens to its document, page, passage and badge."""
    if not markers:
        return
    counts = {}
    for marker in markers:
        status = getattr(marker.citation, "status", "invalid")
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    st.caption(f"Sources: {len(markers)} citation(s): {summary}.")
    for marker in markers:
        citation_card(marker, key)


def citation_card(marker, key: str) -> None:
    """One citation: label with document and page; inside the passage and the page image."""
    data = getattr(marker.citation, "data", None) or {
        "id": getattr(marker.citation, "passage_id", ""),
        "status": "invalid",
    }
    status = data.get("status", "invalid")
    place = view.join_nonempty([data.get("document", ""), _page_text(data)])
    # Expander labels render Markdown links: the document name is escaped like any text.
    label = f"\\[{marker.number}\\] {view.escape_markdown(place or data.get('id', ''))} · {status}"
    with st.expander(label, icon=view.STATUS_ICONS.get(status)):
        has_page = data.get("format") == "pdf" and data.get("sha") and data.get("page") and status != "invalid"
        text_side, page_side = st.columns([5, 4]) if has_page else (st.container(), None)
        with text_side:
            status_badge(status)
            st.caption(view.join_nonempty([f"passage {view.inline_code(data.get('id', ''))}", view.escape_markdown(place)]))
            if data.get("quote"):
                st.markdown("Quoted: “" + view.escape_markdown(data["quote"]) + "”")
            if status == "invalid":
                st.caption("No passage with this ID exists in the documents that were asked.")
            elif data.get("reason"):
                st.caption(view.escape_markdown(data["reason"]))
            text = data.get("passage_text")
            if text and status != "invalid":
                span = data.get("span") or (view.find_span(text, data.get("quote") or "") or (None, None))
                with st.container(border=True):
                    st.markdown(view.highlight(text, *span))
        if page_side is not None:
            with page_side:
                page_image(data, key=f"{key}-{marker.number}")


def _page_text(data: dict) -> str:
    if data.get("page_text"):
        return data["page_text"]
    return f"p. {data['page']}" if data.get("page") else ""


def page_image(data: dict, key: str = "") -> None:
    """The cited PDF page as an image with the quote highlighted (when the original is kept)."""
    if data.get("format") != "pdf" or not data.get("sha") or not data.get("page"):
        return
    rendered = _page_png(data["sha"], int(data["page"]), data.get("quote") or "")
    if rendered == LOCKED:
        page_password_form(data["sha"], key)
        return
    if rendered is None:
        st.caption("The page image is not available (the document was deleted, or its original cannot be opened).")
        return
    png, found = rendered
    note = "quote highlighted" if found else "quote not located on the page image"
    st.image(png, caption=f"{data.get('document', '')}, page {data['page']} ({note})", width="stretch")


def page_password_form(sha: str, key: str) -> None:
    """A password-protected PDF whose password this session does not know: ask for it here."""
    tried = sha in st.session_state.passwords
    message = (
        "That password did not open this PDF. Check it (it is case-sensitive) and try again."
        if tried else
        "This PDF is password-protected, and Folio does not keep passwords between sessions. "
        "Type its password to see the page."
    )
    (st.error if tried else st.caption)(message)
    with st.form(f"page-pw-{key}", border=False):
        password = st.text_input("Password of this PDF", type="password", key=f"page-pw-field-{key}")
        if st.form_submit_button("Show the page", icon=":material/lock_open:") and password:
            st.session_state.passwords[sha] = password
            st.rerun()


LOCKED = "locked"


@st.cache_data(max_entries=64, show_spinner=False)
def _page_png_cached(data_dir: str, sha: str, page: int, quote: str, password: str | None):
    from lib.page_image import render_page

    try:
        original = _store(data_dir).get_original(sha)
        image = render_page(original, page, quote=quote or None, password=password, zoom=1.3)
    except (PasswordRequired, WrongPassword):
        return LOCKED
    except FolioError:
        return None
    return image.png, image.found


def _page_png(sha: str, page: int, quote: str):
    """(PNG, quote found on the page) or None when the page cannot be shown."""
    password = st.session_state.passwords.get(sha)
    return _page_png_cached(str(settings().data_dir), sha, page, quote, password)


# --- the library (lib.store) --------------------------------------------------------


def list_documents() -> list[dict]:
    """The library, newest first, as plain dicts (DocumentSummary fields)."""
    from dataclasses import asdict

    try:
        return [asdict(d) | {"added": d.added_at[:16].replace("T", " ")} for d in store().list_documents()]
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return []


def has_document(sha: str) -> bool:
    return store().has_document(sha)


def document_name(sha: str) -> str:
    for doc in list_documents():
        if doc["sha256"] == sha:
            return doc["name"]
    return sha[:12]


def ingest(data: bytes, name: str, *, password: str | None = None, progress=None):
    from lib.ingest import ingest_bytes

    return ingest_bytes(data, name, password=password, settings=settings(), progress=progress)


def add_document(document, data: bytes, *, password: str | None = None) -> bool:
    """Store a document with its original; remember its password for page images."""
    _, is_new = store().add_document(document, data)
    if password:
        st.session_state.passwords[document.sha256] = password
    _load_document.clear()
    return is_new


def delete_document(sha: str) -> None:
    """Remove a document everywhere: store, caches, selection."""
    store().delete_document(sha)
    _load_document.clear()
    _page_png_cached.clear()
    st.session_state.selected = [s for s in st.session_state.selected if s != sha]
    st.session_state.passwords.pop(sha, None)


def passages_on_page(sha: str, page: int) -> list:
    return store().passages_on_page(sha, page)


def passages_slice(sha: str, offset: int, limit: int) -> list:
    return store().list_passages(sha, offset, limit)


def page_label(sha: str, page: int) -> str | None:
    labels = load_documents([sha])[0].page_labels if sha else None
    if labels and 0 < page <= len(labels):
        return labels[page - 1]
    return None


def search_passages(query: str, sha: str | None = None) -> list:
    try:
        return store().search_passages(query, sha)
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return []


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_document(data_dir: str, sha: str):
    return _store(data_dir).get_document(sha)


def load_documents(shas: list[str]) -> list:
    """Full documents (passages included), cached per process: they never change."""
    data_dir = str(settings().data_dir)
    return [_load_document(data_dir, sha) for sha in shas]


def select_documents(shas: list[str]) -> None:
    """Choose documents for the Ask page (a new conversation)."""
    st.session_state.selected = list(shas)
    st.session_state.pop("ask-docs", None)
    new_conversation(keep_selection=True)


def new_conversation(*, keep_selection: bool = True, conversation_id=None, turns=(), error=None) -> None:
    """A fresh conversation dict (a running answer keeps writing to the old one)."""
    st.session_state.chat = {"id": conversation_id, "turns": list(turns), "error": error, "pending": None}
    if not keep_selection:
        st.session_state.selected = []


# --- asking (lib.budget, lib.answering) ---------------------------------------------


def real_context() -> int:
    """The context a call can use: min(configured, what the model was trained for)."""
    from lib.backends import real_context as _real

    s = settings()
    status = server_status()
    return _real(s.context, status.get("trained_context") if status.get("reachable") else None)


def budget(documents: list, *, think: bool, history=(), question: str = ""):
    from lib.budget import compute_budget

    return compute_budget(documents, settings(), question=question, think=think,
                          context=real_context(), history=list(history))


def clear_server_status() -> None:
    _server_status.clear()


def ask_stream(documents, question, s: Settings, *, think, history, cancel):
    """lib.answering.ask_stream with the shared backend and the real context."""
    from lib.answering import ask_stream as _ask_stream

    return _ask_stream(documents, question, s, think=think, history=history, cancel=cancel, backend=backend_for(s))


def start_job(question: str, think: bool, documents: list) -> dict:
    """Everything finishing an answer needs, gathered while Streamlit calls are still allowed."""
    conversation = chat()
    conversation["error"] = None
    try:
        prompt_tokens = budget(documents, think=think, history=conversation["turns"], question=question).prompt
    except FolioError:
        prompt_tokens = 0
    pending = {
        "question": question,
        "think": think,
        "answer": "",
        "thinking": "",
        "phase": "",
        "started": now_iso(),
        "shas": [d.sha256 for d in documents],
        "names": [d.name for d in documents],
        "formats": {d.sha256: d.format for d in documents},
        "prompt_tokens": prompt_tokens,
        "done": threading.Event(),
    }
    conversation["pending"] = pending
    return {"chat": conversation, "pending": pending, "store": store(), "settings": settings(),
            "documents": documents}


def finish_job(job: dict, final) -> None:
    """Turn what the stream ended with into a saved turn (or an error to show).

    Runs in a `finally`, also after Stop ended the script: no Streamlit calls and no
    session state here, only the plain objects gathered by start_job.
    """
    try:
        _finish(job, final)
    finally:
        job["chat"]["pending"] = None
        job["pending"]["done"].set()


def _finish(job: dict, final) -> None:
    conversation, pending = job["chat"], job["pending"]
    if isinstance(final, Exception):
        conversation["error"] = (
            final.message if isinstance(final, FolioError)
            else f"Unexpected problem while answering ({type(final).__name__}: {final})."
        )
        if not (pending["answer"] or pending["thinking"]):
            return
        final = None
    answer = getattr(final, "answer", None)
    turn = turn_from_answer(answer, pending) if answer is not None else interrupted_turn(pending, job["documents"])
    save_turn(job, _with_context(turn, pending, job["settings"]))


def turn_from_answer(answer, pending: dict) -> dict:
    """A plain, JSON-safe turn from lib's Answer plus what the page knows."""
    record = dict(answer.to_json())
    record["citations"] = [_citation_record(c, pending) for c in answer.citations]
    record["interrupted"] = bool(answer.interrupted)
    record["reason"] = answer.interrupt_reason
    record["no_answer"] = bool(answer.no_answer)
    record.pop("budget", None)  # recomputable; keeps saved turns small
    return record


def _citation_record(citation, pending: dict) -> dict:
    data = citation.to_json() if hasattr(citation, "to_json") else dict(citation)
    sha = getattr(citation, "sha256", None) or data.get("sha256")
    data["sha"] = sha
    data["format"] = pending["formats"].get(sha) if sha else None
    data["passage_text"] = data.get("passage") or getattr(citation, "passage", "")
    if data.get("page_label") or data.get("page"):
        first = data.get("page_label") or data.get("page")
        end = data.get("page_end")
        data["page_text"] = f"pp. {first}-{end}" if end and end != data.get("page") else f"p. {first}"
    return data


def interrupted_turn(pending: dict, documents: list) -> dict:
    """A turn from the text that arrived before a stop, its citations checked."""
    from lib.citations import check_answer

    try:
        report = check_answer(pending["answer"], documents)
        citations = report.citations
        warnings = report.warnings if pending["answer"] else []
    except Exception:  # noqa: BLE001 - keep the text even if checking fails
        citations, warnings = [], []
    return {
        "answer": pending["answer"],
        "thinking": pending["thinking"],
        "citations": [_citation_record(c, pending) for c in citations],
        "warnings": [w for w in warnings if "cites no passage" not in w],
        "calls": [],
        "interrupted": True,
        "reason": "Stopped by you; the part that arrived is kept.",
        "no_answer": False,
    }


def _with_context(record: dict, pending: dict, s: Settings) -> dict:
    record.update(
        question=pending["question"],
        think=pending["think"],
        documents=pending["names"],
        shas=pending["shas"],
        asked_at=pending["started"],
        model=s.model,
        backend=s.backend,
    )
    return record


def save_turn(job: dict, turn: dict) -> None:
    """Keep the turn in the conversation and in the store (a new conversation on the first)."""
    conversation, library, s = job["chat"], job["store"], job["settings"]
    turn["follow_up"] = bool(conversation["turns"])
    turn["slowest_s_per_token"] = _slowest_read(conversation["turns"])
    conversation["turns"].append(turn)
    try:
        if conversation["id"] is None:
            conversation["id"] = library.create_conversation(turn["shas"], turn["question"][:120], _public_settings(s))
        turn["id"] = library.add_turn(conversation["id"], turn["question"], turn, _public_settings(s))
    except FolioError as exc:
        conversation["error"] = f"The answer is shown but could not be saved: {exc.message}"


def _slowest_read(turns: list[dict]) -> float | None:
    """Seconds per prompt token of the slowest earlier read (a full one) in this conversation."""
    rates = [
        call["prompt_eval_s"] / call["server_prompt_tokens"]
        for turn in turns
        for call in turn.get("calls") or []
        if call.get("prompt_eval_s") and call.get("server_prompt_tokens")
    ]
    return max(rates, default=None)


def _public_settings(s: Settings) -> dict:
    keys = ("backend", "host", "model", "context", "answer_reserve", "thinking_reserve", "think", "keep_alive")
    return {k: getattr(s, k) for k in keys}


def wait_for_stopped_answer(timeout: float) -> None:
    """After Stop, Streamlit may start the next run while the stopped one still saves its
    answer: wait for it (briefly) so the page shows the interrupted turn."""
    pending = chat().get("pending")
    if pending is not None:
        pending["done"].wait(timeout)


def error_notice() -> None:
    """The error that ended the last question, if any (kept until the next question)."""
    message = chat().get("error")
    if message:
        st.error(view.message_markdown(message), icon=":material/error:")


def stats_panel(turn: dict) -> None:
    """After the answer: prompt sent vs read, first token, speed, cache reuse."""
    calls = turn.get("calls") or []
    if not calls:
        return
    call = calls[-1]
    sent, read = call.get("prompt_tokens"), call.get("server_prompt_tokens")
    line, _ = view.prompt_check(sent, read)
    differs = any("did not read what Folio sent" in w for w in turn.get("warnings", []))
    parts = [
        line,
        f"First token after {view.format_seconds(call.get('first_token_s'))}.",
        view.speed_line(call.get("eval_count"), call.get("eval_s")),
        view.cache_line(call.get("cached_tokens"), read, call.get("prompt_eval_s"), turn.get("slowest_s_per_token"),
                        follow_up=bool(turn.get("follow_up") or turn.get("previous_prompt_eval_s"))),
        f"Context {call['num_ctx']:,}, system block pinned ({call.get('num_keep', 0):,} tokens)." if call.get("num_ctx") else "",
    ]
    text = view.join_nonempty(parts, sep="  \n")
    if differs:
        st.warning(text, icon=":material/report:")
    else:
        st.caption(text)


# --- settings page helpers (lib.doctor, OllamaBackend.pull) -------------------------

KV_TYPES = (("f16", 2.0), ("q8_0", 1.0625), ("q4_0", 0.5625))


@st.cache_data(ttl=30, show_spinner="Asking the server…")
def _diagnosis(key: str, _settings: Settings):
    from lib.doctor import diagnose

    return diagnose(_settings)


def diagnosis():
    """lib.doctor's report for the current settings (cached 30 s; raises when unreachable)."""
    s = settings()
    return _diagnosis(repr(s), s)


def clear_diagnosis() -> None:
    _diagnosis.clear()


def pull_model(name: str, bar) -> str:
    """Pull a model through Ollama, moving `bar`; returns the last status line."""
    def progress(status: str, done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"{status}: {done / 1e9:.2f} of {total / 1e9:.2f} GB")
        else:
            bar.progress(0.0, text=status)

    client = backend()
    return client.pull(name, progress)


def modelfile_text() -> str:
    path = ROOT / "Modelfile"
    return path.read_text(encoding="utf-8") if path.exists() else ""


# --- exports (lib.exports) ----------------------------------------------------------


def _file_stem(text: str, fallback: str = "folio") -> str:
    """A short, safe file name from a question or title."""
    import re

    stem = re.sub(r"[^\w\- ]+", "", text, flags=re.UNICODE).strip().replace(" ", "-")[:48]
    return stem or fallback


def answer_exports(turn: dict, key: str) -> None:
    """Download one answer as Markdown or Word (citations as footnotes)."""
    from lib import exports

    stem = _file_stem(turn.get("question", ""), "answer")
    row = st.container(horizontal=True)
    row.download_button(
        "Markdown", exports.answer_markdown(turn).encode("utf-8"), file_name=f"{stem}.md",
        mime="text/markdown", key=f"md-{key}", icon=":material/download:", on_click="ignore",
    )
    row.download_button(
        "Word", _docx(exports.answer_docx, turn), file_name=f"{stem}.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        key=f"docx-{key}", icon=":material/download:", on_click="ignore",
    )


def _docx(make, data) -> bytes:
    try:
        return make(data)
    except Exception as exc:  # noqa: BLE001 - an export failing must not hide the answer
        st.caption(f"Word export failed: {type(exc).__name__}: {exc}")
        return b""


def conversation_exports(conversation: dict, key: str) -> None:
    """Download a whole conversation as Markdown or Word."""
    from lib import exports

    stem = "conversation-" + _file_stem(conversation.get("title", ""), "untitled")
    row = st.container(horizontal=True)
    row.download_button(
        "Conversation (Markdown)", exports.conversation_markdown(conversation).encode("utf-8"),
        file_name=f"{stem}.md", mime="text/markdown", key=f"cmd-{key}", icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        "Conversation (Word)", _docx(exports.conversation_docx, conversation), file_name=f"{stem}.docx",
        mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        key=f"cdocx-{key}", icon=":material/download:", on_click="ignore",
    )


def history_csv_button(summaries: list[dict]) -> None:
    """The whole (or searched) history as CSV, one row per question."""
    from lib import exports

    conversations = []
    for summary in summaries:
        try:
            conversations.append(store().get_conversation(summary["id"]))
        except FolioError:
            continue  # deleted in another tab meanwhile
    st.download_button(
        "History (CSV)", exports.history_csv(conversations), file_name="folio-history.csv", mime="text/csv",
        key="history-csv", icon=":material/table:", on_click="ignore",
    )


def render_diagnosis(report) -> None:
    """lib.doctor's Diagnosis as metrics, a memory table and plain-language warnings."""
    import pandas as pd

    s = report.settings
    if report.error:
        st.error(view.message_markdown(report.error), icon=":material/cloud_off:")
        if report.error_kind == "ServerUnreachable":
            st.markdown(start_hint(s))
        return
    info = report.info
    server = "Ollama" if s.backend == "ollama" else "OpenAI-compatible"
    cols = st.columns(4)
    cols[0].metric(server, info.version or "?", help=f"Version at {s.host}")
    cols[1].metric("Model", "installed" if info.model_present else "missing", help=s.model)
    trained = f"{info.trained_context:,}" if info.trained_context else "unknown"
    cols[2].metric("Model holds", trained, help="Trained context (<architecture>.context_length)")
    cols[3].metric("Folio uses", f"{report.real_context:,}", help=f"Configured {report.configured_context:,}")
    if info.trained_context and info.trained_context < report.configured_context:
        st.warning(
            f"The model {view.inline_code(s.model)} holds {info.trained_context:,} tokens, not the "
            f"{report.configured_context:,} configured. Folio budgets with {report.real_context:,}: "
            "longer document sets are refused before sending rather than cut. To read "
            f"{report.configured_context:,} tokens, build the 128k model from the Modelfile (below).",
            icon=":material/straighten:",
        )
    facts = [
        f"Capabilities: {', '.join(info.capabilities) or 'unknown'}"
        + (" (thinking supported)" if info.supports_thinking else " (no thinking)"),
        "Loaded now: " + (f"yes, with {info.loaded_context:,} tokens" if info.loaded_context
                          else "no (the first question loads it)"),
    ]
    if info.installed_models:
        facts.append("Installed: " + ", ".join(info.installed_models))
    st.markdown("\n".join(f"- {view.escape_markdown(f)}" for f in facts))
    if report.kv and any(v for sizes in report.kv.values() for v in sizes.values()):
        st.markdown("**KV-cache memory** the context needs on top of the model weights")
        contexts = sorted(next(iter(report.kv.values())))
        rows = [
            {"Context": f"{ctx:,}" + (" (Folio uses)" if ctx == report.real_context else " (configured)"),
             **{kind: view.kib(report.kv[kind][ctx]) for kind in report.kv}}
            for ctx in contexts
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    for warning in report.warnings:
        if "holds" in warning and "configured" in warning:
            continue  # said above in plainer words
        st.warning(view.message_markdown(warning), icon=":material/warning:")
    if report.ok:
        st.success("Ready: Folio can ask this model.", icon=":material/check_circle:")
