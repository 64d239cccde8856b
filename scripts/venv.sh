#!/usr/bin/env bash
# Create .venv (once) and install the given requirements files, skipping pip when
# nothing changed since the last install (a stamp holds their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.folio-$(cat "$@" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  for req in "$@"; do
    case "$req" in
      # data-only packages: their dependencies are not needed (and some are heavy)
      *-data.txt) .venv/bin/python -m pip install -q --no-deps -r "$req" ;;
      *) .venv/bin/python -m pip install -q -r "$req" ;;
    esac
  done
  touch "$stamp"
fi
