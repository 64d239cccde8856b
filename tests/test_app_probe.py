"""The Settings page's real-context probe with AppTest against the fake Ollama: cost before the
start, a run in a process-owned thread, the heatmap and verdict, cancel, and stored results."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.probe
from lib.library.store import Store

from fake_ollama import FakeOllama
from fake_personas import misses_middle, probe_oracle

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    ui.probe.forget_jobs()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def fake(monkeypatch):
    with FakeOllama() as server:
        server.script(answer=probe_oracle, thinking="")
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        monkeypatch.setenv("FOLIO_CONTEXT", "16384")  # small documents: a quick test
        yield server


def settings_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/settings.py").run()


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "subheader"):
        parts += [str(e.value) for e in at.get(kind)]
    return "\n".join(parts).replace("\\", "")


def heatmaps(at: AppTest) -> list:
    """The probe grids on the page, in order (the latest result before the stored one)."""
    return [d.value for d in at.dataframe if "server read" in d.value.columns]


def start(at: AppTest) -> ui.probe.ProbeJob:
    at.button(key="probe-start").click().run()
    job = ui.probe.job_for(_data_dir())
    assert job is not None
    return job


def _data_dir() -> str:
    import os

    return os.environ["FOLIO_DATA_DIR"]


def test_cost_is_stated_before_the_start_and_the_grid_can_be_chosen(fake):
    at = settings_page()
    assert "Probe the real context" in texts(at)
    assert "3 calls (3 lengths x 3 depths)" in texts(at)  # the quick grid by default
    assert "time unknown" in texts(at)
    at.radio(key="probe-grid").set_value("full").run()
    # 95 % and 75 % of 16,384 both leave the answer's 4,096 tokens only at 12,288: one call.
    assert "4 calls (4 lengths x 5 depths)" in texts(at)
    assert "95 % of the context is capped at the 12,288 tokens left" in texts(at)
    assert not fake.chat_bodies  # nothing was sent before the user pressed start


def test_a_run_in_the_background_shows_the_heatmap_and_the_verdict_and_is_kept(fake):
    at = settings_page()
    job = start(at)
    assert job.wait(60), "the probe did not finish"
    assert job.error is None
    at.run()
    frame = heatmaps(at)[0]
    assert list(frame.columns) == ["0 %", "50 %", "100 %", "server read"]
    assert len(frame) == 3 and set(frame[["0 %", "50 %", "100 %"]].stack()) == {"cited"}
    assert "reads the whole 16,384-token context and this model finds facts at every depth" in texts(at)
    assert len(fake.chat_bodies) == 3
    # Kept with its date, server and model, and shown again after a restart of the app.
    runs = Store(_data_dir()).list_probe_runs()
    assert [(r["model"], r["host"], r["read_all"]) for r in runs] == [("qwen3-128k:14b", fake.url, True)]
    ui.probe.forget_jobs()
    again = settings_page()
    assert "Earlier results (1)" in [e.label for e in again.expander]
    assert f"ollama {fake.url} · qwen3-128k:14b" in again.selectbox(key="probe-stored").format_func(runs[0]["id"])
    assert len(heatmaps(again)) == 1 and set(heatmaps(again)[0]["0 %"]) == {"cited"}
    # With a measured speed, the next run's cost says how long it will take.
    assert "about " in texts(again) and "prompt tokens/s this server and model showed before" in texts(again)


def test_a_cut_server_and_a_model_that_misses_the_middle_show_in_the_grid(fake):
    fake.script(answer=misses_middle(), thinking="").read_only(limit=4000)
    at = settings_page()
    job = start(at)
    assert job.wait(60)
    at.run()
    frame = heatmaps(at)[0]
    cells = frame[["0 %", "50 %", "100 %"]].values.tolist()
    assert cells[0] == ["cited", "missed", "cited"]  # read whole: the middle is the model's miss
    assert cells[-1][0] == "not read"  # cut: the start was never read
    assert "Your server stops reading at about 4,000 tokens" in texts(at)
    assert [e for e in at.error if "stops reading" in str(e.value)]


def test_cancel_stops_the_probe_and_keeps_what_finished(fake):
    gate = fake.hold_next()  # the first call waits until the test lets it go
    at = settings_page()
    job = start(at)
    assert fake.wait_for(lambda: fake.holding.is_set())
    at.run()
    assert at.button(key="probe-cancel")
    at.button(key="probe-cancel").click().run()
    gate.set()
    assert job.wait(30)
    assert job.result is not None and job.result.cancelled and job.result.rows == []
    assert len(fake.chat_bodies) == 1  # no call after the cancel
    at.run()
    assert "stopped before any call finished" in texts(at)
