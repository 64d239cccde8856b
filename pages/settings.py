"""Settings: the model server and its check panel, pulling a model, the real-context probe, the 128k Modelfile."""

from __future__ import annotations

import streamlit as st

import ui.model_setup
import ui.probe
import ui.resources
import ui.server
import ui.state
from lib.config import ENV_NAMES, load_settings
from lib.errors import FolioError
from lib.output import advice
from lib.output import presenting as view

LABELS = advice.SETTING_LABELS  # lib's advice points at these fields by these labels
FIELDS = ("backend", "host", "model", "context", "answer_reserve", "thinking_reserve", "keep_alive", "think",
          "read_timeout", "total_timeout", "concurrency")


def settings_form() -> None:
    """The server and model settings; defaults come from the environment."""
    s = ui.resources.settings()
    base = _defaults()
    with st.form("settings"):
        cols = st.columns(2)
        backend = cols[0].selectbox(
            LABELS["backend"],
            options=["ollama", "openai"],
            index=0 if s.backend == "ollama" else 1,
            format_func={"ollama": "Ollama (native API)", "openai": "OpenAI-compatible (vLLM, llama.cpp)"}.get,
            help=_env_help("backend"),
        )
        host = cols[1].text_input(
            LABELS["host"], value=s.host,
            help="Default from OLLAMA_HOST or FOLIO_HOST. Usually Ollama http://127.0.0.1:11434, vLLM and "
            "llama-cpp-python http://127.0.0.1:8000, llama.cpp's llama-server http://127.0.0.1:8080. Switching "
            "the server kind changes one usual address into the other; an address of your own is kept.",
        )
        model = cols[0].text_input(LABELS["model"], value=s.model, help=_env_help("model"))
        keep_alive = cols[1].text_input(
            LABELS["keep_alive"], value=s.keep_alive, help=_env_help("keep_alive") + " e.g. 30m, 2h, -1 (forever)"
        )
        context = cols[0].number_input(
            LABELS["context"], min_value=2048, max_value=1_048_576, value=int(s.context), step=1024,
            help=_env_help("context") + " The real budget is the smaller of this and what the model holds.",
        )
        answer_reserve = cols[1].number_input(
            LABELS["answer_reserve"], min_value=256, max_value=65536, value=int(s.answer_reserve), step=256,
            help=_env_help("answer_reserve"),
        )
        thinking_reserve = cols[0].number_input(
            LABELS["thinking_reserve"], min_value=0, max_value=65536, value=int(s.thinking_reserve), step=256,
            help=_env_help("thinking_reserve"),
        )
        think = cols[1].toggle(LABELS["think"], value=s.think, help=_env_help("think"))
        read_timeout = cols[0].number_input(
            LABELS["read_timeout"], min_value=1, max_value=86_400, value=max(1, int(round(s.read_timeout))), step=30,
            help=_env_help("read_timeout") + " The model may send nothing (or only keep-alives) while it reads a "
            "long prompt; after this long without a new word, Folio stops waiting.",
        )
        total_timeout = cols[1].number_input(
            LABELS["total_timeout"], min_value=0, max_value=604_800,
            value=int(round(s.total_timeout)), step=60,
            help=_env_help("total_timeout") + " Every request of the question counts. 0: no limit.",
        )
        concurrency = cols[0].number_input(
            LABELS["concurrency"], min_value=0, max_value=64, value=int(s.concurrency or 0), step=1,
            help=_env_help("concurrency") + " Calls sent side by side by a question read in several calls and by "
            "a review table. 0: as the server serves them (Ollama 1, unless OLLAMA_NUM_PARALLEL is raised where it "
            "runs; vLLM 4; llama.cpp's llama-server its slots; llama-cpp-python 1). More than the server serves "
            "only makes calls wait in its queue.",
        )
        row = st.container(horizontal=True)
        applied = row.form_submit_button("Apply", type="primary")
        restored = row.form_submit_button("Back to the environment's defaults")
    if applied:
        address = view.host_for_backend(backend, host, s.backend)  # the usual address of the new kind
        values = dict(
            backend=backend, host=address, model=model.strip(), context=int(context),
            answer_reserve=int(answer_reserve), thinking_reserve=int(thinking_reserve),
            keep_alive=keep_alive.strip(), think=bool(think),
            read_timeout=float(read_timeout), total_timeout=float(total_timeout), concurrency=int(concurrency),
        )
        st.session_state.overrides = {k: v for k, v in values.items() if getattr(base, k) != v}
        moved = address != host.strip().rstrip("/")
        _after_change("Settings applied for this session."
                      + (f" The address is now {address}, where that kind of server usually listens; "
                         "change it if yours is elsewhere." if moved else ""))
    if restored:
        st.session_state.overrides = {}
        _after_change("Back to the defaults from the environment.")


