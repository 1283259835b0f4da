"""TOML in, a validated :class:`~loopdyn.config.Config` out; every error one line naming file, key and fix."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ._schema import SECTIONS, TOP_KEYS, Config


def _err(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {key} {msg}")


# ------------------------------------------------------------------------------------------ experiment tables
@dataclass(frozen=True)
class ExperimentTable:
    """The keys an experiment reads from its own table, and the checks it needs at load time.

    - `name`: the experiment's name (`loopdyn train NAME`, `experiment = "NAME"`); its table is
      `[name_with_underscores]`.
    - `defaults`: key -> default value; a value given in the file must have the default's type.
    - `validate(cfg)`: raises :class:`ConfigError` for values that are wrong together with the rest of
      the configuration (e.g. a continuation epoch beyond the first phase).
    """

    name: str
    defaults: dict[str, Any]
    validate: Callable[[Config], None] | None = None

    @property
    def table(self) -> str:
        return self.name.replace("-", "_")


_EXPERIMENTS: dict[str, ExperimentTable] = {}


def register_experiment(name: str, defaults: dict[str, Any] | None = None,
                        validate: Callable[[Config], None] | None = None) -> ExperimentTable:
    """Declare an experiment's table to the configuration parser (done by each experiment module)."""
    entry = ExperimentTable(name, dict(defaults or {}), validate)
    _EXPERIMENTS[name] = entry
    return entry


def experiment_names() -> list[str]:
    return sorted(_EXPERIMENTS)


def check_single_phase_sources(cfg: Config) -> None:
    """A single-phase experiment has no earlier phase: `teacher.store` and `start.store` cannot be 'self'."""
    for section in ("teacher", "start"):
        if getattr(cfg, section).store == "self":
            raise _err(cfg.source, f"{section}.store", "= 'self' names an earlier phase of the same store, but experiment "
                       f"= {cfg.experiment!r} has a single phase; give the path of a store")


register_experiment("ensemble", {}, check_single_phase_sources)


