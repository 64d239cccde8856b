"""A protocol-faithful fake OpenAI-compatible server (as vLLM speaks it) on 127.0.0.1.

Usage in tests: `with FakeOpenAI() as fake:` gives `fake.url` for
`Settings(backend="openai", host=fake.url, model=fake.model)`. It serves GET /v1/models
(with vLLM's max_model_len and owned_by "vllm", so Folio treats it as vLLM), GET /version,
POST /tokenize (messages rendered with Qwen3's Hugging Face template, counted with the real
Qwen3 tokenizer) and POST /v1/chat/completions, streamed as server-sent events ("data: {...}"
chunks with delta.content / delta.reasoning_content, a finish_reason, a usage chunk with
prompt_tokens and prompt_tokens_details.cached_tokens, then "data: [DONE]") or answered
at once with stream false. A prompt plus max_tokens beyond max_model_len gets vLLM's HTTP
400. Prefix caching works like vLLM's: 16-token blocks identified by the chain of hashes
before them, so any earlier request's prefix counts as cached.

Realistic time: `prefill_s_per_1k` seconds per thousand uncached prompt tokens before the
first byte, `first_token_s` more, `chunk_delay` between streamed chunks; `max_parallel`
requests are served at once (vLLM's --max-num-seqs; more wait for a slot), each as fast as
if alone (a server with that many GPUs or batch headroom). `fake.peak` is the most requests
it ever served at once.

Script it per test: `fake.script(answer=...)` (text, or a function of (body, prompt));
the default, `folio_answer`, reads Folio's own prompts: a reading call reports the passages
sharing a word with the question ("quote" [ID] note, or NOTHING RELEVANT HERE), a composing
call cites the evidence, a one-call question cites the first passage. Faults:
`fake.fail_next(status, error)`, `fake.interrupt_next("error" | "drop" | "no_done", after=2)`,
`gate = fake.hold_next()`. Recorded: `fake.requests`, `fake.chat_bodies`, `fake.completions`
(prompt tokens, cached tokens, start and end of each). Standalone:
`python tests/fake_openai.py --port 8000 [--prefill-s-per-1k 0.5 --max-parallel 4]`.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "Qwen/Qwen3-14B"
MAX_MODEL_LEN = 131072
BLOCK = 16
NO_ANSWER = "The documents do not answer this question."
NOTHING = "NOTHING RELEVANT HERE"
ERROR_TOO_LONG = ("This model's maximum context length is {limit} tokens. However, you requested {total} tokens "
                  "({prompt} in the messages, {completion} in the completion). Please reduce the length of the "
                  "messages or completion.")

# Folio's prompt layouts: a passage under its ID (one call: "[kzt-3] text"; a plan's reading
# call: " [kzt-3]" on its own line, then the text), and an evidence item ("[kzt-3] where",
# then the quote in double quotes).
ONE_CALL_PASSAGE = re.compile(r"^\[([a-z]{3,12}-\d+)\] (.+)$", re.MULTILINE)
PLAN_PASSAGE = re.compile(r"^ \[([a-z]{3,12}-\d+)\]\n(.+)$", re.MULTILINE)
EVIDENCE_ITEM = re.compile(r'^\[([a-z]{3,12}-\d+)\][^\n]*\n"([^\n]*)"$', re.MULTILINE)
QUESTION = re.compile(r"Question: (.+?)(?: /no_think| /think)?(?:<\|im_end\|>|$)", re.DOTALL)
WORD = re.compile(r"\w{4,}")


# --- what the model says --------------------------------------------------------------------

def _question(prompt: str) -> str:
    found = QUESTION.findall(prompt)
    return found[-1] if found else ""


def _quote(text: str, words: int = 8) -> str:
    return " ".join(text.split()[:words]).rstrip(".,;:\"'")


def folio_answer(body: dict, prompt: str) -> str:
    """An answer that follows Folio's instructions, whatever the call (see the module docstring)."""
    system = (body.get("messages") or [{}])[0].get("content", "")
    if "read one portion of them" in system:
        return evidence_reply(prompt)
    if "Select the items that matter most" in system:
        return "\n".join(f'"{quote}" [{pid}] kept' for pid, quote in EVIDENCE_ITEM.findall(prompt)) or NOTHING
    if "answer from that evidence" in system:
        items = EVIDENCE_ITEM.findall(prompt)
        return " ".join(f'The documents say "{q}" [{pid}].' for pid, q in items) or NO_ANSWER
    match = ONE_CALL_PASSAGE.search(prompt)
    return f'The document says "{_quote(match.group(2))}" [{match.group(1)}].' if match else NO_ANSWER


