"""TOML in, a validated :class:`~loopdyn.config.Config` out; every error one line naming file, key and fix.

This layer knows no plant, task, agent or experiment by name: each `[plant]`, `[task]`, `[agent]` and
`[[loss]]` table names a part by its `kind` and the part validates its own parameters
(:mod:`loopdyn.config._parts`); the experiment (`experiment = ...`) is a part too, whose class declares
its own table (`table`, a frozen dataclass of :func:`~loopdyn.config.param` fields, validated here key by key
like a part's) and the checks of values that are wrong together (`validate`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._parts import InvalidParameter, build_part, coerce, did_you_mean, family, param, parameters, part_to_dict
from ._ensemble import MEMORY_FRACTION, estimate_resources
from ._schema import PART_SECTIONS, SECTIONS, TOP_KEYS, Config, _static_combinations, replace


def _err(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {key} {msg}")


# ------------------------------------------------------------------------------------------ experiments
def experiment_of(name: str):
    """The experiment `name` (a registered name or an import path), an instance of its class."""
    cls = family("experiment").resolve(name)
    return cls()


def experiment_table(name: str) -> str:
    """The name of an experiment's own table: its `name` with underscores (`[closed_vs_open]`)."""
    return experiment_of(name).name.replace("-", "_")


def experiment_names() -> list[str]:
    return family("experiment").names()


def _other_tables() -> list[str]:
    """The tables of every experiment (a misplaced one is suggested by name)."""
    try:
        return [n.replace("-", "_") for n in experiment_names() if ":" not in n]
    except ConfigError:
        return []


def check_single_phase_sources(cfg: Config) -> None:
    """A single-phase experiment has no earlier phase: `teacher.store` and `start.store` cannot be 'self'."""
    for section in ("teacher", "start"):
        if getattr(cfg, section).store == "self":
            raise _err(cfg.source, f"{section}.store", "= 'self' names an earlier phase of the same store, but experiment "
                       f"= {cfg.experiment!r} has a single phase; give the path of a store")


# ------------------------------------------------------------------------------------------ values
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _build_section(source: str, name: str, table: Any) -> Any:
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise _err(source, f"[{name}]", f"must be a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise _err(source, f"{name}.{key}", f"is not a known key; allowed: {', '.join(fields)}"
                       + did_you_mean(key, fields, f"{name}."))
    return cls(**{k: coerce(source, f"{name}.{k}", v, fields[k]) for k, v in table.items()})


def parse_seeds(value: Any, source: str = "<seeds>") -> tuple[int, ...] | range:
    """Seeds as a list of ints, one int, or a string `"0..7"` (inclusive; kept as a `range`, so that its size
    is known without expanding it) or `"0,3,5"`; all >= 0."""
    if isinstance(value, bool):
        raise _err(source, "seeds", f"= {value!r} must be an integer, a list of integers or 'A..B'")
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        bounds = None
        try:
            if ".." in value:
                bounds = tuple(int(s) for s in value.split(".."))
                if len(bounds) != 2 or bounds[1] < bounds[0]:
                    raise ValueError
            else:
                value = [int(s) for s in value.split(",")]
        except ValueError:
            raise _err(source, "seeds", f"= {value[:40]!r} must look like '0..7' or '0,3,5'") from None
        if bounds is not None:
            if bounds[0] < 0:
                raise _err(source, "seeds", f"= {value!r} must be non-negative")
            return range(bounds[0], bounds[1] + 1)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if any(v < 0 for v in value):
            raise _err(source, "seeds", f"= {list(value)[:8]!r} must be non-negative")
        if len(set(value)) != len(value):
            seen: set[int] = set()
            twice = next(v for v in value if v in seen or seen.add(v))
            raise _err(source, "seeds", f"lists the seed {twice} twice; each seed is one run")
        return tuple(value)
    shown = f"{value!r}"[:60]
    raise _err(source, "seeds", f"= {shown} must be an integer, a non-empty list of integers or 'A..B'")


def seeds_text(seeds: tuple[int, ...] | range) -> str | list[int]:
    """Seeds as written in a config: a range as `"A..B"`, anything else as a list."""
    if isinstance(seeds, range) and seeds.step == 1 and len(seeds):
        return f"{seeds.start}..{seeds.stop - 1}"
    return list(seeds)


