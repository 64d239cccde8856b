"""Evaluate Folio on a question set: what the app answers, scored against gold answers and evidence.

    items = load_dataset("bench/evalset/folio-eval.jsonl")      # InputError naming every bad line
    for event in run_eval(items, settings, cancel=cancel):       # 'question' before, 'scored' after each
        ...
    report = event.report                                        # EvalReport: per question and summary

A dataset is JSON lines, one question a line:
    {"documents": ["lease.pdf"], "question": "...", "answers": ["..."],
     "evidence": [{"document": "lease.pdf", "page": 2, "text": "verbatim evidence"}], "answerable": true}
Paths are relative to the dataset file; `evidence`, `answerable` (default true), `key_facts`
and `id` are optional; pages are numbered from 1.

Each question runs through `answer_question`, the one seam where Folio decides how to ask:
exactly what the app runs. Scores: lib/asking/scoring.py.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from ..config import Settings
from ..documents import Document
from ..errors import (
    BudgetExceeded, FolioError, InputError, ModelNotFound, ServerTooOld, ServerUnreachable, ThinkingUnsupported,
)
from ..servers.protocol import ServerInfo
from . import scoring
from .answering import Answer, ask, prepare_documents
from .scoring import Evidence

MAX_REPORTED_PROBLEMS = 20
STATUSES = ("answered", "does_not_fit", "interrupted", "error")


@dataclass(frozen=True)
class EvalItem:
    """One question of a dataset."""

    line: int
    question: str
    documents: tuple[Path, ...]
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...] = ()
    answerable: bool = True
    key_facts: tuple[str, ...] | None = None
    id: str | None = None


# ---------------------------------------------------------------------------------- loading


def load_dataset(path: str | Path) -> list[EvalItem]:
    """Every question of a JSONL dataset; one InputError names every bad line and what to fix."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such dataset file. Give the path of a .jsonl file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as UTF-8 text ({exc}). Save it as UTF-8 JSON lines.") from exc
    items, problems = [], []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            items.append(_item(json.loads(raw), number, path.parent))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"line {number}: {exc}")
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise InputError(f"{path}: {len(problems)} bad line(s){more}. Fix them and run again:\n  " + "\n  ".join(shown))
    if not items:
        raise InputError(f"{path}: no questions. Each line is one JSON object with documents, question and answers.")
    return items


def _item(data, line: int, base: Path) -> EvalItem:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object: each line is {\"documents\": [...], \"question\": ..., \"answers\": [...]}")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError('"question" is missing or empty')
    documents = data.get("documents")
    if not isinstance(documents, list) or not documents or not all(isinstance(d, str) and d for d in documents):
        raise ValueError('"documents" must be a non-empty list of file paths (relative to the dataset file)')
    paths = tuple((base / d) if not Path(d).is_absolute() else Path(d) for d in documents)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"no such document: {', '.join(missing)}")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError('"answerable" must be true or false')
    answers = data.get("answers", [])
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError('"answers" must be a list of strings')
    if answerable and not any(a.strip() for a in answers):
        raise ValueError('"answers" is empty for an answerable question (set "answerable": false if none exists)')
    key_facts = data.get("key_facts")
    if key_facts is not None and (not isinstance(key_facts, list) or not all(isinstance(k, str) for k in key_facts)):
        raise ValueError('"key_facts" must be a list of strings')
    return EvalItem(line=line, question=question.strip(), documents=paths, answers=tuple(answers),
                    evidence=_evidence(data.get("evidence"), paths), answerable=answerable,
                    key_facts=tuple(key_facts) if key_facts else None,
                    id=str(data["id"]) if data.get("id") is not None else None)


