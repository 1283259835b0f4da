"""Lazy public faces (PEP 562): a sub-package lists its re-exports under `if TYPE_CHECKING:` (read by type
checkers and the API reference as usual) and imports each private module only when one of its names is first
used, so that what needs little (`loopdyn info`, the command line's help) starts without JAX."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path


def lazy_face(namespace: dict):
    """`(__getattr__, __dir__)` for the package whose globals are `namespace`: each name imported under its
    `if TYPE_CHECKING:` block (`from ._module import name as name`) is imported on first access."""
    package, path = namespace["__name__"], Path(namespace["__file__"])
    where: dict[str, tuple[str, str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    for alias in imp.names:
                        where[alias.asname or alias.name] = ("." * imp.level + (imp.module or ""), alias.name)

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = where[name]
        value = getattr(importlib.import_module(module, package), attr)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
