"""The model server as every page sees it: reachability (cached), the sidebar light, start hints."""

from __future__ import annotations

import streamlit as st

from lib.config import Settings
from lib.errors import FolioError, ServerUnreachable
from lib.output import presenting as view
from ui.resources import settings


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
        from lib.servers import make_backend

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


def clear_server_status() -> None:
    _server_status.clear()


def real_context() -> int:
    """The context a call can use: min(configured, what the model was trained for)."""
    from lib.servers.base import real_context as _real

    s = settings()
    status = server_status()
    return _real(s.context, status.get("trained_context") if status.get("reachable") else None)


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
