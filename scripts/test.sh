#!/usr/bin/env bash
# Set up everything the tests need (first run builds llama.cpp: ~5 min) and run them.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k budget`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/venv.sh requirements.txt requirements-dev.txt requirements-data.txt
exec .venv/bin/python -m pytest "$@"
