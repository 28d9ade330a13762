"""The shape of lib: one package per capability, imports that only go one way, no cycles, no
import hidden inside a function, and no Streamlit outside lib/ui (docs/decisions.md, "A package
per capability")."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "lib"
ROOT = LIB.parent
# What each package may import from lib (besides itself). ui draws; everything else is domain.
ALLOWED = {
    "core": set(),
    "org": {"core"},
    "cases": {"core", "org"},
    "rewards": {"core", "org", "cases"},
    "kpi": {"core", "org", "cases", "rewards"},
    "tools": {"core", "org", "cases", "rewards", "kpi"},
    "ui": {"core", "org", "cases", "rewards", "kpi"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
            for p in sorted(LIB.rglob("*.py"))}


def _target(name: str, known: set[str]) -> str:
    """An imported name as a module of lib: ``lib.cases.orders`` if that is a module."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _lib_imports(tree: ast.Module, known: set[str]) -> set[str]:
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lib"):
            for alias in node.names:
                found.add(_target(f"{node.module}.{alias.name}", known))
        elif isinstance(node, ast.Import):
            found |= {_target(a.name, known) for a in node.names if a.name.startswith("lib")}
        elif isinstance(node, ast.Assign) and _imported_on_first_use(node.value):
            found.add(_target(node.value.args[0].value, known))  # type: ignore[attr-defined]
    return found - {""}


def _imported_on_first_use(value: ast.expr) -> bool:
    """``name = import_on_first_use("lib.…")`` (lib/tools/cli.py): an import all the same."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "import_on_first_use" and len(value.args) == 1
            and isinstance(value.args[0], ast.Constant) and isinstance(value.args[0].value, str)
            and value.args[0].value.startswith("lib"))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _lib_imports(tree, known) - {name} for name, tree in modules.items()}


def test_no_import_hides_inside_a_function():
    hidden = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{name}:{sub.lineno}" for sub in ast.walk(node)
                           if isinstance(sub, (ast.Import, ast.ImportFrom))]
    assert hidden == []


def test_lib_has_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if state.get(start) is None:
            cycle = visit(start)
            assert cycle is None, " -> ".join(cycle)


def test_packages_import_only_downwards():
    wrong = []
    for name, targets in _graph().items():
        parts = name.split(".")
        if len(parts) < 3:
            continue  # lib itself, lib.__main__, the package markers
        package = parts[1]
        for target in targets:
            other = target.split(".")[1] if target.count(".") >= 1 else ""
            if other and other != package and other not in ALLOWED[package]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_only_lib_ui_imports_streamlit():
    """The domain is tested without a browser; only the bench renders pages to time them."""
    found = []
    for name, tree in _modules().items():
        if name.startswith("lib.ui") or name == "lib.tools.bench":
            continue
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module or ""]
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                found.append(name)
    assert found == []


def test_pages_open_no_session():
    """lib owns its transactions: pages and lib/ui call lib functions, never a session."""
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((LIB / "ui").glob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if "read_session" in text or "write_session" in text or "Session(" in text:
            offenders.append(path.name)
    assert offenders == []


def test_each_package_defines_its_tables_in_its_models_module():
    """A table lives in the models module of the package that owns it, so the import rule
    above also says whose tables a package may use: never those of a package above it."""
    misplaced = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    kw.arg == "table" for kw in node.keywords) and not name.endswith(".models"):
                misplaced.append(f"{name}.{node.name}")
    assert misplaced == []


def test_the_schema_module_registers_every_packages_tables():
    from sqlmodel import SQLModel

    from lib.tools import schema
    owners = {table.name for table in schema.metadata.sorted_tables}
    assert schema.metadata is SQLModel.metadata
    assert {"unit", "case", "case_event", "reward_claim", "kpi_day", "notice", "setting"} <= owners
