"""The package's shape: no import circles between modules or wings, nothing reaching up.

The import graph is read from the source with ``ast`` (every ``import``, at module level or in a
function, ``TYPE_CHECKING`` blocks included), so a circle cannot come back unnoticed: a module
that needs another's piece that needs it back means a third module is missing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "dyndnn"
TOP_LEVEL_MODULES = {"__init__", "__main__", "pipeline", "lab", "sweep", "resources", "errors"}
ENTRY_POINTS = {"dyndnn.__main__", "dyndnn.pipeline"}  # what may call a stage


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under package folder ``root``."""
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name inside a module counts as it)."""
    modules = module_names(root)
    top = root.name

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names if a.name.split(".")[0] == top}
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(package[:len(package) - node.level + 1] + [node.module or ""])
                        .rstrip(".") if node.level else node.module or "")
                if base.split(".")[0] != top:
                    continue
                for alias in node.names:  # a submodule imported by name, else the module
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else owner(base))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def wing(module: str) -> str:
    """``dyndnn.record.layout`` -> ``dyndnn.record``; a top-level module is its own wing."""
    return ".".join(module.split(".")[:2])


def wing_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    wings: dict[str, set[str]] = {}
    for module, targets in graph.items():
        wings.setdefault(wing(module), set()).update(
            wing(t) for t in targets if wing(t) != wing(module) and wing(t) != "dyndnn")
    return wings


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


def test_no_circle_between_modules(graph):
    assert circles(graph) == [], "modules that import each other (a piece both need belongs " \
                                 "in a third module)"


def test_no_circle_between_wings(graph):
    assert circles(wing_graph(graph)) == [], "wings that lean on each other"


def test_nothing_reaches_up_into_a_stage_or_the_cli(graph):
    up = {(module, target) for module, targets in graph.items() for target in targets
          if (target.startswith("dyndnn.stages") and not module.startswith("dyndnn.stages")
              and module not in ENTRY_POINTS) or target == "dyndnn.__main__"}
    assert up == set()


def test_top_level_holds_only_the_entry_points():
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose == TOP_LEVEL_MODULES, "a new module goes into the wing of its concept " \
                                       "(docs/architecture.md)"


def test_the_checks_find_a_circle_and_a_reach_up(tmp_path):
    """The same functions on a small package with a circle in it (so the checks can fail)."""
    package = tmp_path / "dyndnn"
    for name, text in {"__init__.py": "", "a.py": "from dyndnn.b import x\n",
                       "b.py": "def f():\n    from dyndnn import a\n",
                       "w/__init__.py": "", "w/c.py": "import dyndnn.w.d\nx = 1\n",
                       "w/d.py": "from . import c\n", "v/__init__.py": "",
                       "v/e.py": "from dyndnn.w.c import x\n",
                       "w/f.py": "from dyndnn.v.e import y\n"}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    found = import_graph(package)
    assert found["dyndnn.a"] == {"dyndnn.b"} and found["dyndnn.b"] == {"dyndnn.a"}
    assert found["dyndnn.w.d"] == {"dyndnn.w.c"}  # a relative import
    assert circles(found) == [["dyndnn.a", "dyndnn.b"], ["dyndnn.w.c", "dyndnn.w.d"]]
    assert circles(wing_graph(found)) == [["dyndnn.a", "dyndnn.b"], ["dyndnn.v", "dyndnn.w"]]
