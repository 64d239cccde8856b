"""`python -m lib jobs [list|show|cancel|pause|resume|delete] [ID] [--json]` (keep it stable).

    python -m lib jobs                   # the latest jobs: id, kind, state, done/total, title
    python -m lib jobs show 12           # one job, with the items that failed and why
    python -m lib jobs cancel 12         # from another terminal: the running job stops at its next item
    python -m lib jobs resume 12         # run it here to the end (finished items are skipped)

JSON: list {"jobs": [J]}; show {"job": J, "failed": [{"key", "label", "error"}]}; cancel, pause
and resume {"job": J}; delete {"deleted": true, "id"}; where J is JobInfo.to_json(): {"id",
"kind", "title", "state", "status", "total", "done", "failed", "current", "fraction",
"elapsed_s", "eta_s", "error", "created_at", "started_at", "finished_at"}. States: queued,
running, paused, cancelled, done, failed, interrupted (its process is gone: resume it).
Exit status 0; 2 for a job that does not exist or cannot do that now (running elsewhere,
finished); `resume` exits as the job ends: 0 done, 2 done with failed items, 130 stopped.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..asking import probe  # noqa: F401  registers the "probe" kind, so `resume` can run it
from ..asking.review import job as review_job  # noqa: F401  registers the "review" kind
from ..library import ingestion  # noqa: F401  registers the "ingest" kind
from ..output import plan_job  # noqa: F401  registers the "plan" kind (questions answered in several calls)
from ..library.jobs import JobInfo, Jobs
from ..library.store import open_store
from .ingest import _width, _write_stdout
from .progress import JobProgress, duration


def add_parser(subparsers) -> None:
    """Register `jobs`."""
    parser = subparsers.add_parser(
        "jobs",
        help="long work (ingesting folders, plans, review tables): list, show, cancel, pause, resume, delete",
        description="Jobs run long work step by step and keep every finished step; they can be stopped from "
        "anywhere and resumed, even after the process running them was killed.",
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="the latest jobs")
    listing.add_argument("--limit", type=int, default=20)
    for name, helptext in (("show", "one job and its failed items"), ("cancel", "stop a job for good (finished items kept)"),
                           ("pause", "stop a job until resumed"), ("resume", "run a job here to its end"),
                           ("delete", "forget a job that is not running")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("id", type=int, metavar="ID")
    for action in actions.choices.values():
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print exactly one JSON object on stdout")
    parser.set_defaults(handler=run, action=None, limit=20)


def run(args) -> int:
    jobs = Jobs(open_store())
    action = args.action or "list"
    if action == "resume":
        return _resume(jobs, args)
    data, text = HANDLERS[action](jobs, args)
    _write_stdout(json.dumps(data, ensure_ascii=False) + "\n" if args.json else text)
    return 0


def _list(jobs: Jobs, args) -> tuple[dict, str]:
    infos = jobs.list(limit=args.limit)
    if not infos:
        return {"jobs": []}, "No jobs yet.\n"
    rows = [("id", "kind", "state", "done", "left", "title")] + [
        (str(i.id), i.kind, i.state, f"{i.done + i.failed}/{i.total if i.total is not None else '?'}",
         duration(i.eta_seconds) or "-", i.title) for i in infos
    ]
    widths = [max(_width(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    return {"jobs": [i.to_json() for i in infos]}, "\n".join(lines) + "\n"


def _show(jobs: Jobs, args) -> tuple[dict, str]:
    info = jobs.get(args.id)
    failed = jobs.items(args.id, status="failed", limit=1000)
    data = {"job": info.to_json(), "failed": [{"key": f.key, "label": f.label, "error": f.error} for f in failed]}
    return data, _describe(info) + "".join(f"  failed: {f.label}: {f.error}\n" for f in failed)


def _cancel(jobs: Jobs, args) -> tuple[dict, str]:
    info = jobs.cancel(args.id)
    said = "will stop at its next step" if info.status == "running" and not info.interrupted else "is cancelled"
    return {"job": info.to_json()}, f"Job {info.id} ({info.title}) {said}; finished items are kept.\n"


def _pause(jobs: Jobs, args) -> tuple[dict, str]:
    info = jobs.pause(args.id)
    said = "will pause at its next step" if info.status == "running" and not info.interrupted else "is paused"
    return {"job": info.to_json()}, f"Job {info.id} ({info.title}) {said}; resume it with: python -m lib jobs resume {info.id}\n"


def _delete(jobs: Jobs, args) -> tuple[dict, str]:
    deleted = jobs.delete(args.id)
    if not deleted:
        jobs.get(args.id)  # JobError (exit 2): there is no such job
    return {"deleted": True, "id": args.id}, f"Deleted job {args.id}.\n"


def _resume(jobs: Jobs, args) -> int:
    progress = JobProgress()
    try:
        info = jobs.run(args.id, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        print(f"folio: job {args.id} cancelled; finished items are kept. Resume it again later.", file=sys.stderr)
        return 130
    progress.close()
    _write_stdout(json.dumps({"job": info.to_json()}, ensure_ascii=False) + "\n" if args.json else _describe(info))
    if info.state in ("cancelled", "paused"):
        return 130
    if info.state == "failed":
        return 1
    return 2 if info.failed else 0


def _describe(info: JobInfo) -> str:
    lines = [f"Job {info.id}: {info.title} ({info.kind}), {info.state}.",
             f"  {info.done:,} done, {info.failed:,} failed of {info.total if info.total is not None else '?'}; "
             f"{info.elapsed:,.0f} s spent" + (f", {duration(info.eta_seconds)} left" if info.eta_seconds is not None else "") + "."]
    if info.current and info.state != "done":
        lines.append(f"  current: {info.current}")
    if info.error:
        lines.append(f"  error: {info.error}")
    result = info.result if isinstance(info.result, dict) else {}
    if result.get("conversation_id") is not None:
        lines.append(f"  answer ({result.get('status', 'answered')}): saved in the History, conversation "
                     f"{result['conversation_id']}: {result.get('answer', '')[:200]}")
    return "\n".join(lines) + "\n"


HANDLERS = {"list": _list, "show": _show, "cancel": _cancel, "pause": _pause, "delete": _delete}
