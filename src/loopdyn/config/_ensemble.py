"""Expanding a configuration into its ensemble: runs (seeds x sweep) and compiled groups, and the
resources the ensemble will need."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

from ._load import plant_sizes, replace
from ._schema import HYPERPARAMETERS, Config

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
        return {name: tuple(float(r.get(key, self.cfg.get(key))) for r in self.runs)
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
    values = dict(cfg.sweep)
    N = max([cfg.agent.N, *values.get("agent.N", ())])
    rank = max([cfg.agent.rank, *values.get("agent.rank", ())])
    T = max([cfg.task.T, *values.get("task.T", ())])
    batch = max([cfg.task.batch, *values.get("task.batch", ())])
    k, m, c = plant_sizes(cfg.plant)
    size = 8 if cfg.dtype == "float64" else 4
    shapes = {"m": N * c, "z": N * m, "W": N * N, "U": N * rank, "V": N * rank}
    every = sum(shapes[p] for p in (("m", "z", "U", "V") if rank else ("m", "z", "W"))) + (N * N if rank and cfg.agent.g else 0)
    trained = sum(shapes[p] for p in cfg.agent.trainable)
    if cfg.agent.representation == "overlaps":  # one Gram matrix of m, z, U, V
        every = trained = (c + m + 2 * rank) ** 2
    linear = cfg.agent.activation == "linear"
    hidden = (c + rank) if (linear and rank and not cfg.agent.g and c + rank < N) else N
    n_eig = k + hidden if linear else 0
    chunk = min(cfg.record.chunk, cfg.epochs)
    per_epoch = 2 * size + k * m * 8 + n_eig * 24 + 4 * 8 + (k * k + k * m) * 8
    opt = 2 if cfg.train.optimizer == "adam" else 0
    parts = {
        "parameters and optimiser state": R * (every + trained * opt) * size * 2,
        "records of one chunk": R * chunk * (trained * size + per_epoch) * 3,
        "activations for back-propagation": R * T * batch * (hidden + k) * size * 4,
    }
    n_ckpt = _checkpoint_count(cfg, N)
    disk = R * cfg.epochs * per_epoch + R * n_ckpt * trained * size + R * every * size
    return Resources(sum(parts.values()), disk, parts)


def _checkpoint_count(cfg: Config, n_max: int) -> int:
    ck, E = cfg.record.checkpoint, cfg.epochs
    if ck == "auto":
        ck = "every" if n_max <= 100 or cfg.agent.representation == "overlaps" else "log"
    if ck == "every":
        return E
    if ck == "log":
        return min(E, cfg.record.n_log + 2)
    return E // int(ck.split(":")[1]) + 2


def checkpoint_epochs(cfg: Config):
    """Epochs whose parameters are stored (`record.checkpoint`): `every` epoch, `log`-spaced (`record.n_log`
    points, first and last included), `every:K`, or `auto` (every epoch for N <= 100 or the overlap
    representation, else log)."""
    import numpy as np

    E, ck = cfg.epochs, cfg.record.checkpoint
    n_max = max([cfg.agent.N] + [v for k, vals in cfg.sweep if k == "agent.N" for v in vals])
    if ck == "auto":  # a Gram matrix is small whatever N
        ck = "every" if n_max <= 100 or cfg.agent.representation == "overlaps" else "log"
    if ck == "every":
        return np.arange(E)
    if ck == "log":
        pts = np.unique(np.round(np.logspace(0, np.log10(max(E - 1, 1)), cfg.record.n_log)).astype(int))
        return np.unique(np.concatenate([[0], pts, [E - 1]]))
    k = int(ck.split(":")[1])
    return np.unique(np.concatenate([np.arange(0, E, k), [E - 1]]))
