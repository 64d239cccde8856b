#!/usr/bin/env bash
# Debian packages the tests need: Chromium for the browser test, Tesseract for OCR, and a C++
# toolchain with CMake to build llama.cpp's llama-server (scripts/llama-server.sh).
# Installs what is missing when it can (root, or sudo), with progress; otherwise says what to run.
set -euo pipefail
PACKAGES=(chromium tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim cmake g++ make)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "folio: please install ${missing[*]} with your system's package manager (Chromium at /usr/bin/chromium)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "folio: missing Debian packages: ${missing[*]}. Run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
started=$SECONDS
echo "folio: installing Debian packages ${missing[*]} (about 1 to 3 minutes; Chromium is the big one) ..." >&2
echo "folio:   apt-get update ..." >&2
$SUDO apt-get update -qq
set +e
# apt prints "N newly installed", a "Get:" line per download and a "Setting up PKG" line per
# package installed: report every 20th download and every 10th install.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}" 2>&1 | {
  total=0 fetched=0 done=0
  while IFS= read -r line; do
    if [[ $line =~ ([0-9]+)\ newly\ installed ]]; then
      total=${BASH_REMATCH[1]}
      echo "folio:   downloading and installing $total packages ..." >&2
    elif [[ $line == Get:* ]]; then
      fetched=$((fetched + 1))
      [ $((fetched % 20)) -eq 0 ] && echo "folio:   $fetched of $total packages downloaded ($((SECONDS - started)) s)" >&2
    elif [[ $line == "Setting up "* ]]; then
      done=$((done + 1))
      if [ $((done % 10)) -eq 0 ] || [ "$done" -eq "$total" ]; then
        echo "folio:   $done of $total packages installed ($((SECONDS - started)) s)" >&2
      fi
    elif [[ $line == E:* ]]; then
      echo "$line" >&2
    fi
  done
}
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "folio: apt-get install failed (status $status)" >&2; exit "$status"; }
echo "folio: Debian packages installed in $((SECONDS - started)) s" >&2
