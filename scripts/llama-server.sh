#!/usr/bin/env bash
# Build llama.cpp's own llama-server (CPU only) for the real-engine tests, from the source
# that the llama-cpp-python source distribution on PyPI vendors (vendor/llama.cpp), once.
# Later runs find it in the cache and return at once.
#
#   bash scripts/llama-server.sh           # build when needed; the binary's path is the last line
#   bash scripts/llama-server.sh --path    # only print where the binary is (exit 1 when not built)
#
# Cache: ${XDG_CACHE_HOME:-~/.cache}/folio/llama-server/<key>/llama-server; the key is made of
# the sdist's version, the CMake flags, the compiler and this CPU's instruction set (the build
# is tuned for it: GGML_NATIVE). Needs cmake, g++ and make (scripts/system-deps.sh installs them)
# and the venv's pip to fetch the source. FOLIO_LLAMA_SERVER=/path/to/llama-server skips all this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The llama.cpp that llama-cpp-python 0.3.36 vendors (llama.cpp 0.5.0-dev, ggml 0.25.3).
LLAMA_CPP_PYTHON_VERSION=0.3.36
# Only what llama-server needs: static libraries, no tests, examples, app, web UI (neither
# built with npm nor downloaded), no HTTPS (this version has no LLAMA_CURL: LLAMA_OPENSSL
# replaced it), CPU only.
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_CCACHE=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
)
MINUTES="7"  # measured on the project's 2-core machine (README, "Tests")

say() { echo "folio: $*" >&2; }

if [ -n "${FOLIO_LLAMA_SERVER:-}" ]; then
  echo "$FOLIO_LLAMA_SERVER"
  exit 0
fi

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/folio/llama-server"
cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)
compiler=$( (c++ --version 2>/dev/null || echo none) | head -1)
key=$(printf '%s\n' "$LLAMA_CPP_PYTHON_VERSION" "${CMAKE_FLAGS[*]}" "$compiler" "$cpu" | sha256sum | cut -c1-16)
target="$cache_root/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-$key"
binary="$target/llama-server"

if [ "${1:-}" = "--path" ]; then
  [ -x "$binary" ] || exit 1
  echo "$binary"
  exit 0
fi
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

for tool in cmake make c++; do
  command -v "$tool" >/dev/null || { say "building llama-server needs $tool: run bash scripts/system-deps.sh (or apt-get install cmake g++ make)"; exit 1; }
done
[ -x .venv/bin/python ] || { say "no .venv yet: run bash scripts/test.sh"; exit 1; }

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
  say "another run is building llama-server; waiting for it to finish ..."
  flock 9
fi
if [ -x "$binary" ]; then  # built while we waited
  echo "$binary"
  exit 0
fi

started=$SECONDS
elapsed() { local s=$((SECONDS - started)); printf '%d min %02d s' $((s / 60)) $((s % 60)); }
work=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs=$(nproc 2>/dev/null || echo 2)

say "building llama.cpp's llama-server from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION's source, about $MINUTES minutes on 2 cores; cached for later runs ($target)"
say "[1/3] downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION source distribution from PyPI (77 MB) ..."
if ! .venv/bin/python -m pip download --quiet --no-binary :all: --no-deps --progress-bar off \
     -d "$work" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" >"$work/download.log" 2>&1; then
  tail -20 "$work/download.log" >&2
  say "could not download llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from PyPI (see above)"
  exit 1
fi
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
source_dir=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)

say "[2/3] configuring llama.cpp (cmake) ... ($(elapsed))"
if ! cmake -S "$source_dir" -B "$work/build" "${CMAKE_FLAGS[@]}" >"$work/configure.log" 2>&1; then
  tail -30 "$work/configure.log" >&2
  say "cmake could not configure llama.cpp (see above)"
  exit 1
fi

say "[3/3] compiling llama-server with $jobs jobs; progress every 10 % ... ($(elapsed))"
# make prints "[ 42%] Building ..." lines: report each new tenth, keep the whole log for errors.
set +e
cmake --build "$work/build" --target llama-server -j "$jobs" 2>&1 | tee "$work/build.log" | {
  shown=-1
  while IFS= read -r line; do
    if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      tenth=$((BASH_REMATCH[1] / 10))
      if [ "$tenth" -gt "$shown" ]; then
        shown=$tenth
        say "  llama-server: ${BASH_REMATCH[1]} % compiled ($(elapsed))"
      fi
    fi
  done
}
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] || [ ! -x "$work/build/bin/llama-server" ]; then
  grep -E "error|Error" "$work/build.log" | tail -20 >&2 || tail -30 "$work/build.log" >&2
  say "compiling llama-server failed (see above)"
  exit 1
fi

mkdir -p "$target"
cp "$work/build/bin/llama-server" "$binary.partial"
{
  echo "llama-server built from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION's vendor/llama.cpp"
  echo "cmake ${CMAKE_FLAGS[*]}"
  echo "compiler: $compiler"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed) with $jobs jobs"
} >"$target/BUILD-INFO"
mv "$binary.partial" "$binary"
say "llama-server built in $(elapsed): $binary"
echo "$binary"
