"""The Settings page's probe of the real context: choose a grid, see its cost, run it in the
background with progress and cancel, see the heatmap and the verdict, and earlier results.

The probe is a job of lib's ("probe", lib/asking/probe.py): one item per call, stored as it
finishes. Closing the tab, reloading the page or restarting the app does not lose it: a probe
whose process stopped shows as interrupted (here and in the jobs panel) and Resume makes only
the calls not yet made, with the same documents. Every session of this data folder sees it.
"""

from __future__ import annotations

import threading

import streamlit as st

from lib.asking import probe
from lib.errors import FolioError
from lib.library.jobs import JobInfo, Jobs
from lib.output import presenting as view
from lib.output import probe_view
from ui import resources, server

GRIDS = {
    "quick": ("Quick: 3 lengths x 3 depths", probe.QUICK_LENGTHS, probe.QUICK_DEPTHS),
    "full": ("Full: 5 lengths x 5 depths", probe.LENGTHS, probe.DEPTHS),
    "choose": ("Choose", None, None),
}
LENGTH_CHOICES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 1.0)
DEPTH_CHOICES = (0, 10, 25, 50, 75, 90, 100)
REFRESH_S = 1.0
STARTED = "probe-started"
"""Session state: the id of the probe job this session started (its result is shown at the top)."""


class ProbeJob:
    """The library's probe job, as this page follows it: read from the store each time."""

    def __init__(self, store, job_id: int):
        self.store = store
        self.id = job_id

    @property
    def info(self) -> JobInfo:
        return Jobs(self.store).get(self.id)

    @property
    def running(self) -> bool:
        return self.info.state == "running"

    def cancel(self) -> None:
        Jobs(self.store).cancel(self.id)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the probe has stopped (for tests and scripts)."""
        return Jobs(self.store).wait(self.id, timeout).state != "running"

    @property
    def error(self) -> str | None:
        return self.info.error or None

    @property
    def result(self) -> probe.ProbeResult | None:
        """The grid and verdict once the probe is done or cancelled (what finished), else None."""
        info = self.info
        if info.state not in ("done", "cancelled"):
            return None
        result = probe.job_result(info, Jobs(self.store).results(self.id))
        result.id = (info.result or {}).get("probe_run")
        return result


_STARTED: list[tuple[str, int]] = []
"""(data folder, job id) of the probes this process started (for tests: forget_jobs)."""
_LOCK = threading.Lock()


def job_for(data_dir) -> ProbeJob | None:
    """The newest probe job of the library in `data_dir`, or None."""
    store = resources.store_at(str(data_dir))
    try:
        info = probe.find_probe_job(store)
    except FolioError:
        return None
    return ProbeJob(store, info.id) if info is not None else None


def start_job(plan: probe.ProbePlan, settings) -> ProbeJob | None:
    """Start a probe for this library unless one is running there already."""
    with _LOCK:
        current = job_for(settings.data_dir)
        if current is not None and current.running:
            return current
        store = resources.store_at(str(settings.data_dir))
        try:
            job_id = probe.create_probe_job(store, plan, settings)
            Jobs(store).start(job_id, options={"settings": settings})
        except FolioError as exc:
            st.session_state["probe-error"] = exc.message
            return None
        _STARTED.append((str(settings.data_dir), job_id))
        st.session_state[STARTED] = job_id
        return ProbeJob(store, job_id)


def resume_job(job: ProbeJob) -> None:
    try:
        Jobs(job.store).start(job.id)
    except FolioError as exc:
        st.session_state["probe-error"] = exc.message
    else:
        st.session_state[STARTED] = job.id


def forget_jobs() -> None:
    """Cancel the probes this process started and wait for them (for tests)."""
    with _LOCK:
        started = list(_STARTED)
        _STARTED.clear()
    for data_dir, job_id in started:
        jobs = Jobs(resources.store_at(data_dir))
        try:
            if jobs.get(job_id).state == "running":
                jobs.cancel(job_id)
            jobs.wait(job_id, 30)
        except FolioError:
            continue


# --------------------------------------------------------------------------------- rendering


def heatmap(result: probe.ProbeResult, key: str) -> None:
    """The grid as a coloured table (no external request: a styled dataframe)."""
    words, statuses = probe_view.grid_frame(result)
    styler = words.style.apply(lambda _frame: statuses.map(_cell_css), axis=None)
    st.dataframe(styler, key=key, width="stretch")
    st.caption(" · ".join(f"**{probe_view.CELL_WORDS[s]}**: {probe_view.LEGEND[s]}" for s in probe.STATUSES))


def _cell_css(status: str) -> str:
    colour = probe_view.colour_of(status)
    return f"background-color: {colour}; color: #1d1d1f" if colour else ""


def verdict(result: probe.ProbeResult) -> None:
    tone = probe_view.verdict_tone(result.verdict.kind)
    text = view.message_markdown(result.verdict.text)
    {"success": st.success, "warning": st.warning, "error": st.error}[tone](text)


def render_result(result: probe.ProbeResult, key: str) -> None:
    st.caption(f"{view.escape_markdown(result.model)} at {view.escape_markdown(result.host)} ({result.backend}), "
               f"real context {result.plan.context:,} tokens, {result.date.replace('T', ' ')[:16]} UTC")
    verdict(result)
    heatmap(result, key)


# ---------------------------------------------------------------------------------- sections


def _choose_grid() -> tuple[tuple[float, ...], tuple[int, ...]]:
    choice = st.radio("Grid", list(GRIDS), format_func=lambda k: GRIDS[k][0], horizontal=True, key="probe-grid")
    _, lengths, depths = GRIDS[choice]
    if choice != "choose":
        return lengths, depths
    cols = st.columns(2)
    lengths = cols[0].multiselect("Lengths (share of the real context)", LENGTH_CHOICES, default=probe.QUICK_LENGTHS,
                                  format_func=lambda f: f"{f * 100:.0f} %", key="probe-lengths")
    depths = cols[1].multiselect("Depths (where the fact sits)", DEPTH_CHOICES, default=probe.QUICK_DEPTHS,
                                 format_func=lambda d: f"{d} %", key="probe-depths")
    return tuple(lengths), tuple(depths)


def _speed(s):
    try:
        return probe.speed_from_rows(resources.store().recent_calls(s.host, s.model))
    except FolioError:
        return None


def _eta(info: JobInfo, s) -> float | None:
    """This run's pace once a call finished; before that, the speed this server showed earlier."""
    if info.eta_seconds is not None:
        return info.eta_seconds
    speed = _speed(s)
    if speed and speed.prompt_tps and info.work_total:
        return max(info.work_total - info.work_done, 0) / speed.prompt_tps
    return None


