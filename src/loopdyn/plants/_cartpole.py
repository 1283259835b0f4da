r"""The cart-pole: a pole on a cart pushed by a horizontal force, to be held upright with the cart at the origin.

A cart of mass $M$ on a line, a pole of length $l$ on a frictional pivot with its mass $m$ at the tip (a
point mass on a massless rod), a force $F = \operatorname{sat}(u)$ on the cart (clipped to $\pm F_{\max}$
when `max_force > 0`). State $x = (p, \theta, \dot p, \dot\theta)$: cart position (m), pole angle from the
upright (rad), their velocities. From the Lagrangian $L = \tfrac12(M+m)\dot p^2 + m l\cos\theta\,\dot p\dot\theta
+ \tfrac12 m l^2\dot\theta^2 - m g l\cos\theta$ with viscous friction $b$ on the cart and $d$ at the pivot:

$$\begin{pmatrix} M + m & m l\cos\theta \\ m l\cos\theta & m l^2 \end{pmatrix}
\begin{pmatrix}\ddot p \\ \ddot\theta\end{pmatrix} =
\begin{pmatrix} F - b\dot p + m l\dot\theta^2\sin\theta \\ m g l\sin\theta - d\dot\theta \end{pmatrix},$$

solved in closed form (determinant $m l^2 (M + m\sin^2\theta) > 0$). Underactuated: one force, four
states. Without friction and force the energy $E = \tfrac12 \dot q^\top M(\theta)\dot q + m g l\cos\theta$ is
conserved. The origin is an open-loop unstable equilibrium; linearised there the pole's rate is
$\sqrt{g (M + m)/(M l)}$ (without friction). Observed: cart position and pole angle (`observed =
"position"`) or the full state (`"state"`).

One step of `dt` is one RK4 step with the force held (:mod:`loopdyn.plants._rk4`). Defaults: the cart and
pole masses of the classic benchmark (1 kg, 0.1 kg), the pole's mass at its tip 0.5 m from the pivot.

    [plant]
    kind = "cartpole"
    dt = 0.02
"""

from __future__ import annotations

import jax.numpy as jnp

from ..config import NON_NEGATIVE, POSITIVE, param
from ._rk4 import RK4Plant, second_order_tangent


class CartPole(RK4Plant):
    """The force-driven cart-pole of the module docstring (RK4 steps of `dt`)."""

    dt: float = param(0.02, doc="time step of one RK4 step (s)", check=POSITIVE)
    gravity: float = param(9.81, doc="gravitational acceleration g (m/s^2)", check=POSITIVE)
    cart_mass: float = param(1.0, doc="cart mass M (kg)", check=POSITIVE)
    pole_mass: float = param(0.1, doc="pole mass m (kg), at the tip", check=POSITIVE)
    length: float = param(0.5, doc="pole length l, pivot to the mass (m)", check=POSITIVE)
    cart_friction: float = param(0.1, doc="viscous friction b of the cart (N s/m)", check=NON_NEGATIVE)
    pole_friction: float = param(0.01, doc="viscous friction d at the pivot (N m s)", check=NON_NEGATIVE)
    max_force: float = param(0.0, doc="force limit F_max (N): u is clipped to [-F_max, F_max]; 0 = none",
                             check=NON_NEGATIVE)
    observed: str = param("position", doc="what the agent sees: cart position and pole angle, or the full state",
                          choices=("position", "state"))

    @property
    def n_states(self) -> int:
        return 4

    @property
    def n_controls(self) -> int:
        return 1

    @property
    def n_observed(self) -> int:
        return 4 if self.observed == "state" else 2

    def _field(self, x, u):
        """The vector field and the intermediates its derivative reuses."""
        theta, v, omega = x[..., 1], x[..., 2], x[..., 3]
        F = jnp.clip(u[..., 0], -self.max_force, self.max_force) if self.max_force > 0 else u[..., 0]
        M, m, l, g = self.cart_mass, self.pole_mass, self.length, self.gravity
        s, c = jnp.sin(theta), jnp.cos(theta)
        r1 = F - self.cart_friction * v + m * l * omega**2 * s
        r2 = m * g * l * s - self.pole_friction * omega
        inv = 1.0 / (m * l**2 * (M + m * s**2))
        na, nb = m * l**2 * r1 - m * l * c * r2, (M + m) * r2 - m * l * c * r1
        return jnp.stack([v, omega, na * inv, nb * inv], axis=-1), (s, c, omega, r1, r2, inv, na, nb)

    def vector_field(self, x, u):
        return self._field(x, u)[0]

    def vector_field_jvp(self, x, u, dx, du):
        r"""The field and its derivative by hand: the accelerations' rows of $\partial F/\partial(x, u)$ from the
        closed-form solve, the tangent one product with them (:mod:`loopdyn.plants._rk4`)."""
        field, (s, c, omega, r1, r2, inv, na, nb) = self._field(x, u)
        M, m, l, g = self.cart_mass, self.pole_mass, self.length, self.gravity
        b, d, ml, mll = self.cart_friction, self.pole_friction, m * l, m * l * l
        zero = jnp.zeros_like(s)
        force = jnp.ones_like(s)  # dF/du: 1, or 0 beyond the force limit
        if self.max_force > 0:
            force = (jnp.abs(u[..., 0]) < self.max_force).astype(s.dtype)
        # partial derivatives of r1, r2 in (p, theta, dp, dtheta, u)
        dr1 = (zero, ml * omega**2 * c, zero - b, 2 * ml * omega * s, force)
        dr2 = (zero, ml * g * c, zero, zero - d, zero)
        d_acc1 = [(mll * p - ml * c * q) * inv for p, q in zip(dr1, dr2)]
        d_acc2 = [((M + m) * q - ml * c * p) * inv for p, q in zip(dr1, dr2)]
        # theta also moves the mass matrix: d cos = -sin, d(1/det) = -2 m sin cos m l^2 / det^2
        dinv = -2 * m * mll * s * c * inv * inv
        d_acc1[1] = d_acc1[1] + ml * s * r2 * inv + na * dinv
        d_acc2[1] = d_acc2[1] + ml * s * r1 * inv + nb * dinv
        rows = jnp.stack([jnp.stack(d_acc1, -1), jnp.stack(d_acc2, -1)], -2)  # (B, 2, 5)
        return field, second_order_tangent(rows, dx, du)

    def energy(self, x):
        r"""$E = \tfrac12(M+m)\dot p^2 + m l\cos\theta\,\dot p\dot\theta + \tfrac12 m l^2\dot\theta^2 + m g l\cos\theta$, `(B, 4)` -> `(B,)`."""
        M, m, l = self.cart_mass, self.pole_mass, self.length
        theta, v, omega = x[..., 1], x[..., 2], x[..., 3]
        return (0.5 * (M + m) * v**2 + m * l * jnp.cos(theta) * v * omega + 0.5 * m * l**2 * omega**2
                + m * self.gravity * l * jnp.cos(theta))

    def observe(self, x):
        return x if self.observed == "state" else x[..., :2]

    def in_range(self, x):
        r"""$|\theta| \le \pi$: the pole angle is periodic and not wrapped (as the pendulum's)."""
        return jnp.abs(x[..., 1]) <= jnp.pi
