"""Effective settings and the resources every session shares: the store and the model backend."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lib.config import Settings, load_settings
from lib.errors import FolioError
from lib.output import presenting as view


def settings() -> Settings:
    """Effective settings: Settings-page overrides > environment > defaults."""
    try:
        return load_settings(**st.session_state.get("overrides", {}))
    except FolioError as exc:  # a malformed FOLIO_* variable: say which, run on defaults
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return Settings()


@st.cache_resource(show_spinner=False)
def _store(data_dir: str):
    from lib.library.store import Store

    return Store(Path(data_dir))


def store():
    """The one Store of this data folder, shared by every session (SQLite WAL)."""
    return _store(str(settings().data_dir))


def store_at(data_dir: str):
    """The shared Store of `data_dir` (for caches keyed by the data folder)."""
    return _store(data_dir)


@st.cache_resource(show_spinner=False)
def _backend(key: str, _settings: Settings):
    from lib.servers import make_backend

    return make_backend(_settings)


def backend():
    """The model backend for the current settings (one client per configuration)."""
    return backend_for(settings())


def backend_for(s: Settings):
    return _backend(repr(s), s)
