"""Experiment configuration: TOML in, frozen validated dataclasses out.

A configuration has one table per layer (`plant`, `task`, `agent`, `train`, `record`) plus
top-level keys (`name`, `seeds`, `epochs`, `dtype`) and an optional `[sweep]` table that maps
dotted keys (`"train.lr"`) to lists of values. Every error is a :class:`ConfigError` whose
message is one line naming the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _f(default, *, doc: str, check=None, choices=None):
    return field(default=default, metadata={"doc": doc, "check": check, "choices": choices})


_POS = ("> 0", lambda v: v > 0)
_NONNEG = (">= 0", lambda v: v >= 0)
_UNIT = ("in (0, 1]", lambda v: 0 < v <= 1)


@dataclass(frozen=True)
class PlantConfig:
    """Linear plant `x' = A x + B u + w`, `y = C x` (paper-spec §1.1-1.2)."""

    kind: str = _f("double_integrator", doc="plant family", choices=("double_integrator", "integrator", "point_mass_2d"))
    order: int = _f(2, doc="integrator order k", check=_POS)
    dt: float = _f(1.0, doc="plant time step", check=_POS)
    n_controls: int = _f(1, doc="number of control inputs m", check=_POS)
    n_observed: int = _f(1, doc="number of observed state coordinates c", check=_POS)
    noise: float = _f(0.0, doc="process-noise std (scaled by sqrt(dt))", check=_NONNEG)
    clamp: float = _f(0.0, doc="clip the state to [-clamp, clamp] after each step; 0 = off", check=_NONNEG)


@dataclass(frozen=True)
class TaskConfig:
    """Regulation to the origin from random initial states (paper-spec §1.4, §3.1-3.2)."""

    kind: str = _f("regulation", doc="task family", choices=("regulation",))
    T: int = _f(50, doc="episode length (steps in the loss)", check=_POS)
    batch: int = _f(100, doc="initial states per epoch", check=_POS)
    x0_range: float = _f(2.0, doc="initial states are U(-a, a) per state coordinate", check=_POS)
    loss: str = _f("mean", doc="loss convention", choices=("mean", "sum"))
    beta: float = _f(0.0, doc="control penalty (beta for 'mean', reg_U for 'sum')", check=_NONNEG)
    test_batch: int = _f(100, doc="fixed test initial states", check=_POS)
    test_loss: str = _f("mean_xv", doc="closed-loop test metric", choices=("mean_xv", "sum_t"))
    test_seed: int = _f(12345, doc="seed of the fixed test set", check=_NONNEG)


@dataclass(frozen=True)
class AgentConfig:
    """RNN controller `h' = (1-alpha) h + alpha phi(W h + m y)`, `u = z^T h` (paper-spec §2)."""

    N: int = _f(100, doc="number of hidden units", check=_POS)
    rank: int = _f(1, doc="rank of W = U V^T + g J; 0 = full rank", check=_NONNEG)
    activation: str = _f("linear", doc="nonlinearity phi", choices=("linear", "tanh", "relu"))
    alpha: float = _f(1.0, doc="leak dt/tau; 1 = discrete RNN", check=_UNIT)
    g: float = _f(0.0, doc="gain of the random connectivity J", check=_NONNEG)
    init: str = _f("lowrank", doc="initialisation scheme (lowrank: spec §2.2, rnn: spec §2.1)", choices=("lowrank", "rnn"))
    over: float = _f(math.nan, doc="set sigma_zm = z.m exactly at init (nan = off)")
    trainable: tuple[str, ...] = _f(("z", "U", "V"), doc="trained parameters, subset of m, W, U, V, z")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (paper-spec §3)."""

    mode: str = _f("closed_loop", doc="training mode",
                   choices=("closed_loop", "open_loop_noise", "open_loop_teacher", "open_loop_gain"))
    optimizer: str = _f("sgd", doc="optimiser", choices=("sgd", "adam"))
    lr: float = _f(0.01, doc="learning rate", check=_POS)
    clip: float = _f(1.0, doc="global-norm gradient clip; 0 = off", check=_NONNEG)
    skip_first_update: bool = _f(False, doc="epoch 0 only evaluates (reference code of spec §3.2)")


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher of an open-loop student (spec §3.3)."""

    store: str = _f("", doc="store holding the teacher runs ('self': earlier phase of the same experiment)")
    run: int = _f(-1, doc="teacher run index; -1 = the run with the student's seed")
    epoch: int = _f(-1, doc="checkpoint epoch of the teacher; -1 = the last one")
    K: tuple[tuple[float, ...], ...] = _f((), doc="static gain u = K x for mode = open_loop_gain (rows: controls)")


@dataclass(frozen=True)
class StartConfig:
    """Start from stored parameters instead of a fresh initialisation (continuations)."""

    store: str = _f("", doc="store to start from ('' = fresh init, 'self' = phase 0 of this experiment)")
    run: int = _f(-1, doc="run index to start from; -1 = the run with the same seed")
    epoch: str = _f("last", doc="checkpoint epoch: an integer, 'last', or 'stabilisation' (per run)")


@dataclass(frozen=True)
class RecordConfig:
    """What the store keeps and how often the host writes."""

    chunk: int = _f(50, doc="epochs per compiled chunk (one store write each)", check=_POS)
    checkpoint: str = _f("auto", doc="parameter checkpoints: auto, every, log, or every:K")
    n_log: int = _f(100, doc="number of log-spaced checkpoints for checkpoint = log", check=_POS)


SECTIONS: dict[str, type] = {
    "plant": PlantConfig,
    "task": TaskConfig,
    "agent": AgentConfig,
    "train": TrainConfig,
    "teacher": TeacherConfig,
    "start": StartConfig,
    "record": RecordConfig,
}

# Scalars that are vmapped over inside one compiled ensemble; every other swept key
# changes shapes or control flow and splits the runs into separately compiled groups.
VMAPPED = ("train.lr", "train.clip", "task.beta", "agent.over", "agent.g", "plant.noise")

PARAM_NAMES = ("m", "W", "U", "V", "z")


@dataclass(frozen=True)
class Config:
    """A whole experiment. `runs()` expands seeds x sweep into the ensemble."""

    name: str = "experiment"
    description: str = ""
    epochs: int = 1000
    seeds: tuple[int, ...] = (0,)
    dtype: str = "float32"
    plant: PlantConfig = PlantConfig()
    task: TaskConfig = TaskConfig()
    agent: AgentConfig = AgentConfig()
    train: TrainConfig = TrainConfig()
    teacher: TeacherConfig = TeacherConfig()
    start: StartConfig = StartConfig()
    record: RecordConfig = RecordConfig()
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()  # experiment-specific tables, kept verbatim
    source: str = "<inline>"

    # ------------------------------------------------------------------ helpers
    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".")
        return getattr(getattr(self, section), key)

    def with_values(self, values: dict[str, Any]) -> "Config":
        """Return a copy with dotted keys replaced (validated)."""
        tables = self.to_dict()
        for dotted, value in values.items():
            section, key = dotted.split(".")
            tables[section][key] = value
        return from_dict(tables, source=self.source)

    def runs(self) -> list[dict[str, Any]]:
        """One dict per run: `seed` plus the swept dotted keys, seeds varying fastest."""
        keys = [k for k, _ in self.sweep]
        combos = list(itertools.product(*[v for _, v in self.sweep])) or [()]
        return [dict(zip(keys, combo), seed=seed) for combo in combos for seed in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "epochs": self.epochs, "seeds": list(self.seeds), "dtype": self.dtype}
        for section in SECTIONS:
            out[section] = {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(getattr(self, section)).items()
            }
        if self.sweep:
            out["sweep"] = {k: list(v) for k, v in self.sweep}
        for k, v in self.extra:
            out[k] = v
        return out

    def experiment(self, table: str) -> dict[str, Any]:
        return dict(self.extra).get(table, {})


def _err(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {key} {msg}")


def _coerce(source: str, dotted: str, value: Any, typ: Any, fld: dataclasses.Field) -> Any:
    t = str(typ)
    if t == "bool":
        if not isinstance(value, bool):
            raise _err(source, dotted, f"= {value!r} must be true or false")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(source, dotted, f"= {value!r} must be an integer")
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _err(source, dotted, f"= {value!r} must be a number")
        value = float(value)
    elif t == "str":
        if not isinstance(value, str):
            raise _err(source, dotted, f"= {value!r} must be a string")
    elif t.startswith("tuple[tuple"):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(r, (list, tuple)) and r and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
            for r in value)
        if not ok or len({len(r) for r in value}) > 1:
            raise _err(source, dotted, f"= {value!r} must be a matrix: a list of equally long lists of numbers")
        value = tuple(tuple(float(v) for v in r) for r in value)
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
        raise _err(source, f"[{name}]", "must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise _err(source, f"{name}.{key}", f"is not a known key; allowed: {', '.join(fields)}")
    kwargs = {k: _coerce(source, f"{name}.{k}", v, fields[k].type, fields[k]) for k, v in table.items()}
    return cls(**kwargs)


def parse_seeds(value: Any, source: str = "<seeds>") -> tuple[int, ...]:
    """Seeds as a list of ints, one int, or a range string `"0..7"` (inclusive)."""
    if isinstance(value, bool):
        raise _err(source, "seeds", f"= {value!r} must be an integer, a list of integers or 'A..B'")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        try:
            if ".." in value:
                a, b = (int(s) for s in value.split(".."))
                if b < a:
                    raise ValueError
                return tuple(range(a, b + 1))
            return tuple(int(s) for s in value.split(","))
        except ValueError:
            raise _err(source, "seeds", f"= {value!r} must look like '0..7' or '0,3,5'") from None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if any(v < 0 for v in value):
            raise _err(source, "seeds", f"= {list(value)!r} must be non-negative")
        return tuple(value)
    raise _err(source, "seeds", f"= {value!r} must be an integer, a non-empty list of integers or 'A..B'")


TOP_KEYS = ("name", "description", "epochs", "seeds", "dtype", "sweep")
EXPERIMENT_TABLES = ("closed_vs_open", "stages")


def from_dict(tables: dict[str, Any], *, source: str = "<inline>") -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`."""
    tables = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tables.items()}
    for key in tables:
        if key not in SECTIONS and key not in TOP_KEYS and key not in EXPERIMENT_TABLES:
            allowed = ", ".join([*TOP_KEYS, *SECTIONS, *EXPERIMENT_TABLES])
            raise _err(source, key, f"is not a known key or table; allowed: {allowed}")
    sections = {name: _build_section(source, name, tables.get(name, {})) for name in SECTIONS}
    epochs = tables.get("epochs", 1000)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise _err(source, "epochs", f"= {epochs!r} must be a positive integer")
    dtype = tables.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise _err(source, "dtype", f"= {dtype!r} is not allowed; choose float32 or float64")
    name = tables.get("name", Path(source).stem if source != "<inline>" else "experiment")
    if not isinstance(name, str):
        raise _err(source, "name", f"= {name!r} must be a string")
    seeds = parse_seeds(tables.get("seeds", [0]), source)
    description = tables.get("description", "")
    if not isinstance(description, str):
        raise _err(source, "description", f"= {description!r} must be a string")

    sweep_table = tables.get("sweep", {})
    if not isinstance(sweep_table, dict):
        raise _err(source, "[sweep]", "must be a table of dotted keys to lists")
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
        checked = tuple(_coerce(source, f"sweep.{dotted}", v, fields[key].type, fields[key]) for v in values)
        sweep.append((dotted, checked))

    extra = tuple((k, tables[k]) for k in EXPERIMENT_TABLES if k in tables)
    cfg = Config(name=name, description=description, epochs=epochs, seeds=seeds, dtype=dtype, sweep=tuple(sweep), extra=extra, source=source,
                 **sections)
    _check_consistency(cfg)
    for run in cfg.runs():
        overrides = {k: v for k, v in run.items() if k != "seed"}
        if overrides:
            _check_consistency(_replace(cfg, overrides))
    return cfg


