"""The plan of a question: how many calls, what each reads, exact tokens, and how long.

    plan = make_plan(documents, "Who inherits the estate?", settings, mode="auto",
                     context=40960, ranker=rank_documents, speed=ServerSpeed.from_calls(calls))
    plan.mode            # 'one' when everything fits one call; else 'auto' with plan.alternatives
    plan.calls           # [PlannedCall(index, pieces, prompt_tokens, ...)]: exact, as they will be sent
    plan.to_json(), describe_plan(plan)

Modes:
- one: today's single call (lib/asking/answering.py), when everything fits.
- relevant: rank the selection by relevance to the question, read whole the best-ranked
  documents that fit one call; the plan names every document with its rank, read or not.
- all: every document read. Whole documents are packed into as few calls as fit
  (lib/asking/packing.py: first-fit decreasing); a document larger than a call is split into
  consecutive parts at its headings and paragraphs (lib/asking/parts.py). Each call reports
  the evidence it finds; a final call composes the answer from it (lib/asking/several_calls.py).
- auto: one when it fits, otherwise nothing is asked and both other modes are planned so the
  user can choose.

Passage IDs are assigned once over the whole selection (as one call would), then split:
a citation means the same passage however the question was planned. No I/O here: the real
context, the ranker and the server's measured speed are the caller's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ..config import Settings
from ..documents import Document
from ..errors import InputError
from . import prompt
from .budget import budget_of
from .evidence import EVIDENCE_PROMPT, compose_messages
from .packing import PACKING, first_fit_decreasing
from .parts import MarkupCounter, Piece, layout_of, split_document, whole_piece

SPLIT_NOTE = "Split into parts: "
"""The note naming the documents split into parts (the app says it beside the calls instead)."""

MODES = ("auto", "one", "relevant", "all")
MODE_NAMES = {"one": "one call", "relevant": "most relevant first", "all": "read everything", "auto": "auto"}
DEFAULT_PLAN_MODE = "all"
"""The mode the app proposes first (and the eval runs) when the documents do not fit one call:
read everything, so that no document is left out unless the user chooses to."""
SPLITTING = ("a document larger than one call is split into consecutive parts at its chapter, section and "
             "paragraph boundaries (never inside a passage), each part with its title and heading path")
EVIDENCE_OUTPUT_TOKENS = 300
"""Assumed length of one reading call's evidence, for time estimates only."""
ANSWER_OUTPUT_TOKENS = 700
"""Assumed length of an answer, for time estimates only."""
THINKING_OUTPUT_TOKENS = 1500
"""Assumed length of the reasoning before an answer when thinking is on, for estimates only."""
QUESTION_ALLOWANCE = 1024
"""Tokens a reading call keeps for the question (at most 1/32 of the context), so the packing, and
with it the bytes before the question, stay the same from one question to the next."""
PIECES_SHOWN = 6
"""Documents listed per call when a plan is described (the JSON lists them all)."""
MIN_ROOM = 256
"""A reading call must hold at least this many tokens of documents."""
SENTINEL = "\x00FOLIO-PIECES\x00"
DOCUMENTS_OPEN, DOCUMENTS_CLOSE = "<documents>\n", "</documents>"

Ranker = Callable[[str, Sequence[Document]], list]
"""rank_documents(question, documents) -> [RankedDocument(sha256, name, score, rank)], best first."""


# ----------------------------------------------------------------------------- speed


@dataclass(frozen=True)
class ServerSpeed:
    """How fast the server reads prompts and writes answers, measured on earlier answers."""

    read_tokens_per_s: float | None = None
    write_tokens_per_s: float | None = None

    @property
    def known(self) -> bool:
        return bool(self.read_tokens_per_s and self.write_tokens_per_s)

    @classmethod
    def from_calls(cls, calls: Iterable[dict]) -> "ServerSpeed":
        """From Answer.calls records (or the probe's rows): evaluated prompt tokens / prompt_eval_s,
        eval_count / eval_s."""
        read_tokens = read_s = write_tokens = write_s = 0.0
        for call in calls:
            read = call.get("server_prompt_tokens") or call.get("server_read_tokens") or 0
            evaluated = read - (call.get("cached_tokens") or 0)
            if call.get("prompt_eval_s") and evaluated > 0:
                read_tokens += evaluated
                read_s += call["prompt_eval_s"]
            if call.get("eval_s") and call.get("eval_count"):
                write_tokens += call["eval_count"]
                write_s += call["eval_s"]
        return cls(read_tokens / read_s if read_s else None, write_tokens / write_s if write_s else None)

    def to_json(self) -> dict:
        return {"read_tokens_per_s": _round(self.read_tokens_per_s), "write_tokens_per_s": _round(self.write_tokens_per_s)}


