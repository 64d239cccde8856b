"""Long work in the app: a folder, a .zip or many uploaded files read as a job.

The job is lib's (lib/library/jobs.py), of the kind `python -m lib ingest PATH --collection NAME`
makes ("ingest"): it runs in a background thread of the app's process and stores each file as
it finishes, so it survives page changes and browser reloads (the pages only read its progress
from the store, and refresh it with a fragment every POLL_S seconds while it runs; nothing
waits). A job whose process is gone (the app was stopped or restarted) shows as interrupted;
Resume continues it, and a file already stored is not read again (its SHA-256 is). Cancel stops
it at the next file and keeps what was read. Jobs started from the command line show here too.

Uploads of many files are written to <data folder>/staging/<id>/ first, so that an app restart
can resume them; that folder goes when the job is done or removed (sweep_staging catches the
rest at start-up).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import streamlit as st

from lib.asking import probe as _probe  # noqa: F401  registers the "probe" kind: Resume works from here
from lib.asking.review import job as _review_job  # noqa: F401  registers the "review" kind
from lib.errors import FolioError
from lib.library.ingestion import KIND as INGEST, create_ingest_job, find_ingest_job, ingest_params, job_key
from lib.library.jobs import JobInfo, Jobs
from lib.output.plan_job import KIND as PLAN
from lib.output import presenting as view
from ui.resources import settings, store

STAGING = "staging"
"""Folder of the data folder where uploads wait for their job."""
UPLOAD_JOB_FILES = 5
"""From this many files dropped at once, an upload runs as a job; fewer are read in the page
(page-by-page progress, a password asked in place for a locked PDF)."""
POLL_S = 1.0
"""How often a running job's progress is refreshed on screen."""
DONE_SHOWN_S = 24 * 3600
"""A finished job stays in the list this long (or until removed)."""
SHOWN = 8
STAGING_ORPHAN_S = 3600
"""A staging folder no job refers to is removed after this long (a crash while staging)."""
FLASH = "jobs-flash"

_PAGES: dict[int, tuple[str, str, int, int | None]] = {}
"""job id -> (label, stage, done, total) of the file a job of this process is reading (page by page)."""

STATE_TEXT = {
    "running": "running",
    "queued": "waiting to start",
    "paused": "paused",
    "cancelled": "cancelled: what was read is kept",
    "interrupted": "interrupted: Folio stopped while it ran. Resume continues where it stopped",
    "failed": "stopped by an error",
    "done": "done",
}
STATE_ICON = {
    "running": ":material/sync:", "queued": ":material/schedule:", "paused": ":material/pause_circle:",
    "cancelled": ":material/cancel:", "interrupted": ":material/warning:", "failed": ":material/error:",
    "done": ":material/check_circle:",
}


def _jobs() -> Jobs:
    return Jobs(store())


# --- starting ------------------------------------------------------------------------


def start_path(text: str, collection: str | None) -> JobInfo | None:
    """Read a folder (recursively), a .zip or one file on this computer into the library (and a collection)."""
    path = _local_path(text)
    if path is None:
        return None
    paths = [str(path)]
    existing = _said(lambda: find_ingest_job(store(), paths, collection=collection))
    if existing is not None and existing.state == "running":
        flash("info", f"That folder is being read already (job {existing.id}); its progress is below.")
        return existing
    job_id = existing.id if existing is not None else _said(lambda: create_ingest_job(store(), paths, collection=collection))
    return None if job_id is None else start(job_id)


def _local_path(text: str) -> Path | None:
    """The path typed, checked; None (and a message) when it cannot be read."""
    raw = text.strip().strip('"').strip("'")
    if not raw:
        flash("error", "Type the path of a folder, a .zip archive or a document on this computer.")
        return None
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        flash("error", f"{raw}: give the whole path (starting with / or ~): the app does not know which folder you mean.")
        return None
    if not path.exists():
        flash("error", f"{path}: there is no such folder or file on this computer (the one Folio runs on). Check the path.")
        return None
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        flash("error", f"{path}: Folio may not read it (permissions). Make it readable for the user running Folio.")
        return None
    return path


