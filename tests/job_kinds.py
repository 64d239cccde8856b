"""Job kinds for the job tests, importable by the test and by a child process it kills.

"count" works through params["items"] items, appending each item's key to the file
params["log"] when it starts working on it, so a test can count the work really done.
With FOLIO_TEST_BLOCK set, the item params["block_at"] prints "blocked KEY" and waits on
stdin (the parent kills the process there). Items in params["fail"] fail with a
DocumentError while the file params["log"] + ".broken" exists. With options["gate"]
(a pair of threading.Events), the item params["gate_at"] sets the first and waits for
the second: the test decides what happens in between, without sleeping.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lib.errors import DocumentError
from lib.library.jobs import register_kind

KIND = "count"


def count(job) -> dict:
    items = [f"item-{i:02d}" for i in range(job.params["items"])]
    job.set_total(len(items), work=10 * len(items))
    log = Path(job.params["log"])
    for key in job.pending(items):
        with job.item(key, label=f"working on {key}", work=10) as item:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(key + "\n")
            if key == job.params.get("block_at") and os.environ.get("FOLIO_TEST_BLOCK"):
                print("blocked", key, flush=True)
                sys.stdin.readline()
            gate = job.options.get("gate")
            if gate and key == job.params.get("gate_at"):
                reached, release = gate
                reached.set()
                release.wait(30)
            if key in job.params.get("fail", ()) and Path(str(log) + ".broken").exists():
                raise DocumentError(key, "is broken.", "Fix it and resume.")
            if key == job.params.get("interrupt_at"):
                raise KeyboardInterrupt
            item.result = {"square": int(key[-2:]) ** 2}
    return {"items": len(items)}


register_kind(KIND, count)
