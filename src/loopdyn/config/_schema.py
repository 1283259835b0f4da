"""The configuration schema: one frozen dataclass per table, each field with its documentation and check.

A configuration has one table per model part (`plant`, `task`, `agent`) and per concern (`train`,
`teacher`, `start`, `record`), top-level keys (`name`, `experiment`, `seeds`, `epochs`, `dtype`), an
optional `[sweep]` table mapping dotted keys to lists, and the table of its experiment (e.g. `[stages]`),
whose keys the experiment declares (:func:`loopdyn.config.register_experiment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any



def _f(default, *, doc: str, check=None, choices=None):
    return field(default=default, metadata={"doc": doc, "check": check, "choices": choices})


POSITIVE = ("> 0", lambda v: v > 0)
NON_NEGATIVE = (">= 0", lambda v: v >= 0)
UNIT_INTERVAL = ("in (0, 1]", lambda v: 0 < v <= 1)

PLANT_KINDS = ("double_integrator", "integrator", "point_mass_2d")
TRAINING_MODES = ("closed_loop", "open_loop_noise", "open_loop_teacher", "open_loop_gain", "open_loop_target")
REPRESENTATIONS = ("vectors", "overlaps")
PARAMETER_NAMES = ("m", "W", "U", "V", "z")


@dataclass(frozen=True)
class PlantConfig:
    """Linear plant `x' = A x + B u + w`, `y = C x` (Ger & Barak 2025; spec §1.1-1.2)."""

    kind: str = _f("double_integrator", doc="plant family", choices=PLANT_KINDS)
    order: int = _f(2, doc="integrator order k", check=POSITIVE)
    dt: float = _f(1.0, doc="plant time step", check=POSITIVE)
    n_controls: int = _f(1, doc="number of control inputs m", check=POSITIVE)
    n_observed: int = _f(1, doc="number of observed state coordinates c", check=POSITIVE)
    noise: float = _f(0.0, doc="process-noise std (scaled by sqrt(dt))", check=NON_NEGATIVE)
    clamp: float = _f(0.0, doc="clip the state to [-clamp, clamp] after each step; 0 = off", check=NON_NEGATIVE)


TASK_KINDS = ("regulation", "tracking", "impulse")


@dataclass(frozen=True)
class TaskConfig:
    """Regulation to the origin from random initial states (spec §1.4, §3.1-3.2), tracking of a sum of
    sinusoids with the 2-D point mass (spec §1.3, §3.4; episode T steps of plant.dt, duration T dt), or the
    open-loop impulse response of Ger & Barak 2026 (spec §7.1: kind = 'impulse', mode = 'open_loop_target')."""

    kind: str = _f("regulation", doc="task family", choices=TASK_KINDS)
    T: int = _f(50, doc="episode length (steps in the loss)", check=POSITIVE)
    batch: int = _f(100, doc="initial states per epoch", check=POSITIVE)
    x0_range: float = _f(2.0, doc="initial states are U(-a, a) per state coordinate", check=POSITIVE)
    loss: str = _f("mean", doc="loss convention", choices=("mean", "sum"))
    beta: float = _f(0.0, doc="control penalty (beta for 'mean', reg_U for 'sum')", check=NON_NEGATIVE)
    test_batch: int = _f(100, doc="fixed test initial states", check=POSITIVE)
    test_loss: str = _f("mean_xv", doc="closed-loop test metric", choices=("mean_xv", "sum_t"))
    test_seed: int = _f(12345, doc="seed of the fixed test set (tracking: of the probe phases)", check=NON_NEGATIVE)
    freqs_x: tuple[float, ...] = _f((0.1, 0.3), doc="tracking: frequencies (Hz) of the x reference")
    freqs_y: tuple[float, ...] = _f((0.2, 0.4), doc="tracking: frequencies (Hz) of the y reference")
    amps_x: tuple[float, ...] = _f((2.31, 2.31), doc="tracking: amplitudes of the x components (one per frequency)")
    amps_y: tuple[float, ...] = _f((2.31, 2.31), doc="tracking: amplitudes of the y components (one per frequency)")
    ramp: float = _f(1.0, doc="tracking: the reference is ramped in linearly over this many seconds; 0 = off",
                     check=NON_NEGATIVE)
    objective: str = _f("sampled", doc="training loss: on a fresh sampled batch ('sampled') or its expectation over "
                                       "the initial states in closed form ('expected', linear noise-free loops)",
                        choices=("sampled", "expected"))
    x0_distribution: str = _f("uniform", doc="initial states U(-a, a) ('uniform') or N(0, a^2) ('gaussian') per "
                                             "coordinate, a = x0_range", choices=("uniform", "gaussian"))
    decay: float = _f(0.2, doc="impulse task: target exp(-decay t), t in units of tau (dt = agent.alpha)",
                      check=NON_NEGATIVE)
    target_noise: float = _f(0.0, doc="impulse task: std of Gaussian noise added to the target at every step, fresh "
                                      "each epoch", check=NON_NEGATIVE)


@dataclass(frozen=True)
class AgentConfig:
    """RNN controller `h' = (1-alpha) h + alpha phi(W h + m y)`, `u = z^T h` (spec §2)."""

    N: int = _f(100, doc="number of hidden units", check=POSITIVE)
    rank: int = _f(1, doc="rank of W = U V^T + g J; 0 = full rank", check=NON_NEGATIVE)
    activation: str = _f("linear", doc="nonlinearity phi", choices=("linear", "tanh", "relu"))
    alpha: float = _f(1.0, doc="leak dt/tau; 1 = discrete RNN", check=UNIT_INTERVAL)
    g: float = _f(0.0, doc="gain of the random connectivity J", check=NON_NEGATIVE)
    init: str = _f("lowrank", doc="initialisation scheme (lowrank: spec §2.2, rnn: spec §2.1, uniform: spec §2.1 "
                                  "tracking, unit: unit-norm vectors, spec §7.1)",
                   choices=("lowrank", "rnn", "uniform", "unit"))
    over: float = _f(math.nan, doc="set sigma_zm = z.m exactly at init (nan = off)")
    trainable: tuple[str, ...] = _f(("z", "U", "V"), doc="trained parameters, a non-empty subset of m, W, U, V, z")
    representation: str = _f("vectors", doc="train the N-dimensional vectors ('vectors') or, for a linear low-rank "
                                            "agent with g = 0 and SGD, exactly the Gram matrix of m, z, U, V "
                                            "('overlaps', spec §7; cost independent of N)", choices=REPRESENTATIONS)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (spec §3)."""

    mode: str = _f("closed_loop", doc="training mode", choices=TRAINING_MODES)
    optimizer: str = _f("sgd", doc="optimiser", choices=("sgd", "adam"))
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


