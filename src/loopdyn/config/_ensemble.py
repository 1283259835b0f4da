"""Expanding a configuration into its ensemble: runs (seeds x sweep) and compiled groups, and the
resources the ensemble will need."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

from ._parts import family
from ._schema import HYPERPARAMETERS, Config, replace

MEMORY_FRACTION = 0.8
"""Of the machine's physical memory, what a run may plan to use."""


@dataclass(frozen=True)
class RunGroup:
    """Runs compiled together: one static configuration (`cfg`, static sweep values applied, no sweep),
    per-run seeds and vmapped hyper-parameters (`hyper[name]`, names of :data:`HYPERPARAMETERS`)."""

    cfg: Config
    runs: tuple[dict[str, Any], ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(int(r["seed"]) for r in self.runs)

    @property
    def hyper(self) -> dict[str, tuple[float, ...]]:
        return {name: tuple(float(r.get(key, self.cfg.hyper(name))) for r in self.runs)
                for name, key in HYPERPARAMETERS.items()}


def runs(cfg: Config) -> list[dict[str, Any]]:
    """One dict per run: `seed` plus the swept dotted keys, seeds varying fastest."""
    keys = [k for k, _ in cfg.sweep]
    combos = list(itertools.product(*[v for _, v in cfg.sweep])) or [()]
    return [dict(zip(keys, combo), seed=seed) for combo in combos for seed in cfg.seeds]


def groups(cfg: Config) -> list[RunGroup]:
    """The ensemble split into compiled groups (runs that differ only in vmapped scalars share one),
    in first-appearance order; concatenating their runs gives the store's run order."""
    order: dict[tuple, list[dict]] = {}
    for run in runs(cfg):
        key = tuple(sorted((k, v) for k, v in run.items() if k not in HYPERPARAMETERS.values() and k != "seed"))
        order.setdefault(key, []).append(run)
    out = []
    for key, members in order.items():
        out.append(RunGroup(dataclasses.replace(replace(cfg, dict(key)), sweep=()), tuple(members)))
    return out


def _group_combinations(cfg: Config) -> list[dict[str, Any]]:
    """The values of the swept keys that split runs into compiled groups (not the vmapped hyper-parameters)."""
    static = [(k, v) for k, v in cfg.sweep if k not in HYPERPARAMETERS.values()]
    return [dict(zip([k for k, _ in static], combo)) for combo in itertools.product(*[v for _, v in static])]


def n_runs(cfg: Config) -> int:
    return len(cfg.seeds) * math.prod(len(v) for _, v in cfg.sweep)


@dataclass(frozen=True)
class Resources:
    """Estimated peak memory of the training process and disk of the store, in bytes, with the parts."""

    memory: float
    disk: float
    parts: dict[str, float]


def estimate_resources(cfg: Config) -> Resources:
    """A conservative estimate of what training `cfg` needs (per phase), before anything is allocated.

    Memory: parameters and optimiser state of every run, the per-epoch records of one chunk (on the
    device and their host copies), and the activations that back-propagation keeps (T x batch x hidden
    per run, a few times). Disk: the store's per-epoch arrays and its parameter checkpoints.
    """
    R = n_runs(cfg)
    size = 8 if cfg.dtype == "float64" else 4
    opt = family("optimizer").resolve(cfg.train.optimizer).state_size
    chunk = min(cfg.record.chunk, cfg.epochs)
    parts = {"parameters and optimiser state": 0.0, "records of one chunk": 0.0, "activations for back-propagation": 0.0}
    disk = 0.0
    combos = _group_combinations(cfg)
    for values in combos:  # each compiled group's share of the runs, sized by its own parts
        c = replace(cfg, values) if values else cfg
        share = R / len(combos)
        plant, agent = c.plant, c.agent
        k, m = plant.n_states, plant.n_controls
        hidden, every, trained = agent.footprint(plant.n_observed + getattr(c.task.bind(plant, 1.0), "n_exo", 0), m)
        T, batch = c.task.T, getattr(c.task, "batch", 1)
        n_eig = k + hidden if agent.linear and plant.linear else 0
        per_epoch = 2 * size + k * m * 8 + n_eig * 24 + 4 * 8 + (k * k + k * m) * 8
        parts["parameters and optimiser state"] += share * (every + trained * opt) * size * 2
        parts["records of one chunk"] += share * chunk * (trained * size + per_epoch) * 3
        parts["activations for back-propagation"] += share * T * batch * (hidden + k) * size * 4
        disk += share * (cfg.epochs * per_epoch + _checkpoint_count(c) * trained * size + every * size)
    return Resources(sum(parts.values()), disk, parts)


def _checkpoint_count(cfg: Config) -> int:
    ck, E = cfg.record.checkpoint, cfg.epochs
    if ck == "auto":
        ck = "every" if cfg.agent.dense_checkpoints else "log"
    if ck == "every":
        return E
    if ck == "log":
        return min(E, cfg.record.n_log + 2)
    return E // int(ck.split(":")[1]) + 2


def checkpoint_epochs(cfg: Config):
    """Epochs whose parameters are stored (`record.checkpoint`): `every` epoch, `log`-spaced (`record.n_log`
    points, first and last included), `every:K`, or `auto` (every epoch when every group's agent is small —
    :attr:`loopdyn.agents.Agent.dense_checkpoints`, e.g. an RNN of N <= 100 or in the overlap representation —
    else log)."""
    import numpy as np

    E, ck = cfg.epochs, cfg.record.checkpoint
    if ck == "auto":
        dense = all((replace(cfg, v) if v else cfg).agent.dense_checkpoints for v in _group_combinations(cfg))
        ck = "every" if dense else "log"
    if ck == "every":
        return np.arange(E)
    if ck == "log":
        pts = np.unique(np.round(np.logspace(0, np.log10(max(E - 1, 1)), cfg.record.n_log)).astype(int))
        return np.unique(np.concatenate([[0], pts, [E - 1]]))
    k = int(ck.split(":")[1])
    return np.unique(np.concatenate([np.arange(0, E, k), [E - 1]]))