def _defaults():
    try:
        return load_settings()
    except FolioError:
        from lib.config import Settings

        return Settings()


def _env_help(field: str) -> str:
    return f"Default from {ENV_NAMES[field]}." if field in ENV_NAMES else ""


def _after_change(message: str) -> None:
    ui.server.clear_server_status()
    ui.model_setup.clear_diagnosis()
    st.session_state["settings-message"] = message
    st.rerun()


def check_panel() -> None:
    """What the server says: version, model, context, capabilities, memory, loaded now."""
    s = ui.resources.settings()
    head = st.columns([4, 1])
    head[0].subheader("Check the server")
    if head[1].button("Check again", icon=":material/refresh:"):
        ui.server.clear_server_status()
        ui.model_setup.clear_diagnosis()
    try:
        report = ui.model_setup.diagnosis()
    except FolioError as exc:  # e.g. an unknown backend name
        st.error(view.message_markdown(advice.for_app(exc.message, here=True)), icon=":material/error:")
        st.markdown(ui.server.start_hint(s, here=True))
        return
    ui.model_setup.render_diagnosis(report)


def pull_panel() -> None:
    """Download a missing model from Ollama's library, with a progress bar."""
    s = ui.resources.settings()
    if s.backend != "ollama":
        return
    status = ui.server.server_status()
    if not status["reachable"] or status.get("model_present"):
        return
    st.subheader("Get the model")
    st.markdown(
        f"{view.inline_code(s.model)} is not installed. Folio's 128k model is built from the "
        "Modelfile (below); a model from Ollama's library can be pulled here."
    )
    name = st.text_input("Model to pull", value=s.model, key="pull-name")
    if st.button("Pull", icon=":material/download:", type="primary"):
        bar = st.progress(0.0, text="Starting")
        try:
            result = ui.model_setup.pull_model(name.strip(), bar)
        except FolioError as exc:
            st.error(view.message_markdown(exc.message))
            return
        bar.progress(1.0, text=result)
        ui.server.clear_server_status()
        ui.model_setup.clear_diagnosis()
        st.success(f"Pulled {view.escape_markdown(name)}.")


def modelfile_help() -> None:
    """How to build the 131,072-token Qwen3-14B from the Modelfile."""
    st.subheader("The 128k model")
    s = ui.resources.settings()
    name = _name_for_the_128k_model(s)
    st.markdown(
        "Stock `qwen3:14b` holds 40,960 tokens. Folio's `Modelfile` builds Qwen3-14B from a GGUF with "
        "YaRN rope scaling to 131,072 tokens. In the Folio folder:"
    )
    st.code(
        f"ollama create {name} -f Modelfile\n"
        f"ollama show {name}        # context length 131072\n"
        "# 128k costs KV memory: start Ollama with\n"
        "OLLAMA_KV_CACHE_TYPE=q8_0 OLLAMA_FLASH_ATTENTION=1 OLLAMA_NUM_PARALLEL=1 ollama serve",
        language="bash",
    )
    if name != s.model:
        st.markdown(f"Then set **{LABELS['model']}** above to {view.inline_code(name)}.")
    text = ui.model_setup.modelfile_text()
    if text:
        with st.expander("Modelfile", icon=":material/description:"):
            st.code(text, language="dockerfile")


def _name_for_the_128k_model(s) -> str:
    """The configured name, unless that is a model holding less (e.g. stock qwen3:14b): never shadow it."""
    from lib.config import DEFAULT_MODEL

    trained = ui.server.server_status().get("trained_context")
    return DEFAULT_MODEL if trained and trained < 131072 else s.model


def main() -> None:
    st.title("Settings")
    message = st.session_state.pop("settings-message", None)
    if message:
        st.success(view.escape_markdown(message), icon=":material/check:")
    st.caption(
        "Defaults come from the environment (OLLAMA_HOST, FOLIO_*), so a deployment needs no clicks. "
        "Changes here last for this browser session."
    )
    settings_form()
    check_panel()
    pull_panel()
    ui.probe.section()
    modelfile_help()


ui.state.require_router("pages/settings.py")
main()
