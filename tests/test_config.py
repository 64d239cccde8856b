"""Where Folio looks for the model server when nobody said: the usual address of its kind."""

from __future__ import annotations

import pytest

from lib.config import load_settings


@pytest.mark.parametrize("env, overrides, expected", [
    ({}, {}, "http://127.0.0.1:11434"),
    ({}, {"backend": "openai"}, "http://127.0.0.1:8000"),
    ({"FOLIO_BACKEND": "openai"}, {}, "http://127.0.0.1:8000"),
    ({"FOLIO_BACKEND": "openai", "OLLAMA_HOST": "10.0.0.5"}, {}, "http://10.0.0.5:11434"),
    ({"FOLIO_HOST": "http://gpu-box:8080/"}, {"backend": "openai"}, "http://gpu-box:8080"),
    ({"OLLAMA_HOST": "127.0.0.1:9999"}, {}, "http://127.0.0.1:9999"),
    ({}, {"backend": "openai", "host": "http://127.0.0.1:8080/"}, "http://127.0.0.1:8080"),
    ({"FOLIO_BACKEND": "openai"}, {"backend": "ollama"}, "http://127.0.0.1:11434"),
])
def test_the_address_is_the_one_given_else_the_usual_one_of_the_server_kind(monkeypatch, env, overrides, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings(**overrides).host == expected
