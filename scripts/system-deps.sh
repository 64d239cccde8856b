#!/usr/bin/env bash
# Debian packages the tests need: Chromium for the browser test, Tesseract for OCR.
# Installs what is missing when it can (root, or sudo); otherwise says what to run.
set -euo pipefail
PACKAGES=(chromium tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)
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
echo "folio: installing ${missing[*]} ..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
