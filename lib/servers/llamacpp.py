"""llama.cpp's own server (`llama-server`): reading what it says about itself and about a call.

The OpenAI backend (openai.py) does the HTTP; these functions build llama-server's request
bodies and read its answers. Shapes checked against the llama.cpp that llama-cpp-python
0.3.36 vendors (tools/server) and live in tests/test_real_engine.py:

- GET /props: {"default_generation_settings": {"n_ctx": <the slot's context>, "params": {...}},
  "total_slots", "build_info", "chat_template", "model_path", ...}. The slot's n_ctx is what
  one request can use: the -c context, shared among --parallel slots unless the KV cache is
  unified. It is the real limit, whatever the model was trained for.
- POST /apply-template {"messages", "chat_template_kwargs"} -> {"prompt": "<rendered text>"},
  then POST /tokenize {"content", "add_special": true, "parse_special": true} -> {"tokens": [...]}:
  the prompt tokenized exactly as a chat completion's prompt is (BOS where the model adds one,
  special-token text parsed as special tokens).
- A streamed answer ends with a chunk carrying `timings` (cache_n: prompt tokens reused from
  the slot's cache; prompt_n: prompt tokens evaluated for this call; prompt_ms, predicted_n,
  predicted_ms) and, when asked (stream_options.include_usage), `usage`. Older servers send
  only `timings`, so Folio reads the prompt count from there: cache_n + prompt_n.
"""

from __future__ import annotations

from typing import Any

FLAVOUR = "llama.cpp"


def looks_like_props(data: Any) -> bool:
    """True when a GET /props answer is llama-server's (how Folio recognises the server)."""
    return isinstance(data, dict) and isinstance(data.get("default_generation_settings"), dict)


def slot_context(props: dict | None) -> int | None:
    """The slot's context (n_ctx) from GET /props."""
    value = ((props or {}).get("default_generation_settings") or {}).get("n_ctx")
    return value if _positive_int(value) else None


def total_slots(props: dict | None) -> int | None:
    """How many requests the server serves at once (its --parallel), from GET /props."""
    value = (props or {}).get("total_slots")
    return value if _positive_int(value) else None


def build_info(props: dict | None) -> str | None:
    """The server's build (e.g. 'b6869-0c1e570'), shown as its version."""
    value = (props or {}).get("build_info")
    return str(value) if value else None


def apply_template_body(messages: list[dict], think: bool) -> dict:
    """POST /apply-template: the chat rendered exactly as a completion of it would be."""
    return {"messages": [dict(m) for m in messages], "chat_template_kwargs": {"enable_thinking": bool(think)}}


def rendered_prompt(data: dict | None) -> str | None:
    prompt = (data or {}).get("prompt")
    return prompt if isinstance(prompt, str) else None


def tokenize_body(prompt: str) -> dict:
    """POST /tokenize with the options a chat completion's prompt is tokenized with."""
    return {"content": prompt, "add_special": True, "parse_special": True}


def token_count(data: dict | None) -> int | None:
    tokens = (data or {}).get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def timing_stats(timings: dict | None) -> dict:
    """CallStats fields from a stream's `timings`: prompt tokens read (cache_n + prompt_n),
    of which reused from the cache, evaluation counts and durations (ms -> s)."""
    timings = timings or {}
    stats: dict = {}
    cache_n, prompt_n = timings.get("cache_n"), timings.get("prompt_n")
    if _count(cache_n) and _count(prompt_n):
        stats["prompt_eval_count"] = cache_n + prompt_n
        stats["cached_tokens"] = cache_n
    if _count(timings.get("predicted_n")):
        stats["eval_count"] = timings["predicted_n"]
    for ms_key, field in (("prompt_ms", "prompt_eval_duration_s"), ("predicted_ms", "eval_duration_s")):
        value = timings.get(ms_key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            stats[field] = round(value / 1000, 6)
    return stats


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any) -> bool:
    return _count(value) and value > 0
