r"""Loss terms loopdyn ships (`[[loss]]`, :class:`loopdyn.tasks.LossTerm`): each a quadratic penalty.

- `state`: $\operatorname{mean}_{t,b} \sum_i w_i\, x_{t,b,i}^2$ over chosen state coordinates;
- `control`: $\operatorname{mean}_b \sum_t \|u_{t,b}\|^2$ (as the `mean` loss's $\beta$ term).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..config import InvalidParameter, param
from ._base import LossTerm


class StatePenalty(LossTerm):
    """`mean_{t,b} sum_i x_{t,b,i}^2` over the state coordinates `coordinates` (0-based; empty = all)."""

    coordinates: tuple[int, ...] = param((), doc="state coordinates penalised (0-based); empty = all")

    quadratic = True

    def check(self, cfg) -> None:
        k = cfg.plant.n_states
        bad = [i for i in self.coordinates if not 0 <= i < k]
        if bad:
            raise InvalidParameter("loss.coordinates", f"= {list(self.coordinates)!r} contains {bad[0]}; the plant has "
                                   f"{k} state coordinates (0..{k - 1})")

    def value(self, x, u):
        x = x if not self.coordinates else x[..., list(self.coordinates)]
        return jnp.sum(jnp.mean(x**2, axis=(0, 1)))


class ControlPenalty(LossTerm):
    """`mean_b sum_t ||u_{t,b}||^2`."""

    quadratic = True

    def value(self, x, u):
        return jnp.sum(u**2) / u.shape[1]
