"""The Settings page's probe of the real context: choose a grid, see its cost, run it in the
background with progress and cancel, see the heatmap and the verdict, and earlier results.

The probe runs in a thread owned by the process, not by a browser session: closing the tab or
reloading the page does not stop it, and every session of this data folder sees its progress.
Its loop is lib.asking.probe.run_probe (one call per step), so a job runner can take it over.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from lib.asking import probe
from lib.errors import FolioError
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


class ProbeJob:
    """One probe running in a process-owned thread; its progress is read by any session."""

    def __init__(self, plan: probe.ProbePlan, settings, speed: probe.Speed | None = None):
        self.plan = plan
        self.settings = settings
        self.speed = speed
        self.cancel_event = threading.Event()
        self.finished = threading.Event()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._state = {"done": 0, "total": plan.calls, "text": "Checking the model server", "eta": None,
                       "call_started": time.monotonic(), "rows": []}
        self.result: probe.ProbeResult | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="folio-probe", daemon=True)

    def start(self) -> "ProbeJob":
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the probe has finished (for tests and scripts)."""
        return self.finished.wait(timeout)

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._state, rows=list(self._state["rows"]), elapsed=time.monotonic() - self.started)

    def _update(self, **changes) -> None:
        with self._lock:
            self._state.update(changes)

    def _run(self) -> None:
        try:
            for event in probe.run_probe(self.plan, self.settings, cancel=self.cancel_event, speed=self.speed):
                if event.kind == "call":
                    self._update(text=event.text, eta=event.eta_s, call_started=time.monotonic())
                elif event.kind == "row":
                    with self._lock:
                        self._state["rows"].append(event.row)
                    self._update(done=event.index + 1, text=event.text, eta=event.eta_s)
                else:
                    self.result = event.result
            self._save()
        except FolioError as exc:
            self.error = exc.message
        except Exception as exc:  # noqa: BLE001 - a background thread must report, never vanish
            self.error = f"The probe failed: {type(exc).__name__}: {exc}"
        finally:
            self.finished.set()

    def _save(self) -> None:
        if self.result is None or not self.result.rows:
            return
        try:
            from lib.library.store import Store

            self.result.id = Store(self.settings.data_dir).add_probe_run(self.result.to_json())
        except FolioError as exc:
            self.error = f"The probe finished but its result could not be kept: {exc.message}"


_JOBS: dict[str, ProbeJob] = {}
"""Data folder -> the probe running (or last run) there: one at a time per library."""
_JOBS_LOCK = threading.Lock()


def job_for(data_dir) -> ProbeJob | None:
    with _JOBS_LOCK:
        return _JOBS.get(str(data_dir))


def start_job(plan: probe.ProbePlan, settings, speed: probe.Speed | None) -> ProbeJob:
    """Start a probe for this data folder unless one is running there already."""
    key = str(settings.data_dir)
    with _JOBS_LOCK:
        current = _JOBS.get(key)
        if current is not None and current.running:
            return current
        job = _JOBS[key] = ProbeJob(plan, settings, speed).start()
        return job


def forget_jobs() -> None:
    """Cancel and drop every probe (for tests)."""
    with _JOBS_LOCK:
        jobs = list(_JOBS.values())
        _JOBS.clear()
    for job in jobs:
        job.cancel()
        job.wait(30)


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


def _progress(job: ProbeJob) -> None:
    state = job.snapshot()
    call = time.monotonic() - state["call_started"]
    eta = f"; about {probe.duration_text(state['eta'])} left" if state.get("eta") else ""
    share = state["done"] / max(state["total"], 1)
    st.progress(share, text=f"{state['done']} of {state['total']} calls done{eta}. "
                            f"{view.escape_markdown(state['text'])} ({call:.0f} s)")
    if job.cancel_event.is_set():
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
        _progress(job)
    elif st.session_state.get("probe-seen") != id(job):
        st.session_state["probe-seen"] = id(job)
        st.rerun()


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
              on_click=lambda: start_job(plan, s, _speed(s)))
    job = job_for(s.data_dir)
    running = job is not None and job.running
    if running:
        _live(str(s.data_dir))
    elif job is not None:
        if job.error:
            st.error(view.message_markdown(job.error), icon=":material/error:")
        if job.result is not None:
            render_result(job.result, key="probe-latest")
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
