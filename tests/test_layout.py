"""The package's shape: no import cycle, every import points down the layers, the analysis side needs no model or
training code (and no torch), no module grows past about 350 lines, and every path the docs name exists."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lit_infoprompt.identity import absolute, modules_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lit_infoprompt"
# Lower layers first; a module may import its own layer's subpackage and anything below. The top-level modules
# (config, errors, hub, convergence, semeval, provenance, identity) are the base every layer shares.
LAYERS = [{"base"}, {"tasks"}, {"model"}, {"train", "analysis"}, {"sweep", "tools"}, {"__main__"}]
MAX_LINES = 360


def layer_name(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    if len(parts) == 2 and parts[1] != "__main__":
        return "base" if (ROOT / PACKAGE / f"{parts[1]}.py").is_file() else parts[1]
    return parts[1]


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if layer_name(module) in layer)


def import_graph() -> dict:
    """{module: {package modules it imports, anywhere in its code}}."""
    files = modules_of(ROOT)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = absolute(name, is_package, node.module, node.level)
                if source.startswith(PACKAGE):
                    for alias in node.names:
                        target = f"{source}.{alias.name}"
                        edges.add(target if target in files else source)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        graph[name] = {e for e in edges if e != name and e != PACKAGE}
    return graph


def find_cycle(graph: dict):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_points_down_the_layers():
    wrong = [f"{a} ({layer_name(a)}) imports {b} ({layer_name(b)})" for a, edges in import_graph().items()
             for b in edges if rank(b) > rank(a) or (rank(b) == rank(a) and layer_name(b) != layer_name(a))]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_analysis_side_imports_no_model_training_or_data_code():
    graph = import_graph()
    analysis = [m for m in graph if layer_name(m) == "analysis"]
    assert len(analysis) >= 8
    for module in analysis:
        assert all(layer_name(b) in ("analysis", "base") for b in graph[module]), (module, graph[module])


def test_make_report_needs_no_torch():
    code = ("import sys; import lit_infoprompt.analysis.report, lit_infoprompt.analysis.comparison_files, "
            "lit_infoprompt.analysis.robustness_files; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'transformers')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_module_is_over_about_350_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / PACKAGE).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_the_wheel_carries_the_subpackages_and_their_data(tmp_path):
    pytest.importorskip("setuptools")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import zipfile

    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / PACKAGE).rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert sources <= names, sorted(sources - names)


DOC_PATH = re.compile(r"`((?:lit_infoprompt|tests|benchmarks|conf|docs)/[A-Za-z0-9_./-]+)`")


def test_every_path_the_docs_name_exists():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {(page.name, m) for page in pages for m in DOC_PATH.findall(page.read_text())}
    assert len(named) > 10
    missing = sorted(f"{page}: {path}" for page, path in named if not (ROOT / path.rstrip("/")).exists()
                     and "<" not in path and "*" not in path)
    assert not missing
