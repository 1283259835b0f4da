"""The configuration schema: one frozen dataclass per table, each field with its documentation and check.

A configuration has one table per model part (`plant`, `task`, `agent`: each a `kind` and that kind's own
parameters, validated by the part, :mod:`loopdyn.config._parts`), a list `[[loss]]` of further loss terms,
one table per concern (`train`, `teacher`, `start`, `record`), top-level keys (`name`, `experiment`, `seeds`, `epochs`, `dtype`), an
optional `[sweep]` table mapping dotted keys to lists, and the table of its experiment (e.g. `[stages]`),
whose keys the experiment declares (its `table`, a frozen dataclass of :func:`param` fields).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

from ._parts import parameters
from ._parts import param as _f

POSITIVE = ("> 0", lambda v: v > 0)
NON_NEGATIVE = (">= 0", lambda v: v >= 0)
UNIT_INTERVAL = ("in (0, 1]", lambda v: 0 < v <= 1)

TRAINING_MODES = ("closed_loop", "open_loop_noise", "open_loop_teacher", "open_loop_gain", "open_loop_target")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (spec §3)."""

    mode: str = _f("closed_loop", doc="training mode", choices=TRAINING_MODES)
    optimizer: str = _f("", doc="optimiser: a name (sgd, adam, or one a package announces) or 'package.module:Class' "
                               "(a loopdyn.optim.Optimizer); '' = the default, sgd")
    lr: float = _f(0.01, doc="learning rate", check=POSITIVE)
    clip: float = _f(1.0, doc="global-norm gradient clip; 0 = off", check=NON_NEGATIVE)
    clip_eps: float = _f(0.0, doc="clip as g min(1, clip / (|g| + clip_eps)); 1e-6 = the authors' PyTorch "
                                  "clip_grad_norm_, 0 = optax.clip_by_global_norm", check=NON_NEGATIVE)
    skip_first_update: bool = _f(False, doc="epoch 0 only evaluates (the authors' nonlinear and tracking loops)")
    diverge_above: float = _f(1e25, doc="a run whose training loss exceeds this (or is not finite) has diverged",
                              check=POSITIVE)


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher of an open-loop student (spec §3.3)."""

    store: str = _f("", doc="store holding the teacher runs ('self': earlier phase of the same experiment)")
    run: int = _f(-1, doc="teacher run index; -1 = the run with the student's seed")
    epoch: int = _f(-1, doc="checkpoint epoch of the teacher; -1 = the last one")
    K: tuple[tuple[float, ...], ...] = _f((), doc="static gain u = K x for mode = open_loop_gain (rows: controls)")
    phase: int = _f(0, doc="with store = 'self': the earlier phase of this experiment holding the teacher runs",
                    check=NON_NEGATIVE)


@dataclass(frozen=True)
class StartConfig:
    """Start from stored parameters instead of a fresh initialisation (continuations)."""

    store: str = _f("", doc="store to start from ('' = fresh init, 'self' = phase 0 of this experiment)")
    run: int = _f(-1, doc="run index to start from; -1 = the run with the same seed")
    epoch: str = _f("last", doc="checkpoint epoch: an integer, 'last', or 'stabilisation' (per run)")
    phase: int = _f(0, doc="with store = 'self': the earlier phase of this experiment to start from",
                    check=NON_NEGATIVE)


@dataclass(frozen=True)
class RecordConfig:
    """What the store keeps and how often the host writes."""

    chunk: int = _f(50, doc="epochs per compiled chunk (one store write each)", check=POSITIVE)
    checkpoint: str = _f("auto", doc="parameter checkpoints: auto, every, log, or every:K")
    n_log: int = _f(100, doc="number of log-spaced checkpoints for checkpoint = log", check=POSITIVE)
    gain_window: int = _f(4, doc="the effective gains of epoch e are fitted on the closed-loop trajectories of "
                                 "epochs e-w+1..e (w x task.batch initial states); 1 = that epoch's alone", check=POSITIVE)


def _knots_ok(knots) -> bool:
    return (all(len(k) == 2 and k[0] >= 0 and float(k[0]).is_integer() for k in knots)
            and all(b[0] > a[0] for a, b in zip(knots, knots[1:])))


KNOTS = ("a list of [epoch, value] pairs, epochs integers >= 0 and strictly increasing", _knots_ok)
RAMPS = ("ramp", "steps")


@dataclass(frozen=True)
class ScheduleConfig:
    """Per-epoch schedules (curricula) of the episode length, control penalty, learning rate and exploration
    noise: knots `[[epoch, value], ...]`; before the first knot the first value holds, after the last the last
    one; between knots the value ramps linearly (`ramp`) or holds until the next knot (`steps`).
    `[]` = no schedule (the configured value every epoch). See docs/learning-rules.md."""

    T: tuple[tuple[float, ...], ...] = _f((), doc="episode length T_e per epoch (integers <= task.T; the loss masks "
                                                  "steps t >= T_e)", check=KNOTS)
    T_ramp: str = _f("steps", doc="between T knots: a linear ramp rounded down ('ramp') or steps ('steps')",
                     choices=RAMPS)
    beta: tuple[tuple[float, ...], ...] = _f((), doc="control penalty beta per epoch (replaces task.beta)", check=KNOTS)
    beta_ramp: str = _f("ramp", doc="between beta knots: a linear ramp ('ramp') or steps ('steps')", choices=RAMPS)
    lr: tuple[tuple[float, ...], ...] = _f((), doc="learning rate per epoch (replaces train.lr)", check=KNOTS)
    lr_ramp: str = _f("ramp", doc="between lr knots: a linear ramp ('ramp') or steps ('steps')", choices=RAMPS)
    sigma: tuple[tuple[float, ...], ...] = _f((), doc="exploration noise of the gradient rule per epoch (replaces "
                                                      "gradient.sigma; annealing)", check=KNOTS)
    sigma_ramp: str = _f("ramp", doc="between sigma knots: a linear ramp ('ramp') or steps ('steps')", choices=RAMPS)

    @property
    def scheduled(self) -> tuple[str, ...]:
        """The names of the quantities that have a schedule."""
        return tuple(k for k in ("T", "beta", "lr", "sigma") if getattr(self, k))


SECTIONS: dict[str, type] = {
    "train": TrainConfig,
    "teacher": TeacherConfig,
    "start": StartConfig,
    "record": RecordConfig,
    "schedule": ScheduleConfig,
}

PART_SECTIONS = ("plant", "task", "agent", "gradient")
"""The tables that each describe one part (`kind` and its own parameters, :mod:`loopdyn.config._parts`);
`[[loss]]` is a list of further loss terms. `[gradient]` is the learning rule (default `bptt`)."""

HYPERPARAMETERS: dict[str, str] = {
    "lr": "train.lr", "clip": "train.clip", "beta": "task.beta", "over": "agent.over", "g": "agent.g",
    "noise": "plant.noise",
}
"""Per-run scalars vmapped inside one compiled ensemble (short name -> dotted config key). Any other swept
key changes shapes or control flow and splits the runs into separately compiled groups. A part without
such a parameter runs with its neutral value (:data:`HYPER_DEFAULTS`)."""

HYPER_DEFAULTS: dict[str, float] = {"beta": 0.0, "over": math.nan, "g": 0.0, "noise": 0.0}

TOP_KEYS = ("name", "experiment", "description", "epochs", "seeds", "dtype", "sweep", "loss")


@dataclass(frozen=True)
class Config:
    """A whole experiment: the tables above, seeds x sweep = the ensemble (:mod:`loopdyn.config`)."""

    name: str = "experiment"
    experiment: str = ""  # the experiment's name (from_dict fills in its family's default)
    description: str = ""
    epochs: int = 1000
    seeds: tuple[int, ...] | range = (0,)  # "A..B" stays a range: sized, never expanded before the checks
    dtype: str = "float32"
    plant: Any = None  # a loopdyn.plants.Plant
    task: Any = None  # a loopdyn.tasks.Task
    agent: Any = None  # a loopdyn.agents.Agent
    loss: tuple[Any, ...] = ()  # further loss terms, loopdyn.tasks.LossTerm
    gradient: Any = None  # the learning rule, loopdyn.training.GradientRule (None: bptt)
    train: TrainConfig = TrainConfig()
    teacher: TeacherConfig = TeacherConfig()
    start: StartConfig = StartConfig()
    record: RecordConfig = RecordConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()  # the experiment's own table, resolved (defaults applied, lists as tuples)
    source: str = "<inline>"

    def get(self, dotted: str, *default: Any) -> Any:
        """The value of a dotted key, e.g. `cfg.get("train.lr")`; `default` where the part has no such key."""
        section, key = dotted.split(".")
        return getattr(getattr(self, section), key, *default)

    def hyper(self, name: str) -> Any:
        """The value of the vmapped hyper-parameter `name` (:data:`HYPERPARAMETERS`), its neutral value
        (:data:`HYPER_DEFAULTS`) where the configured part has no such parameter."""
        return self.get(HYPERPARAMETERS[name], *([HYPER_DEFAULTS[name]] if name in HYPER_DEFAULTS else []))

    @property
    def table(self) -> dict[str, Any]:
        """The experiment's table (e.g. `[stages]`) with its defaults applied: key -> value, each checked by its
        field of the experiment's typed table (`Experiment.table`); lists as tuples."""
        return dict(self.settings)


def _static_combinations(cfg: Config) -> list[dict[str, Any]]:
    static = [(k, v) for k, v in cfg.sweep]
    keys = [k for k, _ in static]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in static])] if static else [{}]


def _field_name(part, key: str) -> str:
    return parameters(type(part))[key].name


def replace(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy with dotted keys replaced (not validated: use :func:`with_values` for user input)."""
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, v in values.items():
        s, k = dotted.split(".")
        by_section.setdefault(s, {})[k] = v
    new = {}
    for s, kv in by_section.items():
        obj = getattr(cfg, s)
        if s in PART_SECTIONS:
            kv = {_field_name(obj, k): v for k, v in kv.items()}
        new[s] = dataclasses.replace(obj, **kv)
    return dataclasses.replace(cfg, **new)
