r"""The one reader of a store's runs: each run's own resolved configuration and built problem, its
parameters at a checkpoint, and its trained controller (:func:`load_agent`).

A store records its configuration (`attrs["config"]`) and its training phases (`attrs["phases"]`, each a
configuration that may sweep keys). A run's *resolved configuration* (:attr:`Run.cfg`) is its phase's
configuration with the run's own swept values applied — shape-changing ones (`agent.N`, `task.T`, …) and
the vmapped hyper-parameters of :data:`loopdyn.config.HYPERPARAMETERS` (`train.lr`, `train.clip`,
`task.beta`, `agent.g`, …) alike — no sweep, and `seeds = (seed,)`: training it alone trains that run.
Every analysis, theory run and figure reads runs here, so a swept value reaches all of them.

Runs are laid out as the trainer lays them out (:func:`loopdyn.training.make_groups`): phase by phase,
inside a phase compiled group by compiled group, seeds varying fastest.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from .. import config as cfg_mod
from ..agents import EXTRA, AgentParams, AgentSpec, Core, make_core
from ..errors import StoreError
from ..plants import Plant
from ..store import open_run
from ..system import rollout
from ..training import Problem, build_problem


@dataclass(frozen=True)
class Run:
    """One run of a store.

    `index`: its position along the store's `run` axis; `seed`; `phase`: its phase's label; `epochs`: the
    epochs of its phase; `cfg`: its resolved configuration (module docstring); `problem`: the parts built
    from it (:func:`loopdyn.training.build_problem`: plant, task, agent spec, training mode); `g`: its
    random-connectivity gain; `values`: its seed and swept values (dotted keys), as the config expands them.
    """

    index: int
    seed: int
    phase: str
    epochs: int
    cfg: cfg_mod.Config
    problem: Problem
    g: float
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def spec(self) -> AgentSpec:
        return self.problem.spec

    @property
    def plant(self) -> Plant:
        return self.problem.plant

    @property
    def task(self):
        return self.problem.task


def _source(ds, default: str | None = None) -> str:
    return str(ds.attrs.get("config_source", default or "<store>"))


def store_config(ds) -> cfg_mod.Config:
    """The configuration a store was trained from (with its sweep and experiment table), from `ds.attrs`."""
    return cfg_mod.from_dict(ds.attrs["config"], source=_source(ds))


def store_phases(ds, source: str | None = None) -> list[tuple[cfg_mod.Config, str]]:
    """The store's training phases, `(configuration, label)` in order, as :meth:`Experiment.phases` made them;
    `source` names the store in errors when it does not record the file its configuration came from."""
    source = _source(ds, source)
    return [(cfg_mod.from_dict(d, source=source, phase=i > 0), label) for i, (label, d) in enumerate(ds.attrs["phases"])]


def _key(cfg: cfg_mod.Config) -> str:
    return json.dumps(cfg_mod.to_dict(dataclasses.replace(cfg, seeds=(0,))), sort_keys=True, default=str)


def phase_runs(phases: list[tuple[cfg_mod.Config, str]]) -> list[Run]:
    """One :class:`Run` per run of `phases` (store order); problems are built once per distinct configuration."""
    out: list[Run] = []
    built: dict[str, Problem] = {}
    for cfg, label in phases:
        for group in cfg_mod.groups(cfg):
            for values in group.runs:
                seed = int(values["seed"])
                own = cfg_mod.replace(group.cfg, {k: v for k, v in values.items() if k != "seed"})
                own = dataclasses.replace(own, seeds=(seed,))
                key = _key(own)
                if key not in built:
                    built[key] = build_problem(own)
                out.append(Run(len(out), seed, label, own.epochs, own, built[key], float(own.hyper("g")), dict(values)))
    return out


def store_runs(ds) -> list[Run]:
    """One :class:`Run` per run of a store (from :func:`loopdyn.open_run`), in store order."""
    out = phase_runs(store_phases(ds))
    if len(out) != ds.sizes["run"]:
        raise StoreError(f"the store has {ds.sizes['run']} runs but its stored phases describe {len(out)}; the store is corrupt")
    return out


def checkpoint_params(ds, run: Run | int, sel: int | np.integer | slice | Sequence[int] | np.ndarray) -> AgentParams:
    """The run's parameters at the checkpoints `sel` (indices along `checkpoint`), float64, trimmed to its own
    sizes. `run`: a :class:`Run` of :func:`store_runs` or a run index. `sel` a scalar (Python or NumPy
    integer, 0-d array): each parameter as the agent holds it; a slice, list or array: every parameter with
    a leading axis over the selected checkpoints (parameters that were not trained repeated along it)."""
    if isinstance(run, (int, np.integer)):
        run = store_runs(ds)[int(run)]
    scalar = np.ndim(sel) == 0 and not isinstance(sel, slice)
    if scalar:
        sel = int(sel)
    k = len(np.arange(ds.sizes.get("checkpoint", 0))[sel]) if not scalar else None
    N = run.spec.N
    out = {}
    for name in run.spec.parameter_names:
        var = ds[name].isel(run=run.index)
        if "checkpoint" in var.dims:
            var = var.isel(checkpoint=sel)
        a = np.asarray(var.values, np.float64)
        if name == "G":  # a Gram matrix (the overlap representation) has no neuron axis
            out[name] = a if scalar or "checkpoint" in var.dims else np.broadcast_to(a, (k, *a.shape))
            continue
        a = a[..., :N, :N] if name in ("W", "J") else a[..., :N, :]
        if name in ("U", "V"):
            a = a[..., : run.spec.rank]
        if name.startswith(EXTRA):
            a = a[..., : run.spec.part.extra_parameters(run.spec)[name[len(EXTRA):]][0]]
        out[name] = a if scalar or "checkpoint" in var.dims else np.broadcast_to(a, (k, *a.shape))
    return AgentParams.of(out)


@dataclass(frozen=True)
class TrainedAgent:
    """A trained controller read from a store: `core` (a :class:`loopdyn.agents.Core`, ready for
    :func:`loopdyn.system.rollout` with `run.plant`), the `params` it was built from (float64) and the `run`
    (:class:`Run`: resolved configuration, plant, task, spec) at checkpoint `epoch`."""

    core: Core
    params: AgentParams
    run: Run
    epoch: int

    @property
    def spec(self) -> AgentSpec:
        return self.run.spec

    @property
    def plant(self) -> Plant:
        return self.run.plant

    @property
    def task(self):
        return self.run.task


def _dataset(store):
    return open_run(Path(store)) if isinstance(store, (str, Path)) else store


def load_agent(store, run: int, epoch: int | None = None) -> TrainedAgent:
    r"""The controller of run `run` of a store at checkpoint `epoch`, ready for :func:`loopdyn.system.rollout`.

    **Arguments:** `store`: a store's path, or the dataset of :func:`loopdyn.open_run`; `run`: index along the
    store's `run` axis; `epoch`: an epoch whose parameters are stored (`ds.checkpoint`; default the last
    one) — the parameters that produced `train_loss[epoch]` and `test_loss[epoch]`.

    **Returns:** a :class:`TrainedAgent` (`core`, `params`, `run`, `epoch`). Example, the test episodes:

    ```python
    agent = loopdyn.load_agent("stages.zarr", 0, 40)
    x0 = agent.task.test_set(jax.random.PRNGKey(agent.run.cfg.task.test_seed), jnp.float64)
    traj = loopdyn.system.rollout(agent.core, agent.plant, x0, agent.task.T, timing=agent.task.timing)
    ```

    **Raises:** `StoreError` for a run or epoch the store does not hold.
    """
    ds = _dataset(store)
    runs = store_runs(ds)
    if not 0 <= run < len(runs):
        raise StoreError(f"run {run} is not in the store; it has runs 0..{len(runs) - 1}")
    ckpts = [int(c) for c in ds.checkpoint.values]
    r = runs[run]
    mine = [c for c in ckpts if c < r.epochs]
    if epoch is None:
        epoch = mine[-1]
    if epoch not in mine:
        near = sorted(mine, key=lambda c: abs(c - epoch))[:3]
        raise StoreError(f"epoch {epoch} of run {run} is not a stored checkpoint; the nearest are {sorted(near)} "
                         f"(record.checkpoint sets which epochs are stored)")
    params = checkpoint_params(ds, r, ckpts.index(epoch))
    core = make_core(r.spec, AgentParams.of({k: jnp.asarray(v) for k, v in params.present().items()}), r.g)
    return TrainedAgent(core, params, r, int(epoch))


def closed_loop_trajectory(ds, run: int, epoch: int, steps: int, x0=(1.0, -1.0)) -> np.ndarray:
    """States `(steps, k)` of the model of `run` at `epoch` from `x0`, $h_0 = 0$: a float64
    :func:`loopdyn.system.rollout` of its parameters (the trajectory $P^t s_0$, spec §4.1)."""
    agent = load_agent(ds, run, epoch)
    traj = rollout(agent.core, agent.plant, jnp.asarray([x0], jnp.float64), steps, emit=("x",))
    return np.asarray(traj.x[:, 0])
