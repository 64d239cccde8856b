"""An ingest job run in its own process, as `python -m lib ingest FOLDER --collection NAME` runs it,
that stops inside the BLOCK_AT-th file it reads: it prints "blocked LABEL" and waits for a line
on stdin. The test then kills the process there (an app or a machine that died mid-job) or
releases it (a job another process runs while the app watches).

    python tests/blocking_ingest.py DATA_DIR FOLDER COLLECTION BLOCK_AT

Prints "job ID" first. The job is the real "ingest" kind over the real store, so the app
resumes it with its own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.library.ingestion import create_ingest_job, find_ingest_job  # noqa: E402
from lib.library.jobs import Jobs  # noqa: E402
from lib.library.store import Store  # noqa: E402


def main(data_dir: str, folder: str, collection: str, block_at: int) -> int:
    store = Store(data_dir)
    existing = find_ingest_job(store, [folder], collection=collection)
    job_id = existing.id if existing else create_ingest_job(store, [folder], collection=collection)
    print("job", job_id, flush=True)
    read: list[str] = []

    def file_progress(label: str, stage: str, done: int, total) -> None:
        if label not in read:
            read.append(label)
            if len(read) == block_at:
                print("blocked", label, flush=True)
                sys.stdin.readline()

    info = Jobs(store).run(job_id, options={"file_progress": file_progress})
    print("ended", info.state, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