SECTIONS: dict[str, type] = {
    "plant": PlantConfig,
    "task": TaskConfig,
    "agent": AgentConfig,
    "train": TrainConfig,
    "teacher": TeacherConfig,
    "start": StartConfig,
    "record": RecordConfig,
}

HYPERPARAMETERS: dict[str, str] = {
    "lr": "train.lr", "clip": "train.clip", "beta": "task.beta", "over": "agent.over", "g": "agent.g",
    "noise": "plant.noise",
}
"""Per-run scalars vmapped inside one compiled ensemble (short name -> dotted config key). Any other swept
key changes shapes or control flow and splits the runs into separately compiled groups."""

TOP_KEYS = ("name", "experiment", "description", "epochs", "seeds", "dtype", "sweep")


@dataclass(frozen=True)
class Config:
    """A whole experiment: the tables above, seeds x sweep = the ensemble (:mod:`loopdyn.config`)."""

    name: str = "experiment"
    experiment: str = "ensemble"
    description: str = ""
    epochs: int = 1000
    seeds: tuple[int, ...] | range = (0,)  # "A..B" stays a range: sized, never expanded before the checks
    dtype: str = "float32"
    plant: PlantConfig = PlantConfig()
    task: TaskConfig = TaskConfig()
    agent: AgentConfig = AgentConfig()
    train: TrainConfig = TrainConfig()
    teacher: TeacherConfig = TeacherConfig()
    start: StartConfig = StartConfig()
    record: RecordConfig = RecordConfig()
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()  # the experiment's own table, resolved (defaults applied)
    source: str = "<inline>"

    def get(self, dotted: str) -> Any:
        """The value of a dotted key, e.g. `cfg.get("train.lr")`."""
        section, key = dotted.split(".")
        return getattr(getattr(self, section), key)

    @property
    def table(self) -> dict[str, Any]:
        """The experiment's table (e.g. `[stages]`) with its defaults applied."""
        return dict(self.settings)