def start_uploads(files: list[tuple[str, bytes]], collection: str | None) -> JobInfo | None:
    """Stage uploaded files in the data folder and read them as a job (resumable after a restart)."""
    folder = staging_root() / uuid.uuid4().hex[:16]
    try:
        paths = _stage(folder, files)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        flash("error", f"Folio could not keep the uploaded files in {folder} ({exc.strerror or exc}); nothing was "
              "added. Free some disk space or make the data folder writable, then drop them again.")
        return None
    params = ingest_params(paths, collection) | {"staging": str(folder)}
    title = f"Upload of {len(paths):,} files" + (f" into {collection}" if collection else "")
    job_id = _said(lambda: _jobs().create(INGEST, title, params, key=job_key(params["paths"], collection)))
    return None if job_id is None else start(job_id)


def _stage(folder: Path, files: list[tuple[str, bytes]]) -> list[str]:
    """Write the files under `folder` with their own names (a repeated name goes in a numbered subfolder)."""
    folder.mkdir(parents=True)
    paths = []
    for number, (name, data) in enumerate(files, start=1):
        safe = Path(name.replace("\\", "/")).name.strip() or f"upload-{number}"
        target = folder / safe
        if target.exists() or safe in (".", ".."):
            target = folder / str(number) / (safe if safe not in (".", "..") else f"upload-{number}")
            target.parent.mkdir()
        target.write_bytes(data)
        paths.append(str(target))
    return paths


def start(job_id: int) -> JobInfo | None:
    """Run (or resume) a job in the app's background thread; None (and why) when it cannot run now."""

    def page_progress(label: str, stage: str, done: int, total: int | None) -> None:
        _PAGES[job_id] = (label, stage, done, total)

    return _said(lambda: _jobs().start(job_id, options={"file_progress": page_progress}))


def cancel(job_id: int) -> None:
    """Stop a job at its next file (in this process or another); what was read stays."""
    _said(lambda: _jobs().cancel(job_id))


def remove(info: JobInfo) -> None:
    """Forget a job that is not running (its documents stay), with its staged uploads."""
    if _said(lambda: _jobs().delete(info.id)):
        _drop_staging(info)


def _said(action):
    """Run a job action; a refusal (running elsewhere, finished, gone) is kept to show, not raised."""
    try:
        return action()
    except FolioError as exc:
        flash("error", exc.message)
        return None


def flash(kind: str, text: str) -> None:
    """Say something after the rerun an action causes."""
    st.session_state[FLASH] = (kind, text)


def flash_notice() -> None:
    kind, text = st.session_state.pop(FLASH, (None, ""))
    if kind:
        getattr(st, kind)(view.message_markdown(text), icon={"error": ":material/error:", "info": ":material/info:"}.get(kind))


# --- staging -----------------------------------------------------------------------


def staging_root() -> Path:
    return Path(settings().data_dir) / STAGING


def _drop_staging(info: JobInfo) -> None:
    folder = info.params.get("staging")
    if folder and Path(folder).parent == staging_root():  # never anything outside the staging folder
        shutil.rmtree(folder, ignore_errors=True)


def sweep_staging() -> None:
    """Remove staged uploads whose job is done or gone (once per process and data folder)."""
    _sweep(str(staging_root()))


@st.cache_resource(show_spinner=False)
def _sweep(root: str) -> bool:
    folder = Path(root)
    if not folder.is_dir():
        return True
    try:
        jobs = {info.params.get("staging"): info for info in _jobs().list(kind=INGEST, limit=1_000_000)}
    except FolioError:
        return False
    for staged in folder.iterdir():
        info = jobs.get(str(staged))
        orphan = info is None and time.time() - staged.stat().st_mtime > STAGING_ORPHAN_S
        if orphan or (info is not None and info.status == "done"):
            shutil.rmtree(staged, ignore_errors=True)
    return True


# --- what the pages show -------------------------------------------------------------


