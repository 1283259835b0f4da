r"""The :class:`Core` the rollout steps, and the cores written in an agent's overlaps or gains
(:func:`overlap_core`, :func:`effective_core`, :func:`gain_core`); the agents' own cores are built by
:func:`loopdyn.agents.make_core` (`_rnn.py`) and :func:`loopdyn.agents.gram_core` (`_overlaps.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Core:
    """One agent, ready to step a batch: `update(h (B, d), input (B, n_in)) -> h'`, `readout(h) -> u (B, n_out)`.

    `basis` (`(N, d)`, or `None` when `h` is the neurons' state) maps the core's coordinates to neurons:
    `h_neurons = h @ basis.T`. `dtype`: the dtype the core computes in, when it is not that of its input
    (the rollout casts its inputs to it).
    """

    hidden_dim: int
    update: Callable
    readout: Callable
    basis: jax.Array | None = None
    dtype: Any = None


def overlap_core(zq, vq, alpha=1.0) -> Core:
    r"""A linear low-rank agent written in its overlaps: coordinates $\kappa$ on $[m\;U]$ ($h = m\kappa_m + U\kappa_u$).

    $\kappa' = (1-\alpha)\kappa + \alpha\,(y,\; V^\top[m\;U]\,\kappa)$, $u = z^\top[m\;U]\,\kappa$.

    **Arguments:** `zq` `(n_out, n_in + r)` $= z^\top[m\;U]$; `vq` `(r, n_in + r)` $= V^\top[m\;U]$.
    """
    zq, vq = jnp.asarray(zq), jnp.asarray(vq)

    def update(k, y):
        return (1 - alpha) * k + alpha * jnp.concatenate([y, k @ vq.T], axis=-1)

    return Core(zq.shape[-1], update, lambda k: k @ zq.T)


def effective_core(sigma) -> Core:
    r"""The 4-D effective model of a rank-1 agent (spec §2.3, §4.2): `sigma` =
    $(\sigma_{zm}, \sigma_{zu}, \sigma_{vm}, \sigma_{vu})$, state $(\kappa_m, \kappa_u)$."""
    return overlap_core(jnp.stack([sigma[0], sigma[1]])[None], jnp.stack([sigma[2], sigma[3]])[None])


def gain_core(K) -> Core:
    """A static state feedback `u = K x` (`K (n_out, k)`) as a core whose input is the plant state."""
    K = jnp.asarray(K)
    return Core(K.shape[-1], lambda h, x: x, lambda h: h @ K.T)
