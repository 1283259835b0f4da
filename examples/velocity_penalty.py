r"""A user's loss term: a penalty on the velocity (loopdyn `LossTerm`).

$$\mathcal L_v = w\,\operatorname{mean}_{t,b}\,\dot q_{t,b}^2,$$

the second state coordinate of the double integrator (or of any plant whose velocity is coordinate
`index`). It is a quadratic form of the states, so it declares `quadratic = True` and linear loops keep
their second-moment batch compression (exact for quadratic forms).

    [[loss]]
    kind = "examples.velocity_penalty:VelocityPenalty"
    weight = 0.5
"""

import jax.numpy as jnp

from loopdyn.config import InvalidParameter, param
from loopdyn.tasks import LossTerm


class VelocityPenalty(LossTerm):
    """`weight * mean_{t,b} x[t, b, index]^2`."""

    index: int = param(1, doc="the state coordinate that is the velocity (0-based)")

    quadratic = True

    def check(self, cfg) -> None:
        if not 0 <= self.index < cfg.plant.n_states:
            raise InvalidParameter("loss.index", f"= {self.index} is not a state coordinate of the plant "
                                   f"(0..{cfg.plant.n_states - 1})")

    def value(self, x, u):
        return jnp.mean(x[..., self.index] ** 2)
