r"""Open parts: the families of a model's parts, found by name, by import path or through entry points.

A configuration names each part by its `kind`:

- a registered name (`kind = "double_integrator"`): the parts loopdyn ships and those that installed
  packages announce through entry points (groups `loopdyn.plants`, `loopdyn.tasks`, `loopdyn.agents`,
  `loopdyn.losses`, `loopdyn.experiments`; loopdyn's own parts are announced the same way in its
  `pyproject.toml`), or a class registered from Python with :meth:`Family.register`;
- an import path (`kind = "mypackage.plants:Pendulum"`, the module importable from `sys.path`).

A part found by import path or entry point is used only if it is a class derived from its family's
interface (checked right after the import, before anything of it is called), so a configuration or a
store that names `subprocess:run` is refused with one line. This layer knows no kind by name: each
family is declared by the package that defines its interface (:func:`declare_family`).

A part is an `equinox.Module` whose fields are its parameters; each field's metadata (:func:`param`)
gives its documentation, its check and its choices, and the TOML table of the part is validated against
them with the same one-line errors as every other key. A part checks values that are wrong together with
the rest of the configuration in :meth:`Part.check`, raising :class:`InvalidParameter`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import equinox as eqx

from ..errors import ConfigError


def param(default, *, doc: str, check=None, choices=None, allow_nan: bool = False, key: str | None = None):
    """A documented, checked parameter of a part or a configuration table.

    **Arguments:** `default`: the value when the key is not given; `doc`: one line for the documentation
    and `loopdyn keys`; `check`: `(description, predicate)` (e.g. `("> 0", lambda v: v > 0)`);
    `choices`: the allowed values; `allow_nan`: a float that may be NaN ("off"); `key`: the key in the
    TOML table when it differs from the field's name (e.g. `A` for a field `A_` beside a property `A`).
    """
    return field(default=default, metadata={"doc": doc, "check": check, "choices": choices, "allow_nan": allow_nan,
                                            "key": key})


def did_you_mean(word: str, options, prefix: str = "") -> str:
    """`"; did you mean X?"` for the option closest to a misspelt `word` (difflib), `""` when none is close."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def each(description: str, predicate, *, nonempty: bool = True):
    """The check of a list parameter whose every element must satisfy `predicate` (and that must not be empty
    unless `nonempty=False`), for :func:`param`'s `check`: `param((1.0,), doc=..., check=each("> 0", ...))`
    refuses `[]` and `[1.0, -1.0]` with "must be a non-empty list, each > 0"."""
    what = f"a non-empty list, each {description}" if nonempty else f"each {description}"
    return what, lambda v: (len(v) > 0 or not nonempty) and all(predicate(x) for x in v)


class InvalidParameter(ValueError):
    """Raised by a part's :meth:`Part.check`: `key` (dotted, e.g. `"plant.length"`) and what is wrong with it."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key} {message}")
        self.key, self.message = key, message


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class Part(eqx.Module):
    """Base of every part: its fields are its parameters (:func:`param`). Two parts are equal when they are of
    the same class with the same parameters (NaN equal to NaN: a NaN parameter means "off")."""

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(_same(getattr(self, f.name), getattr(other, f.name))
                                                 for f in dataclasses.fields(self))

    def __hash__(self) -> int:
        return hash((type(self), tuple(repr(getattr(self, f.name)) for f in dataclasses.fields(self))))

    def check(self, cfg) -> None:
        """Raise :class:`InvalidParameter` for values that are wrong together with the rest of `cfg`."""

    @property
    def kind(self) -> str:
        """The name this part's class is found by (a registered name or its import path)."""
        return kind_of(type(self))


