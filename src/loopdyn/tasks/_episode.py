"""What a task hands the rollout: a batch of episodes."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Episode(NamedTuple):
    """A batch of episodes of a task.

    - `x0`: initial plant states `(batch, k)`;
    - `exo`: exogenous agent inputs `(T, batch, n_exo)` (a reference), or `None`;
    - `coef`: for a task whose episodes are superpositions of its basis episodes (tracking), each
      episode's coordinates `(batch, n_basis)` on them, else `None`.
    """

    x0: jax.Array
    exo: jax.Array | None = None
    coef: jax.Array | None = None

    @property
    def batch(self) -> int:
        return self.x0.shape[0]


def concat_episodes(*episodes: Episode) -> Episode:
    """One batch made of several (along the batch axis; `exo` along its axis 1)."""
    def cat(name, axis):
        parts = [getattr(e, name) for e in episodes]
        return None if parts[0] is None else jnp.concatenate(parts, axis=axis)

    return Episode(cat("x0", 0), cat("exo", 1), cat("coef", 0))


class WithoutProbes:
    """The task interface's per-epoch extras for a task that has none: no probe or basis episodes, no
    per-epoch metrics (a mixin of :class:`~loopdyn.tasks.Regulation` and :class:`~loopdyn.tasks.ImpulseTarget`)."""

    def probe_episode(self, dtype=jnp.float32):
        return None

    def basis_episode(self, dtype=jnp.float32):
        return None

    def probe_metrics(self, traj, probe) -> dict:
        return {}

    def epoch_metrics(self) -> dict:
        return {}

    def metric_coords(self) -> dict:
        return {}