# ------------------------------------------------------------------------------------------ values
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _coerce(source: str, dotted: str, value: Any, fld: dataclasses.Field) -> Any:
    t = str(fld.type)
    if t == "bool":
        if not isinstance(value, bool):
            raise _err(source, dotted, f"= {value!r} must be true or false")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(source, dotted, f"= {value!r} must be an integer")
    elif t == "float":
        if not _is_number(value):
            raise _err(source, dotted, f"= {value!r} must be a number")
        value = float(value)
        if math.isinf(value) or (math.isnan(value) and dotted != "agent.over"):
            raise _err(source, dotted, f"= {value!r} must be a finite number")
    elif t == "str":
        if not isinstance(value, str):
            raise _err(source, dotted, f"= {value!r} must be a string")
    elif t.startswith("tuple[tuple"):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(r, (list, tuple)) and r and all(_is_number(v) and math.isfinite(v) for v in r) for r in value)
        if not ok or len({len(r) for r in value}) > 1:
            raise _err(source, dotted, f"= {value!r} must be a matrix: a list of equally long lists of finite numbers")
        value = tuple(tuple(float(v) for v in r) for r in value)
    elif t.startswith("tuple[float"):
        if not isinstance(value, (list, tuple)) or not all(_is_number(v) and math.isfinite(v) for v in value):
            raise _err(source, dotted, f"= {value!r} must be a list of finite numbers")
        value = tuple(float(v) for v in value)
    elif t.startswith("tuple"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _err(source, dotted, f"= {value!r} must be a list of strings")
        value = tuple(value)
    choices = fld.metadata.get("choices")
    if choices and value not in choices:
        raise _err(source, dotted, f"= {value!r} is not allowed; choose one of {', '.join(choices)}")
    check = fld.metadata.get("check")
    if check and not (isinstance(value, float) and math.isnan(value)) and not check[1](value):
        raise _err(source, dotted, f"= {value!r} must be {check[0]}")
    return value


def _build_section(source: str, name: str, table: Any) -> Any:
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise _err(source, f"[{name}]", f"must be a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise _err(source, f"{name}.{key}", f"is not a known key; allowed: {', '.join(fields)}")
    return cls(**{k: _coerce(source, f"{name}.{k}", v, fields[k]) for k, v in table.items()})


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

    from ._ensemble import MEMORY_FRACTION, estimate_resources

    count = len(base.seeds)
    for values in sweep_table.values():
        count *= len(values) if isinstance(values, list) else 1
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        one = estimate_resources(dataclasses.replace(base, seeds=(0,), sweep=())).memory
    except (ValueError, OSError, AttributeError, ArithmeticError):
        return  # settings that the checks below refuse with their own line
    limit = int(MEMORY_FRACTION * physical // max(one, 1))
    if count > limit:
        raise _err(source, "seeds", f"x sweep = {count} runs need at least {count * one / 1e9:.3g} GB of memory "
                   f"({one / 1e3:.0f} kB per run) and this machine has {physical / 1e9:.1f} GB: at most {limit} runs of "
                   f"this configuration fit; use fewer runs per store (seeds x sweep)")


def _table_value(source: str, key: str, value: Any, default: Any) -> Any:
    def same_kind(v, d):
        if isinstance(d, bool):
            return isinstance(v, bool)
        if isinstance(d, int):
            return isinstance(v, int) and not isinstance(v, bool)
        if isinstance(d, float):
            return _is_number(v) and math.isfinite(v)
        return isinstance(v, type(d))

    if isinstance(default, list):
        ok = isinstance(value, list) and value and (not default or all(same_kind(v, default[0]) for v in value))
        if not ok:
            kind = type(default[0]).__name__ if default else "value"
            raise _err(source, key, f"= {value!r} must be a non-empty list of {'numbers' if kind == 'float' else kind + 's'}")
        return [float(v) for v in value] if default and isinstance(default[0], float) else list(value)
    if not same_kind(value, default):
        kind = "a number" if isinstance(default, float) else f"of type {type(default).__name__}"
        raise _err(source, key, f"= {value!r} must be {kind} like the default {default!r}")
    return float(value) if isinstance(default, float) else value


def _experiment(source: str, tables: dict) -> tuple[str, tuple]:
    name = tables.get("experiment")
    if name is None:  # inferred from the table present (stores written before the key existed)
        present = [e.name for e in _EXPERIMENTS.values() if e.defaults and e.table in tables]
        name = present[0] if present else "ensemble"
    if not isinstance(name, str) or name not in _EXPERIMENTS:
        raise _err(source, "experiment", f"= {name!r} is not a known experiment; choose one of {', '.join(experiment_names())}")
    entry = _EXPERIMENTS[name]
    for other in _EXPERIMENTS.values():
        if other is not entry and other.defaults and other.table in tables:
            raise _err(source, f"[{other.table}]", f"belongs to experiment {other.name!r}, not to experiment = {name!r}")
    table = tables.get(entry.table, {})
    if not isinstance(table, dict):
        raise _err(source, entry.table, f"= {table!r} must be a table of the {name} experiment's settings")
    unknown = [k for k in table if k not in entry.defaults]
    if unknown:
        allowed = ", ".join(entry.defaults) or "(none)"
        raise _err(source, f"{entry.table}.{unknown[0]}", f"is not a known key; allowed: {allowed}")
    values = {k: _table_value(source, f"{entry.table}.{k}", v, entry.defaults[k]) for k, v in table.items()}
    return name, tuple({**entry.defaults, **values}.items())


def from_dict(tables: dict[str, Any], *, source: str = "<inline>", phase: bool = False) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    `phase=True` for the configuration of one of an experiment's phases (built by the experiment, e.g. a
    continuation that starts from an earlier phase): the experiment's own checks, which concern the
    configuration the user wrote, are skipped."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: a configuration must be a table, got {type(tables).__name__}")
    tables = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tables.items()}
    known_tables = {e.table for e in _EXPERIMENTS.values() if e.defaults}
    for key in tables:
        if key not in SECTIONS and key not in TOP_KEYS and key not in known_tables:
            allowed = ", ".join([*TOP_KEYS, *SECTIONS, *sorted(known_tables)])
            raise _err(source, key, f"is not a known key or table; allowed: {allowed}")
    sections = {name: _build_section(source, name, tables.get(name, {})) for name in SECTIONS}
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
    experiment, settings = _experiment(source, tables)

    sweep_table = tables.get("sweep", {})
    if not isinstance(sweep_table, dict):
        raise _err(source, "[sweep]", "must be a table of dotted keys to lists")
    _check_ensemble_size(source, Config(name=name, experiment=experiment, epochs=epochs, seeds=seeds, dtype=dtype,
                                        source=source, **sections), sweep_table)
    sweep = []
    for dotted, values in sweep_table.items():
        if "." not in dotted or dotted.split(".")[0] not in SECTIONS:
            raise _err(source, f"sweep.{dotted}", "must name a key as 'section.key', e.g. \"train.lr\"")
        section, key = dotted.split(".", 1)
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
        if key not in fields:
            raise _err(source, f"sweep.{dotted}", f"is not a known key; allowed in [{section}]: {', '.join(fields)}")
        if not isinstance(values, list) or not values:
            raise _err(source, f"sweep.{dotted}", "must be a non-empty list of values")
        checked = tuple(_coerce(source, f"sweep.{dotted}", v, fields[key]) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            seen: set[str] = set()
            twice = next(v for v in checked if repr(v) in seen or seen.add(repr(v)))
            raise _err(source, f"sweep.{dotted}", f"lists the value {twice!r} twice (of {len(checked)} values)")
        sweep.append((dotted, checked))

    cfg = Config(name=name, experiment=experiment, description=description, epochs=epochs, seeds=seeds, dtype=dtype,
                 sweep=tuple(sweep), settings=settings, source=source, **sections)
    _check_consistency(cfg)
    for group_values in _static_combinations(cfg):
        if group_values:
            _check_consistency(replace(cfg, group_values))
    validate = _EXPERIMENTS[experiment].validate
    if validate is not None and not phase:
        validate(cfg)
    return cfg


def _static_combinations(cfg: Config) -> list[dict[str, Any]]:
    import itertools

    static = [(k, v) for k, v in cfg.sweep]
    keys = [k for k, _ in static]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in static])] if static else [{}]


