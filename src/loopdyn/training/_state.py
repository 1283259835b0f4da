"""Typed per-run state of training: hyper-parameters, state, constants and the per-epoch record.

Every container is a `NamedTuple` (a pytree); in an ensemble each leaf carries a leading run axis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from ..agents import AgentParams
from ..config import HYPERPARAMETERS


class HyperParams(NamedTuple):
    """Per-run scalars vmapped inside one compiled ensemble (config keys in :data:`loopdyn.config.HYPERPARAMETERS`).

    `lr` learning rate, `clip` global-norm clip (0 = off), `beta` control penalty, `over` initial
    sigma_zm (NaN = off), `g` random-connectivity gain, `noise` process-noise std.
    """

    lr: jax.Array
    clip: jax.Array
    beta: jax.Array
    over: jax.Array
    g: jax.Array
    noise: jax.Array


assert HyperParams._fields == tuple(HYPERPARAMETERS), "HyperParams must list loopdyn.config.HYPERPARAMETERS in order"


class RunState(NamedTuple):
    """What changes from epoch to epoch: the trained parameters (`AgentParams`, frozen fields `None`),
    the optimiser state (hyper-parameters injected, `optax.inject_hyperparams`), `diverged`, the
    epoch at which the run diverged (-1: never), and `moments`, the float64 gain moments
    `(sum x x^T (w-1, k, k), sum x u^T (w-1, k, m))` of the previous `w - 1` epochs (`record.gain_window`)."""

    params: AgentParams
    opt: Any
    diverged: jax.Array
    moments: Any = None
    rule: Any = None  # the learning rule's state (e.g. the model's replay statistics), None for bptt


class RunConstants(NamedTuple):
    """What stays fixed: the frozen parameters, the hyper-parameters, the run's PRNG key (epoch `e`
    draws with `fold_in(key, e)`), the teacher of an open-loop student (`AgentParams`, or a gain
    matrix `K (n_out, k)`, or `None`), and what the training mode computes once from these for all
    epochs (`prepared`, e.g. the teacher's drive of the basis episodes; `None` until prepared)."""

    frozen: AgentParams
    hyper: HyperParams
    key: jax.Array
    teacher: Any = None
    prepared: Any = None


class EpochRecord(NamedTuple):
    """What one epoch records (before any host-side summary).

    - `train_loss`, `test_loss`: scalars (NaN once the run has diverged);
    - `gram` `(k, k)`, `cross` `(k, m)`: float64 moments of the closed-loop trajectories of the gain window
      (`None` for a task without gains);
    - `params`: the trained parameters that produced the losses (NaN once diverged);
    - `metrics`: the task's further per-epoch records, `name -> array` (`task.epoch_metrics()`; e.g. the
      tracking task's `probe_loss (n_frequencies,)`).
    """

    train_loss: jax.Array
    test_loss: jax.Array
    gram: jax.Array | None
    cross: jax.Array | None
    params: AgentParams
    metrics: dict = {}
    extra: dict = {}  # the learning rule's and the schedules' per-epoch records (Problem.records)
