"""Running a review table: a loop over the documents that still have cells to answer.

    report = run_table(store, table_id, settings, concurrency=4, progress=show, cancel=stop)

Each document is one call (`row.review_row`), and its row is stored the moment it arrives
(`process_document`), so the table's state is exactly what the store holds: a run killed at
any point resumes with `run_table` again and asks only what is not finished. With an
OpenAI-compatible server (vLLM batches requests) several documents are in flight at once;
with Ollama one at a time unless raised (Ollama serves OLLAMA_NUM_PARALLEL requests per
model). Cancel stops taking new documents and abandons the calls in flight (their rows stay
pending). A server problem that would fail every row (unreachable, model missing) stops the
run after storing what finished, and is raised.

For a job runner (lib/library/jobs.py), the item is a document and its work is
`process_document(store, table_id, sha256, settings, backend=..., context=...)`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ...config import Settings
from ...errors import FolioError
from ...library.reviews import ReviewStore
from ...library.store import NotInStore
from ..answering import check_thinking, resolve_context
from .cells import problem_cell
from .row import FATAL, Row, review_row
from .table import WorkItem, load_row, load_table

def concurrency_for(settings: Settings, wanted: int | None = None, info=None) -> int:
    """Documents in flight at once: the one rule of lib/servers/concurrency.py (the argument, else
    FOLIO_CONCURRENCY, else by server kind: Ollama 1, vLLM 4, llama-server its slots,
    llama-cpp-python 1). `info` is the server's ServerInfo, or a kind name such as "vllm"."""
    from ...servers.concurrency import default_concurrency
    from ...servers.protocol import ServerInfo

    if isinstance(info, str):
        info = ServerInfo(backend=settings.backend, host=settings.host or "", kind=info)
    return default_concurrency(settings, info, wanted or None)


@dataclass
class Progress:
    """Where a run stands: rows done of the table's rows, time, and an estimate of what is left."""

    done: int
    total: int
    elapsed_s: float
    remaining_s: float | None
    """None until one row has been answered in this run."""
    in_flight: list[str] = field(default_factory=list)
    last: str = ""
    """The document whose row arrived last."""


@dataclass
class RunReport:
    table_id: int
    rows_run: int = 0
    calls: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    elapsed_s: float = 0.0


def process_document(store, table_id: int, sha256: str, settings: Settings, *, backend, context: int,
                     columns: Iterable[str] | None = None, think: bool = False, constrained: bool = True,
                     cancel: threading.Event | None = None, retries: int = 1) -> Row:
    """Answer what is left of one document's row and store it; returns the row (empty when nothing was left)."""
    table = load_row(store, table_id, sha256)
    item = next(iter(table.work(columns)), None)
    if item is None:
        return Row(sha256=sha256, document=table.rows[0].name if table.rows else sha256[:12])
    row = answer_item(store, item, settings, backend=backend, context=context, think=think,
                      constrained=constrained, cancel=cancel, retries=retries)
    save(store, table_id, row)
    return row


def answer_item(store, item: WorkItem, settings: Settings, *, backend, context: int, think: bool = False,
                constrained: bool = True, cancel: threading.Event | None = None, retries: int = 1) -> Row:
    """One document's call (retried once after a passing server failure); nothing is stored here."""
    try:
        document = store.get_document(item.sha256)
    except NotInStore:
        reason = f"{item.name} is no longer in the library: add the file again, then retry."
        return Row(item.sha256, item.name, {c.key: problem_cell(c, "failed", reason) for c in item.columns})
    for attempt in range(retries + 1):
        row = review_row(document, item.columns, settings, backend=backend, context=context, think=think,
                         constrained=constrained, cancel=cancel)
        if attempt == retries or (cancel is not None and cancel.is_set()) or not _passing_failure(row):
            return row
    return row


def _passing_failure(row: Row) -> bool:
    return row.retryable and any(c.status == "failed" for c in row.cells.values())


def save(store, table_id: int, row: Row) -> None:
    """Store a row's cells and call in one transaction (a cancelled, empty row stores nothing)."""
    if row.cells or row.calls:
        ReviewStore(store).save_row(table_id, row.sha256, [c.to_json() for c in row.cells.values()], row.calls)


