r"""Plants given by an ODE, each step one classical Runge-Kutta (RK4) step with the control held.

A subclass gives the vector field $\dot x = F(x, u)$ of a batch (:meth:`RK4Plant.vector_field`); one step
of the plant is

$$k_1 = F(x, u),\; k_2 = F(x + \tfrac{dt}{2} k_1, u),\; k_3 = F(x + \tfrac{dt}{2} k_2, u),\; k_4 = F(x + dt\,k_3, u),
\qquad f(x, u) = x + \tfrac{dt}{6}(k_1 + 2k_2 + 2k_3 + k_4),$$

the control $u$ held over the step (zero-order hold), so $f$ follows the exact flow of the ODE over $dt$
with a local error $O(dt^5)$, a global error $O(dt^4)$ over a fixed time.

RK4 applied to $\dot x = \lambda x$ is stable for $|\lambda\,dt| \lesssim 2.78$ on the real axis (2.83 on
the imaginary axis); a plant refuses a `dt` with $dt \cdot \max|\lambda(A_c)| > 1$, $A_c = \partial F/\partial x$
at the origin (the fastest rate of the plant linearised there), which keeps the step well inside that
region and its error small (:meth:`RK4Plant.check`). The bound concerns the linearisation only: far from
the origin (fast swings of an arm) the user chooses `dt` for the speeds reached.

**Derivatives.** By default a step is differentiated by JAX through the vector field, rematerialised in the
backward pass. A plant may instead give the derivative of its vector field by hand,
:meth:`RK4Plant.vector_field_jvp`, returning $F$ and $\partial F\,(\dot x, \dot u)$ as a *linear* function of
the tangents with coefficients computed once per stage (e.g. the rows of $\partial F/\partial(x, u)$): both
forward mode (`jax.jacfwd`: linearisation, fixed points) and reverse mode (training) then go through it, and the
reverse pass is the transpose of those few products, with the stage's coefficients (its sines and cosines
included) kept from the forward pass instead of recomputed (the two-link arm: the plant's share of a training
step's cost halves, `benchmarks/bench_plant_step.py`; the training cost, `benchmarks/bench_plants.py`).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np

from ..config import InvalidParameter
from ._base import Plant

RK4_RATE_BOUND = 1.0
r"""The largest $dt \cdot \max|\lambda(A_c)|$ a plant accepts (RK4's stability limit on the real axis is 2.78)."""


def rk4_step(F, x, u, dt):
    """One classical Runge-Kutta step of `dt` of `x' = F(x, u)` with `u` held (module docstring)."""
    k1 = F(x, u)
    k2 = F(x + 0.5 * dt * k1, u)
    k3 = F(x + 0.5 * dt * k2, u)
    k4 = F(x + dt * k3, u)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def second_order_tangent(rows, dx, du):
    r"""The tangent of a mechanical vector field $F = (\dot q, \ddot q)$ of a state $x = (q, \dot q)$, for
    :meth:`RK4Plant.vector_field_jvp`: the positions' rates move with the velocity tangents, the accelerations by
    their rows of $\partial F/\partial(x, u)$, `rows (..., k/2, k + m)`, times `(dx, du)`."""
    dz = jnp.concatenate([dx, du], axis=-1)
    return jnp.concatenate([dx[..., dx.shape[-1] // 2:], jnp.sum(rows * dz[..., None, :], axis=-1)], axis=-1)


class RK4Plant(Plant):
    """A plant given by its vector field and stepped by RK4 (module docstring). A subclass gives the sizes,
    `vector_field(x (B, k), u (B, m)) -> (B, k)` in `jax.numpy` and `observe`; the origin must be an
    equilibrium, `vector_field(0, 0) = 0`."""

    @abc.abstractmethod
    def vector_field(self, x, u):
        r"""$\dot x = F(x, u)$ of a batch: `x (B, k)`, `u (B, m)` -> `(B, k)`."""

    def vector_field_jvp(self, x, u, dx, du):
        r"""Optional: `(F(x, u), J (dx, du))`, the vector field and its derivative along the tangents `dx (B, k)`,
        `du (B, m)` (module docstring, *Derivatives*), written so that the tangent is a linear function of
        `(dx, du)` with coefficients that depend on `(x, u)` alone. Not given (`NotImplemented`): JAX
        differentiates :meth:`vector_field`. The tests compare the two (forward and reverse mode)."""
        return NotImplemented

    def _hand_derivative(self) -> bool:
        return type(self).vector_field_jvp is not RK4Plant.vector_field_jvp

    def dynamics(self, x, u):
        if self._hand_derivative():
            field = jax.custom_jvp(self.vector_field)
            field.defjvp(lambda primals, tangents: self.vector_field_jvp(*primals, *tangents))
            return rk4_step(field, x, u, self.dt)
        # rematerialised in the backward pass: a scan over steps then stores x and u alone, not the dozens of
        # intermediates of four stages (the gradient's cost is the recomputed step, not stored residuals)
        return jax.checkpoint(lambda x, u: rk4_step(self.vector_field, x, u, self.dt))(x, u)

    def continuous_linearisation(self) -> tuple[np.ndarray, np.ndarray]:
        r"""`(A_c, B_c)`: $\partial F/\partial x$ and $\partial F/\partial u$ at the origin (`jax.jacfwd`, float64);
        the step's own linearisation (:meth:`linearisation`) is $e^{A_c dt}$ and
        $\int_0^{dt} e^{A_c s} ds\, B_c$ up to $O(dt^5)$."""
        x0 = jnp.zeros((self.n_states,), jnp.float64)
        u0 = jnp.zeros((self.n_controls,), jnp.float64)
        A, B = jax.jit(jax.jacfwd(lambda x, u: self.vector_field(x[None], u[None])[0], argnums=(0, 1)))(x0, u0)
        return np.asarray(A), np.asarray(B)

    def fastest_rate(self) -> float:
        r"""$\max|\lambda(A_c)|$, the fastest rate (1/s) of the plant linearised at the origin."""
        return float(np.max(np.abs(np.linalg.eigvals(self.continuous_linearisation()[0]))))

    def check(self, cfg) -> None:
        rate = self.fastest_rate()
        if not np.isfinite(rate):
            raise InvalidParameter("plant", "has a non-finite linearisation at the origin; check its parameters")
        if rate * self.dt > RK4_RATE_BOUND:
            raise InvalidParameter(
                "plant.dt", f"= {self.dt:g} is too large for one RK4 step: dt * max|lambda(A_c)| = {rate * self.dt:.3g} "
                f"> {RK4_RATE_BOUND:g} (fastest linearised rate {rate:.4g} per s; RK4 is stable to 2.78); "
                f"take dt <= {RK4_RATE_BOUND / rate:.4g}")
