"""The shape of the code stays as docs/architecture.md draws it.

Reads the imports of every module (those inside functions too: a late import is still a
dependency) and fails on an import circle, on an import from a lower stage into a higher
one, and on any use of streamlit or ui/ from lib/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GROUND = "ground"
# What each stage of lib/ may import (besides itself). The order a document goes through:
# reading and servers are independent foundations; the library keeps what reading makes;
# asking uses all three; output presents what asking produced; the cli sits on top.
ALLOWED = {
    GROUND: set(),
    "reading": {GROUND},
    "servers": {GROUND},
    "library": {GROUND, "reading"},
    "asking": {GROUND, "reading", "servers", "library"},
    "output": {GROUND, "reading", "servers", "library", "asking"},
    "cli": {GROUND, "reading", "servers", "library", "asking", "output"},
    "entry": {"cli"},
}
GROUND_MODULES = {"lib.config", "lib.errors", "lib.documents"}
FORBIDDEN_IN_LIB = ("streamlit", "ui", "pages")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of lib/ and ui/, the page scripts and app.py, by dotted name."""
    found = {}
    for folder in ("lib", "ui", "pages"):
        for path in sorted((root / folder).rglob("*.py")):
            found[module_name(path, root)] = path
    if (root / "app.py").exists():
        found["app"] = root / "app.py"
    return found


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Dotted names this module imports: project modules resolved, others by top-level name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(name, path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                found.add(candidate if candidate in known else base)
    return {imported for imported in found if imported}


def stage_of(name: str) -> str | None:
    """The lib stage a module belongs to; None outside lib/."""
    if name in GROUND_MODULES:
        return GROUND
    if name in ("lib", "lib.__main__"):
        return "entry"
    parts = name.split(".")
    if parts[0] != "lib":
        return None
    return parts[1] if len(parts) > 1 else "entry"


def graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def direction_errors(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go against the stage order, or from lib/ into the app."""
    errors = []
    for source, targets in sorted(edges.items()):
        stage = stage_of(source)
        for target in sorted(targets):
            top = target.split(".")[0]
            if stage is not None and top in FORBIDDEN_IN_LIB:
                errors.append(f"{source} imports {target}: lib/ never imports streamlit or the app")
                continue
            if source.startswith("pages.") and target.startswith("pages."):
                errors.append(f"{source} imports {target}: pages import ui/ and lib/, not each other")
                continue
            target_stage = stage_of(target)
            if stage is None or target_stage is None or target_stage == stage:
                continue
            if target_stage not in ALLOWED.get(stage, set()):
                errors.append(f"{source} ({stage}) imports {target} ({target_stage}): not allowed")
    return errors


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges.get(node, ()):
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


# ------------------------------------------------------------------ the project itself


def test_lib_is_laid_out_by_stage():
    stages = {stage_of(name) for name in project_modules(ROOT) if name.startswith("lib")}
    assert stages == set(ALLOWED)
    for package in ("reading", "servers", "library", "asking", "output", "cli"):
        init = ROOT / "lib" / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"lib/{package}/__init__.py must say what it owns and may import"


def test_no_import_goes_against_the_stages():
    assert direction_errors(graph(ROOT)) == []


def test_no_import_circles():
    assert cycles(graph(ROOT)) == []


def test_pages_hold_only_page_scripts():
    assert sorted(p.name for p in (ROOT / "pages").glob("*.py")) == [
        "ask.py", "history.py", "library.py", "review.py", "settings.py"]


# ----------------------------------------------- the checks can fail (on a made-up tree)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in ("lib", "ui", "pages"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return tmp_path


def test_a_circle_is_found_even_through_a_late_import(tmp_path):
    root = _tree(tmp_path, {
        "lib/__init__.py": "",
        "lib/servers/__init__.py": "",
        "lib/servers/base.py": "def make():\n    from .ollama import Client\n",
        "lib/servers/ollama.py": "from .base import make\n",
    })
    assert cycles(graph(root)) == [["lib.servers.base", "lib.servers.ollama"]]


@pytest.mark.parametrize("source, text, expected", [
    ("lib/reading/pdf.py", "from ..asking import prompt\n", "(reading) imports lib.asking.prompt (asking)"),
    ("lib/servers/ollama.py", "from ..asking.prompt import render\n", "(servers) imports lib.asking.prompt"),
    ("lib/library/store.py", "import streamlit as st\n", "never imports streamlit"),
    ("lib/output/view.py", "from ui.state import chat\n", "never imports streamlit or the app"),
    ("pages/ask.py", "import pages.library\n", "not each other"),
])
def test_a_forbidden_direction_is_found(tmp_path, source, text, expected):
    files = {
        "lib/__init__.py": "", "lib/asking/__init__.py": "", "lib/asking/prompt.py": "",
        "pages/library.py": "", "ui/__init__.py": "", "ui/state.py": "", source: text,
    }
    errors = direction_errors(graph(_tree(tmp_path, files)))
    assert len(errors) == 1 and expected in errors[0]


def test_an_import_from_a_lower_stage_is_allowed(tmp_path):
    root = _tree(tmp_path, {
        "lib/__init__.py": "", "lib/config.py": "",
        "lib/reading/__init__.py": "", "lib/reading/tokens.py": "from ..config import x\n",
        "lib/asking/__init__.py": "", "lib/asking/budget.py": "from ..reading.tokens import get\n",
    })
    assert direction_errors(graph(root)) == []