def _check_ensemble_size(source: str, base: Config, sweep_table: dict) -> None:
    """Refuse an ensemble that cannot fit in memory from its size alone, before any sweep list is read
    value by value or the runs are expanded: `runs x` the memory of one run of the unswept configuration
    (a lower bound of what :func:`loopdyn.config.estimate_resources` finds for the whole ensemble)."""
    import os


    count = len(base.seeds)
    for values in sweep_table.values():
        count *= len(values) if isinstance(values, (list, tuple)) else 1
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        one = estimate_resources(dataclasses.replace(base, seeds=(0,), sweep=())).memory
    except Exception:  # settings (or a part's estimate) that the checks below refuse with their own line
        return
    limit = int(MEMORY_FRACTION * physical // max(one, 1))
    if count > limit:
        raise _err(source, "seeds", f"x sweep = {count} runs need at least {count * one / 1e9:.3g} GB of memory "
                   f"({one / 1e3:.0f} kB per run) and this machine has {physical / 1e9:.1f} GB: at most {limit} runs of "
                   f"this configuration fit; use fewer runs per store (seeds x sweep)")


def _plain(v: Any) -> Any:
    """A table's value as TOML/JSON data: tuples as lists."""
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


_DERIVED: dict[tuple[type, str], type] = {}


def _type_of(default: Any) -> str:
    for t in (bool, int, float, str):
        if isinstance(default, t):
            return t.__name__
    if isinstance(default, (list, tuple)) and default:
        inner = _type_of(default[0])
        if inner in ("int", "float", "str"):
            return f"tuple[{inner}, ...]"
    return "Any"


def table_from_defaults(cls: type, defaults: dict[str, Any]) -> type:
    """A frozen dataclass for an experiment that declares its table as a plain dict `defaults` (the older way,
    still accepted): each key typed by its default, a list a non-empty tuple of its first element's type."""
    key = (cls, repr(defaults))
    if key not in _DERIVED:
        fields = []
        for k, d in defaults.items():
            t = _type_of(d)
            check = ("a non-empty list", lambda v: len(v) > 0) if t.startswith("tuple") else None
            default = tuple(d) if t.startswith("tuple") else d
            fields.append((k, t, param(default, doc=f"(default {d!r})", check=check)))
        _DERIVED[key] = dataclasses.make_dataclass(f"{cls.__name__}Table", fields, frozen=True)
    return _DERIVED[key]


def table_type(exp: Any) -> type | None:
    """The typed table of an experiment (an instance or its class): its `table` (a dataclass whose fields are
    declared with :func:`param`), else one derived from a plain dict `defaults`; None without a table."""
    cls = exp if isinstance(exp, type) else type(exp)
    table = getattr(cls, "table", None)
    if table is not None:
        if not (isinstance(table, type) and dataclasses.is_dataclass(table)):
            raise ConfigError(f"experiment {getattr(cls, 'name', cls.__name__)!r}: its `table` = {table!r} must be a "
                              f"dataclass whose fields are declared with loopdyn.config.param (docs/extending.md)")
        return table
    defaults = inspect.getattr_static(cls, "defaults", None)  # not a derived `defaults` (a descriptor)
    return table_from_defaults(cls, dict(defaults)) if isinstance(defaults, dict) and defaults else None


def table_defaults(table: type | None) -> dict[str, Any]:
    """The default values of a typed table, as plain data (lists, not tuples), by key."""
    if table is None:
        return {}
    out = {}
    for k, f in parameters(table).items():
        d = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out[k] = _plain(d)
    return out


def _experiment(source: str, tables: dict) -> tuple[str, tuple, str]:
    """`(name, its table's settings, its table's name)` of the configuration's experiment; each key of its table
    checked by its field (:func:`coerce`: type, choices, check), with the same one-line errors as every key."""
    name = tables.get("experiment")
    if name is None:  # inferred from the table present (stores written before the key existed)
        present = [n for n in experiment_names() if ":" not in n and n.replace("-", "_") in tables]
        name = present[0] if present else family("experiment").default
    try:
        exp = experiment_of(name)
    except ConfigError as e:
        raise ConfigError(f"{source}: {str(e).replace('experiment.kind', 'experiment', 1)}") from None
    table_name = exp.name.replace("-", "_")
    fields = parameters(table_type(exp)) if table_type(exp) is not None else {}
    table = tables.get(table_name, {})
    if not isinstance(table, dict):
        raise _err(source, table_name, f"= {table!r} must be a table of the {name} experiment's settings")
    unknown = [k for k in table if k not in fields]
    if unknown:
        allowed = ", ".join(fields) or "(none)"
        raise _err(source, f"{table_name}.{unknown[0]}", f"is not a known key; allowed: {allowed}"
                   + did_you_mean(unknown[0], fields, f"{table_name}."))
    values = {}
    for k, f in fields.items():
        if k in table:
            values[k] = coerce(source, f"{table_name}.{k}", table[k], f)
        else:
            values[k] = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return name, tuple(values.items()), table_name


def _build_parts(source: str, tables: dict, lenient: bool) -> dict[str, Any]:
    out = {section: build_part(source, section, tables.get(section, {}), lenient=lenient) for section in PART_SECTIONS}
    terms = tables.get("loss", [])
    if not isinstance(terms, list) or not all(isinstance(t, dict) for t in terms):
        raise _err(source, "loss", f"= {terms!r} must be a list of tables ([[loss]] kind = ..., weight = ...)")
    out["loss"] = tuple(build_part(source, "loss", t, lenient=lenient, where=f"loss[{i}]") for i, t in enumerate(terms))
    return out


def _sweep_field(source: str, cfg_tables: dict[str, Any], dotted: str):
    """The field a swept dotted key names (in a fixed table or in the configured part)."""
    if "." not in dotted:
        raise _err(source, f"sweep.{dotted}", "must name a key as 'section.key', e.g. \"train.lr\"")
    section, key = dotted.split(".", 1)
    if section in SECTIONS:
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    elif section in PART_SECTIONS:
        part = cfg_tables[section]
        if key == "kind":
            raise _err(source, f"sweep.{dotted}", f"cannot be swept: runs of different {section} kinds belong in "
                       f"separate phases or stores")
        fields = parameters(type(part))
    else:
        raise _err(source, f"sweep.{dotted}", f"must name a key of {', '.join([*PART_SECTIONS, *SECTIONS])}")
    if key not in fields:
        raise _err(source, f"sweep.{dotted}", f"is not a known key; allowed in [{section}]: {', '.join(fields)}"
                   + did_you_mean(key, fields, f"{section}."))
    return fields[key]


def from_dict(tables: dict[str, Any], *, source: str = "<inline>", phase: bool = False, lenient: bool = False) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    `phase=True` for the configuration of one of an experiment's phases (built by the experiment, e.g. a
    continuation that starts from an earlier phase): the experiment's own checks, which concern the
    configuration the user wrote, are skipped. `lenient=True` for configurations read back from stores of
    the previous format, whose part tables carry the keys of every kind: keys the part lacks are dropped."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: a configuration must be a table, got {type(tables).__name__}")
    tables = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tables.items()}
    experiment, settings, table_name = _experiment(source, tables)
    for key in tables:
        if key not in SECTIONS and key not in PART_SECTIONS and key not in TOP_KEYS and key != table_name:
            allowed = ", ".join([*TOP_KEYS, *PART_SECTIONS, *SECTIONS, table_name])
            raise _err(source, key, f"is not a known key or table; allowed: {allowed}"
                       + did_you_mean(key, [*TOP_KEYS, *PART_SECTIONS, *SECTIONS, table_name, *_other_tables()]))
    sections = {name: _build_section(source, name, tables.get(name, {})) for name in SECTIONS}
    if not sections["train"].optimizer:
        sections["train"] = dataclasses.replace(sections["train"], optimizer=family("optimizer").default)
    parts = _build_parts(source, tables, lenient)
    epochs = tables.get("epochs", 1000)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise _err(source, "epochs", f"= {epochs!r} must be a positive integer")
    dtype = tables.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise _err(source, "dtype", f"= {dtype!r} is not allowed; choose float32 or float64")
    default_name = Path(source).stem if source != "<inline>" else "experiment"
    name = tables.get("name", default_name.removesuffix(" (shipped)").removesuffix(".toml"))
    if not isinstance(name, str) or not _NAME.match(name):
        raise _err(source, "name", f"= {name!r} must be a plain file name (letters, digits, '.', '_', '-'; at most 100, "
                   f"not starting with '.'): it names the store <name>.zarr")
    seeds = parse_seeds(tables.get("seeds", [0]), source)
    description = tables.get("description", "")
    if not isinstance(description, str):
        raise _err(source, "description", f"= {description!r} must be a string")

    sweep_table = tables.get("sweep", {})
    if not isinstance(sweep_table, dict):
        raise _err(source, "[sweep]", "must be a table of dotted keys to lists")
    _check_ensemble_size(source, Config(name=name, experiment=experiment, epochs=epochs, seeds=seeds, dtype=dtype,
                                        source=source, **sections, **parts), sweep_table)
    sweep = []
    for dotted, values in sweep_table.items():
        fld = _sweep_field(source, parts, dotted)
        if not isinstance(values, (list, tuple)) or not values:
            raise _err(source, f"sweep.{dotted}", "must be a non-empty list of values")
        checked = tuple(coerce(source, f"sweep.{dotted}", v, fld) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            seen: set[str] = set()
            twice = next(v for v in checked if repr(v) in seen or seen.add(repr(v)))
            raise _err(source, f"sweep.{dotted}", f"lists the value {twice!r} twice (of {len(checked)} values)")
        sweep.append((dotted, checked))

    cfg = Config(name=name, experiment=experiment, description=description, epochs=epochs, seeds=seeds, dtype=dtype,
                 sweep=tuple(sweep), settings=settings, source=source, **sections, **parts)
    for group_values in _static_combinations(cfg):
        _check_consistency(replace(cfg, group_values) if group_values else cfg)
    if not phase:
        experiment_of(experiment).validate(cfg)
    return cfg


def with_parts(cfg: Config, **parts: Any) -> Config:
    """A copy with parts replaced by part objects (`plant=`, `task=`, `agent=`, `loss=` a tuple of loss terms),
    checked together with the rest of the configuration (:meth:`Part.check`)."""
    for section, part in parts.items():
        if section not in (*PART_SECTIONS, "loss"):
            raise ConfigError(f"with_parts: {section!r} is not a part; give plant=, task=, agent= or loss=")
        fam = family(section)
        for p in (part if section == "loss" else (part,)):
            if not isinstance(p, fam.interface):
                raise ConfigError(f"with_parts: {section} = {p!r} is not a {fam.interface.__name__}")
    new = dataclasses.replace(cfg, **{k: (tuple(v) if k == "loss" else v) for k, v in parts.items()})
    for group_values in _static_combinations(new):
        _check_consistency(replace(new, group_values) if group_values else new)
    return new


def with_values(cfg: Config, values: dict[str, Any], **top: Any) -> Config:
    """A validated copy with dotted keys (and top-level keys such as `epochs`, `sweep`) replaced."""
    d = to_dict(cfg)
    for dotted, value in values.items():
        section, key = dotted.split(".")
        d.setdefault(section, {})[key] = value
    for key, value in top.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value
    return from_dict(d, source=cfg.source)


def to_dict(cfg: Config) -> dict[str, Any]:
    """The configuration as nested plain data (TOML/JSON-ready); `from_dict(to_dict(c))` equals `c`."""
    out: dict[str, Any] = {"name": cfg.name, "experiment": cfg.experiment, "description": cfg.description,
                           "epochs": cfg.epochs, "seeds": seeds_text(cfg.seeds), "dtype": cfg.dtype}
    for section in PART_SECTIONS:
        if getattr(cfg, section) is not None:
            out[section] = part_to_dict(getattr(cfg, section))
    if cfg.loss:
        out["loss"] = [part_to_dict(t) for t in cfg.loss]
    for section in SECTIONS:
        out[section] = {k: ([list(r) for r in v] if v and isinstance(v, tuple) and isinstance(v[0], tuple)
                            else list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(getattr(cfg, section)).items()}
    if cfg.sweep:
        out["sweep"] = {k: list(v) for k, v in cfg.sweep}
    if cfg.settings:
        out[experiment_table(cfg.experiment)] = {k: _plain(v) for k, v in cfg.settings}
    return out


def _check_consistency(cfg: Config) -> None:
    """The checks of values that are wrong together: each part's own (:meth:`Part.check`), then those of the
    fixed tables, which know the parts only through their interfaces (sizes)."""
    s = cfg.source
    try:
        family("optimizer").resolve(cfg.train.optimizer)
    except ConfigError as e:
        raise ConfigError(f"{s}: {str(e).replace('optimizer.kind', 'train.optimizer', 1)}") from None
    try:
        for part in (cfg.plant, cfg.task, cfg.agent, *cfg.loss, *([cfg.gradient] if cfg.gradient is not None else [])):
            part.check(cfg)
    except InvalidParameter as e:
        raise _err(s, e.key, e.message) from None
    mode, t = cfg.train.mode, cfg.teacher
    if mode == "open_loop_gain":
        k, m = cfg.plant.n_states, cfg.plant.n_controls
        if not t.K or len(t.K) != m or len(t.K[0]) != k:
            raise _err(s, "teacher.K", f"must be a {m} x {k} matrix (controls x states) for mode = 'open_loop_gain'")
    elif mode.startswith("open_loop") and mode != "open_loop_target" and not t.store:
        raise _err(s, "teacher.store", f"is required for mode = {mode!r}: the store of the teacher run")
    e = cfg.start.epoch
    if not (e in ("last", "stabilisation") or e.isdigit()):
        raise _err(s, "start.epoch", f"= {e!r} is not allowed; use an integer >= 0, 'last' or 'stabilisation'")
    ck = cfg.record.checkpoint
    if ck not in ("auto", "every", "log") and not (ck.startswith("every:") and ck[6:].isdigit() and int(ck[6:]) > 0):
        raise _err(s, "record.checkpoint", f"= {ck!r} is not allowed; choose auto, every, log or every:K with K > 0")


# ------------------------------------------------------------------------------------------ files
def load(source: str | Path, overrides: list[str] | None = None, seeds: str | None = None) -> Config:
    """Read a config from a TOML file or a shipped name (`linear-rank1`), apply `key=value` overrides."""
    path, text = _read(source)
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: is not valid TOML ({e})") from e
    except RecursionError:
        raise ConfigError(f"{path}: nests tables or arrays too deeply to read; a config needs two levels") from None
    if not tables:
        raise ConfigError(f"{path}: is empty; start from a shipped config (loopdyn configs) and change what you need")
    for item in overrides or []:
        _apply_override(tables, item)
    if seeds is not None:
        tables["seeds"] = seeds
    given = {item.split("=", 1)[0].strip(): "--set" for item in overrides or []}
    if seeds is not None:
        given["seeds"] = "--seeds"
    try:
        return from_dict(tables, source=str(path))
    except ConfigError as e:  # a value given on the command line is named as such, not as the file's
        rest = str(e).removeprefix(f"{path}: ")
        for key, option in given.items():
            if rest != str(e) and (rest.startswith(f"{key} ") or rest.startswith(f"{key}.")):
                shown = rest.removeprefix("seeds = ") if option == "--seeds" else rest
                raise ConfigError(f"{option} {shown}") from None
        raise


def _apply_override(tables: dict, item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.003")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise ConfigError(f"--set {key}: the value nests tables or arrays too deeply to read; give a number, a string "
                          f"or a flat list") from None
    if "." not in key:
        tables[key] = value
        return
    section, sub = key.split(".", 1)
    known = set(SECTIONS) | set(PART_SECTIONS) | {"sweep"}
    experiment = tables.get("experiment")
    if isinstance(experiment, str):
        try:
            known.add(experiment_table(experiment))
        except ConfigError:
            pass  # reported by from_dict, naming the file
    if section not in known:
        raise ConfigError(f"--set {key}: unknown table {section!r}; allowed: {', '.join(sorted(known))}"
                          + did_you_mean(section, sorted(known)))
    target = tables.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"--set {key}: {section} is not a table in this config")
    target[sub] = value


def shipped() -> list[str]:
    """Names of the configurations that ship with the package."""
    return sorted(p.name[:-5] for p in resources.files("loopdyn.configs").iterdir() if p.name.endswith(".toml"))


def _read(source: str | Path) -> tuple[str, str]:
    p = Path(source)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file (shipped configs: {', '.join(shipped())})")
        data, name = p.read_bytes(), str(p)
    else:
        res = resources.files("loopdyn.configs") / f"{source}.toml"
        if not res.is_file():
            raise ConfigError(f"{source}: neither a config file nor a shipped config; shipped: {', '.join(shipped())}"
                              + did_you_mean(source, shipped()))
        data, name = res.read_bytes(), f"{source}.toml (shipped)"
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{name}: is not UTF-8 text (byte {e.start}); save it as UTF-8") from e


def from_toml_text(text: str, source: str = "<inline>") -> Config:
    """Parse TOML text into a :class:`Config` (for tests and notebooks)."""
    try:
        return from_dict(tomllib.loads(text), source=source)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: is not valid TOML ({e})") from e
    except RecursionError:
        raise ConfigError(f"{source}: nests tables or arrays too deeply to read; a config needs two levels") from None