def _progress(job: ProbeJob, s) -> None:
    info = job.info
    eta = _eta(info, s)
    left = f"; about {probe.duration_text(eta)} left" if eta else ""
    total = info.total or 0
    st.progress(info.fraction, text=f"{info.done} of {total} calls done{left}. "
                                    f"{view.escape_markdown(info.current or 'Starting')} "
                                    f"({view.format_seconds(info.elapsed)} so far)")
    if info.stop_requested:
        st.caption("Stopping after the call in progress…")
    elif st.button("Cancel the probe", icon=":material/stop:", key="probe-cancel"):
        job.cancel()
        st.rerun()


@st.fragment(run_every=REFRESH_S)
def _live(data_dir: str) -> None:
    """Progress of the running probe, refreshed every second; a full rerun once it ends."""
    job = job_for(data_dir)
    if job is None:
        return
    if job.running:
        _progress(job, resources.settings())
    elif st.session_state.get("probe-seen") != job.id:
        st.session_state["probe-seen"] = job.id
        st.rerun()


def _stopped(job: ProbeJob) -> None:
    """A probe that stopped before its end (the app restarted, paused, an error): say so, offer Resume."""
    info = job.info
    words = {"interrupted": "was interrupted (Folio stopped while it ran)", "paused": "is paused",
             "failed": "stopped with an error", "queued": "has not started"}
    st.warning(f"The last probe ({view.escape_markdown(info.title)}) {words.get(info.state, info.state)} after "
               f"{info.done} of {info.total or '?'} calls. Resume makes only the calls not yet made.",
               icon=":material/warning:")
    if info.error:
        st.error(view.message_markdown(info.error), icon=":material/error:")
    st.button("Resume the probe", icon=":material/play_arrow:", key="probe-resume", on_click=lambda: resume_job(job))


def section() -> None:
    """The whole 'Probe the real context' section of the Settings page."""
    s = resources.settings()
    st.subheader("Probe the real context")
    st.markdown(
        "Plants short facts at several depths of real prose (Tolstoy's *War and Peace*) at several lengths up to "
        "the real context, asks for them, and checks what the server read and what the model found and cited."
    )
    job = job_for(s.data_dir)
    status = server.server_status()
    lengths, depths = _choose_grid()
    plan = None
    try:
        plan = probe.plan_probe(s, fractions=lengths or (), depths=depths or (),
                                trained_context=status.get("trained_context") if status.get("reachable") else None)
    except FolioError as exc:
        st.warning(view.message_markdown(exc.message), icon=":material/warning:")
    if plan is not None:
        st.markdown(f"**Cost:** {view.escape_markdown(plan.cost_text(_speed(s)))}")
    running = job is not None and job.running
    if not status.get("reachable"):  # the page says why above, once; the button says what it needs
        st.caption("The probe needs the model server: start it (see above), then check again.")
    # Started in the click's callback, before this run renders: the button is already disabled.
    st.button("Start the probe", type="primary", icon=":material/play_arrow:", key="probe-start",
              disabled=plan is None or running or not status.get("reachable"),
              on_click=lambda: start_job(plan, s))
    error = st.session_state.pop("probe-error", None)
    if error:
        st.error(view.message_markdown(error), icon=":material/error:")
    job = job_for(s.data_dir)
    state = job.info.state if job is not None else None
    if state == "running":
        _live(str(s.data_dir))
    elif state in ("interrupted", "paused", "failed", "queued"):
        _stopped(job)
    elif job is not None and st.session_state.get(STARTED) == job.id:
        result = job.result
        if result is not None:
            render_result(result, key="probe-latest")
    stored_runs()


def stored_runs() -> None:
    """Earlier probe results of this library, with their date, server and model."""
    try:
        runs = resources.store().list_probe_runs()
    except FolioError as exc:
        st.error(view.message_markdown(exc.message))
        return
    if not runs:
        st.caption("No earlier probe results.")
        return
    with st.expander(f"Earlier results ({len(runs)})", icon=":material/history:"):
        chosen = st.selectbox("Result", [r["id"] for r in runs], key="probe-stored",
                              format_func=lambda rid: probe_view.stored_run_label(next(r for r in runs if r["id"] == rid)))
        try:
            result = probe.ProbeResult.from_json(resources.store().get_probe_run(chosen))
        except FolioError as exc:
            st.error(view.message_markdown(exc.message))
            return
        render_result(result, key=f"probe-stored-{chosen}")
