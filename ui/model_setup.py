"""The Settings page's model setup: lib.servers.doctor's diagnosis (cached, rendered), pulling a model, the Modelfile."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lib.config import Settings
from lib.output import advice
from lib.output import presenting as view
from ui.resources import backend, settings
from ui.server import start_hint

ROOT = Path(__file__).resolve().parent.parent


@st.cache_data(ttl=30, show_spinner="Asking the server…")
def _diagnosis(key: str, _settings: Settings):
    from lib.servers.doctor import diagnose

    from ui.resources import backend_for

    return diagnose(_settings, backend=backend_for(_settings))


def diagnosis():
    """lib.servers.doctor's report for the current settings (cached 30 s; raises when unreachable)."""
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


def render_diagnosis(report) -> None:
    """lib.servers.doctor's Diagnosis as metrics, a memory table and plain-language warnings."""
    import pandas as pd

    s = report.settings
    if report.error:
        if report.error_kind == "ServerUnreachable":  # said once, pointing at the Address field above
            st.error(start_hint(s, here=True), icon=":material/cloud_off:")
        else:
            st.error(view.message_markdown(advice.for_app(report.error, here=True)), icon=":material/cloud_off:")
        return
    info = report.info
    cols = st.columns(4)
    cols[0].metric(info.server, info.version or "not reported", help=f"Version at {s.host}")
    if info.model_present and not info.model_matches:
        cols[1].metric("Model", "not served", help=f"{s.model} is not served; the server answers with {info.model}")
    else:
        cols[1].metric("Model", "installed" if info.model_present else "missing", help=info.model or s.model)
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
        st.warning(view.message_markdown(advice.for_app(warning, here=True)), icon=":material/warning:")
    if report.ok and info.model_matches:
        st.success("Ready: Folio can ask this model.", icon=":material/check_circle:")
    elif report.ok:
        st.warning(
            f"The server answers every question with {view.inline_code(info.model)}, its only model: "
            f"{view.inline_code(s.model)} is not served there. Set **Model** to "
            f"{view.inline_code(info.model)} to say so.",
            icon=":material/warning:",
        )
