"""No import cycles among the modules of ``kprpe.core``: a static check of every import statement.

Imports inside functions count too: a lazy import that closes a cycle still makes the modules depend on
each other (which one breaks depends on which is imported first). The check reads the source only.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "kprpe" / "core"
PACKAGE = "kprpe.core"


def module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def core_imports(path: Path, modules: set[str]) -> set[str]:
    """The ``kprpe.core`` modules ``path`` imports anywhere in its source (relative or absolute)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE if node.level else ""
            if node.level > 1:
                base = PACKAGE.rsplit(".", node.level - 1)[0]
            target = ".".join(part for part in (base, node.module) if part)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # from . import attention
    return {name for name in found if name in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(CORE.glob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): core_imports(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_the_known_edges():
    graph = import_graph()
    assert "kprpe.core.masks" in graph["kprpe.core.triton_attention"]
    assert "kprpe.core.triton_attention" in graph["kprpe.core.attention"]  # the lazy import inside a function
    assert "kprpe.core.attention" in graph["kprpe.core"]


def test_cycle_finder_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_kprpe_core_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in kprpe.core: " + " -> ".join(cycle)


def test_additive_mask_importable_from_its_old_and_new_homes():
    from kprpe.core.attention import additive_mask as old
    from kprpe.core.masks import additive_mask as new

    assert old is new
