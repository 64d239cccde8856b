"""The probe's grid and verdict: plain data and pure judging (no I/O, no server).

    plan = ProbePlan(...)                     # lengths x depths, what it costs (see lib/asking/probe.py)
    cells = judge_row(stack, answer, citations, length_tokens=..., sent=..., read=..., ...)
    verdict = verdict_of(plan, rows, model="qwen3-128k:14b", backend="ollama")

A cell (one length, one depth) is green when the answer gave the fact and cited the passage
holding it with a verified quote, amber when it gave the fact without that, red when it missed
it, and grey when the server did not read the part of the prompt that holds it (it read fewer
tokens than were sent; servers that cut keep the tail, as Ollama does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from . import haystack

ANSWER_TOKENS_PER_FACT = 45
"""About what a cited answer takes per fact (code, quote, ID): for the time estimate."""
STATUSES = ("green", "amber", "red", "grey")
STATUS_WORDS = {
    "green": "found and cited, quote verified",
    "amber": "found, citation not verified",
    "red": "missed",
    "grey": "not read by the server",
}
EXIT_READ_ALL = 0
EXIT_NOT_READ = 4


@dataclass(frozen=True)
class Speed:
    """How fast this server and model worked before: prompt tokens read, answer tokens written, per second."""

    prompt_tps: float
    answer_tps: float | None = None
    measured_at: str = ""


@dataclass(frozen=True)
class ProbePlan:
    """What a probe will do: one call per length, every depth in each."""

    context: int
    """The real context: min(configured, the model's trained context)."""
    configured_context: int
    trained_context: int | None
    fractions: tuple[float, ...]
    lengths: tuple[int, ...]
    """Prompt tokens of each call (Folio's exact count), in the order they run."""
    depths: tuple[int, ...]
    think: bool
    reserved: int
    notes: tuple[str, ...] = ()
    """What the plan changed from what was asked (a length capped to leave the answer its room)."""

    @property
    def calls(self) -> int:
        return len(self.lengths)

    @property
    def tokens(self) -> int:
        """Prompt tokens the server will read in all."""
        return sum(self.lengths)

    @property
    def cells(self) -> int:
        return len(self.lengths) * len(self.depths)

    def seconds(self, speed: Speed | None) -> float | None:
        """Estimated time from the server's measured speed; None when no speed is known."""
        if speed is None or not speed.prompt_tps:
            return None
        answer = self.calls * len(self.depths) * ANSWER_TOKENS_PER_FACT
        return self.tokens / speed.prompt_tps + (answer / speed.answer_tps if speed.answer_tps else 0.0)

    def cost_text(self, speed: Speed | None) -> str:
        """'5 calls, 333,446 prompt tokens for the server to read; about 12 min at ...' or '... time unknown ...'."""
        head = (f"{self.calls} call{'s' if self.calls != 1 else ''} ({len(self.lengths)} length"
                f"{'s' if len(self.lengths) != 1 else ''} x {len(self.depths)} depth{'s' if len(self.depths) != 1 else ''}), "
                f"{self.tokens:,} prompt tokens for the server to read")
        seconds = self.seconds(speed)
        notes = "".join(" " + note for note in self.notes)
        if seconds is None:
            return head + "; time unknown: no speed measured yet for this server and model." + notes
        return (head + f"; about {duration_text(seconds)} at the {speed.prompt_tps:,.0f} prompt tokens/s "
                "this server and model showed before." + notes)

    def to_json(self) -> dict:
        return {
            "context": self.context, "configured_context": self.configured_context,
            "trained_context": self.trained_context, "fractions": list(self.fractions),
            "lengths": list(self.lengths), "depths": list(self.depths), "think": self.think,
            "reserved": self.reserved, "calls": self.calls, "tokens": self.tokens, "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict) -> "ProbePlan":
        return cls(
            context=int(data["context"]), configured_context=int(data["configured_context"]),
            trained_context=data.get("trained_context"), fractions=tuple(data["fractions"]),
            lengths=tuple(data["lengths"]), depths=tuple(data["depths"]), think=bool(data["think"]),
            reserved=int(data["reserved"]), notes=tuple(data.get("notes", ())),
        )


def duration_text(seconds: float) -> str:
    """'45 s', '12 min', '1 h 20 min'."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


# -------------------------------------------------------------------------------- the result


@dataclass
class ProbeCell:
    """One length x depth: what the answer and the server did with the fact planted there."""

    length_tokens: int
    depth: int
    found: bool
    cited: bool
    """A citation points at the passage that holds the fact."""
    verified: bool
    """...and its quote was found in that passage."""
    sent_tokens: int
    server_read_tokens: int | None
    read: bool | None
    """Whether the server read the part of the prompt holding the fact (None: it did not say)."""
    passage: str = ""
    code: str = ""

    @property
    def status(self) -> str:
        """green (found, cited, verified) | amber (found, not verified) | red (missed) | grey (not read)."""
        if self.found:
            return "green" if self.verified else "amber"
        return "grey" if self.read is False else "red"

    def to_json(self) -> dict:
        return {
            "length_tokens": self.length_tokens, "depth": self.depth, "found": self.found,
            "cited": self.cited, "verified": self.verified, "sent_tokens": self.sent_tokens,
            "server_read_tokens": self.server_read_tokens, "status": self.status, "read": self.read,
            "passage": self.passage, "code": self.code,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ProbeCell":
        fields = ("length_tokens", "depth", "found", "cited", "verified", "sent_tokens", "server_read_tokens",
                  "read", "passage", "code")
        return cls(**{k: data.get(k) for k in fields})


@dataclass
class ProbeRow:
    """One call: a document of one length with a fact at every depth."""

    fraction: float
    length_tokens: int
    """Folio's exact count of the prompt sent."""
    sent_tokens: int
    """The prompt as the reference counts it: the server's own count where it has one, else Folio's."""
    server_read_tokens: int | None
    read_all: bool | None
    cells: list[ProbeCell]
    answer: str = ""
    warnings: list[str] = field(default_factory=list)
    first_token_s: float | None = None
    total_s: float | None = None
    prompt_eval_s: float | None = None
    eval_count: int | None = None
    eval_s: float | None = None
    cached_tokens: int | None = None
    invalid_citations: int = 0
    """Citations in the answer to passage IDs that do not exist."""

    def to_json(self) -> dict:
        return {
            "invalid_citations": self.invalid_citations,
            "fraction": self.fraction, "length_tokens": self.length_tokens, "sent_tokens": self.sent_tokens,
            "server_read_tokens": self.server_read_tokens, "read_all": self.read_all,
            "cells": [c.to_json() for c in self.cells], "answer": self.answer, "warnings": list(self.warnings),
            "first_token_s": self.first_token_s, "total_s": self.total_s, "prompt_eval_s": self.prompt_eval_s,
            "eval_count": self.eval_count, "eval_s": self.eval_s, "cached_tokens": self.cached_tokens,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ProbeRow":
        row = cls(**{k: v for k, v in data.items() if k != "cells" and k in cls.__dataclass_fields__},
                  cells=[ProbeCell.from_json(c) for c in data.get("cells", [])])
        return row


@dataclass
class Verdict:
    text: str
    """One line in plain words, with what to do when something is wrong."""
    advice: str
    read_all: bool | None
    kind: str
    """ok | model (the server reads everything, the model misses or cites badly) | cut | unknown | empty"""


@dataclass
class ProbeResult:
    """A finished (or stopped) probe: every row, the verdict, and where it ran."""

    plan: ProbePlan
    rows: list[ProbeRow]
    verdict: Verdict
    host: str
    model: str
    backend: str
    date: str
    counter: str = "exact"
    cancelled: bool = False
    id: int | None = None
    """The store's id once saved."""

    @property
    def read_all(self) -> bool | None:
        return self.verdict.read_all

    @property
    def cells(self) -> list[ProbeCell]:
        return [cell for row in self.rows for cell in row.cells]

    @property
    def exit_status(self) -> int:
        """0 when the server read every prompt whole, 4 when it did not (or would not say)."""
        return EXIT_READ_ALL if self.read_all else EXIT_NOT_READ

    def to_json(self) -> dict:
        """The `python -m lib probe --json` object."""
        return {
            "verdict": self.verdict.text,
            "read_all": self.read_all,
            "context": self.plan.context,
            "cells": [c.to_json() for c in self.cells],
            "advice": self.verdict.advice,
            "kind": self.verdict.kind,
            "configured_context": self.plan.configured_context,
            "trained_context": self.plan.trained_context,
            "depths": list(self.plan.depths),
            "lengths": [r.length_tokens for r in self.rows],
            "rows": [r.to_json() for r in self.rows],
            "plan": self.plan.to_json(),
            "host": self.host, "model": self.model, "backend": self.backend, "date": self.date,
            "counter": self.counter, "cancelled": self.cancelled, "id": self.id,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ProbeResult":
        return cls(
            plan=ProbePlan.from_json(data["plan"]), rows=[ProbeRow.from_json(r) for r in data.get("rows", [])],
            verdict=Verdict(data.get("verdict", ""), data.get("advice", ""), data.get("read_all"),
                            data.get("kind", "")),
            host=data.get("host", ""), model=data.get("model", ""), backend=data.get("backend", ""),
            date=data.get("date", ""), counter=data.get("counter", "exact"),
            cancelled=bool(data.get("cancelled")), id=data.get("id"),
        )

    def grid(self) -> list[list[ProbeCell]]:
        """Rows of cells (one row per length, one cell per depth), shortest length first."""
        return [list(row.cells) for row in self.rows]


# ---------------------------------------------------------------------------------- judging


def read_whole(sent: int, read: int | None, exact: bool) -> bool | None:
    """Whether the server read (about) every token sent; None when it did not say.

    A few tokens either way are template details (a BOS token); an estimate over-counts by
    design (up to 2.4x on real documents), so only a far smaller count means a cut there.
    """
    if read is None:
        return None
    allowed = max(16, int(sent * 0.01)) if exact else int(sent * 0.65)
    return read >= sent - allowed


def judge_row(stack: haystack.Haystack, answer: str, citations, *, length_tokens: int, sent: int,
              read: int | None, read_all: bool | None, offset: int, fraction: float = 0.0) -> list[ProbeCell]:
    """The cells of one call: per depth, found / cited / verified / read by the server."""
    cells = []
    for fact in stack.facts:
        passage = stack.passage_of[fact.depth]
        cited = [c for c in citations if c.id.lower() == passage.lower()]
        position = offset + stack.position_of[fact.depth] * stack.rendered_tokens
        cells.append(ProbeCell(
            length_tokens=length_tokens, depth=fact.depth, found=fact.found_in(answer), cited=bool(cited),
            verified=any(c.status == "verified" for c in cited), sent_tokens=sent, server_read_tokens=read,
            read=_fact_read(position, length_tokens, sent, read, read_all), passage=passage, code=fact.code,
        ))
    return cells


def _fact_read(position: float, length_tokens: int, sent: int, read: int | None, read_all: bool | None) -> bool | None:
    """Whether the part holding the fact was read: servers that cut keep the tail (Ollama, llama.cpp)."""
    if read_all is None or read_all:
        return read_all
    cut = (length_tokens - length_tokens * (read or 0) / max(sent, 1))  # in Folio's tokens
    return position >= cut


# ---------------------------------------------------------------------------------- verdict


def _depths_text(depths: Sequence[int]) -> str:
    items = [f"{d} %" for d in sorted(set(depths))]
    if len(items) == 1:
        return f"depth {items[0]}"
    return "depths " + ", ".join(items[:-1]) + f" and {items[-1]}"


def _lengths_text(missed_lengths: Sequence[int], all_lengths: Sequence[int]) -> str:
    missed = sorted(set(missed_lengths))
    later = [n for n in sorted(all_lengths) if n >= missed[0]]
    if missed == later and len(missed) > 1:
        return f"in prompts from {missed[0]:,} tokens on"
    if len(missed) == 1:
        return f"in the {missed[0]:,}-token prompt"
    return "in prompts of " + ", ".join(f"{n:,}" for n in missed[:-1]) + f" and {missed[-1]:,} tokens"


def _context_advice(model: str, backend: str, needed: int) -> str:
    """How to give the model `needed` tokens on this kind of server."""
    if backend == "ollama":
        return (f"`ollama show {model}` must say context length {needed:,} or more: build the 128k model from "
                "Folio's Modelfile, and check OLLAMA_CONTEXT_LENGTH")
    return (f"start it with a context of {needed:,} or more: llama.cpp `-c {needed}` with one slot "
            f"(`--parallel 1`), vLLM `--max-model-len {needed}`")


def verdict_of(plan: ProbePlan, rows: Sequence[ProbeRow], *, model: str, backend: str, counter: str = "exact",
               cancelled: bool = False) -> Verdict:
    """The one-line verdict in plain words, and what to do."""
    if not rows:
        return Verdict("The probe was stopped before any call finished: nothing was measured.",
                       "Run it again and let at least one call finish.", None, "empty")
    stopped = (f" (stopped after {len(rows)} of {plan.calls} calls)" if cancelled and len(rows) < plan.calls else "")
    cut = [r for r in rows if r.read_all is False]
    if cut:
        return _cut_verdict(plan, rows, cut, model, backend, stopped)
    model_part, advice, kind = _model_part(plan, rows)
    largest = max(r.length_tokens for r in rows)
    if any(r.read_all is None for r in rows):
        text = (f"Your server does not say how many prompt tokens it read, so Folio cannot confirm it reads "
                f"the whole context{stopped}; {model_part}")
        advice = ("Use a server that reports its prompt count (Ollama, llama.cpp's llama-server, vLLM with "
                  "usage) to check for silent cuts. " + advice).strip()
        return Verdict(text, advice, None, "unknown")
    if largest >= plan.context - plan.reserved - max(int(plan.context * 0.06), 64):
        reach = f"reads the whole {plan.context:,}-token context"
    else:
        reach = f"reads whole prompts up to {largest:,} tokens (the longest tried, of its {plan.context:,}-token context)"
    held = ""
    if plan.trained_context and plan.trained_context < plan.configured_context:
        held = f" (the model holds {plan.trained_context:,} tokens, not the {plan.configured_context:,} configured)"
    estimate = " (Folio's counts are estimates here)" if counter != "exact" else ""
    return Verdict(f"Your server {reach}{held}{estimate} and {model_part}{stopped}", advice, True, kind)


def _model_part(plan: ProbePlan, rows: Sequence[ProbeRow]) -> tuple[str, str, str]:
    cells = [c for r in rows for c in r.cells]
    missed = [c for c in cells if not c.found]
    unverified = [c for c in cells if c.found and not c.verified]
    if missed:
        where = f"at {_depths_text([c.depth for c in missed])} {_lengths_text([c.length_tokens for c in missed], [r.length_tokens for r in rows])}"
        text = f"this model missed {len(missed)} of {len(cells)} facts: {where}."
        advice = ("Answers about long documents may miss what sits there: ask about smaller parts, turn "
                  "thinking on, or use a stronger model.")
        return text, advice, "model"
    if unverified:
        invalid = sum(r.invalid_citations for r in rows)
        why = f" ({invalid} citations name passages that do not exist)" if invalid else ""
        text = (f"this model finds facts at every depth, but for {len(unverified)} of {len(cells)} it did not cite "
                f"the passage holding the fact with a verified quote{why}.")
        return text, "Check its citations before relying on them, or use a stronger model.", "model"
    return "this model finds facts at every depth.", "", "ok"


def _cut_verdict(plan: ProbePlan, rows, cut, model: str, backend: str, stopped: str) -> Verdict:
    reads = [r.server_read_tokens or 0 for r in cut]
    whole = [r for r in rows if r.read_all]
    worst = max(cut, key=lambda r: r.sent_tokens)
    cap = max(reads)
    seen = f"of {worst.sent_tokens:,} tokens sent it read {worst.server_read_tokens or 0:,}"
    if len(cut) == 1 or whole or max(reads) <= min(reads) * 1.05:
        text = f"Your server stops reading at about {cap:,} tokens: documents beyond that are cut ({seen}){stopped}."
        advice = (f"Give the model the whole context on the server ({_context_advice(model, backend, plan.context)}); "
                  f"or set Folio's context to {cap:,} (Settings, or FOLIO_CONTEXT) so it never sends more than "
                  "the server reads.")
    else:
        share = round(100 * sum(reads) / max(sum(r.sent_tokens for r in cut), 1))
        text = (f"Your server reads only about {share} % of each prompt ({seen}): the start of every document "
                f"is cut{stopped}.")
        advice = ("This is no fixed context limit: the server, or a proxy between Folio and it, drops the start "
                  "of every prompt. Check its truncation and context-shift settings, and the context it gives "
                  f"the model ({_context_advice(model, backend, plan.context)}).")
    return Verdict(f"{text} {advice}", advice, False, "cut")
