#!/usr/bin/env bash
# Set up everything the tests need, then run them; extra arguments go to pytest, e.g.
# `bash scripts/test.sh -k budget`. The first run installs Debian packages and Python packages
# and builds llama.cpp's llama-server (4 to 7 minutes on 2 cores); later runs reuse all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/venv.sh requirements.txt requirements-dev.txt requirements-data.txt
bash scripts/llama-server.sh >/dev/null
.venv/bin/python tests/gotemplate.py
echo "folio: running the tests (about 5 minutes; the real-engine and browser tests are the slow ones) ..." >&2
exec .venv/bin/python -m pytest "$@"