def _round(value: float | None) -> float | None:
    return round(value, 1) if value else None


def default_concurrency(settings: Settings, server_info=None, wanted: int | None = None) -> int:
    """--concurrency, else FOLIO_CONCURRENCY, else by server kind (lib/servers/concurrency.py:
    Ollama 1, vLLM 4, llama-server its slots, llama-cpp-python 1)."""
    from ..servers.concurrency import default_concurrency as by_server

    return by_server(settings, server_info, wanted)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlannedCall:
    """One model call of the plan and exactly what it sends."""

    index: int
    """1-based position in the plan."""
    key: str
    """Stable identity (what it reads and asks): a resumed run skips calls whose key is done."""
    kind: str
    """answer (one call reads whole documents and answers) | evidence (reports evidence)"""
    prompt_tokens: int
    """Exact tokens of the rendered prompt, as it will be sent."""
    num_predict: int
    think: bool
    pieces: tuple[Piece, ...] = ()
    """What an evidence call reads (whole documents or parts), in prompt order."""
    documents: tuple[Document, ...] = ()
    """What an answer call reads (whole documents)."""

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pieces] if self.pieces else [d.name for d in self.documents]

    @property
    def label(self) -> str:
        """'War and Peace.txt, part 3 of 7' or 'a.pdf, b.pdf and 4 more'."""
        names = self.names
        return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])} and {len(names) - 2} more"

    @property
    def document_tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)

    def to_json(self) -> dict:
        reads = [p.to_json() for p in self.pieces] or [
            {"document": d.name, "sha256": d.sha256, "part": 1, "parts": 1, "tokens": d.tokens} for d in self.documents
        ]
        return {"index": self.index, "key": self.key, "kind": self.kind, "reads": reads,
                "prompt_tokens": self.prompt_tokens, "num_predict": self.num_predict, "think": self.think}


@dataclass
class PlannedDocument:
    """One selected document in the plan: read or not, whole or in parts, and its rank."""

    name: str
    sha256: str
    tokens: int
    read: bool = True
    parts: int = 1
    rank: int | None = None
    score: float | None = None
    reason: str = ""
    """Why it is not read ('does not fit: ...')."""

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "tokens": self.tokens, "read": self.read,
                "parts": self.parts, "rank": self.rank, "score": self.score, "reason": self.reason}


@dataclass(frozen=True)
class Estimate:
    """How long the plan should take, from the server's measured speed; None when unknown."""

    seconds: float | None
    text: str
    speed: ServerSpeed = ServerSpeed()
    concurrency: int = 1

    def to_json(self) -> dict:
        return {"seconds": round(self.seconds, 1) if self.seconds is not None else None, "text": self.text,
                "concurrency": self.concurrency, **self.speed.to_json()}


