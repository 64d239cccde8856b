"""Configuration in one place: explicit argument, then environment, then default.

    load_settings()                       # environment and defaults
    load_settings(context=40960)          # an argument wins over FOLIO_CONTEXT
    OLLAMA_HOST=10.0.0.5 -> http://10.0.0.5:11434 (parsed as Ollama parses it)

Environment variables: OLLAMA_HOST (as Ollama defines it) and FOLIO_* for the rest
(see ENV_NAMES below and the README).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OLLAMA_PORT = "11434"
DEFAULT_MODEL = "qwen3-128k:14b"
DEFAULT_HOSTS = {"ollama": f"http://127.0.0.1:{DEFAULT_OLLAMA_PORT}", "openai": "http://127.0.0.1:8000"}
"""Where each kind of server listens unless told otherwise (Ollama; vLLM's default port)."""


def parse_ollama_host(value: str | None) -> str:
    """Turn an OLLAMA_HOST value into a base URL the way Ollama's envconfig.Host does.

    >>> parse_ollama_host(None)
    'http://127.0.0.1:11434'
    >>> parse_ollama_host("0.0.0.0")
    'http://127.0.0.1:11434'
    >>> parse_ollama_host("example.com")
    'http://example.com:11434'
    >>> parse_ollama_host("https://example.com")
    'https://example.com:443'
    >>> parse_ollama_host("127.0.0.1:9999")
    'http://127.0.0.1:9999'
    >>> parse_ollama_host("http://[::1]:8080/ollama")
    'http://[::1]:8080/ollama'
    """
    text = (value or "").strip().strip("\"'")
    default_port = DEFAULT_OLLAMA_PORT
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = hostport.partition("/")
    host, port = _split_host_port(hostport)
    if host is None:
        host, port = "127.0.0.1", default_port
        bare = hostport.strip("[]")
        if bare:
            host = bare
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    # 0.0.0.0 is where a server listens, not an address a client can reach everywhere.
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if _is_ipv6(host):
        host = f"[{host}]"
    url = f"{scheme}://{host}:{port}"
    return f"{url}/{path}".rstrip("/") if path else url


def _split_host_port(hostport: str) -> tuple[str | None, str]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end != -1 and hostport[end + 1 : end + 2] == ":":
            return hostport[1:end], hostport[end + 2 :]
        return None, ""
    if hostport.count(":") == 1:
        host, port = hostport.split(":")
        return host, port
    return None, ""


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def default_data_dir() -> Path:
    """Per-user data folder: $XDG_DATA_HOME/folio, else ~/.local/share/folio."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "folio"


@dataclass(frozen=True)
class Settings:
    """Everything a user or a deployment can set. Field docs give units."""

    backend: str = "ollama"
    """'ollama' (native /api/chat) or 'openai' (vLLM, llama.cpp server, ...)."""
    host: str = f"http://127.0.0.1:{DEFAULT_OLLAMA_PORT}"
    """Base URL of the model server."""
    model: str = DEFAULT_MODEL
    context: int = 131072
    """Configured context in tokens; the real budget is min(this, model's trained context)."""
    answer_reserve: int = 4096
    """Tokens kept free for the answer itself."""
    thinking_reserve: int = 8192
    """Extra tokens kept free for the reasoning when thinking is on."""
    think: bool = False
    """Thinking default for new questions."""
    keep_alive: str = "2h"
    """How long the server keeps the model and its prompt cache loaded."""
    read_timeout: float = 900.0
    """Idle limit: seconds the server may go without sending new text (thinking or answer),
    whether it is silent or sends only keep-alive bytes. Reading 100k tokens takes minutes."""
    total_timeout: float = 3600.0
    """Total limit: seconds one question may take, every request included (0: no limit)."""
    connect_timeout: float = 10.0
    max_file_mb: int = 200
    """Largest file accepted, in megabytes (MB = 1,000,000 bytes)."""
    doc_timeout: float = 300.0
    """Seconds one document may take to read before it is refused."""
    ocr: bool = True
    """OCR pages without a text layer when Tesseract is installed."""
    ocr_language: str = "eng+chi_sim"
    """The languages OCR may use; each document is read in those of them its text is in."""
    ocr_workers: int = 0
    """Pages OCR'd at once, each in its own Tesseract process; 0 = one per CPU core (at most 8)."""
    ocr_pictures: bool = False
    """Also OCR image-only pages that look like pictures (maps, photos) in documents with a text layer."""
    data_dir: Path = field(default_factory=default_data_dir)
    api_key: str = ""
    """Bearer token for OpenAI-compatible servers that need one."""
    concurrency: int = 0
    """Calls in flight at once for work of many calls (several-call plans, review tables);
    0 = by server kind: 1 for Ollama (raise it with OLLAMA_NUM_PARALLEL), 4 for OpenAI-compatible."""

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1_000_000

    def reserved(self, think: bool) -> int:
        """Answer room kept free in the context for one call."""
        return self.answer_reserve + (self.thinking_reserve if think else 0)


ENV_NAMES = {
    "backend": "FOLIO_BACKEND",
    "model": "FOLIO_MODEL",
    "context": "FOLIO_CONTEXT",
    "answer_reserve": "FOLIO_ANSWER_RESERVE",
    "thinking_reserve": "FOLIO_THINKING_RESERVE",
    "think": "FOLIO_THINK",
    "keep_alive": "FOLIO_KEEP_ALIVE",
    "read_timeout": "FOLIO_READ_TIMEOUT",
    "total_timeout": "FOLIO_TOTAL_TIMEOUT",
    "connect_timeout": "FOLIO_CONNECT_TIMEOUT",
    "max_file_mb": "FOLIO_MAX_FILE_MB",
    "doc_timeout": "FOLIO_DOC_TIMEOUT",
    "ocr": "FOLIO_OCR",
    "ocr_language": "FOLIO_OCR_LANGUAGE",
    "ocr_workers": "FOLIO_OCR_WORKERS",
    "ocr_pictures": "FOLIO_OCR_PICTURES",
    "data_dir": "FOLIO_DATA_DIR",
    "api_key": "FOLIO_API_KEY",
    "concurrency": "FOLIO_CONCURRENCY",
}


def _convert(name: str, raw: str):
    kind = Settings.__dataclass_fields__[name].type
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "Path":
        return Path(raw).expanduser()
    return raw


def load_settings(**overrides) -> Settings:
    """Settings from arguments (non-None win), then environment, then defaults."""
    from .errors import InputError

    values: dict = {}
    for name, env in ENV_NAMES.items():
        raw = os.environ.get(env)
        if raw is not None and raw != "":
            try:
                values[name] = _convert(name, raw)
            except ValueError as exc:
                raise InputError(f"{env}={raw!r} is not a valid value: {exc}. Fix or unset it.") from exc
    host_env = os.environ.get("FOLIO_HOST")
    if host_env:
        values["host"] = host_env.rstrip("/")
    elif values.get("backend", "ollama") == "ollama" or "OLLAMA_HOST" in os.environ:
        values["host"] = parse_ollama_host(os.environ.get("OLLAMA_HOST"))
    host_given = "host" in values and (bool(host_env) or "OLLAMA_HOST" in os.environ)
    for name, value in overrides.items():
        if value is not None:
            values[name] = value.rstrip("/") if name == "host" else value
    host_given = host_given or overrides.get("host") is not None
    if not host_given:
        # No address anywhere: the usual one of the server kind asked for (an OpenAI-compatible
        # server is not on Ollama's port).
        values["host"] = DEFAULT_HOSTS.get(values.get("backend", "ollama"), DEFAULT_HOSTS["ollama"])
    _check_limits(values)
    return Settings(**values)


# Time limits that must be above zero (0 would mean "give up at once"); 0 is "no limit" only
# for the total limit.
_POSITIVE = ("read_timeout", "connect_timeout")
_LIMIT_NAMES = {
    "read_timeout": "The idle limit (--read-timeout, FOLIO_READ_TIMEOUT)",
    "total_timeout": "The total limit (--timeout, FOLIO_TOTAL_TIMEOUT)",
    "connect_timeout": "The connect limit (FOLIO_CONNECT_TIMEOUT)",
}


def _check_limits(values: dict) -> None:
    from .errors import InputError

    for name, label in _LIMIT_NAMES.items():
        value = values.get(name)
        if value is None:
            continue
        if value < 0 or (value == 0 and name in _POSITIVE):
            need = "0 (no limit) or more" if name == "total_timeout" else "more than 0"
            raise InputError(f"{label} is {value:g} s: it must be {need} seconds.")