def remember_timings(store, settings: Settings, row: Row) -> None:
    """Keep the row's call speeds, so a later plan or probe on this server and model can estimate
    its time (Store.recent_calls); the row is stored already, so failing here costs it nothing."""
    try:
        store.add_call_timings(settings.host, settings.model, row.calls, source="review")
    except (FolioError, OSError):
        pass


def prepare(settings: Settings, backend=None, server_info=None, think: bool = False):
    """(backend, context, server info): the server checked once for the whole run."""
    if backend is None:
        from ...servers import make_backend

        backend = make_backend(settings)
    info = server_info or backend.check()
    check_thinking(think, info, settings.model)
    context, _warning = resolve_context(settings, info)
    return backend, context, info


def run_table(
    store,
    table_id: int,
    settings: Settings,
    *,
    backend=None,
    server_info=None,
    columns: Iterable[str] | None = None,
    rows: Iterable[str] | None = None,
    concurrency: int | None = None,
    think: bool = False,
    cancel: threading.Event | None = None,
    progress: Callable[[Progress], None] | None = None,
    retries: int = 1,
    on_start: Callable[[WorkItem], None] | None = None,
    on_row: Callable[[Row, WorkItem], None] | None = None,
) -> RunReport:
    """Answer every unfinished cell of the table (of `columns` and `rows`, if given), storing rows as they arrive.

    `on_start(item)` is called (in this thread) before a document is sent, and may set `cancel`;
    `on_row(row, item)` after its row is stored (a job records its item there).
    """
    started = time.monotonic()
    cancel = cancel or threading.Event()
    table = load_table(store, table_id)
    keys = list(columns) if columns is not None else None
    work = table.work(keys, rows)
    report = RunReport(table_id)
    total = len(table.rows)
    done = total - len(work)
    if not work:
        _report(progress, done, total, started, 0, [], "")
        return report
    backend, context, info = prepare(settings, backend, server_info, think)
    state = {"constrained": True}
    workers = min(concurrency_for(settings, concurrency, info), len(work))

    def one(item: WorkItem) -> Row:
        return answer_item(store, item, settings, backend=backend, context=context, think=think,
                           constrained=state["constrained"], cancel=cancel, retries=retries)

    pending = iter(work)
    fatal: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="folio-review") as pool:
        flying = {}

        def submit() -> None:
            item = next(pending, None) if not (cancel.is_set() or fatal) else None
            if item is not None and on_start is not None:
                on_start(item)
            if item is not None and not cancel.is_set():
                flying[pool.submit(one, item)] = item

        for _ in range(workers):
            submit()
        _report(progress, done, total, started, 0, [i.name for i in flying.values()], "")
        while flying:
            finished, _ = wait(list(flying), return_when=FIRST_COMPLETED)
            for future in finished:
                item = flying.pop(future)
                try:
                    row = future.result()
                except FATAL as exc:
                    fatal = fatal or exc
                    continue
                state["constrained"] = state["constrained"] and row.constrained
                if row.cells:
                    save(store, table_id, row)
                    remember_timings(store, settings, row)
                    if on_row is not None:
                        on_row(row, item)
                    report.rows_run += 1
                    report.warnings += [f"{row.document}: {w}" for w in row.warnings]
                    report.calls += row.calls
                    done += int(all(c.finished for c in row.cells.values()) and len(row.cells) == len(item.columns))
                submit()
                _report(progress, done, total, started, report.rows_run, [i.name for i in flying.values()],
                        row.document if row.cells else "")
    report.cancelled = cancel.is_set()
    report.elapsed_s = round(time.monotonic() - started, 3)
    if fatal is not None:
        raise fatal
    return report


def _report(progress, done: int, total: int, started: float, answered: int, flying: list[str], last: str) -> None:
    if progress is None:
        return
    elapsed = time.monotonic() - started
    remaining = None
    if answered:
        remaining = round((total - done) * elapsed / answered, 1)
    progress(Progress(done=done, total=total, elapsed_s=round(elapsed, 2), remaining_s=remaining,
                      in_flight=flying, last=last))
