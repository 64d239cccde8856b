"""A protocol-faithful fake Ollama: a real HTTP server on 127.0.0.1 that speaks Ollama's API.

Usage in tests: `with FakeOllama() as fake:` (or `from fake_ollama import fake_ollama`, the
fixture) gives `fake.url` to put in `Settings(host=fake.url)`. It serves
GET /, /api/version, /api/tags, /api/ps and POST /api/show, /api/chat (streamed NDJSON),
/api/pull. It renders each chat with Qwen3's template as Ollama does and counts it with the
real Qwen3 tokenizer (lib.reading.tokens), so `prompt_eval_count` is what a real server would say;
it caps num_ctx at the model's trained context (qwen3:14b 40,960, qwen3-128k:14b 131,072),
truncates like Ollama when `truncate` is not false and answers HTTP 400 when it is false,
keeps a prefix cache (`fake.last_cached`), and counts model (re)loads (`fake.loads`).
Script it per test: `fake.script(answer='... "quote" [abc-1].', thinking="...")` (answer
may also be a function of (body, prompt)); by default it cites the first passage of the
prompt verbatim (with `format` in the request: JSON of that schema's shape, `fill_schema`). Faults: `fake.fail_next(status=500, error="...")`,
`fake.interrupt_next("error" | "no_done" | "drop", after=2)`, `gate = fake.hold_next()`
(silent before the first token until `gate.set()`; `fake.holding` is set while it waits;
`fake.hold_next("/api/show")` holds the server check the same way),
`fake.read_only(tail=0.4)` / `read_only(limit=40960)` (silently read only the prompt's tail).
Misbehaviours (what a broken server or another web app on the port does):
`fake.garble_next(path, "html" | "list" | "text" | "empty")` (HTTP 200 with something that is
not Ollama's JSON; `garble_all(kind)` for every request: another web app on that port),
`fake.keepalive_next(every=0.2, after=0)` (a stream of blank lines that never ends, after
`after` pieces of answer), `fake.huge_line_next(size)` (one streamed line of `size` bytes),
`fake.cut_prompt_next(keep=50)` (the prompt cut to `keep` tokens as Ollama cuts, and reported
so: a server that ignored `truncate: false`), `fake.answer_as("other:7b")` (the stream names
another model than the one asked for, as a proxy that swaps models does).
Every request is recorded: `fake.requests`, `fake.chat_bodies`, `fake.last_chat`,
`fake.last_prompt`; `fake.busy_s` adds up the time the fake spends on requests (benchmarks).
Standalone: `python tests/fake_ollama.py --port 11434 [--chunk-delay 0.05]`.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_NUM_CTX = 4096
DEFAULT_NUM_KEEP = 4
NO_ANSWER = "The documents do not answer this question."
PASSAGE_LINE = re.compile(r"^\[([a-z]{3}-\d+)\] (.+)$", re.MULTILINE)
# Per-token costs the fake reports (nanoseconds): reading a prompt token, generating one.
PROMPT_NS_PER_TOKEN = 400_000
EVAL_NS_PER_TOKEN = 25_000_000
LOAD_NS = 2_500_000_000


# --- tokens -------------------------------------------------------------------------------

class _Tokens:
    """Qwen3 token ids via lib.reading.tokens; a crude stand-in only if the exact tokenizer is missing."""

    def __init__(self) -> None:
        try:
            from lib.reading.tokens import get_counter

            counter = get_counter("exact")
            counter.encode("probe")
            self._encode = counter.encode
        except Exception:  # the stand-in keeps the fake usable; counts are then approximate
            self._encode = _rough_encode

    def encode(self, text: str) -> list[int]:
        return self._encode(text)


_SPECIAL = re.compile(r"<\|[a-z_]+\|>|</?think>")
_PIECES = re.compile(r"\w+|[^\w\s]|\s+")


def _rough_encode(text: str) -> list[int]:
    ids: list[int] = []
    for piece in _PIECES.findall(_SPECIAL.sub(" \x00 ", text)):
        ids.append(hash(piece) & 0xFFFFFF)
    return ids


# --- the Qwen3 chat template, as Ollama renders it ----------------------------------------

def render_qwen3(messages: list[dict], think: bool | None) -> str:
    """Ollama's Qwen3 template: system texts merged at the top, /think or /no_think on the
    last user message and an empty think block when `think` is false (nothing when unset)."""
    system = "\n\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
    turns: list[dict] = []
    for message in messages:
        if message.get("role") == "system":
            continue
        if turns and turns[-1]["role"] == message.get("role"):
            turns[-1] = {**turns[-1], "content": turns[-1]["content"] + "\n\n" + message.get("content", "")}
        else:
            turns.append({"role": message.get("role"), "content": message.get("content", "")})
    out = [f"<|im_start|>system\n{system}<|im_end|>\n"] if system else []
    last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=-1)
    for i, turn in enumerate(turns):
        last = i == len(turns) - 1
        if turn["role"] == "user":
            suffix = ""
            if think is not None and i == last_user:
                suffix = " /think" if think else " /no_think"
            out.append(f"<|im_start|>user\n{turn['content']}{suffix}<|im_end|>\n")
        elif turn["role"] == "assistant":
            out.append(f"<|im_start|>assistant\n{turn['content']}" + ("" if last else "<|im_end|>\n"))
        elif turn["role"] == "tool":
            out.append(f"<|im_start|>user\n<tool_response>\n{turn['content']}\n</tool_response><|im_end|>\n")
        if turn["role"] != "assistant" and last:
            out.append("<|im_start|>assistant\n" + ("<think>\n\n</think>\n\n" if think is False else ""))
    return "".join(out)


def cite_first_passage(body: dict, prompt: str) -> str:
    """Default answer: the first passage of the prompt, quoted verbatim and cited (as JSON
    shaped by the schema when the request carries one in `format`)."""
    match = PASSAGE_LINE.search(prompt)
    if isinstance(body.get("format"), dict):
        passage_id, quote = (match.group(1), " ".join(match.group(2).split()[:8]).rstrip(".,;:")) if match else ("", "")
        return json.dumps(fill_schema(body["format"], passage_id, quote), ensure_ascii=False)
    if not match:
        return NO_ANSWER
    words = match.group(2).split()
    quote = " ".join(words[:8]).rstrip(".,;:")
    return f'The document says "{quote}" [{match.group(1)}].'


def fill_schema(schema: dict, passage_id: str, quote: str, name: str = ""):
    """A value of the JSON schema's shape, as a constrained model would write one: strings
    quote the first passage, a string named "id" is its passage ID."""
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    if "anyOf" in schema:
        choices = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return fill_schema(choices[0], passage_id, quote, name)
    kind = schema.get("type")
    if kind == "object":
        return {key: fill_schema(sub, passage_id, quote, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [fill_schema(schema.get("items") or {"type": "string"}, passage_id, quote, name)]
    if kind == "string":
        return passage_id if name == "id" else quote
    return {"integer": 1, "number": 1, "boolean": True}.get(kind)


# --- models -------------------------------------------------------------------------------

@dataclass
class FakeModel:
    """A model the fake knows; `context_length` is its trained context (the cap on num_ctx)."""

    name: str
    context_length: int
    capabilities: list[str] = field(default_factory=lambda: ["completion", "tools", "thinking"])
    architecture: str = "qwen3"
    block_count: int = 40
    head_count_kv: int = 8
    key_length: int = 128
    value_length: int = 128
    yarn: bool = False
    parameter_size: str = "14.8B"
    quantization: str = "Q4_K_M"
    size: int = 9_276_198_565

    @property
    def digest(self) -> str:
        return (format(abs(hash(self.name)), "x") * 8)[:64]

    def details(self) -> dict:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.architecture,
            "families": [self.architecture],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }

    def model_info(self) -> dict:
        arch = self.architecture
        info = {
            "general.architecture": arch,
            "general.parameter_count": 14_768_307_200,
            f"{arch}.context_length": self.context_length,
            f"{arch}.block_count": self.block_count,
            f"{arch}.embedding_length": 5120,
            f"{arch}.attention.head_count": 40,
            f"{arch}.attention.head_count_kv": self.head_count_kv,
            f"{arch}.attention.key_length": self.key_length,
            f"{arch}.attention.value_length": self.value_length,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.pre": "qwen2",
        }
        if self.yarn:
            info.update({
                f"{arch}.rope.scaling.type": "yarn",
                f"{arch}.rope.scaling.factor": 4,
                f"{arch}.rope.scaling.original_context_length": 32768,
            })
        return info


def default_models() -> list[FakeModel]:
    return [
        FakeModel("qwen3:14b", 40960),
        FakeModel("qwen3-128k:14b", 131072, yarn=True),
        FakeModel(
            "qwen2.5:7b", 32768, capabilities=["completion", "tools"], architecture="qwen2",
            block_count=28, head_count_kv=4, parameter_size="7.6B", size=4_683_087_332,
        ),
    ]


@dataclass
class Reply:
    """What the fake answers to the next chats (until scripted again)."""

    answer: str | Callable[[dict, str], str] = cite_first_passage
    thinking: str = "I read the documents and look for the passage that answers the question."
    done_reason: str | None = None
    """Force a done_reason; otherwise 'stop', or 'length' when num_predict cuts the answer."""
    words_per_chunk: int = 2


@dataclass
class Recorded:
    method: str
    path: str
    body: dict | None
    headers: dict


# --- the server ---------------------------------------------------------------------------

class FakeOllama:
    """A fake Ollama on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, port: int = 0, version: str = "0.13.0", models: list[FakeModel] | None = None,
                 installed: list[str] | None = None, chunk_delay: float = 0.0):
        self.version = version
        self.models = {m.name: m for m in (models or default_models())}
        self.installed = set(installed if installed is not None else self.models)
        self.chunk_delay = chunk_delay
        self.reply = Reply()
        self.requests: list[Recorded] = []
        self.loads: list[tuple[str, int]] = []
        """(model, num_ctx) for every model (re)load: a changed num_ctx or shift reloads."""
        self.disconnects = 0
        """Clients that went away before their answer was complete."""
        self.holding = threading.Event()
        self.last_prompt = ""
        self.last_prompt_tokens = 0
        self.last_cached = 0
        self.last_num_ctx = 0
        self.last_truncated = False
        self._failures: list[tuple[str, int, str]] = []
        self._garbles: list[tuple[str, str]] = []
        self.garble_every: str | None = None
        self._streams: list[tuple] = []
        """Scripted misbehaving chat streams: ('keepalive', every, after) or ('huge', size)."""
        self._cuts: list[int] = []
        self.answering_model: str | None = None
        self.busy_s = 0.0
        self.active = 0
        """Requests being handled now (benchmarks wait for 0 before reading busy_s)."""
        self._interruptions: list[tuple[str, int, str]] = []
        self._holds: list[tuple[str, threading.Event]] = []
        self._reads: tuple[float | None, int | None] | None = None
        self._loaded: dict[str, dict] = {}
        self._cache: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._tokens = _Tokens()
        self._server = _QuietServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeOllama":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for _path, gate in self._holds:
            gate.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeOllama":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------------------

    def script(self, answer: str | Callable[[dict, str], str] | None = None, thinking: str | None = None,
               *, done_reason: str | None = None, words_per_chunk: int = 2) -> "FakeOllama":
        """Answer (and thinking) for every following chat, until scripted again."""
        self.reply = Reply(
            answer=answer if answer is not None else cite_first_passage,
            thinking=thinking if thinking is not None else Reply.thinking,
            done_reason=done_reason,
            words_per_chunk=words_per_chunk,
        )
        return self

    def fail_next(self, status: int = 500, error: str = "llama runner process has terminated: exit status 2",
                  *, path: str = "/api/chat") -> "FakeOllama":
        """The next request to `path` gets HTTP `status` with {"error": error}."""
        self._failures.append((path, status, error))
        return self

    def interrupt_next(self, mode: str = "error", *, after: int = 2,
                       error: str = "an error was encountered while running the model") -> "FakeOllama":
        """The next chat stops after `after` chunks: 'error' line, 'no_done' (clean end), 'drop' (socket)."""
        if mode not in ("error", "no_done", "drop"):
            raise ValueError(f"unknown interruption {mode!r}")
        self._interruptions.append((mode, after, error))
        return self

    def hold_next(self, path: str = "/api/chat") -> threading.Event:
        """The next request to `path` (/api/chat or /api/show) stays silent before its first
        byte until the returned event is set."""
        gate = threading.Event()
        self._holds.append((path, gate))
        return gate

    def garble_next(self, path: str, kind: str = "html") -> "FakeOllama":
        """The next request to `path` gets HTTP 200 with something that is not Ollama's JSON:
        'html' (a web page), 'list' (a JSON list), 'text' (plain text), 'empty' (no body)."""
        if kind not in GARBLES:
            raise ValueError(f"unknown garble {kind!r}")
        self._garbles.append((path, kind))
        return self

    def garble_all(self, kind: str = "html") -> "FakeOllama":
        """Every request gets `kind` (see garble_next): another web application on the port."""
        self.garble_every = kind
        return self

    def keepalive_next(self, every: float = 0.2, after: int = 0) -> "FakeOllama":
        """The next chat sends `after` pieces of its answer, then a blank line every `every`
        seconds, for ever (until the client hangs up)."""
        self._streams.append(("keepalive", every, after))
        return self

    def huge_line_next(self, size: int = 50_000_000) -> "FakeOllama":
        """The next chat streams one NDJSON line carrying `size` bytes of content (written in
        pieces, stopped when the client hangs up)."""
        self._streams.append(("huge", size))
        return self

    def cut_prompt_next(self, keep: int = 50) -> "FakeOllama":
        """The next chat cuts its prompt to `keep` tokens the way Ollama truncates (num_keep
        first tokens and the tail) and reports that count, as a server ignoring truncate:false."""
        self._cuts.append(keep)
        return self

    def answer_as(self, model: str | None) -> "FakeOllama":
        """Name `model` in every chat's stream instead of the model asked for (None: the one asked)."""
        self.answering_model = model
        return self

    def read_only(self, *, tail: float | None = None, limit: int | None = None) -> "FakeOllama":
        """From now on read only part of each prompt, silently, whatever `truncate` says (a server
        whose real window is smaller than it claims): the last `tail` share of its tokens, or its last
        `limit` tokens. prompt_eval_count says how many were read; the answer sees only that part.
        `read_only()` reads whole prompts again."""
        self._reads = (tail, limit) if (tail is not None or limit is not None) else None
        return self

    def _read_part(self, prompt: str, tokens: list[int]) -> tuple[str, list[int]]:
        """The tail a `read_only` server keeps (the text cut in proportion: close enough for a test)."""
        if self._reads is None:
            return prompt, tokens
        tail, limit = self._reads
        keep = len(tokens)
        if tail is not None:
            keep = min(keep, int(len(tokens) * tail))
        if limit is not None:
            keep = min(keep, limit)
        if keep >= len(tokens):
            return prompt, tokens
        chars = round(len(prompt) * keep / max(len(tokens), 1))
        return prompt[len(prompt) - chars:], tokens[len(tokens) - keep:]

    def install(self, model: FakeModel) -> "FakeOllama":
        self.models[model.name] = model
        self.installed.add(model.name)
        return self

    # --- what was asked --------------------------------------------------------------------

    @property
    def chat_bodies(self) -> list[dict]:
        return [r.body for r in self.requests if r.path == "/api/chat" and r.body is not None]

    @property
    def last_chat(self) -> dict | None:
        bodies = self.chat_bodies
        return bodies[-1] if bodies else None

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll `condition` until true or `timeout` seconds pass (for tests: no sleeps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    # --- model state (used by the handler) -------------------------------------------------

    def _pop(self, queue: list, path: str | None = None):
        with self._lock:
            for i, item in enumerate(queue):
                if path is None or item[0] == path:
                    return queue.pop(i)
        return None

    def _load(self, model: FakeModel, num_ctx: int, shift: bool, keep_alive) -> int:
        """Load or reuse the model; returns load_duration in ns (0 when already loaded as asked)."""
        with self._lock:
            state = self._loaded.get(model.name)
            expires = datetime.now(timezone.utc) + _keep_alive_delta(keep_alive)
            if state and state["num_ctx"] == num_ctx and state["shift"] == shift:
                state["expires_at"] = expires
                return 0
            self.loads.append((model.name, num_ctx))
            self._cache.pop(model.name, None)  # a reload drops the KV cache
            self._loaded[model.name] = {"num_ctx": num_ctx, "shift": shift, "expires_at": expires}
            return LOAD_NS

    def _cached_prefix(self, model: str, tokens: list[int]) -> int:
        previous = self._cache.get(model) or []
        common = 0
        for a, b in zip(previous, tokens):
            if a != b:
                break
            common += 1
        return min(common, max(len(tokens) - 1, 0))  # the last prompt token is always evaluated


def _keep_alive_delta(value) -> timedelta:
    if isinstance(value, (int, float)):
        return timedelta(days=3650) if value < 0 else timedelta(seconds=value)
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)", str(value or "5m").strip())
    if not match:
        return timedelta(minutes=5)
    amount = float(match.group(1))
    if amount < 0:
        return timedelta(days=3650)
    return timedelta(seconds=amount * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _chunks(text: str, words: int) -> list[str]:
    """Split text into pieces of a few words, keeping every character."""
    parts = re.findall(r"\S+\s*|\s+", text)
    return ["".join(parts[i:i + words]) for i in range(0, len(parts), max(words, 1))]


# --- the HTTP handler ---------------------------------------------------------------------

GARBLES = {
    "html": ("text/html; charset=utf-8",
             b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>It works!</body></html>\n"),
    "list": ("application/json", b'[{"id": 1, "name": "widget"}]'),
    "text": ("text/plain; charset=utf-8", b"Hello from another service\n"),
    "empty": ("application/json", b""),
}

class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that hang up (cancel, dropped connections) are part of the script, not errors.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


def _handler_for(fake: FakeOllama):
    class Handler(_OllamaHandler):
        pass

    Handler.fake = fake
    return Handler


class _ClientGone(Exception):
    pass


class _OllamaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOllama
    server_version = "FakeOllama"
    # Ollama (Go) sends without Nagle's delay; with it, headers and body written apart wait
    # for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def handle_one_request(self):
        # Only the time spent on a request counts, not the wait for the next one on this connection.
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        started = time.perf_counter()
        with self.fake._lock:
            self.fake.active += 1
        try:
            self._handle_read_request()
        finally:
            with self.fake._lock:
                self.fake.busy_s += time.perf_counter() - started
                self.fake.active -= 1

    def _handle_read_request(self):
        """BaseHTTPRequestHandler.handle_one_request after its first line was read."""
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        method()
        self.wfile.flush()

    def log_message(self, format, *args):  # keep test output quiet
        pass

    # --- plumbing --------------------------------------------------------------------------

    def _read_body(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return {"_invalid": raw.decode("utf-8", "replace")}
        return data if isinstance(data, dict) else {"_invalid": data}

    def _record(self, body) -> None:
        with self.fake._lock:
            self.fake.requests.append(Recorded(self.command, self.path, body, dict(self.headers)))

    def _send_json(self, status: int, data) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _send_text(self, status: int, text: str) -> None:
        raw = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_line(self, data: dict) -> None:
        raw = (json.dumps(data, ensure_ascii=False) + "\n").encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _ClientGone from exc
        if self.fake.chunk_delay:
            time.sleep(self.fake.chunk_delay)

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _ClientGone from exc

    def _drop(self) -> None:
        """Close the socket mid-stream without the chunked terminator (a dropped connection)."""
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def _client_gone(self) -> bool:
        """True when the client closed its side (checked while holding before the first byte)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # --- routes ----------------------------------------------------------------------------

    def do_HEAD(self):
        self._send_text(200, "Ollama is running") if self.path == "/" else self._send_text(404, "404 page not found")

    def do_GET(self):
        self._record(None)
        routes = {"/": self._root, "/api/version": self._version, "/api/tags": self._tags, "/api/ps": self._ps}
        route = routes.get(self.path.split("?")[0])
        if self._garbled():
            return
        if route is None:
            return self._send_text(404, "404 page not found")
        if self._scripted_failure():
            return
        route()

    def do_POST(self):
        body = self._read_body()
        self._record(body)
        routes = {"/api/show": self._show, "/api/chat": self._chat, "/api/pull": self._pull}
        route = routes.get(self.path)
        if self._garbled():
            return
        if route is None:
            return self._send_text(404, "404 page not found")
        if body is None or "_invalid" in body:
            return self._send_json(400, {"error": "invalid request body"})
        if self._scripted_failure():
            return
        if self.path == "/api/show" and not self._hold():
            return
        try:
            route(body)
        except _ClientGone:
            with self.fake._lock:
                self.fake.disconnects += 1
            self.close_connection = True

    def _garbled(self) -> bool:
        """Answer 200 with a scripted non-Ollama body, if one is due for this path."""
        fake = self.fake
        scripted = fake._pop(fake._garbles, self.path.split("?")[0])
        kind = scripted[1] if scripted else fake.garble_every
        if kind is None:
            return False
        content_type, raw = GARBLES[kind]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        return True

    def _scripted_failure(self) -> bool:
        failure = self.fake._pop(self.fake._failures, self.path)
        if failure is None:
            return False
        self._send_json(failure[1], {"error": failure[2]})
        return True

    def _root(self):
        self._send_text(200, "Ollama is running")

    def _version(self):
        self._send_json(200, {"version": self.fake.version})

    def _tags(self):
        fake = self.fake
        models = []
        for name in sorted(fake.installed):
            model = fake.models[name]
            models.append({
                "name": name, "model": name, "modified_at": _now(), "size": model.size,
                "digest": model.digest, "details": model.details(),
            })
        self._send_json(200, {"models": models})

    def _ps(self):
        fake = self.fake
        models = []
        with fake._lock:
            loaded = dict(fake._loaded)
        for name, state in loaded.items():
            model = fake.models[name]
            models.append({
                "name": name, "model": name, "size": model.size, "digest": model.digest,
                "details": model.details(), "expires_at": state["expires_at"].isoformat(),
                "size_vram": model.size, "context_length": state["num_ctx"],
            })
        self._send_json(200, {"models": models})

    def _model(self, body: dict) -> FakeModel | None:
        name = str(body.get("model") or body.get("name") or "")
        if ":" not in name.rsplit("/", 1)[-1]:
            name += ":latest"
        if name in self.fake.installed:
            return self.fake.models[name]
        return None

    def _not_found(self, body: dict) -> None:
        self._send_json(404, {"error": f"model '{body.get('model') or body.get('name')}' not found"})

    def _show(self, body: dict):
        model = self._model(body)
        if model is None:
            return self._not_found(body)
        self._send_json(200, {
            "modelfile": f"FROM {model.name}\n",
            "parameters": "temperature 0.6\ntop_k 20\ntop_p 0.95",
            "template": "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}...",
            "details": model.details(),
            "model_info": model.model_info(),
            "capabilities": list(model.capabilities),
            "modified_at": _now(),
        })

    def _pull(self, body: dict):
        fake = self.fake
        name = str(body.get("model") or body.get("name") or "")
        self._start_stream()
        self._send_line({"status": "pulling manifest"})
        model = fake.models.get(name)
        if model is None:
            self._send_line({"error": "pull model manifest: file does not exist"})
            return self._end_stream()
        total = model.size
        for completed in (0, total // 2, total):
            self._send_line({"status": f"pulling {model.digest[:12]}", "digest": f"sha256:{model.digest}",
                             "total": total, "completed": completed})
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            self._send_line({"status": status})
        fake.installed.add(name)
        self._end_stream()

    # --- /api/chat -------------------------------------------------------------------------

    def _chat(self, body: dict):
        fake = self.fake
        model = self._model(body)
        if model is None:
            return self._not_found(body)
        think = body.get("think")
        if think and "thinking" not in model.capabilities:
            return self._send_json(400, {"error": f'"{body.get("model")}" does not support thinking'})
        options = body.get("options") or {}
        num_ctx = min(int(options.get("num_ctx") or DEFAULT_NUM_CTX), model.context_length)
        load_ns = fake._load(model, num_ctx, body.get("shift", True) is not False, body.get("keep_alive", "5m"))
        messages = list(body.get("messages") or [])
        prompt, tokens, truncated = self._fit(messages, think, num_ctx, options, body.get("truncate", True))
        if tokens is None:
            return self._send_json(400, {"error": (
                f"the prompt is longer than the context length ({len(truncated)} tokens > num_ctx {num_ctx})")})
        cut = fake._pop(fake._cuts)
        if cut is not None and cut < len(tokens):
            keep = min(int(options.get("num_keep") or DEFAULT_NUM_KEEP), cut)
            tokens, truncated = tokens[:keep] + tokens[len(tokens) - (cut - keep):], True
        prompt, tokens = fake._read_part(prompt, tokens)
        with fake._lock:
            cached = fake._cached_prefix(model.name, tokens)
            fake.last_prompt, fake.last_prompt_tokens, fake.last_cached = prompt, len(tokens), cached
            fake.last_num_ctx, fake.last_truncated = num_ctx, truncated
        if not self._hold():
            return
        misbehaviour = fake._pop(fake._streams)
        if misbehaviour is not None:
            return self._misbehave(misbehaviour, body, model, prompt, think)
        self._stream_answer(body, model, prompt, tokens, cached, load_ns, think)

    def _misbehave(self, misbehaviour: tuple, body, model, prompt, think) -> None:
        """A stream that never ends (blank lines) or one endless line; ends when the client goes."""
        self._start_stream()
        if misbehaviour[0] == "keepalive":
            _, every, after = misbehaviour
            _, pieces, _, _ = self._generate(body, model, prompt, think)
            for kind, text in pieces[:after]:
                message = {"role": "assistant", "content": text if kind == "content" else ""}
                if kind == "thinking":
                    message["thinking"] = text
                self._send_line({"model": self._answer_model(body), "created_at": _now(), "message": message,
                                 "done": False})
            while True:  # raises _ClientGone once the client hangs up
                self._send_raw(b"\n")
                time.sleep(every)
        _, size = misbehaviour
        head = json.dumps({"model": self._answer_model(body), "created_at": _now(),
                           "message": {"role": "assistant", "content": ""}, "done": False})[:-len('"}, "done": false}')]
        self._send_raw(head.encode())
        piece = b"A" * 65536
        sent = 0
        while sent < size:
            self._send_raw(piece)
            sent += len(piece)
        self._send_raw(b'"}, "done": false}\n')
        self._end_stream()

    def _send_raw(self, raw: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _ClientGone from exc

    def _answer_model(self, body: dict) -> str:
        return self.fake.answering_model or body.get("model")

    def _fit(self, messages, think, num_ctx, options, truncate):
        """Render and count the prompt; cut it like Ollama when truncate is not false.

        Returns (prompt, tokens, truncated) or (prompt, None, all_tokens) when it is refused."""
        encode = self.fake._tokens.encode
        prompt = render_qwen3(messages, think)
        tokens = encode(prompt)
        if len(tokens) <= num_ctx:
            return prompt, tokens, False
        if truncate is False:
            return prompt, None, tokens
        # Ollama first drops the oldest turns (keeping system messages and the last message)...
        kept = list(messages)
        while len(tokens) > num_ctx:
            droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
            if not droppable:
                break
            del kept[droppable[0]]
            prompt = render_qwen3(kept, think)
            tokens = encode(prompt)
        if len(tokens) > num_ctx:
            # ...then the runner keeps num_keep tokens and the tail, about half of num_ctx.
            keep = int(options.get("num_keep") or DEFAULT_NUM_KEEP)
            keep = min(keep, num_ctx // 2)
            tokens = tokens[:keep] + tokens[len(tokens) - (num_ctx // 2 - keep):]
        return prompt, tokens, True

    def _hold(self) -> bool:
        """Stay silent while a scripted hold is closed; False when the client gave up meanwhile."""
        held = self.fake._pop(self.fake._holds, self.path)
        if held is None:
            return True
        gate = held[1]
        self.fake.holding.set()
        try:
            while not gate.wait(0.02):
                if self._client_gone():
                    with self.fake._lock:
                        self.fake.disconnects += 1
                    self.close_connection = True
                    return False
            return True
        finally:
            self.fake.holding.clear()

    def _stream_answer(self, body, model, prompt, tokens, cached, load_ns, think):
        fake = self.fake
        started = time.monotonic_ns()
        answer, pieces, generated, done_reason = self._generate(body, model, prompt, think)
        interruption = fake._pop(fake._interruptions)
        if body.get("stream") is False:
            return self._answer_at_once(body, pieces, interruption, self._final(
                body, tokens, cached, load_ns, generated, done_reason, started))
        self._start_stream()
        for index, (kind, text) in enumerate(pieces):
            if interruption and index == interruption[1]:
                return self._interrupt(interruption)
            message = {"role": "assistant", "content": text if kind == "content" else ""}
            if kind == "thinking":
                message["thinking"] = text
            self._send_line({"model": self._answer_model(body), "created_at": _now(), "message": message,
                             "done": False})
        if interruption:
            return self._interrupt(interruption)
        with fake._lock:
            fake._cache[model.name] = list(tokens) + fake._tokens.encode(answer)
        self._send_line(self._final(body, tokens, cached, load_ns, generated, done_reason, started))
        self._end_stream()

    def _generate(self, body, model, prompt, think):
        """The scripted answer cut into streamed pieces, stopped at num_predict like a real model."""
        reply = self.fake.reply
        answer = reply.answer(body, prompt) if callable(reply.answer) else reply.answer
        thinking = reply.thinking if think is not False and "thinking" in model.capabilities else ""
        num_predict = int((body.get("options") or {}).get("num_predict") or -1)
        candidates = [("thinking", p) for p in _chunks(thinking, reply.words_per_chunk)]
        candidates += [("content", p) for p in _chunks(answer, reply.words_per_chunk)]
        pieces, generated, done_reason = [], 0, reply.done_reason or "stop"
        for kind, text in candidates:
            count = len(self.fake._tokens.encode(text))
            if num_predict >= 0 and generated + count > num_predict:
                done_reason = "length"
                break
            pieces.append((kind, text))
            generated += count
        return answer, pieces, generated, done_reason

    def _final(self, body, tokens, cached, load_ns, generated, done_reason, started) -> dict:
        """Ollama's last line: durations in ns, prompt_eval_count = cached + evaluated tokens."""
        prompt_ns = (len(tokens) - cached) * PROMPT_NS_PER_TOKEN + 1_000_000
        eval_ns = max(generated, 1) * EVAL_NS_PER_TOKEN
        final = {
            "model": self._answer_model(body), "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": done_reason, "done": True,
            "total_duration": load_ns + prompt_ns + eval_ns + (time.monotonic_ns() - started),
            "prompt_eval_count": len(tokens), "prompt_eval_duration": prompt_ns,
            "eval_count": generated, "eval_duration": eval_ns,
        }
        if load_ns:
            final["load_duration"] = load_ns  # zero values are omitted, as Ollama does
        return final

    def _answer_at_once(self, body, pieces, interruption, final) -> None:
        """stream:false: one JSON object with the whole message and the final statistics."""
        if interruption:
            if interruption[0] == "error":
                return self._send_json(500, {"error": interruption[2]})
            return self._drop()
        final["message"]["content"] = "".join(t for k, t in pieces if k == "content")
        thinking = "".join(t for k, t in pieces if k == "thinking")
        if thinking:
            final["message"]["thinking"] = thinking
        self._send_json(200, final)

    def _interrupt(self, interruption) -> None:
        mode, _, error = interruption
        if mode == "error":
            self._send_line({"error": error})
            self._end_stream()
        elif mode == "no_done":
            self._end_stream()
        else:
            self._drop()


# --- pytest fixture and command line ------------------------------------------------------

try:
    import pytest
except ImportError:  # standalone use needs no pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def fake_ollama():
        """A running FakeOllama for one test."""
        with FakeOllama() as fake:
            yield fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Ollama server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--version", default="0.13.0", help="what /api/version reports")
    parser.add_argument("--answer", help="fixed answer text (default: cite the first passage)")
    parser.add_argument("--thinking", help="fixed thinking text")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args(argv)
    fake = FakeOllama(port=args.port, version=args.version, chunk_delay=args.chunk_delay)
    fake.script(answer=args.answer, thinking=args.thinking)
    print(f"Fake Ollama listening on {fake.url}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
