"""The hostile-files bench, fast cases: read by `python -m lib ingest --json` in one child
process, each must be read whole or refused with a message, never with a traceback, a silent
loss, or unbounded memory (bench/hostile_files.py runs every case, one child each, timed)."""

from __future__ import annotations

from bench import hostile_files

FAST = [case for case in hostile_files.CASES if case.fast]


def test_hostile_files_are_read_whole_or_refused_with_a_message(tmp_path):
    assert len(FAST) >= 60
    runs, status, peak, _seconds, stderr = hostile_files.run_batch(FAST, tmp_path)
    assert status == 2, stderr[-2000:]  # some files are refused, and the command says so
    assert hostile_files.TRACEBACK not in stderr
    problems = {run.case.name: run.problems for run in runs if run.problems}
    assert problems == {}
    assert peak < hostile_files.MEMORY_GOAL
    read = [run for run in runs if run.outcome == "read"]
    assert len(read) > 30 and all(run.kept >= run.visible * (1 - hostile_files.LOSS_TOLERANCE) - 10 or run.warnings for run in read)