def visible_jobs() -> tuple[list[JobInfo], int]:
    """Unfinished jobs and those finished within a day, the running first; and how many more there are."""
    try:
        infos = _jobs().list(limit=1_000)
    except FolioError as exc:
        flash("error", exc.message)
        return [], 0
    now = datetime.now(timezone.utc)
    shown = [i for i in infos if i.state != "done" or _age_s(i.finished_at, now) < DONE_SHOWN_S]
    order = {"running": 0, "interrupted": 1, "failed": 2, "queued": 3, "paused": 4, "cancelled": 5, "done": 6}
    shown.sort(key=lambda i: (order.get(i.state, 9), -i.id))
    return shown[:SHOWN], max(0, len(shown) - SHOWN)


def _age_s(stamp: str | None, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(stamp)).total_seconds() if stamp else 0.0
    except ValueError:
        return 0.0


def shown_label(info: JobInfo, text: str) -> str:
    """A file's label or a message as the user knows it: staged uploads by their own name, files of a
    folder under that folder's name ("Matter/2019/judgment.pdf", not the whole path)."""
    folder = info.params.get("staging")
    if folder:
        return text.replace(folder + os.sep, "")
    for path in info.params.get("paths", []):
        parent = os.path.dirname(path.rstrip(os.sep))
        if parent and parent != os.sep and text.startswith(parent + os.sep):
            return text[len(parent) + 1:]
    return text


NOUNS = {INGEST: ("file", "files"), PLAN: ("call", "calls"), "review": ("document", "documents"),
         "probe": ("call", "calls")}
"""What one item of a job of each kind is, in the words of its progress line."""


def noun(info: JobInfo, count: int = 2) -> str:
    one, many = NOUNS.get(info.kind, ("step", "steps"))
    return one if count == 1 else many


def failed_words(info: JobInfo) -> str:
    return "could not be read" if info.kind == INGEST else "failed"


def progress_text(info: JobInfo) -> str:
    """'120 of 300 files · Smith v Jones.pdf (Reading page 3 of 40) · 2 could not be read · about 3 min left'."""
    if info.kind == PLAN:
        return plan_progress_text(info)
    noun_text = noun(info)
    total = f"{info.total:,}" if info.total is not None else "?"
    parts = [f"{info.done + info.failed:,} of {total} {noun_text}"]
    if info.current:
        detail = ""
        page = _PAGES.get(info.id)
        if page and page[0] == info.current and page[3]:
            detail = f" ({page[1]} {page[2]:,} of {page[3]:,})"
        parts.append(shown_label(info, info.current) + detail)
    if info.failed:
        parts.append(f"{info.failed:,} {failed_words(info)}")
    left = view.rough_duration(info.eta_seconds)
    parts.append(f"{left} left" if left else "estimating the time left")
    return " · ".join(parts)


# --- plan jobs (questions answered in several calls: lib/output/plan_job.py, ui/plan_run.py) ---


def plan_progress_text(info: JobInfo) -> str:
    """'3 of 13 calls · call 4 of 12: a.pdf, part 2 of 7 · 245,000 tokens read · about 6 min left'."""
    total = f"{info.total:,}" if info.total is not None else "?"
    parts = [f"{info.done + info.failed:,} of {total} calls"]
    if info.current:
        parts.append(info.current)
    if info.work_done:
        parts.append(f"{int(info.work_done):,} tokens read")
    if info.failed:
        parts.append(f"{info.failed:,} not read")
    left = view.rough_duration(info.eta_seconds)
    parts.append(f"{left} left" if left else "estimating the time left")
    return " · ".join(parts)


def plan_outcome_text(info: JobInfo) -> str:
    """What a plan job did: answered (and where), or how far it read before it stopped."""
    result = info.result if isinstance(info.result, dict) else {}
    calls = len(info.params.get("calls") or [])
    if info.status == "done" and result:
        text = ("Answered" if result.get("status") == "answered" else f"Answer {result.get('status', '')}")
        text += f" in {view.count_noun(result.get('calls', 0), 'call')}"
        if result.get("citations"):
            text += f", {result.get('verified', 0):,} of {result['citations']:,} citations verified"
        if result.get("unread"):
            text += f"; {view.count_noun(result['unread'], 'part')} not read (named in the answer)"
        text += "; saved in the History"
    elif info.params.get("mode") == "all":
        text = f"{info.done:,} of {calls:,} reading calls done; the evidence found is kept"
    else:
        text = "Not answered yet (one call)"
    if info.elapsed:
        text += f"; {view.format_seconds(info.elapsed)}"
    return text + "."