def evidence_reply(prompt: str, question: str | None = None) -> str:
    """Evidence lines for the passages sharing a word (4+ letters) with the question."""
    words = {w.lower() for w in WORD.findall(question if question is not None else _question(prompt))}
    lines = [f'"{_quote(text)}" [{pid}] shares a word with the question'
             for pid, text in PLAN_PASSAGE.findall(prompt) if words & {w.lower() for w in WORD.findall(text)}]
    return "\n".join(lines) or NOTHING


# --- template and tokens --------------------------------------------------------------------

def render_hf_qwen3(messages: list[dict], enable_thinking: bool = True) -> str:
    """Qwen3's Hugging Face chat template (what vLLM renders), generation prompt added."""
    out = []
    for message in messages:
        role, content = message.get("role"), message.get("content", "")
        if role == "assistant":
            content = re.sub(r"<think>.*?</think>\s*", "", content, flags=re.DOTALL)
        out.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    out.append("<|im_start|>assistant\n" + ("" if enable_thinking else "<think>\n\n</think>\n\n"))
    return "".join(out)


class _Tokens:
    def __init__(self) -> None:
        from lib.reading.tokens import get_counter

        self.encode = get_counter("exact").encode


def _chunks(text: str, words: int) -> list[str]:
    parts = re.findall(r"\S+\s*|\s+", text)
    return ["".join(parts[i:i + words]) for i in range(0, len(parts), max(words, 1))]


@dataclass
class Reply:
    answer: str | Callable[[dict, str], str] = folio_answer
    thinking: str = "I look for the passages that bear on the question."
    words_per_chunk: int = 3


# --- the server -----------------------------------------------------------------------------

class FakeOpenAI:
    """A fake vLLM on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, port: int = 0, model: str = MODEL, max_model_len: int = MAX_MODEL_LEN,
                 prefill_s_per_1k: float = 0.0, first_token_s: float = 0.0, chunk_delay: float = 0.0,
                 max_parallel: int = 64, version: str = "0.8.5"):
        self.model = model
        self.max_model_len = max_model_len
        self.prefill_s_per_1k = prefill_s_per_1k
        self.first_token_s = first_token_s
        self.chunk_delay = chunk_delay
        self.version = version
        self.reply = Reply()
        self.requests: list[dict] = []
        self.completions: list[dict] = []
        self.in_flight = 0
        self.peak = 0
        self.holding = threading.Event()
        self._slots = threading.Semaphore(max_parallel)
        self._failures: list[tuple[int, str]] = []
        self._interruptions: list[tuple[str, int]] = []
        self._holds: list[threading.Event] = []
        self._blocks: set[int] = set()
        self._lock = threading.Lock()
        self._tokens = _Tokens()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeOpenAI":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
                         name="fake-openai").start()
        return self

    def stop(self) -> None:
        for gate in self._holds:
            gate.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------------------

    def script(self, answer=None, thinking: str | None = None, *, words_per_chunk: int = 3) -> "FakeOpenAI":
        self.reply = Reply(answer if answer is not None else folio_answer,
                           thinking if thinking is not None else Reply.thinking, words_per_chunk)
        return self

    def fail_next(self, status: int = 500, error: str = "The engine crashed (EngineDeadError).") -> "FakeOpenAI":
        """The next chat completion gets HTTP `status` with vLLM's error object."""
        with self._lock:
            self._failures.append((status, error))
        return self

    def interrupt_next(self, mode: str = "error", *, after: int = 2) -> "FakeOpenAI":
        """The next streamed completion stops after `after` chunks: an error chunk, a dropped socket, or no [DONE]."""
        with self._lock:
            self._interruptions.append((mode, after))
        return self

    def hold_next(self) -> threading.Event:
        gate = threading.Event()
        with self._lock:
            self._holds.append(gate)
        return gate

    @property
    def chat_bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    # --- model work (used by the handler) --------------------------------------------------

    def render(self, body: dict) -> tuple[str, list[int]]:
        kwargs = body.get("chat_template_kwargs") or {}
        prompt = render_hf_qwen3(list(body.get("messages") or []), kwargs.get("enable_thinking", True) is not False)
        return prompt, self._tokens.encode(prompt)

    def cache(self, tokens: list[int]) -> int:
        """Tokens of `tokens` already cached (whole blocks), then cache this prompt's blocks."""
        hashes, chain = [], 0
        for start in range(0, len(tokens) - BLOCK + 1, BLOCK):
            chain = hash((chain, tuple(tokens[start:start + BLOCK])))
            hashes.append(chain)
        with self._lock:
            hits = 0
            for value in hashes:
                if value not in self._blocks:
                    break
                hits += 1
            self._blocks.update(hashes)
        return min(hits * BLOCK, max(len(tokens) - 1, 0))

    def enter(self) -> None:
        self._slots.acquire()
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
        self._slots.release()

    def pop(self, queue: list):
        with self._lock:
            return queue.pop(0) if queue else None