def _replace(cfg: Config, values: dict[str, Any]) -> Config:
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, v in values.items():
        s, k = dotted.split(".")
        by_section.setdefault(s, {})[k] = v
    return dataclasses.replace(cfg, **{s: dataclasses.replace(getattr(cfg, s), **kv) for s, kv in by_section.items()})


def run_config(cfg: Config, run: dict[str, Any]) -> Config:
    """The configuration of one run of the ensemble (sweep values applied, no sweep)."""
    return dataclasses.replace(_replace(cfg, {k: v for k, v in run.items() if k != "seed"}), sweep=(), seeds=(run["seed"],))


def _check_consistency(cfg: Config) -> None:
    s, a, p = cfg.source, cfg.agent, cfg.plant
    if a.rank > a.N:
        raise _err(s, "agent.rank", f"= {a.rank} must be <= agent.N = {a.N} (0 means full rank)")
    allowed = ("m", "U", "V", "z") if a.rank else ("m", "W", "z")
    bad = [t for t in a.trainable if t not in allowed]
    if bad:
        raise _err(s, "agent.trainable", f"= {list(a.trainable)!r} contains {bad[0]!r}; with rank = {a.rank} choose from {', '.join(allowed)}")
    if p.kind == "double_integrator" and (p.order, p.dt, p.n_controls, p.n_observed) != (2, 1.0, 1, 1):
        raise _err(s, "plant.kind", "= 'double_integrator' fixes order = 2, dt = 1, n_controls = 1, n_observed = 1; use kind = 'integrator' to change them")
    if p.kind == "integrator" and p.n_observed > p.order:
        raise _err(s, "plant.n_observed", f"= {p.n_observed} must be <= plant.order = {p.order}")
    if p.kind == "point_mass_2d" and p.n_observed not in (1, 2, 4):
        raise _err(s, "plant.n_observed", "must be 2 (positions) or 4 (full state) for point_mass_2d")
    if not math.isnan(a.over) and (a.init != "lowrank" or a.rank != 1):
        raise _err(s, "agent.over", "sets sigma_zm only for init = 'lowrank' with rank = 1; remove it or change the agent")
    mode, t = cfg.train.mode, cfg.teacher
    if mode == "open_loop_gain":
        k = p.order if p.kind == "integrator" else (4 if p.kind == "point_mass_2d" else 2)
        m = p.n_controls if p.kind == "integrator" else (2 if p.kind == "point_mass_2d" else 1)
        if not t.K or len(t.K) != m or len(t.K[0]) != k:
            raise _err(s, "teacher.K", f"must be a {m} x {k} matrix (controls x states) for mode = 'open_loop_gain'")
    elif mode.startswith("open_loop") and not t.store:
        raise _err(s, "teacher.store", f"is required for mode = {mode!r}: the store of the teacher run")
    n_in = p.n_observed if p.kind == "integrator" else (p.n_observed if p.kind == "point_mass_2d" else 1)
    n_out = p.n_controls if p.kind == "integrator" else (2 if p.kind == "point_mass_2d" else 1)
    sizes = {"m": a.N * n_in, "z": a.N * n_out, "W": a.N * a.N, "U": a.N * a.rank, "V": a.N * a.rank}
    per_run = sum(sizes[t] for t in a.trainable)
    held = cfg.record.chunk * len(cfg.runs()) * per_run * (8 if cfg.dtype == "float64" else 4)
    if held > 2e9:
        fit = max(1, int(2e9 // (len(cfg.runs()) * per_run * (8 if cfg.dtype == "float64" else 4))))
        raise _err(s, "record.chunk", f"= {cfg.record.chunk} would hold {held / 1e9:.1f} GB of parameters per chunk "
                   f"({len(cfg.runs())} runs x {per_run} trained parameters); set record.chunk <= {fit}")
    e = cfg.start.epoch
    if not (e in ("last", "stabilisation") or (e.isdigit())):
        raise _err(s, "start.epoch", f"= {e!r} is not allowed; use an integer >= 0, 'last' or 'stabilisation'")
    ck = cfg.record.checkpoint
    if ck not in ("auto", "every", "log") and not (ck.startswith("every:") and ck[6:].isdigit() and int(ck[6:]) > 0):
        raise _err(s, "record.checkpoint", f"= {ck!r} is not allowed; choose auto, every, log or every:K with K > 0")


def load(source: str | Path, overrides: list[str] | None = None, seeds: str | None = None) -> Config:
    """Read a config from a TOML file or a shipped name (`linear-rank1`), apply `key=value` overrides."""
    path, text = _read(source)
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: is not valid TOML ({e})") from None
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.003")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        if "." in key:
            section, sub = key.split(".", 1)
            if section == "sweep":
                tables.setdefault("sweep", {})[sub] = value
                continue
            if section not in SECTIONS and section not in EXPERIMENT_TABLES:
                raise ConfigError(f"--set {key}: unknown table {section!r}; allowed: {', '.join([*SECTIONS, *EXPERIMENT_TABLES])}")
            tables.setdefault(section, {})[sub] = value
        else:
            tables[key] = value
    if seeds is not None:
        tables["seeds"] = seeds
    return from_dict(tables, source=str(path))


def shipped() -> list[str]:
    """Names of the configurations that ship with the package."""
    return sorted(p.name[:-5] for p in resources.files("loopdyn.configs").iterdir() if p.name.endswith(".toml"))


def _read(source: str | Path) -> tuple[str, str]:
    p = Path(source)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file (shipped configs: {', '.join(shipped())})")
        return str(p), p.read_text()
    name = str(source)
    res = resources.files("loopdyn.configs") / f"{name}.toml"
    if not res.is_file():
        raise ConfigError(f"{name}: neither a config file nor a shipped config; shipped: {', '.join(shipped())}")
    return f"{name}.toml (shipped)", res.read_text()


def from_toml_text(text: str, source: str = "<inline>") -> Config:
    return from_dict(tomllib.loads(text), source=source)