def plan_actions(info: JobInfo, row) -> None:
    """Open a plan job on the Ask page (to follow it, compose from its evidence, or read its answer)."""
    import ui.plan_run

    if row.button("Open on the Ask page", key=f"job-open-{info.id}", icon=":material/forum:",
                  help="Follow it there: the evidence found, Cancel, Compose an answer, Resume"):
        ui.plan_run.open_job(info)


def outcome_text(info: JobInfo) -> str:
    """What a job that stopped did: counts, and for ingestion, added / already stored / skipped."""
    if info.kind == PLAN:
        return plan_outcome_text(info)
    total = f"{info.total:,}" if info.total is not None else "?"
    text = f"{info.done + info.failed:,} of {total} {noun(info)} done"
    result = info.result or {}
    if info.kind == INGEST and info.status == "done":
        bits = [f"{result.get('added', 0):,} added", f"{result.get('existing', 0):,} already in the library"]
        if result.get("skipped"):
            bits.append(f"{result['skipped']:,} skipped (not documents)")
        if result.get("collection"):
            bits.append(f"in the collection {result['collection']}")
        text = ", ".join(bits)
    elif info.kind == "review":
        text = review_outcome(info, text)
    elif info.kind == "probe" and info.status == "done" and result.get("verdict"):
        text += f": {result['verdict']}"
    if info.failed:
        text += f"; {info.failed:,} {failed_words(info)}"
    if info.elapsed:
        text += f"; {view.format_seconds(info.elapsed)}"
    return text + "."


def review_outcome(info: JobInfo, text: str) -> str:
    """'30 of 30 documents done: 174 cells answered, 6 need review' (from the job's result)."""
    counts = (info.result or {}).get("counts") or {}
    if info.status != "done" or not counts:
        return text
    bits = [f"{counts.get('answered', 0) + counts.get('not_stated', 0):,} cells answered"]
    if counts.get("needs_review"):
        bits.append(f"{counts['needs_review']:,} need review")
    return f"{text}: " + ", ".join(bits)


def open_review_table(info: JobInfo) -> None:
    """A review job's card: open its table on the Review page."""
    table_id = info.params.get("table")
    if table_id is not None and st.button("Open the table", key=f"job-open-{info.id}", icon=":material/table_view:",
                                          type="tertiary"):
        st.session_state["review-table"] = int(table_id)
        st.switch_page("pages/review.py")


def jobs_panel() -> None:
    """The jobs (running, interrupted, recent) with progress, Cancel, Resume and Remove."""
    flash_notice()
    infos, more = visible_jobs()
    if not infos:
        return
    running = any(i.state == "running" for i in infos)
    st.fragment(_panel_body, run_every=POLL_S if running else None)()


def _panel_body() -> None:
    infos, more = visible_jobs()
    _refresh_when_one_ends(infos)
    st.markdown("**Jobs**")
    for info in infos:
        job_card(info)
    if more:
        st.caption(f"{more:,} older jobs are not shown: `python -m lib jobs` lists them all.")


def _refresh_when_one_ends(infos: list[JobInfo]) -> None:
    """A job this session saw running has ended: run the whole page again (new documents, collections)."""
    running = [i.id for i in infos if i.state == "running"]
    seen = st.session_state.get("jobs_running", [])
    st.session_state.jobs_running = running
    for info in infos:
        if info.state != "running":
            _PAGES.pop(info.id, None)
        if info.status == "done":
            _drop_staging(info)
    if set(seen) - set(running):
        st.rerun()