def replace(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy with dotted keys replaced (not validated: use :func:`with_values` for user input)."""
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, v in values.items():
        s, k = dotted.split(".")
        by_section.setdefault(s, {})[k] = v
    return dataclasses.replace(cfg, **{s: dataclasses.replace(getattr(cfg, s), **kv) for s, kv in by_section.items()})


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
    for section in SECTIONS:
        out[section] = {k: ([list(r) for r in v] if k == "K" else list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(getattr(cfg, section)).items()}
    if cfg.sweep:
        out["sweep"] = {k: list(v) for k, v in cfg.sweep}
    if cfg.settings:
        out[_EXPERIMENTS[cfg.experiment].table] = dict(cfg.settings)
    return out


def _check_consistency(cfg: Config) -> None:
    s, a, p = cfg.source, cfg.agent, cfg.plant
    if a.rank > a.N:
        raise _err(s, "agent.rank", f"= {a.rank} must be <= agent.N = {a.N} (0 means full rank)")
    if not a.trainable:
        raise _err(s, "agent.trainable", "= [] trains nothing; name at least one of the parameters to train")
    allowed = ("m", "U", "V", "z") if a.rank else ("m", "W", "z")
    bad = [t for t in a.trainable if t not in allowed]
    if bad:
        raise _err(s, "agent.trainable", f"= {list(a.trainable)!r} contains {bad[0]!r}; with rank = {a.rank} choose from {', '.join(allowed)}")
    if len(set(a.trainable)) != len(a.trainable):
        raise _err(s, "agent.trainable", f"= {list(a.trainable)!r} names a parameter twice")
    if p.kind == "double_integrator" and (p.order, p.dt, p.n_controls, p.n_observed) != (2, 1.0, 1, 1):
        raise _err(s, "plant.kind", "= 'double_integrator' fixes order = 2, dt = 1, n_controls = 1, n_observed = 1; use kind = 'integrator' to change them")
    if p.kind == "integrator" and p.n_observed > p.order:
        raise _err(s, "plant.n_observed", f"= {p.n_observed} must be <= plant.order = {p.order}")
    if p.kind == "point_mass_2d" and p.n_observed not in (2, 4):
        raise _err(s, "plant.n_observed", f"= {p.n_observed} must be 2 (positions) or 4 (full state) for point_mass_2d")
    if not math.isnan(a.over) and (a.init != "lowrank" or a.rank != 1):
        raise _err(s, "agent.over", "sets sigma_zm only for init = 'lowrank' with rank = 1; remove it or change the agent")
    mode, t = cfg.train.mode, cfg.teacher
    if mode == "open_loop_gain":
        k, m = plant_sizes(p)[:2]
        if not t.K or len(t.K) != m or len(t.K[0]) != k:
            raise _err(s, "teacher.K", f"must be a {m} x {k} matrix (controls x states) for mode = 'open_loop_gain'")
    elif mode.startswith("open_loop") and mode != "open_loop_target" and not t.store:
        raise _err(s, "teacher.store", f"is required for mode = {mode!r}: the store of the teacher run")
    _check_overlaps_and_objective(cfg)
    e = cfg.start.epoch
    if not (e in ("last", "stabilisation") or e.isdigit()):
        raise _err(s, "start.epoch", f"= {e!r} is not allowed; use an integer >= 0, 'last' or 'stabilisation'")
    ck = cfg.record.checkpoint
    if ck not in ("auto", "every", "log") and not (ck.startswith("every:") and ck[6:].isdigit() and int(ck[6:]) > 0):
        raise _err(s, "record.checkpoint", f"= {ck!r} is not allowed; choose auto, every, log or every:K with K > 0")
    if cfg.task.kind == "tracking":
        _check_tracking(cfg)


def _check_tracking(cfg: Config) -> None:
    """The tracking task's keys (spec §1.3): frequencies positive, below the plant's Nyquist frequency and
    distinct per axis, one positive amplitude per frequency, the 2-D point mass, no control penalty."""
    s, t, p = cfg.source, cfg.task, cfg.plant
    if p.kind != "point_mass_2d":
        raise _err(s, "task.kind", f"= 'tracking' needs plant.kind = 'point_mass_2d' (got {p.kind!r})")
    if not t.freqs_x and not t.freqs_y:
        raise _err(s, "task.freqs_x", "and task.freqs_y are both empty; give the reference at least one frequency")
    nyquist = 0.5 / p.dt
    for axis in ("x", "y"):
        freqs, amps = getattr(t, f"freqs_{axis}"), getattr(t, f"amps_{axis}")
        for f in freqs:
            if f <= 0:
                raise _err(s, f"task.freqs_{axis}", f"= {list(freqs)!r} contains {f:g}; frequencies must be > 0 Hz")
            if f >= nyquist:
                raise _err(s, f"task.freqs_{axis}", f"= {list(freqs)!r} contains {f:g} Hz, not below the Nyquist "
                           f"frequency 1/(2 plant.dt) = {nyquist:g} Hz; lower it or the plant's dt")
        if len(set(freqs)) != len(freqs):
            raise _err(s, f"task.freqs_{axis}", f"= {list(freqs)!r} lists a frequency twice")
        if len(amps) != len(freqs):
            raise _err(s, f"task.amps_{axis}", f"= {list(amps)!r} must give one amplitude per frequency of "
                       f"task.freqs_{axis} ({len(freqs)})")
        if any(a <= 0 for a in amps):
            raise _err(s, f"task.amps_{axis}", f"= {list(amps)!r} must be > 0")
    if t.beta != 0:
        raise _err(s, "task.beta", f"= {t.beta:g}; the tracking loss has no control penalty, set it to 0")
    if cfg.train.mode == "open_loop_gain":
        raise _err(s, "train.mode", "= 'open_loop_gain' is for regulation; a tracking teacher is an RNN (open_loop_teacher)")


# ---- overlap representation, expected objective, impulse task (spec §7) ----
def _check_overlaps_and_objective(cfg: Config) -> None:
    s, a, t, mode = cfg.source, cfg.agent, cfg.task, cfg.train.mode
    if a.representation == "overlaps":
        if cfg.train.optimizer != "sgd":
            raise _err(s, "train.optimizer", f"= {cfg.train.optimizer!r} cannot train agent.representation = 'overlaps': "
                       "the Gram-matrix reduction holds for rotation-invariant updates (SGD, clipped or not) only; use "
                       "optimizer = 'sgd' or representation = 'vectors'")
        if a.activation != "linear" or a.rank == 0 or a.g > 0:
            raise _err(s, "agent.representation", "= 'overlaps' needs a linear low-rank agent with g = 0 (activation = "
                       "'linear', rank >= 1); use representation = 'vectors'")
    if (t.kind == "impulse") != (mode == "open_loop_target"):
        raise _err(s, "task.kind", f"= {t.kind!r} and train.mode = {mode!r} do not go together: the impulse task is "
                   "trained with mode = 'open_loop_target' and that mode needs kind = 'impulse'")
    if t.objective == "expected":
        if a.activation != "linear" or cfg.plant.noise > 0 or cfg.plant.clamp > 0:
            raise _err(s, "task.objective", "= 'expected' has a closed form for linear, noise- and clamp-free loops "
                       "only (activation = 'linear', plant.noise = 0, plant.clamp = 0); use objective = 'sampled'")
        if t.kind != "regulation" or mode == "open_loop_noise":
            raise _err(s, "task.objective", f"= 'expected' averages over initial states, which mode {mode!r} with "
                       f"task.kind = {t.kind!r} has none of; use objective = 'sampled'")


def plant_sizes(p) -> tuple[int, int, int]:
    """`(states k, controls m, observed c)` of a plant configuration."""
    if p.kind == "double_integrator":
        return 2, 1, 1
    if p.kind == "point_mass_2d":
        return 4, 2, p.n_observed
    return p.order, p.n_controls, p.n_observed


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
    return from_dict(tables, source=str(path))


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
    known = set(SECTIONS) | {"sweep"} | {e.table for e in _EXPERIMENTS.values() if e.defaults}
    if section not in known:
        raise ConfigError(f"--set {key}: unknown table {section!r}; allowed: {', '.join(sorted(known))}")
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
            raise ConfigError(f"{source}: neither a config file nor a shipped config; shipped: {', '.join(shipped())}")
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


