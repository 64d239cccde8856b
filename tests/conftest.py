"""Shared test setup: no test touches a real user's data folder or a real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Point Folio's data folder at a temp dir and clear FOLIO_*/OLLAMA_HOST settings."""
    import os

    for name in list(os.environ):
        if name.startswith("FOLIO_") or name == "OLLAMA_HOST":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOLIO_DATA_DIR", str(tmp_path / "folio-data"))
    yield
