"""Jobs: stored as they go, resumed after kill -9 without redoing a finished item, stopped
from another process, paused, failed items tried again, and honest about their state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import job_kinds
from lib.library.jobs import JobBusy, JobError, Jobs
from lib.library.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import job_kinds
from lib.library.jobs import Jobs
from lib.library.store import Store
Jobs(Store({data!r})).run({job_id})
"""


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "library")


def make_job(store: Store, tmp_path: Path, items: int = 10, **params) -> int:
    params = {"items": items, "log": str(tmp_path / "work.log"), **params}
    return Jobs(store).create(job_kinds.KIND, "Count things", params, key="count-test")


def work_log(tmp_path: Path) -> list[str]:
    path = tmp_path / "work.log"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOLIO_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_job_killed_half_way_resumes_without_redoing_a_finished_item(store, tmp_path):
    job_id = make_job(store, tmp_path, items=10, block_at="item-05")
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), data=str(store.data_dir), job_id=job_id)
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "FOLIO_TEST_BLOCK": "1"},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().split() == ["blocked", "item-05"]
        running = Jobs(store).get(job_id)
        assert (running.state, running.done, running.owner_pid) == ("running", 5, child.pid)
        assert running.current == "working on item-05"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    interrupted = Jobs(store).get(job_id)
    assert interrupted.interrupted and interrupted.state == "interrupted" and interrupted.resumable
    assert (interrupted.done, interrupted.total) == (5, 10)
    listed = json.loads(cli("jobs", "--json", data_dir=store.data_dir).stdout)["jobs"]
    assert [(j["id"], j["state"], j["done"]) for j in listed] == [(job_id, "interrupted", 5)]

    finished = Jobs(store).run(job_id)  # another process (this one) resumes it

    assert (finished.state, finished.done, finished.failed, finished.total) == ("done", 10, 0, 10)
    log = work_log(tmp_path)
    for number in range(10):
        key = f"item-{number:02d}"
        # Finished before the kill: done once. item-05 was cut off mid-way, so it is done again.
        assert log.count(key) == (2 if key == "item-05" else 1), (key, log)
    assert Jobs(store).results(job_id) == {f"item-{n:02d}": {"square": n * n} for n in range(10)}
    assert finished.result == {"items": 10} and finished.work_done == finished.work_total == 100


def test_cancel_from_another_process_stops_at_the_next_item_and_keeps_what_finished(store, tmp_path):
    jobs = Jobs(store)
    job_id = make_job(store, tmp_path, items=10, gate_at="item-03")
    reached, release = threading.Event(), threading.Event()
    jobs.start(job_id, options={"gate": (reached, release)})
    assert reached.wait(60)
    with pytest.raises(JobBusy, match="already running in this process"):
        jobs.run(job_id)

    answer = cli("jobs", "cancel", str(job_id), data_dir=store.data_dir)
    assert answer.returncode == 0, answer.stderr
    assert "will stop at its next step" in answer.stdout
    release.set()
    ended = jobs.wait(job_id, timeout=60)

    assert ended.state == "cancelled" and ended.done == 4  # item-03 finished; item-04 never started
    assert work_log(tmp_path) == [f"item-{n:02d}" for n in range(4)]
    assert ended.resumable
    resumed = jobs.run(job_id)
    assert resumed.state == "done" and resumed.done == 10
    assert sorted(work_log(tmp_path)) == [f"item-{n:02d}" for n in range(10)]


def test_pause_then_resume_in_a_background_thread(store, tmp_path):
    jobs = Jobs(store)
    job_id = make_job(store, tmp_path, items=6, gate_at="item-02")
    reached, release = threading.Event(), threading.Event()
    seen = []
    jobs.start(job_id, options={"gate": (reached, release)}, progress=seen.append)
    assert reached.wait(60)
    running = jobs.get(job_id)
    assert running.state == "running" and running.eta_seconds is not None and 0 < running.fraction < 1
    jobs.pause(job_id)
    release.set()
    paused = jobs.wait(job_id, timeout=60)
    assert (paused.state, paused.done) == ("paused", 3)
    assert [info.done for info in seen] == sorted(info.done for info in seen)  # progress only moves forward

    jobs.start(job_id)
    done = jobs.wait(job_id, timeout=60)
    assert (done.state, done.done, done.total) == ("done", 6, 6)
    assert work_log(tmp_path).count("item-02") == 1


def test_failed_items_are_kept_with_their_reason_and_tried_again(store, tmp_path):
    jobs = Jobs(store)
    broken = tmp_path / "work.log.broken"
    broken.write_text("x")
    job_id = make_job(store, tmp_path, items=5, fail=["item-01", "item-03"])
    first = jobs.run(job_id)
    assert (first.state, first.done, first.failed) == ("done", 3, 2)
    failures = jobs.items(job_id, status="failed")
    assert [(f.key, f.error) for f in failures] == [
        ("item-01", "item-01: is broken. Fix it and resume."), ("item-03", "item-03: is broken. Fix it and resume."),
    ]
    assert first.resumable

    broken.unlink()  # fixed: running the job again tries only the failed items
    second = jobs.run(job_id)
    assert (second.state, second.done, second.failed) == ("done", 5, 0)
    log = work_log(tmp_path)
    assert log.count("item-01") == 2 and log.count("item-00") == 1
    with pytest.raises(JobError, match="finished already"):
        jobs.run(job_id)


def test_ctrl_c_cancels_and_keeps_the_finished_items(store, tmp_path):
    jobs = Jobs(store)
    job_id = make_job(store, tmp_path, items=6, interrupt_at="item-02")
    with pytest.raises(KeyboardInterrupt):
        jobs.run(job_id)
    info = jobs.get(job_id)
    assert (info.state, info.done) == ("cancelled", 2)
    assert not info.interrupted  # it ended properly: cancelled, not a dead owner


def test_a_job_of_a_kind_this_process_cannot_run_says_so(store):
    job_id = Jobs(store).create("translate", "Table", {"columns": []})  # a kind no module registers
    with pytest.raises(JobError, match="nothing in this process knows how to run"):
        Jobs(store).run(job_id)
    with pytest.raises(JobError, match="no job 999"):
        Jobs(store).get(999)
    assert Jobs(store).get(job_id).state == "queued"


def test_jobs_are_found_again_by_kind_and_key(store, tmp_path):
    jobs = Jobs(store)
    job_id = make_job(store, tmp_path, items=2)
    assert jobs.find(job_kinds.KIND, "count-test").id == job_id
    jobs.run(job_id)
    assert jobs.find(job_kinds.KIND, "count-test") is None  # done: the same command starts afresh
    assert jobs.find(job_kinds.KIND, "count-test", unfinished=False).id == job_id
    assert jobs.delete(job_id) and jobs.list() == []


def test_the_lease_tells_a_live_owner_from_a_gone_one():
    from lib.library.jobs import HOST, LEASE_S, PROCESS_TOKEN, owner_alive

    now = 1_000_000.0
    assert owner_alive(PROCESS_TOKEN, now, now)
    # The same process id in an earlier life (a restarted container starts at the same pid):
    assert not owner_alive(f"{HOST}:{os.getpid()}:0123456789ab", now, now)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not owner_alive(f"{HOST}:{dead.stdout.strip()}:0123456789ab", now, now)  # its process has exited
    assert owner_alive("other-machine:123:0123456789ab", now - LEASE_S / 2, now)  # trusted while it beats
    assert not owner_alive("other-machine:123:0123456789ab", now - LEASE_S - 1, now)
    assert not owner_alive(PROCESS_TOKEN, now - LEASE_S - 1, now) and not owner_alive(None, now, now)
