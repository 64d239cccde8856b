"""The doctor against the fake Ollama: real context, plain warnings, KV memory, unreachable servers."""

from __future__ import annotations

import socket

from test_ollama_client import make_request

from lib.config import Settings
from lib.servers.doctor import diagnose, format_report
from lib.servers.ollama import OllamaBackend

from fake_ollama import FakeModel, FakeOllama, fake_ollama  # noqa: F401 (fixture)

GIB = 2**30


def test_stock_qwen3_is_capped_at_40960_with_a_plain_warning(fake_ollama):
    d = diagnose(Settings(host=fake_ollama.url, model="qwen3:14b", context=131072))
    assert d.ok
    assert (d.info.trained_context, d.configured_context, d.real_context) == (40960, 131072, 40960)
    assert ("The model qwen3:14b holds 40,960 tokens, not the 131,072 configured: Folio will use 40,960. "
            "To get 131,072, build the 128k model from the Modelfile (README).") in d.warnings
    report = format_report(d)
    assert "configured 131,072 | model holds 40,960 | Folio uses 40,960" in report
    assert "holds 40,960 tokens, not the 131,072 configured" in report


def test_kv_memory_for_real_and_configured_context(fake_ollama):
    d = diagnose(Settings(host=fake_ollama.url, model="qwen3:14b", context=131072))
    assert d.kv["f16"][131072] == 20 * GIB
    assert round(d.kv["q8_0"][131072] / GIB, 1) == 10.6
    assert round(d.kv["q4_0"][131072] / GIB, 1) == 5.6
    assert d.kv["f16"][40960] == 40960 * 40 * 8 * 256 * 2
    report = format_report(d)
    assert "20.0 GiB" in report and "10.6 GiB" in report and "5.6 GiB" in report
    assert "(Folio uses)" in report and "(configured)" in report


def test_128k_model_fits_and_memory_advice_names_the_server_settings(fake_ollama):
    d = diagnose(Settings(host=fake_ollama.url))
    assert d.ok and d.real_context == 131072
    memory = [w for w in d.warnings if "KV cache" in w]
    assert memory and "OLLAMA_KV_CACHE_TYPE=q8_0" in memory[0] and "OLLAMA_NUM_PARALLEL=1" in memory[0]
    assert not any("holds" in w for w in d.warnings)


def test_small_model_needs_no_memory_advice():
    small = FakeModel("tiny:1b", 8192, block_count=16, head_count_kv=8, key_length=64, value_length=64)
    with FakeOllama(models=[small]) as fake:
        d = diagnose(Settings(host=fake.url, model="tiny:1b", context=8192))
    assert d.ok and d.warnings == []


def test_what_is_loaded_now(fake_ollama):
    settings = Settings(host=fake_ollama.url)
    assert "no (the first question loads it)" in format_report(diagnose(settings))
    list(OllamaBackend(settings).chat(make_request(num_ctx=8192)))
    d = diagnose(settings)
    assert d.info.loaded_context == 8192
    assert any("loaded now with 8,192 tokens" in w and "reload it with 131,072" in w for w in d.warnings)
    assert "yes, with 8,192 tokens" in format_report(d)


def test_unreachable_server_is_reported_not_raised():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    d = diagnose(Settings(host=f"http://127.0.0.1:{port}", connect_timeout=2.0))
    assert not d.ok and d.error_kind == "ServerUnreachable"
    assert "ollama serve" in format_report(d)
    assert d.to_json()["error"] == d.error


def test_missing_model_and_thinking_and_old_version():
    with FakeOllama(version="0.11.10") as fake:
        d = diagnose(Settings(host=fake.url, model="qwen2.5:7b", think=True))
        assert not d.ok and d.too_old
        assert any("Folio needs 0.12.5 or newer" in w for w in d.warnings)
        assert any("does not say it can think" in w for w in d.warnings)
        missing = diagnose(Settings(host=fake.url, model="qwen3-128k:14b-q8"))
    assert not missing.info.model_present
    assert "NOT AVAILABLE" in format_report(missing)
    assert any("ollama create qwen3-128k:14b-q8 -f Modelfile" in w for w in missing.warnings)


def test_json_shape(fake_ollama):
    data = diagnose(Settings(host=fake_ollama.url, model="qwen3:14b")).to_json()
    assert data["real_context"] == 40960 and data["trained_context"] == 40960
    assert data["kv_bytes"]["f16"]["131072"] == 20 * GIB
    assert data["ok"] is True and data["version"] == fake_ollama.version
