#!/usr/bin/env bash
# Set up Folio (first run only) and start the web app on http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements.txt
exec .venv/bin/streamlit run app.py "$@"
