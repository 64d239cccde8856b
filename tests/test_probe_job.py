"""The real-context probe as a job ("probe"): each call stored as it finishes, so a probe stopped
half-way (paused, or its process gone) resumes with only the calls left, from the command line
or the Settings page, and shows in the jobs panel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.probe
from lib.asking import probe
from lib.config import Settings
from lib.library.jobs import Jobs
from lib.library.store import Store

from fake_ollama import FakeOllama
from fake_personas import probe_oracle

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
CONTEXT = 16384


@pytest.fixture
def fake():
    with FakeOllama() as server:
        server.script(answer=probe_oracle, thinking="")
        yield server


@pytest.fixture
def store():
    return Store(os.environ["FOLIO_DATA_DIR"])


def paused_after_one_call(fake, store) -> int:
    """A quick probe (3 calls) paused while its second call runs: one call stored."""
    settings = Settings(host=fake.url, context=CONTEXT, data_dir=store.data_dir)
    plan = probe.plan_probe(settings, fractions=probe.QUICK_LENGTHS, depths=probe.QUICK_DEPTHS)
    job_id = probe.create_probe_job(store, plan, settings, seed=7)
    calls = []

    def answer(body, prompt):
        calls.append(prompt)
        if len(calls) == 2:
            Jobs(store).pause(job_id)  # as a click on Pause, or the app stopping, would
        return probe_oracle(body, prompt)

    fake.script(answer=answer, thinking="")
    info = Jobs(store).run(job_id)
    assert (info.state, info.done, info.total) == ("paused", 1, 3)
    fake.script(answer=probe_oracle, thinking="")
    return job_id


def test_a_paused_probe_resumes_from_the_command_line_with_only_the_calls_left(fake, store):
    job_id = paused_after_one_call(fake, store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env["FOLIO_DATA_DIR"] = str(store.data_dir)  # nothing else: the job knows its server and context
    done = subprocess.run([sys.executable, "-m", "lib", "jobs", "resume", str(job_id), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)["job"]
    assert (info["kind"], info["state"], info["done"], info["total"]) == ("probe", "done", 3, 3)
    bodies = fake.chat_bodies
    assert len(bodies) == 4  # 1 stored, 1 abandoned by the pause, then the 2 left
    # The call resumed asks for the same planted facts (same seed) in a document of the same length.
    asked = [b["messages"][1]["content"] for b in bodies]
    assert asked[2].split("Question:")[1] == asked[1].split("Question:")[1]
    assert asked[2].split(">")[0] == asked[1].split(">")[0]  # <documents>\n<document name="probe-N.txt" ...
    [run] = store.list_probe_runs()
    result = probe.ProbeResult.from_json(store.get_probe_run(run["id"]))
    assert len(result.rows) == 3 and not result.cancelled and result.verdict.kind
    assert {c.status for row in result.rows for c in row.cells} == {"green"}  # found, cited, verified
    assert run["host"] == fake.url and result.plan.context == CONTEXT


@pytest.fixture
def app_env(fake, monkeypatch):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    monkeypatch.setenv("FOLIO_CONTEXT", str(CONTEXT))
    yield
    ui.probe.forget_jobs()
    st.cache_data.clear()
    st.cache_resource.clear()


def test_a_stopped_probe_shows_in_the_jobs_panel_and_resumes_on_the_settings_page(fake, store, app_env):
    job_id = paused_after_one_call(fake, store)
    at = AppTest.from_file(APP, default_timeout=60).run()
    card = [c for c in at.markdown if "Probe of qwen3-128k:14b: 3 calls" in str(c.value).replace("\\", "")]
    assert card and "paused" in str(card[0].value)
    assert any("1 of 3 calls done" in str(c.value).replace("\\", "") for c in at.caption)
    at.switch_page("pages/settings.py").run()
    assert any("after 1 of 3 calls" in str(w.value) for w in at.warning)
    at.button(key="probe-resume").click().run()
    job = ui.probe.job_for(store.data_dir)
    assert job.id == job_id and job.wait(60) and job.error is None
    at.run()
    assert len(fake.chat_bodies) == 4
    frame = [d.value for d in at.dataframe if "server read" in d.value.columns][0]
    assert len(frame) == 3 and set(frame[["0 %", "50 %", "100 %"]].stack()) == {"cited"}
