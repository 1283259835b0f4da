"""Every key a configuration may hold, described from the schema and the parts themselves: each key's table,
type, default, allowed values and documentation (its :func:`~loopdyn.config.param`). `loopdyn keys` prints
them and the documentation site's configuration page is generated from them, so neither can drift from the
code."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ._parts import did_you_mean, family, parameters, type_name
from ._schema import PART_SECTIONS, SECTIONS

@dataclass(frozen=True)
class Key:
    """One key of a table: its name, type, default (as TOML would write it), allowed values and documentation."""

    name: str
    type: str
    default: str
    doc: str
    choices: str = ""


@dataclass(frozen=True)
class Table:
    """A table of a configuration: `name` as written in TOML (`train`, `plant`, `loss`, `stages`), the `kind`
    that selects it (parts and experiments), one line of documentation, its keys."""

    name: str
    kind: str
    doc: str
    keys: tuple[Key, ...]

    @property
    def title(self) -> str:
        if self.name == "":
            return "top-level keys"
        if self.name == "loss":
            return f'[[loss]] kind = "{self.kind}"'
        return f'[{self.name}] kind = "{self.kind}"' if self.kind and self.name in PART_SECTIONS else f"[{self.name}]"


TOP_LEVEL = (
    Key("name", "str", "the file's stem", "names the store <name>.zarr (letters, digits, '.', '_', '-')"),
    Key("experiment", "str", '"ensemble"', "the experiment that runs the config: a registered name or "
                                          "'package.module:Class'"),
    Key("description", "str", '""', "one line shown by `loopdyn configs`"),
    Key("epochs", "int", "1000", "epochs of training (of each phase) (> 0)"),
    Key("seeds", "int | list[int] | str", "0", "the runs' seeds: 3, [0, 3, 5], \"0..7\" (inclusive) or \"0,3,5\""),
    Key("dtype", "str", '"float32"', "dtype of the trained arrays", "float32, float64"),
)
"""The top-level keys; `[sweep]` and `[[loss]]` are tables of their own."""


def toml_text(v: Any) -> str:
    """A value as TOML writes it (`true`, `"auto"`, `[1.0, 2.0]`); NaN as `nan`."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(toml_text(x) for x in v) + "]"
    return repr(v)


def _first_line(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _keys(cls: type) -> tuple[Key, ...]:
    out = []
    for name, f in parameters(cls).items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        doc = f.metadata.get("doc", "")
        check = f.metadata.get("check")
        if check:
            doc = f"{doc} ({check[0]})" if doc else check[0]
        choices = f.metadata.get("choices")
        out.append(Key(name, type_name(f).replace("typing.", ""), toml_text(default), doc,
                       ", ".join(map(str, choices)) if choices else ""))
    return tuple(out)


def config_tables() -> list[Table]:
    """Every table a configuration may hold: the top-level keys, the fixed tables (`train`, `teacher`,
    `start`, `record`), each known kind of `plant`, `task`, `agent` and `loss`, and each experiment's table."""
    from ._load import experiment_of, table_type

    tables = [Table("", "", "keys outside any table", TOP_LEVEL)]
    tables += [Table(name, "", _first_line(cls), _keys(cls)) for name, cls in SECTIONS.items()]
    for section in (*PART_SECTIONS, "loss"):
        fam = family(section)
        for kind in fam.names():
            cls = fam.resolve(kind)
            tables.append(Table(section, kind, _first_line(cls), (Key("kind", "str", toml_text(kind), "this part"),
                                                                   *_keys(cls))))
    tables.append(Table("sweep", "", "dotted keys to lists of values; runs are seeds x the product of the lists",
                        ()))
    for name in family("experiment").names():
        exp = experiment_of(name)
        table = table_type(exp)
        tables.append(Table(exp.name.replace("-", "_"), name, f"the {name} experiment: {exp.description}",
                            _keys(table) if table is not None else ()))
    return tables


def find_tables(name: str) -> list[Table]:
    """The tables called `name` (`train`; `plant`: every plant kind; `plant.cartpole`: that kind; `stages`);
    a one-line :class:`ConfigError` naming the closest one otherwise."""
    tables = config_tables()
    found = [t for t in tables if name in (t.name, f"{t.name}.{t.kind}") or (name == "top" and t.name == "")]
    if not found:
        names = sorted({t.name for t in tables if t.name} | {f"{t.name}.{t.kind}" for t in tables if t.name in
                                                              (*PART_SECTIONS, "loss")})
        raise ConfigError(f"keys {name}: no such table; choose one of {', '.join(n for n in names if '.' not in n)} "
                          f"(or a part's table as plant.KIND, e.g. plant.cartpole)" + did_you_mean(name, names))
    return found
