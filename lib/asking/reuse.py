"""Whether the server reused its cached prompt prefix, judged only from what the server says.

    cache_reuse(stats, prompt_tokens)
    -> {'state': 'reused' | 'not_reused' | 'unknown', 'tokens': 5236 | None,
        'source': 'server' | 'timing' | None, 'read_s': 0.41 | None}

What each server says (the sources of lib/servers/openai.py and ollama.py):
- vLLM: usage.prompt_tokens_details.cached_tokens (with --enable-prompt-tokens-details);
  llama.cpp's server: timings.cache_n. Both count the reused tokens: source 'server'.
- Ollama: prompt_eval_count counts every prompt token, cached or not, and
  prompt_eval_duration only the time spent on the new ones; a read faster than any GPU can
  read a prompt means the prefix came from the cache (source 'timing'). A slower read says
  nothing by itself (a small prompt reads fast either way, a CPU reads slowly either way).
- llama-cpp-python's server reports nothing: 'unknown'.
"""

from __future__ import annotations

from ..servers.protocol import CallStats

CACHED_READ_TOKENS_S = 50_000
"""Prompt tokens per second that no GPU reaches reading a prompt: only a reused (cached)
prefix explains a faster read. Reading 100k tokens takes a 24 GB card about a minute."""


def cache_reuse(stats: CallStats | None, prompt_tokens: int | None = None) -> dict:
    """The cache judgement of one call (see the module docstring)."""
    read_s = stats.prompt_eval_duration_s if stats is not None else None
    report = {"state": "unknown", "tokens": None, "source": None, "read_s": read_s}
    if stats is None:
        return report
    if stats.cached_tokens is not None:
        reused = stats.cached_tokens > 0
        return {**report, "state": "reused" if reused else "not_reused", "tokens": stats.cached_tokens,
                "source": "server"}
    read = stats.prompt_eval_count or prompt_tokens
    if read_s is not None and read:
        if read_s <= 0 or read / read_s >= CACHED_READ_TOKENS_S:
            return {**report, "state": "reused", "source": "timing"}
        return {**report, "source": "timing"}
    return report
