"""Review tables as jobs ("review"): one item per document, each row stored the moment it arrives.

    job_id = review_job(store, table.id, settings)                 # this table's unfinished job, or a new one
    Jobs(store).start(job_id, options={"settings": settings})      # the app: a background thread
    Jobs(store).run(job_id, options={"settings": settings, "progress": show})   # the command line
    python -m lib jobs resume 12                                    # after a restart: the same job

The job runs `run_table` (lib/asking/review/runner.py) with the job's Stop flag as its cancel:
pause and cancel (from any tab or process) stop taking documents and abandon the calls in
flight, whose rows stay pending. What is left is what the table holds (`ReviewTable.work`),
so a resumed job skips every finished cell, even after `kill -9`; a row whose call failed is a
failed item (with the reason), asked again when the job resumes. A column added later, or a
cell made pending again (`retry_cells`), is work for the next run of the job.

Parameters (JSON, stored): {"table": id, "columns": [keys] or null for every column, "rows":
[sha256] or null for every document, "concurrency": n or null, "think": bool, "server": {backend, host, model, context, ...}} (the
server it was started against: `python -m lib jobs resume` asks the same one; the API key is
never stored, it comes from FOLIO_API_KEY). Runtime options (not stored): "settings" (they win
over the stored server), "backend", "progress" (run_table's Progress callback), "report" (called
with the RunReport), "errors" (a list that receives the error that ended the run, unchanged).
"""

from __future__ import annotations

from typing import Sequence

from ...config import Settings
from ...errors import FolioError
from ...library.jobs import JobContext, JobInfo, JobStopped, Jobs, register_kind
from ..job_settings import server_params, settings_of
from .runner import run_table
from .table import load_table

KIND = "review"


def job_key(table_id: int, columns: Sequence[str] | None = None, rows: Sequence[str] | None = None) -> str:
    """One job per table (and per set of columns and rows: a command line asking some columns,
    a cell retried alone)."""
    key = f"table-{table_id}" + (":" + ",".join(columns) if columns else "")
    return key + ("@" + ",".join(sha[:16] for sha in rows) if rows else "")


def review_params(table_id: int, settings: Settings, *, columns: Sequence[str] | None = None,
                  rows: Sequence[str] | None = None, concurrency: int | None = None, think: bool = False) -> dict:
    return {"table": int(table_id), "columns": list(columns) if columns else None,
            "rows": list(rows) if rows else None, "concurrency": concurrency, "think": bool(think),
            "server": server_params(settings)}


def find_review_job(store, table_id: int, columns: Sequence[str] | None = None,
                    rows: Sequence[str] | None = None) -> JobInfo | None:
    """The newest job of this table (and columns, and rows) that has work it could still do, or None."""
    info = Jobs(store).find(KIND, job_key(table_id, columns, rows), unfinished=False)
    return info if info is not None and info.resumable else None


def review_job(store, table_id: int, settings: Settings, *, columns: Sequence[str] | None = None,
               rows: Sequence[str] | None = None, concurrency: int | None = None, think: bool = False,
               title: str | None = None) -> int:
    """The table's unfinished job (resumed as it is), or a new queued one (of `columns` and `rows`
    only, when given: a command line's columns, a cell retried alone)."""
    found = find_review_job(store, table_id, columns, rows)
    if found is not None:
        return found.id
    table = load_table(store, table_id)
    params = review_params(table_id, settings, columns=columns, rows=rows, concurrency=concurrency, think=think)
    shown = title or f"Review: {table.title}"
    if columns:
        names = [c.title for c in table.columns if c.key in set(columns)]
        if len(names) < len(table.columns):
            shown += f" ({', '.join(names)})"
    if rows:
        names = [r.name for r in table.rows if r.sha256 in set(rows)]
        shown += f", {names[0]}" if len(names) == 1 else f", {len(names)} documents"
    return Jobs(store).create(KIND, shown, params, key=job_key(table_id, columns, rows))


def table_jobs(store, table_id: int) -> list[JobInfo]:
    """Every job of this table, newest first (any set of columns)."""
    prefix = job_key(table_id)
    return [i for i in Jobs(store).list(kind=KIND, limit=1_000_000)
            if i.key == prefix or i.key.startswith(prefix + ":")]


# ---------------------------------------------------------------- the work function


def run_review(job: JobContext) -> dict:
    """The work function of "review" jobs: run the table's work left, one item per document."""
    params, options = job.params, job.options
    settings = options.get("settings") or settings_of(params)
    table_id, keys, among = int(params["table"]), params.get("columns"), params.get("rows")
    table = load_table(job.store, table_id)
    todo = {item.sha256 for item in table.work(keys, among)}
    done_before = {r.sha256 for r in table.rows} & job.jobs.finished_keys(job.id)
    job.set_total(len(todo | done_before))

    def started(item) -> None:
        try:
            job.checkpoint(item.name)
        except JobStopped:
            pass  # the job's stop_event is set: run_table takes no more documents

    def stored(row, item) -> None:
        broken = next((c for c in row.cells.values() if c.status in ("failed", "refused")), None)
        if broken is not None:
            job.record_failure(row.sha256, f"{row.document}: {broken.reason}", label=row.document)
        else:
            job.record(row.sha256, {"document": row.document, "calls": len(row.calls)}, label=row.document)

    try:
        report = run_table(job.store, table_id, settings, backend=options.get("backend"), columns=keys, rows=among,
                           concurrency=params.get("concurrency"), think=bool(params.get("think")),
                           cancel=job.stop_event, progress=options.get("progress"), on_start=started,
                           on_row=stored)
    except FolioError as exc:
        if isinstance(options.get("errors"), list):
            options["errors"].append(exc)
        raise
    if callable(options.get("report")):
        options["report"](report)
    job.checkpoint()  # JobStopped when a pause or cancel ended the run
    return {"table": table_id, "rows_run": report.rows_run, "calls": len(report.calls),
            "counts": load_table(job.store, table_id).counts()}


register_kind(KIND, run_review)