def _handler_for(fake: FakeOpenAI):
    class Handler(_Handler):
        pass

    Handler.fake = fake
    return Handler


class _Gone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAI

    def log_message(self, format, *args):
        pass

    def _json(self, status: int, data) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"object": "error", "message": message, "type": "BadRequestError", "param": None,
                            "code": status})

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _record(self, body) -> None:
        with self.fake._lock:
            self.fake.requests.append({"method": self.command, "path": self.path, "body": body})

    def do_GET(self):
        self._record(None)
        fake = self.fake
        if self.path == "/v1/models":
            return self._json(200, {"object": "list", "data": [{
                "id": fake.model, "object": "model", "created": 1700000000, "owned_by": "vllm",
                "root": fake.model, "parent": None, "max_model_len": fake.max_model_len}]})
        if self.path == "/version":
            return self._json(200, {"version": fake.version})
        if self.path == "/health":
            return self._json(200, {})
        self._error(404, f"Not Found: {self.path}")

    def do_POST(self):
        body = self._body()
        self._record(body)
        if self.path == "/tokenize":
            return self._tokenize(body)
        if self.path != "/v1/chat/completions":
            return self._error(404, f"Not Found: {self.path}")
        if body.get("model") != self.fake.model:
            return self._error(404, f"The model `{body.get('model')}` does not exist.")
        failure = self.fake.pop(self.fake._failures)
        if failure:
            return self._error(*failure)
        try:
            self._complete(body)
        except _Gone:
            self.close_connection = True

    def _tokenize(self, body: dict) -> None:
        if "messages" in body:
            kwargs = body.get("chat_template_kwargs") or {}
            prompt = render_hf_qwen3(body["messages"], kwargs.get("enable_thinking", True) is not False)
        else:
            prompt = str(body.get("prompt", ""))
        tokens = self.fake._tokens.encode(prompt)
        self._json(200, {"count": len(tokens), "max_model_len": self.fake.max_model_len, "tokens": tokens})

    # --- completions ---------------------------------------------------------------------

    def _complete(self, body: dict) -> None:
        fake = self.fake
        prompt, tokens = fake.render(body)
        max_tokens = int(body.get("max_tokens") or 16)
        if len(tokens) + max_tokens > fake.max_model_len:
            return self._error(400, ERROR_TOO_LONG.format(limit=fake.max_model_len, total=len(tokens) + max_tokens,
                                                          prompt=len(tokens), completion=max_tokens))
        fake.enter()
        started = time.monotonic()
        try:
            cached = fake.cache(tokens)
            gate = fake.pop(fake._holds)
            if gate is not None:
                fake.holding.set()
                gate.wait()
                fake.holding.clear()
            time.sleep(fake.prefill_s_per_1k * (len(tokens) - cached) / 1000 + fake.first_token_s)
            pieces, generated, finish = self._generate(body, prompt, max_tokens)
            usage = {"prompt_tokens": len(tokens), "completion_tokens": generated,
                     "total_tokens": len(tokens) + generated, "prompt_tokens_details": {"cached_tokens": cached}}
            if body.get("stream"):
                self._stream(body, pieces, finish, usage)
            else:
                self._at_once(pieces, finish, usage)
        finally:
            fake.leave()
            with fake._lock:
                fake.completions.append({"prompt_tokens": len(tokens), "cached_tokens": cached,
                                         "started": started, "ended": time.monotonic()})

    def _generate(self, body: dict, prompt: str, max_tokens: int):
        reply = self.fake.reply
        answer = reply.answer(body, prompt) if callable(reply.answer) else reply.answer
        thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking") and reply.thinking or ""
        candidates = [("reasoning_content", p) for p in _chunks(thinking, reply.words_per_chunk)]
        candidates += [("content", p) for p in _chunks(answer, reply.words_per_chunk)]
        pieces, generated, finish = [], 0, "stop"
        for kind, text in candidates:
            count = len(self.fake._tokens.encode(text))
            if generated + count > max_tokens:
                finish = "length"
                break
            pieces.append((kind, text))
            generated += count
        return pieces, generated, finish

    def _chunk(self, body: dict, delta: dict, finish=None, usage=None) -> dict:
        data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model"), "choices": [] if usage else [{"index": 0, "delta": delta,
                                                                            "logprobs": None, "finish_reason": finish}]}
        if usage:
            data["usage"] = usage
        return data

    def _send(self, text: str) -> None:
        raw = text.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Gone from exc

    def _event(self, data) -> None:
        self._send("data: " + (data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)) + "\n\n")
        if self.fake.chunk_delay:
            time.sleep(self.fake.chunk_delay)

    def _stream(self, body: dict, pieces, finish: str, usage: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        interruption = self.fake.pop(self.fake._interruptions)
        self._event(self._chunk(body, {"role": "assistant", "content": ""}))
        for index, (kind, text) in enumerate(pieces):
            if interruption and index == interruption[1]:
                return self._interrupt(interruption[0])
            self._event(self._chunk(body, {kind: text}))
        if interruption:
            return self._interrupt(interruption[0])
        self._event(self._chunk(body, {}, finish=finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(self._chunk(body, {}, usage=usage))
        self._event("[DONE]")
        self._send("")  # the chunked terminator (an empty chunk)

    def _interrupt(self, mode: str) -> None:
        if mode == "error":
            self._event({"object": "error", "message": "The engine died mid-request (EngineDeadError).",
                         "type": "InternalServerError", "param": None, "code": 500})
            self._send("")
        elif mode == "no_done":
            self._send("")
        else:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True

    def _at_once(self, pieces, finish: str, usage: dict) -> None:
        message = {"role": "assistant", "content": "".join(t for k, t in pieces if k == "content")}
        reasoning = "".join(t for k, t in pieces if k == "reasoning_content")
        if reasoning:
            message["reasoning_content"] = reasoning
        self._json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                         "model": self.fake.model, "choices": [{"index": 0, "message": message,
                                                                "finish_reason": finish}], "usage": usage})


try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None:

    @pytest.fixture
    def fake_openai():
        with FakeOpenAI() as fake:
            yield fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible (vLLM) server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--max-model-len", type=int, default=MAX_MODEL_LEN)
    parser.add_argument("--prefill-s-per-1k", type=float, default=0.0)
    parser.add_argument("--first-token-s", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--max-parallel", type=int, default=64)
    args = parser.parse_args(argv)
    fake = FakeOpenAI(port=args.port, model=args.model, max_model_len=args.max_model_len,
                      prefill_s_per_1k=args.prefill_s_per_1k, first_token_s=args.first_token_s,
                      chunk_delay=args.chunk_delay, max_parallel=args.max_parallel)
    print(f"Fake OpenAI-compatible server listening on {fake.url}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
