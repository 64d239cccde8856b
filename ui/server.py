"""The model server as every page sees it: reachability (cached), the sidebar light, start hints."""

from __future__ import annotations

import streamlit as st

from lib.config import Settings
from lib.errors import FolioError, ModelNotFound, ServerTooOld, ServerUnreachable
from lib.output import presenting as view
from lib.output.outcome import short_model
from ui.resources import backend_for, settings


def start_hint(s: Settings, *, here: bool = False) -> str:
    """What to start, and how, when the model server cannot be reached (Markdown).

    `here`: shown on the Settings page, whose Address field is right above.
    """
    where = "in **Address** above" if here else "on the **Settings** page"
    if s.backend == "openai":
        return (
            f"No OpenAI-compatible server answers at {view.inline_code(s.host)}. Start it, e.g. "
            f"`vllm serve Qwen/Qwen3-14B --max-model-len 131072` or llama.cpp's `llama-server`, "
            f"then set its address {where}."
        )
    return (
        f"Ollama does not answer at {view.inline_code(s.host)}. Start it with `ollama serve` "
        f"(then {view.inline_code('ollama create ' + s.model + ' -f Modelfile')} once), or set its address "
        f"{where}. Reading documents and the token budget work without it."
    )


def _status_of(info) -> dict:
    """A ServerInfo as the plain dict the pages read."""
    return {
        "reachable": True,
        "version": info.version,
        "display": info.display,
        "model": info.model,
        "model_matches": info.model_matches,
        "model_present": info.model_present,
        "trained_context": info.trained_context,
        "thinking": info.supports_thinking,
        "loaded_context": info.loaded_context,
        "warnings": list(info.warnings),
    }


@st.cache_data(ttl=15, show_spinner=False)
def _server_status(backend: str, host: str, model: str, _settings: Settings) -> dict:
    """A check while the server is not ready yet (down, model missing), asked at most every 15 s."""
    client = backend_for(_settings)
    try:
        info = client.check()  # remembered by the backend: the next questions ask nothing
    except ServerUnreachable as exc:
        return {"reachable": False, "message": exc.message}
    except (ModelNotFound, ServerTooOld) as exc:
        info = getattr(client, "inspected", None)
        if info is None:
            return {"reachable": True, "model_present": False, "message": exc.message, "warnings": [exc.message]}
        return _status_of(info) | {"message": exc.message}
    except FolioError as exc:  # it answered, but not as hoped (not a model server, ...)
        return {"reachable": True, "model_present": False, "message": exc.message, "warnings": [exc.message]}
    except Exception as exc:  # noqa: BLE001 - a status light must never break the app
        return {"reachable": False, "message": f"{type(exc).__name__}: {exc}"}
    return _status_of(info)


def server_status() -> dict:
    """The model server as the pages see it: checked once per backend (one per settings) and
    remembered until an error or a settings change; while it is not ready, asked every 15 s."""
    s = settings()
    checked = getattr(backend_for(s), "checked", None)
    if checked is not None:
        return _status_of(checked)
    return _server_status(s.backend, s.host, s.model, s)


def clear_server_status() -> None:
    """Check again at the next look (after Apply, Check again, a pull, or a failed question)."""
    _server_status.clear()
    try:
        forget = getattr(backend_for(settings()), "forget", None)
    except FolioError:
        return
    if callable(forget):
        forget()


def real_context() -> int:
    """The context a call can use: min(configured, what the model was trained for)."""
    from lib.servers.base import real_context as _real

    s = settings()
    status = server_status()
    return _real(s.context, status.get("trained_context") if status.get("reachable") else None)


def sidebar_status(*, on_settings: bool = False) -> None:
    """Server light and the data folder in the sidebar of every page. On the Settings page the
    light stands alone: the page itself says what to do, once."""
    s = settings()
    status = server_status()
    with st.sidebar:
        if not status["reachable"]:
            st.error("Model server not reachable", icon=":material/cloud_off:")
            if not on_settings:
                st.caption(start_hint(s))
        elif not status.get("model_present"):
            st.warning(f"Server up, model {view.inline_code(s.model)} missing", icon=":material/warning:")
            if not on_settings:
                st.caption("Pull or build it on the **Settings** page.")
        else:
            served = status.get("model") or s.model
            st.success(f"{view.escape_markdown(server_words(status, s))} · {view.inline_code(short_model(served))}",
                       icon=":material/cloud_done:")
            if not status.get("model_matches", True):
                st.caption(f"It serves {view.inline_code(short_model(served))}, not {view.inline_code(s.model)}: "
                           "answers come from its model.")
        st.caption(f"Data folder: {view.inline_code(str(s.data_dir))}")


def server_words(status: dict, s: Settings) -> str:
    """'llama.cpp server b4567', 'Ollama 0.13.0': the kind of server and its version, readable."""
    from lib.servers.protocol import SERVER_KINDS

    if status.get("display"):
        return str(status["display"])
    kind = SERVER_KINDS.get(s.backend, SERVER_KINDS["openai"])
    return f"{kind} {status['version']}" if status.get("version") else kind


def model_context() -> int | None:
    """The context the model holds, as the server says (None when it does not, or is down)."""
    status = server_status()
    return status.get("trained_context") if status.get("reachable") else None


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