def import_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclass
class Family:
    """A family of parts: the configuration `section` that names one (or a list of them), the `interface`
    every member derives from, the entry-point `group` that announces members, the `default` kind."""

    section: str
    interface: type
    group: str
    default: str | None = None
    many: bool = False  # the section is a list of parts (`[[loss]]`)
    registered: dict[str, type] = field(default_factory=dict)

    def register(self, name: str, cls: type) -> type:
        """Make `cls` known as `name` in this process (shipped parts and plugins use entry points instead)."""
        self._check_class(cls, name)
        self.registered[name] = cls
        return cls

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        return _announced(self.group)

    def names(self) -> list[str]:
        """Every kind known by name: registered in this process and announced by installed packages."""
        return sorted(set(self.registered) | set(self._entry_points()))

    def _check_class(self, obj: Any, kind: str) -> type:
        if not (isinstance(obj, type) and issubclass(obj, self.interface)):
            what = f"the class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
            public = f"{self.interface.__module__.split('._')[0]}.{self.interface.__name__}"
            raise ConfigError(f"{self.section}.kind = {kind!r} names {what}, not a subclass of {public}; name a "
                              f"{self.section} class (docs/extending.md)")
        return obj

    def resolve(self, kind: str) -> type:
        """The class of `kind` (registered name, entry point or `module:Name`); one-line errors otherwise."""
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{self.section}.kind = {kind!r} must be a name (one of {', '.join(self.names())}) or an "
                              f"import path 'package.module:Class'")
        if kind in self.registered:
            return self.registered[kind]
        if ":" not in kind:
            ep = self._entry_points().get(kind)
            if ep is None:
                raise ConfigError(f"{self.section}.kind = {kind!r} is not a known {self.section}; choose one of "
                                  f"{', '.join(self.names())}, or give the import path of your own as "
                                  f"'package.module:Class'" + did_you_mean(kind, self.names()))
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin: name it, never crash
                raise ConfigError(f"{self.section}.kind = {kind!r}: its package's entry point {ep.value!r} cannot be "
                                  f"loaded ({type(e).__name__}: {e}); reinstall that package") from None
            return self._check_class(obj, kind)
        module_name, _, attr = kind.partition(":")
        if not module_name or not attr or not all(p.isidentifier() for p in [*module_name.split("."), *attr.split(".")]):
            raise ConfigError(f"{self.section}.kind = {kind!r} is not an import path; write it as 'package.module:Class'")
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ConfigError(f"{self.section}.kind = {kind!r}: module {e.name!r} is not installed or not on the Python "
                              f"path; install its package or add its folder to PYTHONPATH") from None
        except Exception as e:
            raise ConfigError(f"{self.section}.kind = {kind!r}: importing {module_name!r} failed ({type(e).__name__}: "
                              f"{e}); fix that file") from None
        for name in attr.split("."):
            if not hasattr(obj, name):
                raise ConfigError(f"{self.section}.kind = {kind!r}: module {module_name!r} has no {attr!r}")
            obj = getattr(obj, name)
        return self._check_class(obj, kind)

    def kind_of(self, cls: type) -> str:
        """The name `cls` is found by: its registered or entry-point name, else its import path."""
        for name, c in self.registered.items():
            if c is cls:
                return name
        path = import_path(cls)
        for name, ep in self._entry_points().items():
            if ep.value.replace(" ", "") == path:
                return name
        return path


@functools.lru_cache(maxsize=None)
def _announced(group: str) -> dict[str, metadata.EntryPoint]:
    """The entry points of `group` (read once per process: scanning the installed distributions takes ms)."""
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


FAMILIES: dict[str, Family] = {}


def declare_family(section: str, interface: type, group: str, default: str | None = None, many: bool = False) -> Family:
    """Declare a family of parts (done by the package that defines `interface`)."""
    fam = FAMILIES.get(section)
    if fam is None or fam.interface is not interface:
        fam = FAMILIES[section] = Family(section, interface, group, default, many)
    return fam


def family(section: str) -> Family:
    if section not in FAMILIES:  # the shipped families are declared on first use (loopdyn imports lazily)
        from .. import _declare_parts

        _declare_parts()
    try:
        return FAMILIES[section]
    except KeyError:
        raise ConfigError(f"no family of parts is declared for [{section}]; import loopdyn first") from None


def kind_of(cls: type) -> str:
    for fam in FAMILIES.values():
        if issubclass(cls, fam.interface):
            return fam.kind_of(cls)
    return import_path(cls)


# ------------------------------------------------------------------------------------------ typed values
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def type_name(fld: dataclasses.Field) -> str:
    t = fld.type
    return t if isinstance(t, str) else getattr(t, "__name__", None) if isinstance(t, type) else str(t)


