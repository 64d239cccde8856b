"""Long work as a job: stored as it goes, resumable after a crash, stoppable from anywhere.

Every long piece of work (a folder of files, a plan of many model calls, a review table,
the context probe) is a job of some *kind*. The stage that owns a kind registers its work
function; the library stores the job, its progress and each finished item's result.

    from lib.library.jobs import Jobs, register_kind

    def ingest_folder(job):                               # the work function of a kind
        files = job.params["files"]
        job.set_total(len(files), work=sum(f["size"] for f in files))   # items, and work units for the estimate
        for f in job.pending(files, key=lambda f: f["path"]):           # skips items finished in any earlier run
            with job.item(f["path"], label=f["name"], work=f["size"]) as item:  # stops here on cancel/pause
                item.result = {"sha256": read_and_store(f)}              # stored with the item, in one transaction
        return {"files": len(files)}                                     # the job's result (JSON)

    register_kind("ingest", ingest_folder)                # at import of the module that owns the kind

    jobs = Jobs(store)
    job_id = jobs.create("ingest", "Matter files", {"files": [...]}, key="...")   # status "queued"
    jobs.run(job_id)           # here, in this thread (the command line; Ctrl-C cancels) ...
    jobs.start(job_id)         # ... or in the process-wide runner's thread (the app); returns at once
    info = jobs.get(job_id)    # JobInfo: state, total, done, failed, current, fraction, eta_seconds, error
    jobs.pause(job_id); jobs.cancel(job_id)   # from any thread or any process: a flag in the store
    jobs.start(job_id)         # resume: finished items are skipped, failed ones tried again
    jobs.wait(job_id)          # until a job started here ends (tests, the command line)
    jobs.results(job_id)       # {item key: result} of every finished item

States: queued, running, paused, cancelled, done, failed (stored), and "interrupted": a
running job whose owner is gone (the process was killed, the machine restarted). The owner
holds a lease: its process id and a heartbeat written every HEARTBEAT_S seconds; a job
whose owner process no longer exists, or whose heartbeat is older than LEASE_S, is
interrupted, and any process can resume it. A job that is really running elsewhere
cannot be started twice (JobBusy). Running a job that is done but has failed items tries
those items again (a review cell that failed, a file fixed since).

Calls in flight at once (a plan with concurrency 4): the work function stays the one
thread that checkpoints; workers record their own items, and long calls watch stop_event:

    with ThreadPoolExecutor(4) as pool:
        for call in job.pending(calls, key=lambda c: c.key):
            job.checkpoint(f"call {call.number} of {len(calls)}")          # JobStopped on cancel/pause
            pool.submit(lambda c=call: job.record(c.key, ask(c, cancel=job.stop_event), work=c.tokens))

Inside a work function (JobContext): `job.params`, `job.store`, `job.set_total(n, work=)`,
`job.pending(items, key=)`, `job.item(key, label=, work=)` (a context manager: a FolioError
inside it marks that item failed with its message and the job goes on; any other exception
fails the job), `job.record(key, result)` / `job.record_failure(key, message)` for items
finished in worker threads, `job.checkpoint(label)`, `job.stop_event` (a threading.Event
set when a stop is asked: pass it to long calls such as a model request), `job.results()`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..errors import FolioError, StoreError

if TYPE_CHECKING:
    from .store import Store

HEARTBEAT_S = 2.0
"""How often a running job's owner proves it is alive (and looks for a stop request)."""
LEASE_S = 30.0
"""A heartbeat older than this means the owner is gone, even if its process id is in use."""
STATES = ("queued", "running", "paused", "cancelled", "done", "failed", "interrupted")
RESUMABLE = ("queued", "paused", "cancelled", "failed", "interrupted")
HOST = socket.gethostname()
PROCESS_TOKEN = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
"""This process's identity as a job owner (a process id alone is reused after a restart)."""

WorkFunction = Callable[["JobContext"], "dict | None"]
Progress = Callable[["JobInfo"], None]
KINDS: dict[str, WorkFunction] = {}


