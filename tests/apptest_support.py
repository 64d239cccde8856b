"""What the AppTest files share: clean Streamlit caches, recorded downloads, the page's text.

    from apptest_support import clean_caches, downloads, page_text  # noqa: F401 (fixtures)
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest


@pytest.fixture(autouse=True)
def clean_caches():
    """Streamlit caches are process-wide: no test sees another's store, backend or status."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def downloads(monkeypatch):
    """Bytes of every st.download_button payload, by file name."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            files[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


def page_text(at: AppTest, *, metrics: bool = False) -> str:
    """The text a reader sees: Markdown, captions, alerts and progress labels (and metrics), unescaped."""
    parts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info"):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [p.proto.text for p in at.get("progress")]
    if metrics:
        parts += [f"{m.label} {m.value}" for m in at.get("metric")]
    return " ".join(parts).replace("\\", "").replace("**", "")