def coerce(source: str, dotted: str, value: Any, fld: dataclasses.Field) -> Any:
    """`value` checked against the field's type, choices and check; one-line :class:`ConfigError` otherwise."""
    def err(msg):
        return ConfigError(f"{source}: {dotted} {msg}")

    t = type_name(fld).replace("typing.", "").replace(" ", "")
    if t == "bool":
        if not isinstance(value, bool):
            raise err(f"= {value!r} must be true or false")
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise err(f"= {value!r} must be an integer")
    elif t == "float":
        if not _is_number(value):
            raise err(f"= {value!r} must be a number")
        value = float(value)
        if math.isinf(value) or (math.isnan(value) and not fld.metadata.get("allow_nan")):
            raise err(f"= {value!r} must be a finite number")
    elif t == "str":
        if not isinstance(value, str):
            raise err(f"= {value!r} must be a string")
    elif t.startswith("tuple[tuple"):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(r, (list, tuple)) and r and all(_is_number(v) and math.isfinite(v) for v in r) for r in value)
        if not ok or len({len(r) for r in value}) > 1:
            raise err(f"= {value!r} must be a matrix: a list of equally long lists of finite numbers")
        value = tuple(tuple(float(v) for v in r) for r in value)
    elif t.startswith("tuple[float") or t.startswith("tuple[int"):
        num = float if "float" in t else int
        if (not isinstance(value, (list, tuple))
                or not all(_is_number(v) and math.isfinite(v) and (num is float or isinstance(v, int)) for v in value)):
            raise err(f"= {value!r} must be a list of finite {'numbers' if num is float else 'integers'}")
        value = tuple(num(v) for v in value)
    elif t.startswith("tuple"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise err(f"= {value!r} must be a list of strings")
        value = tuple(value)
    def shown(v):  # as written in TOML: lists, not the tuples they become
        return [shown(x) for x in v] if isinstance(v, tuple) else v

    choices = fld.metadata.get("choices")
    if choices and value not in choices:
        raise err(f"= {shown(value)!r} is not allowed; choose one of {', '.join(map(str, choices))}")
    check = fld.metadata.get("check")
    if check and not (isinstance(value, float) and math.isnan(value)) and not check[1](value):
        raise err(f"= {shown(value)!r} must be {check[0]}")
    return value


def parameters(cls: type) -> dict[str, dataclasses.Field]:
    """The parameters of a part class (its init fields), by their key in the TOML table."""
    return {f.metadata.get("key") or f.name: f for f in dataclasses.fields(cls) if f.init}


def build_part(source: str, section: str, table: Any, *, lenient: bool = False, where: str | None = None):
    """The part a TOML table describes (`kind` plus its parameters), validated.

    `lenient`: drop keys the part does not have (stores written before parts had their own tables, whose
    tables carry the keys of every kind). `where`: the dotted prefix in messages (default `section`)."""
    fam = family(section)
    where = where or section
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {table!r}")
    table = dict(table)
    kind = table.pop("kind", fam.default)
    try:
        cls = fam.resolve(kind)
    except ConfigError as e:
        raise ConfigError(f"{source}: {str(e).replace(f'{section}.kind', f'{where}.kind', 1)}") from None
    fields = parameters(cls)
    values = {}
    for key, value in table.items():
        if key not in fields:
            if lenient:
                continue
            allowed = ", ".join(["kind", *fields])
            raise ConfigError(f"{source}: {where}.{key} is not a known key of {where}.kind = {kind!r}; allowed: {allowed}"
                              + did_you_mean(key, fields, f"{where}."))
        values[key] = coerce(source, f"{where}.{key}", value, fields[key])
    try:
        return cls(**{fields[k].name: v for k, v in values.items()})
    except ConfigError:
        raise
    except Exception as e:  # a user's part whose constructor fails: name it
        raise ConfigError(f"{source}: [{where}] kind = {kind!r} could not be built ({type(e).__name__}: {e}); "
                          f"check that part's file") from None


def part_to_dict(part) -> dict[str, Any]:
    """A part as plain TOML/JSON-ready data: `kind` and its parameters."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    return {"kind": part.kind, **{k: plain(getattr(part, f.name)) for k, f in parameters(type(part)).items()}}
