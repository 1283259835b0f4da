r"""The inverted pendulum: a damped pendulum driven by a torque, about its upright (unstable) equilibrium.

$$\ddot\theta = \frac{g}{l}\sin\theta - d\,\dot\theta + \frac{\operatorname{sat}(u)}{m l^2},$$

$\theta$ the angle from the upright (rad), $u$ the torque at the pivot (N m), $\operatorname{sat}(u) =
\operatorname{clip}(u, -\tau_{\max}, \tau_{\max})$ when `max_torque > 0` (else $u$). State $x = (\theta,
\dot\theta)$; observed: the angle (`observed = "angle"`) or the full state (`"state"`). The origin is an
equilibrium, open-loop unstable: linearised, $A_c = \begin{pmatrix} 0 & 1 \\ g/l & -d\end{pmatrix}$,
$B_c = (0, 1/(m l^2))^\top$, with the positive eigenvalue $(-d + \sqrt{d^2 + 4g/l})/2$. Without friction
($d = 0$) and torque the energy $E = \tfrac12 m l^2\dot\theta^2 + m g l\cos\theta$ is conserved.

One step of `dt` is one RK4 step with the torque held (:mod:`loopdyn.plants._rk4`). Angles are not
wrapped: $\theta = 2\pi$ is a different state from $\theta = 0$ for the loss.

    [plant]
    kind = "inverted_pendulum"
    dt = 0.05
    observed = "state"
"""

from __future__ import annotations

import jax.numpy as jnp

from ..config import NON_NEGATIVE, POSITIVE, param
from ._rk4 import RK4Plant


class InvertedPendulum(RK4Plant):
    """The torque-driven pendulum about the upright of the module docstring (RK4 steps of `dt`)."""

    dt: float = param(0.05, doc="time step of one RK4 step (s)", check=POSITIVE)
    gravity: float = param(9.81, doc="gravitational acceleration g (m/s^2)", check=POSITIVE)
    length: float = param(1.0, doc="pendulum length l (m)", check=POSITIVE)
    mass: float = param(1.0, doc="bob mass m (kg)", check=POSITIVE)
    damping: float = param(0.1, doc="viscous damping d (1/s)", check=NON_NEGATIVE)
    max_torque: float = param(0.0, doc="torque limit tau_max (N m): u is clipped to [-tau_max, tau_max]; 0 = none",
                              check=NON_NEGATIVE)
    observed: str = param("angle", doc="what the agent sees: the angle, or the state (angle, angular velocity)",
                          choices=("angle", "state"))

    @property
    def n_states(self) -> int:
        return 2

    @property
    def n_controls(self) -> int:
        return 1

    @property
    def n_observed(self) -> int:
        return 2 if self.observed == "state" else 1

    def vector_field(self, x, u):
        theta, omega = x[..., 0], x[..., 1]
        tau = jnp.clip(u[..., 0], -self.max_torque, self.max_torque) if self.max_torque > 0 else u[..., 0]
        acc = (self.gravity / self.length * jnp.sin(theta) - self.damping * omega
               + tau / (self.mass * self.length**2))
        return jnp.stack([omega, acc], axis=-1)

    def energy(self, x):
        r"""$E = \tfrac12 m l^2 \dot\theta^2 + m g l \cos\theta$ of a batch of states `(B, 2)` -> `(B,)`."""
        return (0.5 * self.mass * self.length**2 * x[..., 1] ** 2
                + self.mass * self.gravity * self.length * jnp.cos(x[..., 0]))

    def observe(self, x):
        return x if self.observed == "state" else x[..., :1]

    def in_range(self, x):
        r"""$|\theta| \le \pi$: the angle is periodic and not wrapped, so a pendulum that swings over the bottom
        (to $\pm\pi$ and beyond) has left the range in which the loss measures its distance from the upright."""
        return jnp.abs(x[..., 0]) <= jnp.pi
