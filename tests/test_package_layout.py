"""The package's layout: no import circles among its modules, no shims or aliases of moved names, few top-level
modules."""

from __future__ import annotations

import ast
from importlib.machinery import PathFinder
from pathlib import Path

import pytest

import trl_icrl

PACKAGE = Path(trl_icrl.__file__).parent
MAX_TOP_LEVEL_MODULES = 12
"""Modules directly in ``trl_icrl/`` (``__init__.py`` aside) once the acting side moved to ``trl_icrl/agent/``, the
chat format to ``protocol/`` and the env codec and families to ``envs/``."""


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` by dotted name; a package is named by its ``__init__.py``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], deferred: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements ``body`` runs: at module level (class bodies and ``if``/``try``/``with`` blocks
    included, ``if TYPE_CHECKING:`` blocks not), and with ``deferred`` also those inside functions."""
    found = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            found += _imports(node.orelse, deferred) + ([] if _is_type_checking(node.test) else
                                                         _imports(node.body, deferred))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += _imports(node.body, deferred) if deferred else []
        elif isinstance(node, ast.ClassDef | ast.With | ast.For | ast.While):
            found += _imports(node.body, deferred)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                found += _imports(block, deferred)
    return found


def import_graph(root: Path, deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports. Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b``
    unless the importer is inside them (they are then already being imported); ``from a.b import x`` needs ``a.b``
    itself unless ``x`` is a module of it."""
    modules = module_names(root)
    return {name: _module_imports(name, path, modules, deferred) - {name} for name, path in modules.items()}


def _module_imports(name: str, path: Path, modules: dict[str, Path], deferred: bool) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}

    def reached(target: str, needs_itself: bool) -> set[str]:
        prefixes = [".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 2)]
        return {prefix for prefix in prefixes if prefix in modules
                and (prefix not in inside or (prefix == target and needs_itself))}

    edges = set()
    for node in _imports(ast.parse(path.read_text()).body, deferred):
        if isinstance(node, ast.Import):
            edges |= {m for alias in node.names for m in reached(alias.name, needs_itself=False)}
            continue
        base = ".".join(package.split(".")[:package.count(".") + 2 - node.level]) if node.level else ""
        source = ".".join(filter(None, (base, node.module)))
        submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
        edges |= reached(source, needs_itself=len(submodules) < len(node.names))
        edges |= {m for submodule in submodules for m in reached(submodule, needs_itself=True)}
    return edges


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan's algorithm), as ``[a, b, ..., a]``."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_shortest_circle(graph, group, min(group)) for group in groups]


def _shortest_circle(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    parent = {start: start}
    queue = [start]
    for node in queue:  # breadth first, inside the group (strongly connected: a way back exists)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no way back to {start} in {sorted(group)}")


@pytest.mark.parametrize("deferred", [False, True], ids=["module_level", "with_imports_inside_functions"])
def test_no_import_circles(deferred):
    """No module imports, even through others, a module that imports it back: neither at import time nor through
    an import deferred into a function (a deferred import that closes a circle hides the circle)."""
    graph = import_graph(PACKAGE, deferred)
    assert {"trl_icrl", "trl_icrl.agent.icrl_agent", "trl_icrl.envs.codec"} <= set(graph)
    assert "trl_icrl.protocol" in graph["trl_icrl.agent.icrl_agent"]
    circles = import_circles(graph)
    assert not circles, "import circles: " + "; ".join(" -> ".join(circle) for circle in circles)


def test_the_circle_check_finds_a_circle_a_deferred_import_hides(tmp_path):
    files = {"__init__.py": "from .sub import run\n",
             "sub/__init__.py": "from .worker import run\n",
             "sub/worker.py": "from ..helper import x\n\n\ndef run():\n    from ..late import y\n",
             "helper.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .sub import run\nx = 1\n",
             "late.py": "from .sub.worker import run\n\ny = 2\n"}
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    assert import_graph(tmp_path / "pkg")["pkg.late"] == {"pkg.sub", "pkg.sub.worker"}
    assert import_circles(import_graph(tmp_path / "pkg")) == []
    assert import_circles(import_graph(tmp_path / "pkg", deferred=True)) == [["pkg.late", "pkg.sub.worker", "pkg.late"]]


@pytest.mark.parametrize("module", ["trl_icrl.callbacks", "trl_icrl.collector", "trl_icrl.rollout",
                                    "trl_icrl.lm_agent", "trl_icrl.agent_config", "trl_icrl.play",
                                    "trl_icrl.kv_cache", "trl_icrl.exploration", "trl_icrl.q_network",
                                    "trl_icrl.chat_format", "trl_icrl.env_codec", "trl_icrl.env_families"])
def test_moved_modules_left_no_shim(module):
    """Searched in the package's own folder: an editable install of another checkout may still map the old name."""
    assert PathFinder.find_spec(module, trl_icrl.__path__) is None


def test_renamed_exports_left_no_alias():
    for old in ("DiscreteEnvAdapter", "adapter_for", "frozen_lake_adapter", "_RENAMED"):
        assert not hasattr(trl_icrl, old)
    assert "__getattr__" not in vars(trl_icrl)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        trl_icrl.no_such_name  # noqa: B018


def test_the_top_level_holds_few_modules():
    top = sorted(path.stem for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