def _evidence(raw, paths: tuple[Path, ...]) -> tuple[Evidence, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError('"evidence" must be a list of {"document", "page", "text"} objects')
    names = {p.name for p in paths} | {str(p) for p in paths}
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError('each "evidence" entry must be an object {"document", "page", "text"}')
        document = entry.get("document") or (paths[0].name if len(paths) == 1 else None)
        if not isinstance(document, str) or Path(document).name not in {Path(n).name for n in names}:
            raise ValueError(f'evidence names document {document!r}, which is not one of this question\'s documents')
        page = entry.get("page")
        if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
            raise ValueError(f"evidence page {page!r} is not a page number (pages count from 1)")
        text = entry.get("text") or ""
        if not isinstance(text, str):
            raise ValueError("evidence text must be a string")
        if page is None and not text.strip():
            raise ValueError("an evidence entry needs a page or a text")
        out.append(Evidence(Path(document).name, page, text))
    return tuple(out)


# ------------------------------------------------------------------------------- the seam


def answer_question(documents: Sequence[Document], question: str, settings: Settings, *, backend=None,
                    server_info: ServerInfo | None = None, cancel: threading.Event | None = None,
                    think: bool | None = None) -> Answer:
    """Ask `question` about `documents` exactly as the app does: THE SEAM for the multi-call plan.

    One call (lib.asking.answering.ask) when the documents fit it. When they do not, the plan
    the app proposes first (DEFAULT_PLAN_MODE: read everything), run to its end: the answer is a
    PlannedAnswer (its `mode`, `plan` and `calls`), and its first warning says it was planned.
    A selection no plan can hold (a context too small for the instructions) raises BudgetExceeded.
    """
    try:
        return ask(documents, question, settings, think=think, backend=backend, cancel=cancel, server_info=server_info)
    except BudgetExceeded:
        pass
    return _planned(documents, question, settings, backend=backend, server_info=server_info, cancel=cancel,
                    think=think)


def _planned(documents, question, settings, *, backend, server_info, cancel, think) -> Answer:
    from .plan import DEFAULT_PLAN_MODE, MODE_NAMES
    from .several_calls import PlannedAnswer, plan_question, run_plan

    try:
        plan, backend, server_info = plan_question(documents, question, settings, mode=DEFAULT_PLAN_MODE, think=think,
                                                   backend=backend, server_info=server_info)
    except InputError as exc:  # no room for any document beside the instructions
        raise BudgetExceeded(str(exc)) from exc
    if not plan.fits:
        raise BudgetExceeded(plan.message)
    answer = None
    for event in run_plan(plan, settings, backend=backend, server_info=server_info, cancel=cancel):
        if event.kind == "final":
            answer = event.answer
        elif event.kind == "cancelled":
            answer = PlannedAnswer(question=question, interrupted=True, status="stopped", mode=plan.mode,
                                   interrupt_reason="Stopped by you.", plan=plan.to_json())
    if answer is None:
        raise FolioError("The plan ended without an answer.")
    calls = len(plan.calls) + (1 if plan.mode == "all" else 0)
    answer.warnings.insert(0, f"Asked by a plan: the documents do not fit one call, so Folio used the app's default "
                              f"plan, {MODE_NAMES[plan.mode]}, in {calls} call(s).")
    return answer


# --------------------------------------------------------------------------------- scoring


@dataclass
class QuestionResult:
    """One question: what Folio answered and how it scored (None where a score does not apply)."""

    item: EvalItem
    status: str
    """answered | does_not_fit | interrupted | error"""
    answer: str = ""
    no_answer: bool = False
    message: str = ""
    em: float | None = None
    f1: float | None = None
    key_facts: float | None = None
    refusal_correct: bool | None = None
    """For unanswerable questions: whether Folio said the documents do not answer."""
    false_refusal: bool | None = None
    """For answerable questions: whether Folio wrongly said the documents do not answer."""
    citations: int = 0
    verified: int = 0
    unverified: int = 0
    invalid: int = 0
    evidence_hit: bool | None = None
    evidence_located: bool | None = None
    """Whether the gold evidence text was found in Folio's text of the document (a check on the dataset)."""
    first_token_s: float | None = None
    total_s: float | None = None
    tokens_sent: int | None = None
    tokens_read: int | None = None
    warnings: list[str] = field(default_factory=list)
    mode: str = "one"
    """How it was asked: one (one call), or the plan's mode (relevant, all) when it did not fit one call."""
    calls: int = 0

    @property
    def invalid_citation_rate(self) -> float | None:
        return self.invalid / self.citations if self.citations else None

    @property
    def quote_verified_rate(self) -> float | None:
        return self.verified / self.citations if self.citations else None

    def to_json(self) -> dict:
        item = self.item
        return {
            "line": item.line, "id": item.id, "question": item.question,
            "documents": [p.name for p in item.documents], "answerable": item.answerable,
            "gold_answers": list(item.answers), "status": self.status, "answer": self.answer,
            "no_answer": self.no_answer, "message": self.message, "em": self.em, "f1": self.f1,
            "key_facts": self.key_facts, "refusal_correct": self.refusal_correct,
            "false_refusal": self.false_refusal, "citations": self.citations, "verified": self.verified,
            "unverified": self.unverified, "invalid": self.invalid,
            "invalid_citation_rate": self.invalid_citation_rate, "quote_verified_rate": self.quote_verified_rate,
            "evidence_hit": self.evidence_hit, "evidence_located": self.evidence_located,
            "first_token_s": self.first_token_s, "total_s": self.total_s, "tokens_sent": self.tokens_sent,
            "tokens_read": self.tokens_read, "warnings": list(self.warnings), "mode": self.mode,
            "calls": self.calls,
        }


def score(item: EvalItem, answer: Answer, documents: Sequence[Document]) -> QuestionResult:
    """Score one answer (documents as the question was asked: prepared, with the IDs it cited)."""
    result = QuestionResult(item, "interrupted" if answer.interrupted else "answered", answer=answer.answer,
                            no_answer=answer.no_answer, warnings=list(answer.warnings),
                            message=answer.interrupt_reason)
    result.__dict__.update(scoring.citation_counts(answer.citations))
    result.mode = getattr(answer, "mode", "one") or "one"
    result.calls = len(answer.calls)
    if answer.calls:
        call = answer.calls[-1]
        result.first_token_s, result.total_s = call.get("first_token_s"), call.get("total_s")
        if result.mode != "one" and answer.timings.get("total_s") is not None:  # a plan: its whole run
            result.first_token_s, result.total_s = answer.timings.get("first_token_s"), answer.timings["total_s"]
        result.tokens_sent = sum(c.get("prompt_tokens") or 0 for c in answer.calls)
        read = [c.get("server_prompt_tokens") for c in answer.calls]
        result.tokens_read = sum(read) if all(isinstance(r, int) for r in read) else None
    if not item.answerable:
        result.refusal_correct = answer.no_answer
        return result
    result.false_refusal = answer.no_answer
    claims = "" if answer.no_answer else scoring.claim_text(answer.answer)
    result.em = scoring.exact_match(claims, item.answers) if claims else 0.0
    result.f1 = scoring.token_f1(claims, item.answers) if claims else 0.0
    result.key_facts = scoring.key_facts_share(answer.answer if not answer.no_answer else "", item.answers,
                                               item.key_facts)
    if item.evidence:
        result.evidence_hit = scoring.evidence_hit(answer.citations, item.evidence, documents)
        texts = [e for e in item.evidence if e.text.strip()]
        if texts:
            result.evidence_located = any(scoring.locate_evidence(e, documents) for e in texts)
    return result


# --------------------------------------------------------------------------------- summary


def _mean(values) -> tuple[float | None, int]:
    values = [float(v) for v in values if v is not None]
    return (round(sum(values) / len(values), 4) if values else None), len(values)


def summarise(results: Sequence[QuestionResult]) -> dict:
    """Aggregate figures, each with the number of questions behind it (`n`)."""
    answered = [r for r in results if r.status == "answered"]
    answerable = [r for r in answered if r.item.answerable]
    unanswerable = [r for r in answered if not r.item.answerable]
    summary: dict = {"questions": len(results)}
    n: dict = {}
    for key, values in (
        ("answer_em", [r.em for r in answerable]),
        ("answer_f1", [r.f1 for r in answerable]),
        ("answer_key_facts", [r.key_facts for r in answerable]),
        ("refusal_accuracy", [r.refusal_correct for r in unanswerable]),
        ("false_refusal_rate", [r.false_refusal for r in answerable]),
        ("evidence_hit_rate", [r.evidence_hit for r in answerable]),
    ):
        summary[key], n[key] = _mean(values)
    citations = sum(r.citations for r in answered)
    cited = [r for r in answered if r.citations]
    summary["invalid_citation_rate"] = round(sum(r.invalid for r in answered) / citations, 4) if citations else None
    summary["quote_verified_rate"] = round(sum(r.verified for r in answered) / citations, 4) if citations else None
    n["invalid_citation_rate"] = n["quote_verified_rate"] = len(cited)
    firsts = [r.first_token_s for r in answered if isinstance(r.first_token_s, (int, float))]
    totals = [r.total_s for r in answered if isinstance(r.total_s, (int, float))]
    summary["first_token_s_median"] = round(statistics.median(firsts), 3) if firsts else None
    summary["total_s_median"] = round(statistics.median(totals), 3) if totals else None
    n["first_token_s_median"], n["total_s_median"] = len(firsts), len(totals)
    summary["citations"] = citations
    summary["tokens_sent"] = sum(r.tokens_sent or 0 for r in answered)
    summary["tokens_read"] = sum(r.tokens_read or 0 for r in answered)
    summary["answered"] = len(answered)
    summary["planned"] = sum(r.mode != "one" for r in answered)
    for status in ("does_not_fit", "interrupted", "error"):
        summary[status] = sum(r.status == status for r in results)
    summary["n"] = n
    return summary


@dataclass
class EvalReport:
    """A finished (or stopped) evaluation: per question and in aggregate, with where it ran."""

    dataset: str
    results: list[QuestionResult]
    host: str
    model: str
    backend: str
    date: str
    think: bool
    cancelled: bool = False

    @property
    def summary(self) -> dict:
        return summarise(self.results)

    @property
    def exit_status(self) -> int:
        """0 every question ran; 2 some could not (their documents could not be read)."""
        return 2 if any(r.status == "error" for r in self.results) else 0

    def to_json(self) -> dict:
        """The `python -m lib eval --json` object."""
        return {
            "summary": self.summary,
            "questions": [r.to_json() for r in self.results],
            "dataset": self.dataset, "host": self.host, "model": self.model, "backend": self.backend,
            "date": self.date, "think": self.think, "cancelled": self.cancelled,
        }


# --------------------------------------------------------------------------------- running


@dataclass
class EvalEvent:
    """Progress: 'question' before each question, 'scored' after it, 'done' with the report."""

    kind: str
    index: int
    total: int
    elapsed_s: float
    text: str = ""
    result: QuestionResult | None = None
    report: EvalReport | None = None


class _Documents:
    """Each document file read once, however many questions ask about it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._cache: dict[Path, Document] = {}

    def get(self, paths: Sequence[Path]) -> list[Document]:
        from ..reading.ingest import ingest_bytes, read_file

        out = []
        for path in paths:
            key = path.resolve()
            if key not in self._cache:
                self._cache[key] = ingest_bytes(read_file(path, self.settings), path.name, settings=self.settings)
            out.append(self._cache[key])
        return out


def run_eval(items: Sequence[EvalItem], settings: Settings, *, dataset: str = "", backend=None,
             server_info: ServerInfo | None = None, cancel: threading.Event | None = None,
             think: bool | None = None) -> Iterator[EvalEvent]:
    """Ask and score every question in turn; the last event ('done') carries the report.

    A question whose documents cannot be read, or which the server refuses, is recorded and the
    others go on; an unreachable server or a missing model stops the run (ServerError).
    """
    if backend is None:
        from ..servers import make_backend

        backend = make_backend(settings)
    server_info = server_info or backend.check()
    think = settings.think if think is None else bool(think)
    documents = _Documents(settings)
    report = EvalReport(dataset, [], settings.host, settings.model, settings.backend,
                        datetime.now(timezone.utc).isoformat(timespec="seconds"), think)
    started = time.monotonic()
    for index, item in enumerate(items):
        if cancel is not None and cancel.is_set():
            break
        yield EvalEvent("question", index, len(items), time.monotonic() - started, text=item.question)
        result = _one(item, documents, settings, backend, server_info, cancel, think)
        if result is None:
            break
        report.results.append(result)
        yield EvalEvent("scored", index, len(items), time.monotonic() - started, text=result_line(result),
                        result=result)
    report.cancelled = len(report.results) < len(items)
    yield EvalEvent("done", len(report.results), len(items), time.monotonic() - started, report=report)


def _one(item: EvalItem, documents: _Documents, settings, backend, server_info, cancel, think):
    """One question asked and scored; None when it was cancelled."""
    try:
        prepared = prepare_documents(documents.get(item.documents))
        answer = answer_question(prepared, item.question, settings, backend=backend, server_info=server_info,
                                 cancel=cancel, think=think)
    except BudgetExceeded as exc:
        return QuestionResult(item, "does_not_fit", message=f"Does not fit one call, nor any plan: {exc}")
    except (ServerUnreachable, ModelNotFound, ServerTooOld, ThinkingUnsupported):
        raise  # every other question would fail the same way
    except FolioError as exc:  # an unreadable document, a refused request: this question only
        return QuestionResult(item, "error", message=str(exc))
    if answer.interrupted and cancel is not None and cancel.is_set():
        return None
    return score(item, answer, prepared)


def result_line(result: QuestionResult) -> str:
    """One line for progress: the question's status and its main scores."""
    head = f"line {result.item.line}: "
    if result.status != "answered":
        return head + {"does_not_fit": "does not fit any plan", "interrupted": "interrupted",
                       "error": "error"}[result.status] + (f" ({result.message})" if result.message else "")
    if not result.item.answerable:
        verdict = "refused correctly" if result.refusal_correct else "answered, should have refused"
    else:
        verdict = f"EM {result.em:.0f}, F1 {result.f1:.2f}" + (" (refused)" if result.false_refusal else "")
    took = f", {result.total_s:.1f} s" if isinstance(result.total_s, (int, float)) else ""
    return (f"{head}{verdict}; {result.citations} citation(s), {result.verified} verified, {result.invalid} "
            f"invalid{took}")
