"""What became of a question, in words: the answer's state first, then the model, the times and
the cache, as the app, History and every export say them (plain text, no I/O).

    answer_state(turn)  -> State('prompt_cut', 'error', 'Not read whole',
                                 'The server read only 50 of the 430 prompt tokens Folio sent: ...')
    turn_notes(turn)    -> the warnings the state does not already say
    model_line(turn)    -> 'Answered by smollm2.gguf (llama.cpp server); Folio was set to qwen3-128k:14b.'
    time_line(turn)     -> 'First token after 41 s; complete after 63 s, counted from the question ...'
    cache_text(call)    -> 'Cache: 5,236 of 5,300 prompt tokens reused (the server says so).'

A turn is the plain dict of lib/output/turns.py (lib's Answer.to_json() plus what the page
adds); turns saved before `status`, `timings` or a call's `cache` existed are read too.
"""

from __future__ import annotations

from dataclasses import dataclass

from .presenting import TIMING_MATTERS_TOKENS, cache_line, format_seconds

STATUSES = ("answered", "prompt_cut", "interrupted", "stopped")
STATUS_WORDS = {
    "answered": "answered",
    "prompt_cut": "not read whole",
    "interrupted": "interrupted",
    "stopped": "stopped",
}
"""One or two words per state, for History rows and the CSV."""
PROMPT_CUT_MARK = "did not read what Folio sent"  # lib's warning when the server read a different count


@dataclass(frozen=True)
class State:
    """The state of an answer, said first wherever the answer is shown."""

    status: str
    """answered | prompt_cut | interrupted | stopped"""
    level: str
    """ok | warning | error: how loudly to say it"""
    title: str
    text: str
    """One or two sentences with the numbers ('' when answered)."""

    @property
    def line(self) -> str:
        """'Not read whole: the server read only ...' (plain text; '' when answered)."""
        return f"{self.title}: {self.text}" if self.text else ""


def turn_status(turn: dict) -> str:
    """The turn's status; derived for turns saved before lib reported one."""
    status = turn.get("status")
    if status in STATUSES:
        return status
    if turn.get("interrupted"):
        return "stopped" if _reason(turn).startswith("Stopped by you") else "interrupted"
    if any(PROMPT_CUT_MARK in str(w) and "fewer" in str(w) for w in turn.get("warnings") or []):
        return "prompt_cut"
    return "answered"


def answer_state(turn: dict) -> State:
    """What happened to the answer, before anything else about it."""
    status = turn_status(turn)
    if status == "prompt_cut":
        sent, read = prompt_counts(turn)
        counts = (f"The server read only {read:,} of the {sent:,} prompt tokens Folio sent"
                  if sent and read is not None else "The server read fewer prompt tokens than Folio sent")
        return State(status, "error", "Not read whole",
                     counts + ": part of the documents never reached the model, so this answer may miss "
                     "or misstate what they say. Do not rely on it. The server's context is probably "
                     "smaller than it says; check the server.")
    if status == "interrupted":
        return State(status, "error", "Interrupted",
                     _reason(turn) or "The server ended the answer before it was finished.")
    if status == "stopped":
        rest = _reason(turn).removeprefix("Stopped by you").lstrip(";,. ")
        return State(status, "warning", "Stopped by you", (rest[:1].upper() + rest[1:]) or "Nothing arrived.")
    return State(status, "ok", "Answered", "")


def _reason(turn: dict) -> str:
    reason = str(turn.get("reason") or turn.get("interrupt_reason") or "")
    return reason.removeprefix("Interrupted: ").strip()


def prompt_counts(turn: dict) -> tuple[int | None, int | None]:
    """(tokens sent, tokens the server read): the answer's prompt check, else its last call."""
    check = turn.get("prompt_check") or {}
    if check.get("sent") is not None and check.get("read") is not None:
        return int(check["sent"]), int(check["read"])
    calls = [c for c in turn.get("calls") or [] if isinstance(c, dict)]
    if calls:
        return calls[-1].get("prompt_tokens"), calls[-1].get("server_prompt_tokens")
    return None, None


def turn_notes(turn: dict) -> list[str]:
    """The turn's warnings minus what its state already says (said once, not twice)."""
    status = turn_status(turn)
    notes = []
    for warning in turn.get("warnings") or []:
        text = str(warning)
        if text.startswith("Interrupted:") and status in ("interrupted", "stopped"):
            continue
        if status == "prompt_cut" and PROMPT_CUT_MARK in text and "fewer" in text:
            continue
        if text not in notes:
            notes.append(text)
    return notes


# --- the model that answered ---------------------------------------------------------------------


def short_model(name: str) -> str:
    """A model file's name without its folders ('/models/smollm2.gguf' -> 'smollm2.gguf');
    names like 'Qwen/Qwen3-14B' or 'qwen3:14b' stay whole."""
    name = str(name or "")
    if name.startswith(("/", "./", "~")) or "\\" in name or name.lower().endswith(".gguf"):
        return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name


def answering_model(turn: dict) -> str:
    """The model the server said answered (the turn, its last call), else the configured name."""
    calls = [c for c in turn.get("calls") or [] if isinstance(c, dict)]
    for source in (turn, *reversed(calls), turn.get("settings") or {}):
        if source.get("model"):
            return str(source["model"])
    return ""