@dataclass
class Plan:
    """What Folio will send for one question, before anything is sent."""

    mode: str
    question: str
    think: bool
    context: int
    counter: str
    selection: tuple[Document, ...]
    """Every selected document, in prompt order, with IDs unique across the whole selection."""
    calls: list[PlannedCall] = field(default_factory=list)
    documents: list[PlannedDocument] = field(default_factory=list)
    fits: bool = True
    """False: this mode cannot answer (the message says why and what to do)."""
    message: str = ""
    packing: str = ""
    splitting: str = ""
    compose_fixed: int = 0
    """Exact tokens of the composing call without its evidence (mode all)."""
    compose_limit: int = 0
    """Most prompt tokens the composing call may take (the context less its answer room)."""
    compose_num_predict: int = 0
    concurrency: int = 1
    estimate: Estimate = Estimate(None, "unknown")
    notes: list[str] = field(default_factory=list)
    alternatives: dict = field(default_factory=dict)
    """mode -> Plan, for auto when one call cannot hold the selection."""
    history: tuple = ()
    model: str = ""
    layout: "CallLayout | None" = None

    @property
    def prompt_tokens(self) -> int:
        """Exact tokens of every planned call (the composing call, which depends on the evidence, aside)."""
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def document_tokens(self) -> int:
        return sum(d.tokens for d in self.documents if d.read)

    @property
    def read_documents(self) -> list[Document]:
        read = {d.sha256 for d in self.documents if d.read}
        return [d for d in self.selection if d.sha256 in read]

    @property
    def key(self) -> str:
        """Identity of the plan: a stored run resumes only the same plan."""
        spec = [self.mode, self.question, self.think, self.context, self.model,
                [list(prompt.history_turn(h)) for h in self.history], [c.key for c in self.calls]]
        return _digest(spec)

    def call(self, key: str) -> PlannedCall | None:
        return next((c for c in self.calls if c.key == key), None)

    def to_json(self) -> dict:
        data = {
            "mode": self.mode, "mode_name": MODE_NAMES.get(self.mode, self.mode), "key": self.key,
            "question": self.question, "think": self.think, "context": self.context, "counter": self.counter,
            "fits": self.fits, "message": self.message,
            "calls": [c.to_json() for c in self.calls],
            "call_count": len(self.calls) + (1 if self.mode == "all" and self.calls else 0),
            "prompt_tokens": self.prompt_tokens, "document_tokens": self.document_tokens,
            "documents": [d.to_json() for d in self.documents],
            "final": ({"kind": "compose", "fixed_tokens": self.compose_fixed, "max_prompt_tokens": self.compose_limit,
                       "num_predict": self.compose_num_predict} if self.mode == "all" and self.calls else None),
            "packing": self.packing, "splitting": self.splitting, "concurrency": self.concurrency,
            "estimate": self.estimate.to_json(), "notes": list(self.notes),
        }
        if self.alternatives:
            data["alternatives"] = {m: p.to_json() if p is not None else None for m, p in self.alternatives.items()}
        return data


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------- reading calls


@dataclass(frozen=True)
class CallLayout:
    """The bytes of a reading call around its documents: system, the question after them."""

    prefix: str
    suffix: str
    prefix_tokens: int
    suffix_tokens: int
    system_tokens: int
    question_tokens: int
    packing_suffix_tokens: int
    """The suffix as packing counts it: at least the question allowance, so packing is stable."""

    @property
    def fixed(self) -> int:
        return self.prefix_tokens + self.suffix_tokens


def reading_question(question: str, history: Sequence = ()) -> str:
    """The question as a reading call sees it, after earlier questions of the conversation."""
    earlier = [prompt.history_turn(h)[0] for h in history]
    if not earlier:
        return prompt.render_question(question)
    lines = "\n".join(f"- {prompt.neutralise(' '.join(q.split()))}" for q in earlier)
    return f"Earlier questions in this conversation:\n{lines}\n\n{prompt.render_question(question)}"


def reading_messages(pieces_text: str, question: str, history: Sequence = ()) -> list[dict]:
    """[system, user]: the evidence instructions, the documents, then the question."""
    content = DOCUMENTS_OPEN + pieces_text + DOCUMENTS_CLOSE + "\n\n" + reading_question(question, history)
    return [{"role": "system", "content": EVIDENCE_PROMPT}, {"role": "user", "content": content}]