class JobError(StoreError):
    """A job cannot do what was asked (unknown job, finished already, no worker for its kind)."""

    exit_status = 2


class JobBusy(JobError):
    """The job is running in another live thread or process."""


class JobStopped(Exception):
    """Raised inside a work function at a checkpoint when a pause or cancel was asked."""

    def __init__(self, how: str):
        self.how = how  # "pause" or "cancel"
        super().__init__(f"job {how}")


def register_kind(kind: str, work: WorkFunction) -> None:
    """Make `work` the function that runs jobs of `kind` in this process (the last one wins)."""
    KINDS[kind] = work


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def owner_alive(owner: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the owner that wrote this lease still runs the job."""
    if not owner or heartbeat is None:
        return False
    now = time.time() if now is None else now
    if now - heartbeat > LEASE_S:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != HOST:
        return True  # another machine sharing the folder: trust its fresh heartbeat
    pid = int(pid_text) if pid_text.isdigit() else None
    if pid == os.getpid():
        return owner == PROCESS_TOKEN  # same pid, earlier life of this process id (a restarted container)
    return _pid_alive(pid)


# ---------------------------------------------------------------- what a job looks like


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    title: str
    params: dict
    key: str
    status: str
    """As stored: queued, running, paused, cancelled, done or failed."""
    interrupted: bool
    """Running according to the store, but its owner is gone: resume it."""
    total: int | None
    done: int
    failed: int
    work_total: float | None
    work_done: float
    current: str
    """Label of the item being worked on (a file name, "call 3 of 12", ...)."""
    error: str
    result: Any
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    elapsed: float
    """Seconds spent running, over every run."""
    eta_seconds: float | None
    """Estimated seconds left, from this run's pace; None until it can be told."""
    owner_pid: int | None
    stop_requested: str | None

    @property
    def state(self) -> str:
        """The status a person should see: "interrupted" for a running job whose owner is gone."""
        return "interrupted" if self.interrupted else self.status

    @property
    def fraction(self) -> float:
        if self.work_total:
            return max(0.0, min(1.0, self.work_done / self.work_total))
        if self.total:
            return max(0.0, min(1.0, (self.done + self.failed) / self.total))
        return 1.0 if self.status == "done" else 0.0

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def resumable(self) -> bool:
        """Whether start/run would do something: unfinished, or done with items that failed."""
        return self.state in RESUMABLE or (self.status == "done" and self.failed > 0)

    def to_json(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "title": self.title, "state": self.state, "status": self.status,
            "total": self.total, "done": self.done, "failed": self.failed, "current": self.current,
            "fraction": round(self.fraction, 4), "elapsed_s": round(self.elapsed, 1),
            "eta_s": None if self.eta_seconds is None else round(self.eta_seconds, 1), "error": self.error,
            "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class ItemRecord:
    key: str
    status: str
    """done or failed"""
    label: str
    result: Any
    error: str
    seconds: float
    finished_at: str


def _info(row, now: float | None = None) -> JobInfo:
    now = time.time() if now is None else now
    running = row["status"] == "running"
    alive = running and owner_alive(row["owner"], row["heartbeat"], now)
    elapsed = row["elapsed"] + (now - row["run_started"] if alive and row["run_started"] else 0.0)
    return JobInfo(
        id=row["id"], kind=row["kind"], title=row["title"], params=json.loads(row["params"]), key=row["key"],
        status=row["status"], interrupted=running and not alive, total=row["total"], done=row["done"],
        failed=row["failed"], work_total=row["work_total"], work_done=row["work_done"], current=row["current"],
        error=row["error"], result=json.loads(row["result"]) if row["result"] else None,
        created_at=row["created_at"], updated_at=row["updated_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], elapsed=elapsed, eta_seconds=_eta(row, now) if alive else None,
        owner_pid=row["owner_pid"], stop_requested=row["stop"],
    )


def _eta(row, now: float) -> float | None:
    """Time left at this run's pace (work units done since it started, over the time it took)."""
    total, done = row["work_total"], row["work_done"]
    progress = done - row["run_work_start"]
    if not total or not row["run_started"] or progress <= 0:
        return None
    return max(0.0, (total - done) * (now - row["run_started"]) / progress)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# ---------------------------------------------------------------- the store side


class Jobs:
    """Jobs in one store: create, look at, stop, run or start them."""

    def __init__(self, store: "Store"):
        self.store = store

    # --- creating and reading ---------------------------------------------------------

    def create(self, kind: str, title: str, params: dict | None = None, *, key: str = "") -> int:
        """A new queued job; `key` lets the same work be found again (see find)."""
        now = _now()
        with self.store._errors("create the job"), self.store._write() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (kind, title, params, key, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
                (kind, title, _json(params or {}), key, "queued", now, now),
            )
            return int(cursor.lastrowid)

    def get(self, job_id: int) -> JobInfo:
        with self.store._errors("read the job"), self.store._read() as conn:
            return _info(self._row(conn, job_id))

    def find(self, kind: str, key: str, *, unfinished: bool = True) -> JobInfo | None:
        """The newest job of this kind and key (not yet done, if `unfinished`), or None."""
        sql = "SELECT * FROM jobs WHERE kind = ? AND key = ?" + (" AND status != 'done'" if unfinished else "")
        with self.store._errors("read the jobs"), self.store._read() as conn:
            row = conn.execute(sql + " ORDER BY id DESC LIMIT 1", (kind, key)).fetchone()
        return _info(row) if row else None

    def list(self, *, kind: str | None = None, states: Iterable[str] = (), limit: int = 50, offset: int = 0) -> list[JobInfo]:
        """Jobs, newest first; `states` may include "interrupted"."""
        sql, params = "SELECT * FROM jobs", []
        if kind:
            sql, params = sql + " WHERE kind = ?", [kind]
        wanted = set(states)
        with self.store._errors("read the jobs"), self.store._read() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC", params).fetchall()
        infos = [_info(row) for row in rows]
        if wanted:
            infos = [i for i in infos if i.state in wanted]
        return infos[offset: offset + limit]

    def items(self, job_id: int, *, status: str | None = None, offset: int = 0, limit: int = 100) -> list[ItemRecord]:
        """Finished items in the order they were first finished (done and failed, or one of the two)."""
        sql = "SELECT * FROM job_items WHERE job_id = ?" + (" AND status = ?" if status else "")
        params = [job_id] + ([status] if status else []) + [limit, offset]
        with self.store._errors("read the job"), self.store._read() as conn:
            rows = conn.execute(sql + " ORDER BY rowid LIMIT ? OFFSET ?", params).fetchall()
        return [_item(row) for row in rows]

    def results(self, job_id: int) -> dict[str, Any]:
        """{key: result} of every item finished successfully."""
        with self.store._errors("read the job"), self.store._read() as conn:
            rows = conn.execute("SELECT key, result FROM job_items WHERE job_id = ? AND status = 'done'", (job_id,))
            return {key: json.loads(result) if result else None for key, result in rows}

    def finished_keys(self, job_id: int, *, include_failed: bool = False) -> set[str]:
        statuses = ("done", "failed") if include_failed else ("done",)
        with self.store._errors("read the job"), self.store._read() as conn:
            rows = conn.execute(
                f"SELECT key FROM job_items WHERE job_id = ? AND status IN ({', '.join('?' * len(statuses))})",
                (job_id, *statuses),
            )
            return {row[0] for row in rows}

    def delete(self, job_id: int) -> bool:
        """Forget a job that is not running, with its items; False if there was none."""
        with self.store._errors("delete the job"), self.store._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            if row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"]):
                raise JobBusy(f"Job {job_id} ({row['title']}) is running; cancel it before deleting it.")
            conn.execute("DELETE FROM job_items WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return True

    @staticmethod
    def _row(conn, job_id: int):
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"There is no job {job_id} (it may have been deleted). List the jobs and choose again.")
        return row

    # --- stopping ---------------------------------------------------------------------

    def cancel(self, job_id: int) -> JobInfo:
        """Ask the job to stop for good (finished items are kept). Works from any process."""
        return self._stop(job_id, "cancel", "cancelled")

    def pause(self, job_id: int) -> JobInfo:
        """Ask the job to stop until resumed (finished items are kept). Works from any process."""
        return self._stop(job_id, "pause", "paused")

    def _stop(self, job_id: int, how: str, status: str) -> JobInfo:
        with self.store._errors(f"{how} the job"), self.store._write() as conn:
            row = self._row(conn, job_id)
            if row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"]):
                # The owner sees the flag at its next checkpoint or heartbeat and stops there.
                conn.execute("UPDATE jobs SET stop = ?, updated_at = ? WHERE id = ?", (how, _now(), job_id))
            elif row["status"] != "done":
                conn.execute(
                    "UPDATE jobs SET status = ?, stop = NULL, owner = NULL, updated_at = ? WHERE id = ?",
                    (status, _now(), job_id),
                )
            row = self._row(conn, job_id)
        _wake(job_id, how)
        return _info(row)

    # --- running ----------------------------------------------------------------------

    def run(self, job_id: int, *, options: dict | None = None, progress: Progress | None = None) -> JobInfo:
        """Run (or resume) the job in this thread until it ends; returns how it ended.

        `options` reach the work function as `job.options` and are never stored (passwords,
        callbacks, a server client); `progress(info)` is called with the JobInfo whenever
        an item starts or finishes. KeyboardInterrupt cancels the job (finished items are
        kept) and is raised again.
        """
        context = self._claim(job_id, options, progress)
        return context._run()

    def start(self, job_id: int, *, options: dict | None = None, progress: Progress | None = None) -> JobInfo:
        """Run (or resume) the job in a background thread of this process; returns at once."""
        context = self._claim(job_id, options, progress)
        thread = threading.Thread(target=context._run_quietly, name=f"folio-job-{job_id}", daemon=True)
        _RUNNING[job_id] = context
        _THREADS[job_id] = thread
        thread.start()
        return self.get(job_id)

    def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Wait for a job started in this process (start) to end, or `timeout` seconds; its JobInfo."""
        thread = _THREADS.get(job_id)
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive():
                _THREADS.pop(job_id, None)
        return self.get(job_id)

    def _claim(self, job_id: int, options: dict | None, progress: "Progress | None") -> "JobContext":
        now = time.time()
        with self.store._errors("start the job"), self.store._write() as conn:
            row = self._row(conn, job_id)
            work = KINDS.get(row["kind"])
            if work is None:
                raise JobError(
                    f"Job {job_id} is a {row['kind']!r} job, and nothing in this process knows how to run that kind. "
                    "Run it from the Folio app or command that created it."
                )
            if row["status"] == "done" and not row["failed"]:
                raise JobError(f"Job {job_id} ({row['title']}) has finished already; there is nothing left to do.")
            if row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"], now):
                where = "this process" if row["owner"] == PROCESS_TOKEN else f"process {row['owner_pid']}"
                raise JobBusy(f"Job {job_id} ({row['title']}) is already running in {where}. Wait for it, or cancel it first.")
            conn.execute(
                "UPDATE jobs SET status = 'running', owner = ?, owner_pid = ?, heartbeat = ?, stop = NULL, error = '', "
                "run_started = ?, run_work_start = work_done, started_at = COALESCE(started_at, ?), finished_at = NULL, "
                "updated_at = ? WHERE id = ?",
                (PROCESS_TOKEN, os.getpid(), now, now, _now(), _now(), job_id),
            )
            row = self._row(conn, job_id)
        return JobContext(self, _info(row), work, options or {}, progress)


def _item(row) -> ItemRecord:
    return ItemRecord(
        key=row["key"], status=row["status"], label=row["label"],
        result=json.loads(row["result"]) if row["result"] else None, error=row["error"],
        seconds=row["seconds"], finished_at=row["finished_at"],
    )


_THREADS: dict[int, threading.Thread] = {}
_RUNNING: dict[int, "JobContext"] = {}
"""Jobs running in this process (so a stop asked here is seen at once, not at the next heartbeat)."""


def _wake(job_id: int, how: str) -> None:
    context = _RUNNING.get(job_id)
    if context is not None:
        context._stop_asked(how)


# ---------------------------------------------------------------- the work side


@dataclass
class ItemHandle:
    """What the body of `with job.item(...)` fills in."""

    key: str
    label: str
    work: float
    result: Any = None
    started: float = field(default_factory=time.monotonic)


class JobContext:
    """What a work function gets: its job's parameters, the store, and the progress calls."""

    def __init__(self, jobs: Jobs, info: JobInfo, work: WorkFunction, options: dict, progress: Progress | None):
        self.jobs = jobs
        self.options = options
        """Runtime options given to run/start (never stored)."""
        self._progress = progress
        self.store = jobs.store
        self.id = info.id
        self.kind = info.kind
        self.title = info.title
        self.params = info.params
        self.stop_event = threading.Event()
        self._stop_how: str | None = None
        self._work = work
        self._finished = jobs.finished_keys(info.id)
        self._heartbeat_stop = threading.Event()

    # --- for the work function ----------------------------------------------------

    def set_total(self, items: int, *, work: float | None = None) -> None:
        """How many items the job has, and optionally the work units (bytes, tokens) for the estimate."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET total = ?, work_total = ?, updated_at = ? WHERE id = ?",
                (int(items), float(items if work is None else work), _now(), self.id),
            )
        self._report()

    def is_finished(self, key: str) -> bool:
        """Whether this item finished successfully in an earlier run (or this one)."""
        return key in self._finished

    def pending(self, items: Iterable, key: Callable[[Any], str] = str) -> Iterator:
        """The items not finished yet, in order."""
        for item in items:
            if key(item) not in self._finished:
                yield item

    @contextmanager
    def item(self, key: str, *, label: str = "", work: float = 1.0) -> Iterator[ItemHandle]:
        """Work on one item: a checkpoint first, then its result (or its failure) stored."""
        self.checkpoint(label or key)
        handle = ItemHandle(key, label or key, work)
        try:
            yield handle
        except FolioError as exc:
            self.record_failure(key, str(exc), label=handle.label, work=work, seconds=time.monotonic() - handle.started)
            return
        self.record(key, handle.result, label=handle.label, work=work, seconds=time.monotonic() - handle.started)

    def checkpoint(self, label: str | None = None) -> None:
        """Raise JobStopped if a pause or cancel was asked; else note the current item's label."""
        with self._write() as conn:
            row = conn.execute("SELECT stop FROM jobs WHERE id = ?", (self.id,)).fetchone()
            if row and row["stop"]:
                self._stop_asked(row["stop"])
            elif label is not None:
                conn.execute("UPDATE jobs SET current = ?, updated_at = ? WHERE id = ?", (label, _now(), self.id))
        if self._stop_how:
            raise JobStopped(self._stop_how)
        self._report()

    def stopping(self) -> bool:
        """Whether a pause or cancel was asked (for loops that cannot raise at once)."""
        return self.stop_event.is_set()

    def record(self, key: str, result: Any = None, *, label: str = "", work: float = 1.0, seconds: float = 0.0) -> None:
        """Store a finished item and count it, in one transaction (safe from worker threads)."""
        self._store_item(key, "done", result, "", label, work, seconds)
        self._finished.add(key)

    def record_failure(self, key: str, message: str, *, label: str = "", work: float = 1.0, seconds: float = 0.0) -> None:
        """Store an item that could not be done, with the reason (tried again on resume)."""
        self._store_item(key, "failed", None, message, label, work, seconds)

    def results(self) -> dict[str, Any]:
        return self.jobs.results(self.id)

    def discard_failures(self, keep: Iterable[str]) -> None:
        """Forget failed items whose keys are not in `keep` (the work changed since they failed)."""
        keep = set(keep)
        with self._write() as conn:
            stale = [(r["key"], r["work"]) for r in conn.execute(
                "SELECT key, work FROM job_items WHERE job_id = ? AND status = 'failed'", (self.id,)) if r["key"] not in keep]
            conn.executemany("DELETE FROM job_items WHERE job_id = ? AND key = ?", [(self.id, k) for k, _w in stale])
            conn.execute("UPDATE jobs SET failed = failed - ?, work_done = work_done - ?, updated_at = ? WHERE id = ?",
                         (len(stale), sum(w for _k, w in stale), _now(), self.id))

    def failures(self) -> list[ItemRecord]:
        return self.jobs.items(self.id, status="failed", limit=1_000_000)

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def _write(self):
        with self.store._errors("save the job's progress"), self.store._write() as conn:
            yield conn

    def _store_item(self, key, status, result, error, label, work, seconds) -> None:
        with self._write() as conn:
            before = conn.execute("SELECT status FROM job_items WHERE job_id = ? AND key = ?", (self.id, key)).fetchone()
            previous = before["status"] if before else None
            conn.execute(
                "INSERT INTO job_items (job_id, key, status, label, result, error, seconds, work, finished_at) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (job_id, key) DO UPDATE SET status = excluded.status, "
                "label = excluded.label, result = excluded.result, error = excluded.error, "
                "seconds = excluded.seconds, finished_at = excluded.finished_at",
                (self.id, key, status, label, None if result is None else _json(result), error, seconds, work, _now()),
            )
            done = (status == "done") - (previous == "done")
            failed = (status == "failed") - (previous == "failed")
            counted = 0.0 if previous else work  # an item tried again counts its work once
            conn.execute(
                "UPDATE jobs SET done = done + ?, failed = failed + ?, work_done = work_done + ?, updated_at = ? "
                "WHERE id = ?",
                (done, failed, counted, _now(), self.id),
            )
        self._report()

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self.jobs.get(self.id))

    def _stop_asked(self, how: str) -> None:
        if self._stop_how != "cancel":  # a cancel wins over a pause
            self._stop_how = how
        self.stop_event.set()

    def _heartbeat(self) -> None:
        while not self._heartbeat_stop.wait(HEARTBEAT_S):
            try:
                with self.store._write() as conn:
                    conn.execute("UPDATE jobs SET heartbeat = ? WHERE id = ? AND owner = ?", (time.time(), self.id, PROCESS_TOKEN))
                    row = conn.execute("SELECT stop FROM jobs WHERE id = ?", (self.id,)).fetchone()
                if row and row["stop"]:
                    self._stop_asked(row["stop"])
            except Exception:  # a busy database: the next beat tries again (the lease is 15 beats long)
                continue

    def _run(self) -> JobInfo:
        _RUNNING[self.id] = self
        beat = threading.Thread(target=self._heartbeat, name=f"folio-job-{self.id}-heartbeat", daemon=True)
        beat.start()
        try:
            try:
                result = self._work(self)
            except JobStopped as stop:
                self._end("cancelled" if stop.how == "cancel" else "paused")
            except KeyboardInterrupt:
                self._end("cancelled")
                raise
            except FolioError as exc:
                self._end("failed", error=str(exc))
            except BaseException as exc:
                self._end("failed", error=f"Unexpected failure: {type(exc).__name__}: {exc}")
                if not isinstance(exc, Exception):
                    raise
            else:
                self._end("done", result=result)
        finally:
            self._heartbeat_stop.set()
            _RUNNING.pop(self.id, None)
            _THREADS.pop(self.id, None)
        return self.jobs.get(self.id)

    def _run_quietly(self) -> None:
        try:
            self._run()
        except BaseException:  # the job row says what happened; a thread has nobody to tell
            pass

    def _end(self, status: str, *, error: str = "", result: Any = None) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, error = ?, result = COALESCE(?, result), current = CASE WHEN ? = 'done' "
                "THEN '' ELSE current END, elapsed = elapsed + (? - COALESCE(run_started, ?)), run_started = NULL, "
                "owner = NULL, stop = NULL, finished_at = ?, updated_at = ? WHERE id = ? AND owner = ?",
                (status, error, None if result is None else _json(result), status, now, now,
                 _now() if status == "done" else None, _now(), self.id, PROCESS_TOKEN),
            )
