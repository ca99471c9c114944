"""How the lab's modules hang together: no import cycles inside snnlab.tui, and no widget or screen
building runs or reading run directories on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import snnlab

TUI = Path(snnlab.__file__).parent / "tui"


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tui_imports() -> dict[str, set[str]]:
    """Each module of snnlab.tui and the snnlab.tui modules it imports: at the top, inside functions and
    under ``if TYPE_CHECKING`` alike (an import moved into a function still closes a cycle, it only hides it)."""
    modules = {module_name(p): p for p in TUI.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # from .x import y: relative to this module's package
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}".rstrip(".")
                for alias in node.names:
                    # `from a.b import c` imports the module a.b.c when there is one, else a name of a.b
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_function_level_and_type_only_imports():
    graph = tui_imports()
    assert "snnlab.tui.app" in graph and "snnlab.tui.widgets.config_form" in graph["snnlab.tui.screens.main"]


def test_no_import_cycles_inside_the_lab():
    cycle = find_cycle(tui_imports())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_lab_has_one_stylesheet():
    """Every widget and screen is styled by app.tcss; none brings CSS of its own."""
    from tests.tui.conftest import lab_classes

    own = [cls.__name__ for cls in lab_classes() if {"DEFAULT_CSS", "CSS"} & set(vars(cls))]
    assert own == [], f"styled outside app.tcss: {own}"