def call_layout(question: str, history: Sequence, context: int, counter) -> CallLayout:
    """Prefix and suffix of a reading call, split around its documents and counted once."""
    rendered = prompt.render_chat(reading_messages(SENTINEL, question, history), think=False)
    prefix, suffix = rendered.split(SENTINEL)
    bare = prompt.render_chat(reading_messages(SENTINEL, "", ()), think=False).split(SENTINEL)[1]
    counts = counter.count_many([prefix, suffix, bare, prompt.system_block(EVIDENCE_PROMPT),
                                 reading_question(question, history)]) if hasattr(counter, "count_many") else [
        counter.count(t) for t in (prefix, suffix, bare, prompt.system_block(EVIDENCE_PROMPT),
                                   reading_question(question, history))]
    allowance = min(QUESTION_ALLOWANCE, context // 32)
    return CallLayout(prefix, suffix, counts[0], counts[1], counts[3], counts[4], max(counts[1], counts[2] + allowance))


# ----------------------------------------------------------------------------- making plans


def make_plan(
    documents: Sequence[Document],
    question: str,
    settings: Settings,
    *,
    mode: str = "auto",
    think: bool | None = None,
    context: int | None = None,
    ranker: Ranker | None = None,
    speed: ServerSpeed | None = None,
    concurrency: int | None = None,
    history: Sequence = (),
    counter=None,
    server_ratio: float = 1.0,
) -> Plan:
    """The plan for asking `question` about `documents` in `mode`, with exact tokens per call.

    `context` is the real context (min of configured and trained; default: configured).
    `server_ratio`: how many tokens the server counts per token of Folio's (above 1 for a
    model whose tokenizer is not Qwen3's); reading calls are then packed that much below
    the budget, so the server's own count fits too. Raises InputError for an empty question
    or selection or an unknown mode.
    """
    from ..reading.passages import assign_unique_ids
    from ..reading.tokens import get_counter

    if mode not in MODES:
        raise InputError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    if not question.strip():
        raise InputError("The question is empty: type a question about the documents.")
    if not documents:
        raise InputError("No documents selected: add at least one document to ask about.")
    think = settings.think if think is None else bool(think)
    setup = _Setup(
        selection=_with_ids(documents, assign_unique_ids),
        question=question, settings=settings, think=think, context=int(context or settings.context),
        counter=counter or get_counter(), history=tuple(history), speed=speed or ServerSpeed(),
        concurrency=concurrency or default_concurrency(settings), ranker=ranker,
        server_ratio=max(1.0, float(server_ratio or 1.0)),
    )
    if mode == "auto":
        return _plan_auto(setup)
    return PLANNERS[mode](setup)


_SELECTIONS: list[tuple[tuple, tuple]] = []
"""The latest selections with their IDs assigned: (the documents given, the documents with IDs)."""
SELECTIONS_KEPT = 4
_SELECTIONS_LOCK = threading.Lock()


def _with_ids(documents: Sequence[Document], assign) -> tuple[Document, ...]:
    """The documents in prompt order with IDs unique across them (remembered: a second question
    over the same selection does not assign them again)."""
    given = tuple(documents)
    with _SELECTIONS_LOCK:
        for key, assigned in _SELECTIONS:
            if len(key) == len(given) and all(a is b for a, b in zip(key, given)):
                return assigned
    assigned = tuple(assign(prompt.sorted_documents(given)))
    with _SELECTIONS_LOCK:
        _SELECTIONS.insert(0, (given, assigned))
        del _SELECTIONS[SELECTIONS_KEPT:]
    return assigned


@dataclass
class _Setup:
    selection: tuple[Document, ...]
    question: str
    settings: Settings
    think: bool
    context: int
    counter: object
    history: tuple
    speed: ServerSpeed
    concurrency: int
    ranker: Ranker | None
    server_ratio: float = 1.0

    def plan(self, mode: str, **values) -> Plan:
        return Plan(mode=mode, question=self.question, think=self.think, context=self.context,
                    counter=self.counter.kind, selection=self.selection, history=self.history,
                    concurrency=self.concurrency, model=self.settings.model, **values)


def _plan_auto(setup: _Setup) -> Plan:
    one = _plan_one(setup)
    if one.fits:
        return one
    alternatives = {"relevant": _try(_plan_relevant, setup), "all": _try(_plan_all, setup)}
    return setup.plan("auto", fits=False, documents=one.documents, alternatives=alternatives, message=(
        f"{one.message} Choose a mode: --mode relevant reads the best-ranked documents that fit one call; "
        "--mode all reads everything in several calls."))


def _try(planner, setup: _Setup) -> Plan | None:
    try:
        return planner(setup)
    except InputError as exc:
        return setup.plan(planner.__name__.removeprefix("_plan_"), fits=False, message=str(exc))


def _listed(selection: Iterable[Document]) -> list[PlannedDocument]:
    return [PlannedDocument(d.name, d.sha256, d.tokens) for d in selection]


def _quick_overrun(documents: Sequence[Document], context: int) -> bool:
    """True when the documents' own tokens are far beyond the context (no need to render them)."""
    return sum(d.tokens for d in documents) > 1.5 * context


def _plan_one(setup: _Setup) -> Plan:
    """One call reading everything (lib/asking/answering.py), when it fits."""
    documents = _listed(setup.selection)
    if _quick_overrun(setup.selection, setup.context):
        total = sum(d.tokens for d in setup.selection)
        return setup.plan("one", fits=False, documents=documents, message=(
            f"The {len(setup.selection)} selected document(s) hold {total:,} tokens; one call holds at most "
            f"{setup.context:,} (the context)."))
    built = prompt.build_prompt(setup.selection, setup.question, think=setup.think, counter=setup.counter,
                                history=setup.history)
    budget = budget_of(built, setup.settings, context=setup.context)
    if not budget.fits:
        return setup.plan("one", fits=False, documents=documents, message=budget.refusal_message(advice=False))
    call = _answer_call(setup, built.documents, built.total, budget.reserved)
    return _finish(setup, setup.plan("one", calls=[call], documents=documents))


def _answer_call(setup: _Setup, documents: Sequence[Document], tokens: int, reserved: int) -> PlannedCall:
    key = _digest(["answer", setup.question, setup.think, [d.sha256 for d in documents]])
    return PlannedCall(1, key, "answer", tokens, reserved, setup.think, documents=tuple(documents))


# --- most relevant first ---------------------------------------------------------------------


def _plan_relevant(setup: _Setup) -> Plan:
    """Rank the selection; read whole, in one call, the best-ranked documents that fit."""
    ranker = setup.ranker or default_ranker()
    ranked = _ranked(setup, ranker)
    empty = prompt.build_prompt([], setup.question, think=setup.think, counter=setup.counter, history=setup.history)
    reserved = setup.settings.reserved(setup.think)
    limit = setup.context - reserved
    room = limit - empty.total
    chosen: list[Document] = []
    entries: list[PlannedDocument] = []
    for document, rank, score in ranked:
        entry = PlannedDocument(document.name, document.sha256, document.tokens, rank=rank, score=score)
        tokens = _rendered_tokens(document, setup.counter) if document.tokens * 0.9 <= room else None
        if tokens is not None and tokens + 2 <= room:
            chosen.append(document)
            room -= tokens + 2  # the blank line between two documents
        else:
            entry.read = False
            entry.reason = f"does not fit: {document.tokens:,} tokens, {max(room, 0):,} left in the call"
        entries.append(entry)
    built = _fitting(setup, chosen, entries, limit)
    if built is None:
        return setup.plan("relevant", fits=False, documents=entries, message=(
            "Not even the best-ranked document fits one call: use --mode all, which reads documents in parts."))
    call = _answer_call(setup, built.documents, built.total, reserved)
    plan = setup.plan("relevant", calls=[call], documents=entries)
    unread = [e for e in entries if not e.read]
    if unread:
        plan.notes.append(f"Read {len(entries) - len(unread)} of {len(entries)} documents, the best-ranked that fit "
                          f"one call; not read: " + ", ".join(f"{e.name} (rank {e.rank})" for e in unread[:20])
                          + (f" and {len(unread) - 20} more" if len(unread) > 20 else "") + ".")
    return _finish(setup, plan)


def _ranked(setup: _Setup, ranker: Ranker) -> list[tuple[Document, int, float | None]]:
    """(document, rank, score) best first; documents the ranker left out come last, in order."""
    by_sha: dict[str, list[Document]] = {}
    for document in setup.selection:
        by_sha.setdefault(document.sha256, []).append(document)
    out: list[tuple[Document, int, float | None]] = []
    for entry in ranker(setup.question, list(setup.selection)):
        for document in by_sha.pop(getattr(entry, "sha256", None), []):
            out.append((document, len(out) + 1, getattr(entry, "score", None)))
    for document in setup.selection:
        if document.sha256 in by_sha:
            out.append((document, len(out) + 1, None))
    return out


def _fitting(setup: _Setup, chosen: list[Document], entries: list[PlannedDocument], limit: int):
    """The exact prompt of the chosen documents, dropping the last chosen while it does not fit."""
    while chosen:
        built = prompt.build_prompt(chosen, setup.question, think=setup.think, counter=setup.counter,
                                    history=setup.history)
        if built.total <= limit:
            return built
        dropped = chosen.pop()
        for entry in entries:
            if entry.sha256 == dropped.sha256 and entry.read:
                entry.read, entry.reason = False, "does not fit once the prompt is counted exactly"
                break
    return None


def _rendered_tokens(document: Document, counter) -> int:
    return counter.count(prompt.render_document(document))


def default_ranker() -> Ranker:
    """The library's ranker (BM25 over passages with SQLite FTS5)."""
    try:
        from ..library.ranking import rank_documents
    except ImportError as exc:
        raise InputError(
            "Ranking by relevance is not available in this installation (lib.library.ranking is missing): "
            "use --mode all, which reads everything."
        ) from exc
    return rank_documents


# --- read everything -------------------------------------------------------------------------


def _plan_all(setup: _Setup) -> Plan:
    """Every document read: whole ones packed into few calls, long ones split into parts."""
    markup = MarkupCounter(setup.counter)
    layout = call_layout(setup.question, setup.history, setup.context, setup.counter)
    num_predict = setup.settings.reserved(False)
    limit = int((setup.context - num_predict) / setup.server_ratio)
    room = limit - layout.prefix_tokens - layout.packing_suffix_tokens
    if room < MIN_ROOM:
        raise InputError(
            f"A context of {setup.context:,} tokens leaves {max(room, 0):,} for documents next to the instructions "
            f"({layout.prefix_tokens:,}), the question and the {num_predict:,} reserved for the evidence: raise the "
            "context (--context / FOLIO_CONTEXT) or lower FOLIO_ANSWER_RESERVE.")
    pieces, documents = _pieces(setup.selection, room, markup)
    bins = first_fit_decreasing([(i, p.tokens) for i, p in enumerate(pieces)], room)
    order = {d.sha256: i for i, d in enumerate(setup.selection)}
    grouped = sorted((sorted(b, key=lambda i: (order[pieces[i].document.sha256], pieces[i].part)) for b in bins),
                     key=lambda b: (order[pieces[b[0]].document.sha256], pieces[b[0]].part))
    calls = [_reading_call(setup, k, [pieces[i] for i in group], layout, num_predict)
             for k, group in enumerate(grouped, 1)]
    compose_fixed, compose_reserved = _compose_fixed(setup)
    plan = setup.plan("all", calls=calls, documents=documents, packing=PACKING, splitting=SPLITTING, layout=layout,
                      compose_fixed=compose_fixed, compose_limit=setup.context - compose_reserved,
                      compose_num_predict=compose_reserved)
    if setup.server_ratio > 1.0:
        plan.notes.append(f"The server's tokenizer counts {setup.server_ratio - 1:.0%} more tokens than Qwen3's: "
                          "calls are packed that much below the budget.")
    split = [d for d in documents if d.parts > 1]
    if split:
        plan.notes.append(SPLIT_NOTE + ", ".join(f"{d.name} ({d.parts} parts)" for d in split) + ".")
    return _finish(setup, plan)


def _pieces(selection: Sequence[Document], room: int, markup: MarkupCounter) -> tuple[list[Piece], list[PlannedDocument]]:
    pieces: list[Piece] = []
    listed: list[PlannedDocument] = []
    for document in selection:
        layout = layout_of(document, markup)
        whole = whole_piece(document, layout, markup)
        parts = [whole] if whole.tokens <= room else split_document(document, layout, room, markup)
        pieces += parts
        listed.append(PlannedDocument(document.name, document.sha256, document.tokens, parts=len(parts)))
    return pieces, listed


def _reading_call(setup: _Setup, index: int, pieces: list[Piece], layout: CallLayout, num_predict: int) -> PlannedCall:
    tokens = layout.fixed + sum(p.tokens for p in pieces)
    spec = ["evidence", setup.question, [list(prompt.history_turn(h)) for h in setup.history],
            [(p.document.sha256, p.start, p.end, p.part, p.parts) for p in pieces]]
    return PlannedCall(index, _digest(spec), "evidence", tokens, num_predict, False, pieces=tuple(pieces))


def _compose_fixed(setup: _Setup) -> tuple[int, int]:
    """(tokens of the composing call with no evidence, its answer room)."""
    messages = compose_messages([], setup.question, setup.history)
    return (setup.counter.count(prompt.render_chat(messages, setup.think)), setup.settings.reserved(setup.think))


PLANNERS = {"one": _plan_one, "relevant": _plan_relevant, "all": _plan_all}


# ----------------------------------------------------------------------------- estimates


def _finish(setup: _Setup, plan: Plan) -> Plan:
    plan.estimate = estimate(plan, setup.speed, setup.concurrency)
    return plan


def estimate(plan: Plan, speed: ServerSpeed, concurrency: int = 1) -> Estimate:
    """Seconds the plan should take at the server's measured speed ('unknown' before any answer).

    Reading calls run `concurrency` at a time, each assumed to keep the measured speed (true
    of a server with that many parallel slots or GPUs; a single GPU batching them is slower).
    """
    if not speed.known or not plan.calls:
        text = "unknown until an answer from this server has been timed" if not speed.known else "-"
        return Estimate(None, text, speed, concurrency)
    read, write = speed.read_tokens_per_s, speed.write_tokens_per_s
    answer_out = ANSWER_OUTPUT_TOKENS + (THINKING_OUTPUT_TOKENS if plan.think else 0)
    if plan.mode != "all":
        seconds = plan.calls[0].prompt_tokens / read + answer_out / write
    else:
        calls = [c.prompt_tokens / read + EVIDENCE_OUTPUT_TOKENS / write for c in plan.calls]
        lanes = max(1, min(concurrency, len(calls)))
        compose_in = plan.compose_fixed + len(calls) * EVIDENCE_OUTPUT_TOKENS
        seconds = max(sum(calls) / lanes, max(calls)) + compose_in / read + answer_out / write
    return Estimate(seconds, f"about {duration_text(seconds)}", speed, concurrency)


def duration_text(seconds: float) -> str:
    """'45 s', '12 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


# ----------------------------------------------------------------------------- describing


def describe_plan(plan: Plan) -> list[str]:
    """The plan in plain lines, as the command line and the app show it."""
    if plan.mode == "auto":
        lines = [plan.message]
        for mode, alternative in plan.alternatives.items():
            if alternative is None:
                continue
            lines.append("")
            lines.append(f"--mode {mode} ({MODE_NAMES[mode]}):")
            lines += ["  " + line for line in (describe_plan(alternative) if alternative.fits else [alternative.message])]
        return lines
    if not plan.fits:
        return [plan.message]
    lines = [_headline(plan)]
    for call in plan.calls:
        lines.append(f"  call {call.index} of {len(plan.calls)}: {call.prompt_tokens:,} tokens, reading:")
        lines += [f"      {_piece_line(p)}" for p in call.pieces[:PIECES_SHOWN]] or [
            f"      {d.name}" for d in call.documents[:PIECES_SHOWN]]
        more = max(len(call.pieces), len(call.documents)) - PIECES_SHOWN
        if more > 0:
            lines.append(f"      ... and {more} more document(s)")
    if plan.mode == "all":
        lines.append(f"  then 1 call composing the answer from the evidence: {plan.compose_fixed:,} tokens plus the "
                     f"evidence (at most {plan.compose_limit:,} in all)")
    lines += _document_lines(plan)
    lines.append(_total_line(plan))
    at_once = f" ({plan.concurrency} call(s) at a time)" if plan.mode == "all" else ""
    lines.append(f"Estimated time: {plan.estimate.text}{at_once}")
    lines += plan.notes
    return lines


def _piece_line(piece: Piece) -> str:
    """'War and Peace.txt, part 3 of 7: passages wtw-2156 to wtw-3156, from BOOK FIVE > CHAPTER VIII (117,003 tokens)'."""
    text = piece.name
    if not piece.whole:
        text += f": passages {piece.first_id} to {piece.last_id}"
        pages = piece.pages
        if pages:
            text += f", pp. {pages[0]}-{pages[1]}" if pages[0] != pages[1] else f", p. {pages[0]}"
        if piece.section:
            text += f", from {piece.section if len(piece.section) <= 90 else '…' + piece.section[-89:]}"
    return text + f" ({piece.tokens:,} tokens)"


def _headline(plan: Plan) -> str:
    if plan.mode == "all":
        split = sum(1 for d in plan.documents if d.parts > 1)
        return (f"Plan: read everything, {len(plan.calls)} reading call(s) and 1 composing call; packing: {plan.packing}"
                + (f"; {split} document(s) split into parts" if split else "") + ".")
    if plan.mode == "relevant":
        read = sum(1 for d in plan.documents if d.read)
        return f"Plan: most relevant first, 1 call reading the {read} best-ranked document(s) that fit."
    return "Plan: one call reading every document."


def _document_lines(plan: Plan) -> list[str]:
    if plan.mode != "relevant":
        return []
    return [f"  rank {d.rank}: {d.name}: " + ("read" if d.read else f"NOT READ ({d.reason})") for d in plan.documents[:50]] + (
        [f"  ... and {len(plan.documents) - 50} more, not read"] if len(plan.documents) > 50 else [])


def _total_line(plan: Plan) -> str:
    extra = " plus the composing call" if plan.mode == "all" else ""
    return (f"Total to read: {plan.prompt_tokens:,} prompt tokens{extra} ({plan.counter} count); documents "
            f"{plan.document_tokens:,} tokens; context {plan.context:,}.")