def job_card(info: JobInfo) -> None:
    state = info.state
    with st.container(border=True, key=f"job-{info.id}"):
        st.markdown(f"{STATE_ICON.get(state, '')} **{view.escape_markdown(info.title)}** · {STATE_TEXT.get(state, state)}")
        if state == "running":
            stopping = ((" (stopping: the calls in flight are cancelled)" if info.kind == PLAN else
                         f" (stopping at the next {noun(info, 1)})") if info.stop_requested else "")
            st.progress(info.fraction, text=view.escape_markdown(progress_text(info) + stopping))
        else:
            st.caption(view.escape_markdown(outcome_text(info)))
        if info.error:
            st.error(view.message_markdown(info.error), icon=":material/error:")
        failures(info)
        actions(info)
        if info.kind == "review":
            open_review_table(info)


def failures(info: JobInfo) -> None:
    if not info.failed:
        return
    try:
        failed = _jobs().items(info.id, status="failed", limit=50)
    except FolioError:
        return
    with st.expander(f"{view.count_noun(info.failed, noun(info, 1))} could not be done",
                     icon=":material/block:"):
        for item in failed:
            st.markdown(view.message_markdown(shown_label(info, item.error or item.label)))
        if info.failed > len(failed):
            st.caption(f"and {info.failed - len(failed):,} more: `python -m lib jobs show {info.id}` lists them all.")
        if info.kind == INGEST:
            st.caption("A password-protected PDF: drop it on its own (fewer than "
                       f"{UPLOAD_JOB_FILES} files at once) and the page asks for its password.")


def actions(info: JobInfo) -> None:
    state = info.state
    row = st.container(horizontal=True)
    if info.kind == PLAN:
        plan_actions(info, row)
    if state == "running":
        if row.button("Cancel", key=f"job-cancel-{info.id}", icon=":material/stop_circle:",
                      disabled=bool(info.stop_requested),
                      help="Stop the calls in flight; the evidence found is kept" if info.kind == PLAN
                      else f"Stop at the next {noun(info, 1)}; what was done stays"):
            cancel(info.id)
            st.rerun()
        return
    staged_gone = info.params.get("staging") and not Path(info.params["staging"]).is_dir()
    if info.resumable and not staged_gone:
        label = f"Try the failed {noun(info)} again" if info.status == "done" else "Resume"
        if info.kind == PLAN:
            label = "Read the failed parts again and answer again" if info.status == "done" else "Resume"
        if row.button(label, key=f"job-resume-{info.id}", icon=":material/play_arrow:", type="primary",
                      help="Continue where it stopped; " + ("files already stored are not read again" if info.kind == INGEST
                                                             else f"finished {noun(info)} are not done again")):
            if info.kind == PLAN:
                import ui.plan_run

                ui.plan_run.start(info.id)
            else:
                start(info.id)
            st.rerun()
    if row.button("Remove", key=f"job-remove-{info.id}", icon=":material/close:",
                  help="Take it off this list; the documents it added stay in the library"):
        remove(info)
        st.rerun()


def sidebar_jobs() -> None:
    """On every page: jobs running (with their progress) and jobs that need the user (interrupted, failed)."""
    sweep_staging()
    infos, _more = visible_jobs()
    running = [i for i in infos if i.state == "running"]
    waiting = [i for i in infos if i.state in ("interrupted", "failed")]
    if not running and not waiting:
        st.session_state.jobs_running = []
        return
    with st.sidebar:
        st.fragment(_sidebar_body, run_every=POLL_S * 2 if running else None)()


def _sidebar_body() -> None:
    infos, _more = visible_jobs()
    _refresh_when_one_ends(infos)
    running = [i for i in infos if i.state == "running"]
    waiting = [i for i in infos if i.state in ("interrupted", "failed")]
    for info in running[:3]:
        total = f"{info.total:,}" if info.total is not None else "?"
        st.progress(info.fraction, text=view.escape_markdown(f"{info.title}: {info.done + info.failed:,} of {total}"))
    if waiting:
        st.warning(f"{view.count_noun(len(waiting), 'job')} stopped before the end: resume on the Library page.",
                   icon=":material/warning:")
    st.page_link("pages/library.py", label="Jobs on the Library page", icon=":material/pending_actions:")