def configured_model(turn: dict) -> str:
    """The model name Folio was set to when it asked."""
    return str(turn.get("configured_model") or (turn.get("settings") or {}).get("model") or "")


def server_name(turn: dict) -> str:
    """'llama.cpp server b4567', 'Ollama 0.13.0' ('' when the turn does not say)."""
    server = turn.get("server") or {}
    return str(server.get("display") or server.get("server") or "")


def model_line(turn: dict) -> str:
    """'Answered by smollm2.gguf (llama.cpp server); Folio was set to qwen3-128k:14b.'"""
    model = answering_model(turn)
    if not model:
        return ""
    server = server_name(turn)
    line = f"Answered by {short_model(model)}" + (f" ({server})" if server else "")
    configured = configured_model(turn)
    if configured and configured != model and short_model(configured) != short_model(model):
        line += f"; Folio was set to {configured}"
    return line + "."


def conversation_model(settings: dict) -> str:
    """The model a saved conversation's first answer came from, for a History row:
    'smollm2.gguf (set to qwen3-128k:14b)' when the server answered with another model."""
    answered, configured = str(settings.get("answered_by") or ""), str(settings.get("model") or "")
    if answered and configured and short_model(answered) != short_model(configured):
        return f"{short_model(answered)} (set to {configured})"
    return short_model(answered or configured)


# --- times -----------------------------------------------------------------------------------


def times(turn: dict) -> dict:
    """{'first_token_s', 'total_s', 'check_s', 'count_s'}: the answer's timings (from the moment
    the question was asked, every request included), else its calls' (older turns)."""
    timings = dict(turn.get("timings") or {})
    calls = [c for c in turn.get("calls") or [] if isinstance(c, dict)]
    if timings.get("first_token_s") is None:
        timings["first_token_s"] = next((c.get("first_token_s") for c in calls
                                         if c.get("first_token_s") is not None), None)
    if timings.get("total_s") is None:
        totals = [c.get("total_s") for c in calls if isinstance(c.get("total_s"), (int, float))]
        timings["total_s"] = max(totals) if totals else None
    return timings


def time_line(turn: dict) -> str:
    """First token and whole answer, counted from the question (what came before included)."""
    t = times(turn)
    first, total = t.get("first_token_s"), t.get("total_s")
    if first is None and total is None:
        return ""
    before = []
    if (t.get("check_s") or 0) >= 0.05:
        before.append(f"checking the server {format_seconds(t['check_s'])}")
    if (t.get("count_s") or 0) >= 0.05:
        before.append(f"the server's prompt count {format_seconds(t['count_s'])}")
    included = f" ({', '.join(before)} included)" if before else ""
    origin = "the start of its run" if t.get("counted_from") == "run" else "the question"
    if first is None:
        end = "Stopped" if turn_status(turn) == "stopped" else "Ended"
        return f"No word arrived; {end.lower()} after {format_seconds(total)}, counted from {origin}{included}."
    line = f"First token after {format_seconds(first)}"
    if total is not None:
        line += f"; complete after {format_seconds(total)}"
    return line + f", counted from {origin}{included}."


# --- the cache -------------------------------------------------------------------------------


def cache_text(call: dict, slowest_s_per_token: float | None = None, *, follow_up: bool = False) -> str:
    """Whether the server reused its cached prefix, from what it reported (lib's call['cache']),
    'unknown' where it says nothing."""
    cache = call.get("cache")
    prompt = call.get("server_prompt_tokens") or call.get("prompt_tokens")
    if not isinstance(cache, dict):  # a turn saved before lib judged the cache
        return cache_line(call.get("cached_tokens"), call.get("server_prompt_tokens"), call.get("prompt_eval_s"),
                          slowest_s_per_token, follow_up=follow_up)
    state, source, tokens, read_s = cache.get("state"), cache.get("source"), cache.get("tokens"), cache.get("read_s")
    of = f" of {prompt:,}" if prompt else ""
    if source == "server":
        if state == "reused" and tokens:
            return f"Cache: {tokens:,}{of} prompt tokens reused (the server says so)."
        return "Cache: nothing reused (the server says so): it read the whole prompt."
    if state == "reused":
        took = f" in {format_seconds(read_s)}" if read_s is not None else ""
        return f"Cache: reused (the server read {prompt or 0:,} prompt tokens{took}: only what was new)."
    if source == "timing" and read_s is not None and prompt:
        return _timing_only(prompt, read_s, slowest_s_per_token, follow_up)
    return "Cache: unknown (the server does not say whether it reused its cache)."


def _timing_only(prompt: int, read_s: float, slowest_s_per_token: float | None, follow_up: bool) -> str:
    """A read slower than a cached one (lib cannot tell from the speed alone): an earlier full
    read in this conversation still tells a reuse, at less than half its cost per token."""
    took = format_seconds(read_s)
    if slowest_s_per_token and read_s / prompt < slowest_s_per_token * 0.5:
        return (f"Cache: reused (the server read {prompt:,} prompt tokens in {took}, less than half the "
                "time per token of the first full read).")
    if follow_up and slowest_s_per_token and prompt >= TIMING_MATTERS_TOKENS:
        return f"Cache: not reused; the server read the whole prompt again ({took})."
    return (f"Cache: unknown (the server read {prompt:,} prompt tokens in {took} and does not say "
            "whether any came from its cache).")
