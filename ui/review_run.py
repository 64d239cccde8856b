"""Running a review table from the app: its "review" job (lib/asking/review/job.py) started,
paused, cancelled and resumed, and where the run stands.

The job runs in the app's background thread and stores each row as it arrives, so the table
fills while the page only reads the store (a fragment refreshes it every POLL_S seconds). It
survives page changes, reloads and restarts: a job whose process is gone shows as
interrupted, and Resume asks only what is not finished. A run started by `python -m lib
review` is the same job, and shows here too.
"""

from __future__ import annotations

import streamlit as st

from lib.asking.review.job import review_job, table_jobs
from lib.errors import FolioError
from lib.library.jobs import JobInfo, Jobs
from lib.output import presenting as view
from lib.output import review_view
from ui.resources import backend_for, settings, store

POLL_S = 1.0
"""How often a running table refreshes on screen."""
FLASH = "review-flash"


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def flash_notice() -> None:
    kind, text = st.session_state.pop(FLASH, (None, ""))
    if kind:
        icon = {"error": ":material/error:", "success": ":material/check_circle:"}.get(kind, ":material/info:")
        getattr(st, kind)(view.message_markdown(text), icon=icon)


def current_job(table_id: int) -> JobInfo | None:
    """The table's newest job (a command line's run of some of its columns included)."""
    try:
        found = table_jobs(store(), table_id)
    except FolioError:
        return None
    return found[0] if found else None


def start(table_id: int, *, columns: list[str] | None = None, rows: list[str] | None = None) -> bool:
    """Run what is left of the table (of `columns` and `rows`, if given) in the background."""
    s = settings()
    try:
        job_id = review_job(store(), table_id, s, columns=columns, rows=rows)
        Jobs(store()).start(job_id, options={"settings": s, "backend": backend_for(s)})
    except FolioError as exc:
        flash("error", exc.message)
        return False
    return True


def resume(info: JobInfo) -> None:
    """Resume a stopped job as it was made (its columns, its server)."""
    s = settings()
    try:
        Jobs(store()).start(info.id, options={"settings": s, "backend": backend_for(s)})
    except FolioError as exc:
        flash("error", exc.message)


def stop(info: JobInfo, how: str) -> None:
    try:
        (Jobs(store()).pause if how == "pause" else Jobs(store()).cancel)(info.id)
    except FolioError as exc:
        flash("error", exc.message)


def run_panel(table_id: int, rows, info: JobInfo | None, work_left: int) -> None:
    """Rows done of the table, and the run: its progress with Pause and Cancel, or what starts it."""
    done, total = review_view.rows_done(rows), len(rows)
    if info is not None and info.state == "running":
        line = review_view.run_line(done, total, info.elapsed, info.eta_seconds, info.current)
        if info.stop_requested:
            line += " · stopping: the rows being read are abandoned, the finished ones kept"
        st.progress(done / total if total else 0.0, text=view.escape_markdown(line))
        row = st.container(horizontal=True)
        if row.button("Pause", key="review-pause", icon=":material/pause_circle:", disabled=bool(info.stop_requested),
                      help="Stop after the rows being read; Resume goes on from there"):
            stop(info, "pause")
            st.rerun(scope="app")
        if row.button("Cancel", key="review-cancel", icon=":material/stop_circle:", disabled=bool(info.stop_requested),
                      help="Stop now; the rows already read are kept"):
            stop(info, "cancel")
            st.rerun(scope="app")
        return
    st.caption(view.escape_markdown(f"{done:,} of {total:,} rows done."))
    if info is not None and info.state in ("interrupted", "paused", "cancelled", "failed", "queued") and work_left:
        said = {"interrupted": "was interrupted (Folio stopped while it ran)", "paused": "is paused",
                "cancelled": "was cancelled", "failed": "stopped with an error", "queued": "has not started"}
        st.warning(f"The run {said[info.state]}: {work_left:,} of its rows still have cells to ask. Resume asks only "
                   "those; what was answered is kept.", icon=":material/warning:")
        if info.error:
            st.error(view.message_markdown(info.error), icon=":material/error:")
        if st.button("Resume", key="review-resume", icon=":material/play_arrow:", type="primary"):
            resume(info)
            st.rerun(scope="app")
    elif work_left:
        if st.button(f"Run: ask the {view.count_noun(work_left, 'row')} with cells left", key="review-run",
                     icon=":material/play_arrow:", type="primary",
                     help="Each document is read whole in one call that answers every column still to answer"):
            start(table_id)
            st.rerun(scope="app")
