"""A job's progress on stderr: items done / total, the current item, failures and an estimate.

On a terminal one line is rewritten in place (with the page being read, for long files);
elsewhere (a log, a pipe) one line per item, so a log shows every file in order.
"""

from __future__ import annotations

import shutil
import sys
import threading
from typing import Callable

from ..library.jobs import JobInfo
from ..output.presenting import rough_duration as duration


def run_cancellable(work: Callable[[], object], cancel: threading.Event, stopping: str, name: str):
    """`work()` run in a worker thread, so that Ctrl-C here sets `cancel` (saying `stopping` on
    stderr) and waits for it to wind down; returns what it returned, or raises what it raised."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        cancel.set()
        print(stopping, file=sys.stderr, flush=True)
        worker.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def progress_line(info: JobInfo, detail: str = "") -> str:
    total = info.total if info.total is not None else "?"
    parts = [f"[{info.done + info.failed}/{total}] {info.fraction:.0%}"]
    if info.current:
        parts.append(info.current + (f" ({detail})" if detail else ""))
    if info.failed:
        parts.append(f"{info.failed} failed")
    left = duration(info.eta_seconds)
    parts.append(f"{left} left" if left else "estimating the time left")
    return " · ".join(parts)


class JobProgress:
    """Call it with each JobInfo (Jobs.run(progress=...)); `page` for page-by-page detail."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.info: JobInfo | None = None
        self.width = 0
        self.last_current: str | None = None

    def __call__(self, info: JobInfo) -> None:
        self.info = info
        if self.live:
            self._rewrite(progress_line(info))
        elif info.current and info.current != self.last_current:
            self.last_current = info.current
            print(progress_line(info), file=self.stream, flush=True)

    def page(self, label: str, stage: str, done: int, total: int | None) -> None:
        """Page-by-page progress inside one file (terminal only)."""
        if self.live and self.info is not None:
            where = f"{stage} {done}/{total}" if total else stage
            self._rewrite(progress_line(self.info, where))

    def _rewrite(self, line: str) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns - 1
        if len(line) > columns:  # a wrapped line cannot be rewritten in place
            line = line[: columns - 1] + "…"
        pad = max(0, self.width - len(line))
        print("\r" + line + " " * pad, end="", file=self.stream, flush=True)
        self.width = len(line)

    def close(self) -> None:
        if self.live and self.width:
            print(file=self.stream, flush=True)
            self.width = 0
