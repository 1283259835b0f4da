r"""A user's nonlinear plant: a damped pendulum driven by a torque (loopdyn `Plant`).

$$\ddot\theta = -\frac{g}{l}\sin\theta - d\,\dot\theta + \frac{u}{m l^2}$$

about the bottom ($\theta = 0$ hanging down); with `upright = true` the angle is measured from the top,
$\ddot\theta = +\frac{g}{l}\sin\theta - d\,\dot\theta + \frac{u}{m l^2}$, an open-loop unstable equilibrium.
State $x = (\theta, \dot\theta)$; observed: the angle (`observe = "angle"`) or the full state. One step
of `dt` is one classical Runge-Kutta (RK4) step with the torque held, so the discretisation error is
$O(dt^4)$ per unit time.

It does not derive from `LinearPlant`: loopdyn steps it through the plain rollout and applies none of
the shortcuts that linearity makes exact (superposition, batch compression, the joint matrix).

    [plant]
    kind = "examples.pendulum:Pendulum"
    dt = 0.05
    upright = false
"""

import jax.numpy as jnp

from loopdyn.config import NON_NEGATIVE, POSITIVE, InvalidParameter, param
from loopdyn.plants import Plant


class Pendulum(Plant):
    """The damped, torque-driven pendulum of the module docstring (RK4 steps of `dt`)."""

    dt: float = param(0.05, doc="time step of one RK4 step (s)", check=POSITIVE)
    gravity: float = param(9.81, doc="gravitational acceleration g (m/s^2)", check=POSITIVE)
    length: float = param(1.0, doc="pendulum length l (m)", check=POSITIVE)
    mass: float = param(1.0, doc="bob mass m (kg)", check=POSITIVE)
    damping: float = param(0.1, doc="viscous damping d (1/s)", check=NON_NEGATIVE)
    upright: bool = param(False, doc="measure the angle from the top (unstable equilibrium) instead of the bottom")
    observe_state: bool = param(False, doc="observe the full state (angle, angular velocity) instead of the angle")

    def check(self, cfg) -> None:
        # RK4 on the linearisation: stable for |lambda| dt < 2.78; keep well inside it
        rate = (self.gravity / self.length) ** 0.5 + self.damping
        if rate * self.dt > 1.0:
            raise InvalidParameter("plant.dt", f"= {self.dt:g} is too large for the pendulum's time scale "
                                   f"(sqrt(g/l) + d = {rate:.3g} per s): keep dt (sqrt(g/l) + d) <= 1")

    @property
    def n_states(self) -> int:
        return 2

    @property
    def n_controls(self) -> int:
        return 1

    @property
    def n_observed(self) -> int:
        return 2 if self.observe_state else 1

    def vector_field(self, x, u):
        """$(\\dot\\theta, \\ddot\\theta)$ of a batch of states `(B, 2)` under torques `(B, 1)`."""
        theta, omega = x[..., 0], x[..., 1]
        sign = 1.0 if self.upright else -1.0
        acc = (sign * self.gravity / self.length * jnp.sin(theta) - self.damping * omega
               + u[..., 0] / (self.mass * self.length**2))
        return jnp.stack([omega, acc], axis=-1)

    def dynamics(self, x, u):
        f, h = self.vector_field, self.dt
        k1 = f(x, u)
        k2 = f(x + 0.5 * h * k1, u)
        k3 = f(x + 0.5 * h * k2, u)
        k4 = f(x + h * k3, u)
        return x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)

    def observe(self, x):
        return x if self.observe_state else x[..., :1]
