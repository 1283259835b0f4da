"""The package's shape: layers that import one way (import-linter contract in pyproject.toml), no part
reaching into another's private names, no cycles between parts (imports inside functions included), and
one place where the plant is stepped."""

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "loopdyn"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path):
    """Every `(imported module, imported name or None, line)` of a file, at any depth (functions too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                yield target, alias.name, node.lineno


def _part(module: str) -> str | None:
    """The part (sub-package or top-level module) of loopdyn a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "loopdyn" else None


def test_import_linter_layers_contract_is_kept():
    importlinter = pytest.importorskip("importlinter.cli")
    cwd = os.getcwd()
    os.chdir(ROOT)  # the contract lives in pyproject.toml
    try:
        assert importlinter.lint_imports(no_cache=True, no_logo=True) == 0
    finally:
        os.chdir(cwd)


def test_no_part_uses_another_parts_private_names():
    bad = []
    for module, path in _modules():
        here = _part(module)
        for target, name, line in _imports(module, path):
            there = _part(target or "")
            if there is None or there == here:
                continue
            private_module = any(p.startswith("_") for p in target.split(".")[2:])
            private_name = name is not None and name.startswith("_")
            if private_module or private_name:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}{'.' + name if name else ''}")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        here = _part(module)
        if here is None:
            continue
        for target, name, _ in _imports(module, path):
            there = _part(target or "")
            if there == "" or there is None and target == "loopdyn" and name:
                there = name  # `from loopdyn import config`
            if there and there != here and (SRC / there).exists():
                graph.setdefault(here, set()).add(there)
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [])


def _file_graph() -> dict[str, set[str]]:
    """`module -> modules of the same package it imports` (imports inside functions included); a package's
    `__init__` is its public surface, not a file of it, and is left out."""
    modules = dict(_modules())
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        if path.name == "__init__.py":
            continue
        package = module.rsplit(".", 1)[0]
        for target, name, _ in _imports(module, path):
            if not target:
                continue
            there = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            if (there != module and there in modules and modules[there].name != "__init__.py"
                    and there.rsplit(".", 1)[0] == package):
                graph.setdefault(module, set()).add(there)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected part of `graph` that has one."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}}) == []


def test_no_import_cycle_between_the_files_of_a_package():
    cycles = _cycles(_file_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_plant_is_stepped_in_one_place():
    """Every simulation goes through loopdyn.system.rollout: no other module calls a plant's `step`."""
    callers = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "step":
                callers.append(module)
    assert set(callers) == {"loopdyn.system._rollout"}, callers


def _code_strings(path: Path):
    """The string constants of a file that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value, node.lineno


def test_the_configuration_layer_knows_no_part_by_name():
    """Every plant, task, agent, loss term and experiment is found through its family (entry points, import
    paths): none of their names is written in the code of loopdyn.config."""
    from loopdyn.config import FAMILIES, family

    family("experiment")  # declares the shipped families (loopdyn imports its parts on first use)
    names = {n for fam in FAMILIES.values() for n in fam.names()}
    assert {"double_integrator", "tracking", "rnn", "closed-vs-open"} <= names
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}" for path in sorted((SRC / "config").glob("*.py"))
             for value, line in _code_strings(path) if value in names]
    assert not found, found
