"""One interface for every linear plant.

Arrays use row-vector batches: a state batch `x` has shape `(batch, k)`, controls `(batch, m)`,
observations `(batch, c)`; the maths in the docstrings is column-vector, `x' = A x + B u + w`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class LinearPlant:
    r"""A discrete-time linear plant.

    $$x_{t+1} = A x_t + B u_t + w_t,\quad w_t \sim \mathcal N(0, (\sigma\sqrt{dt})^2 I),\qquad y_t = C x_t.$$

    **Arguments:**
    - `A`: `(k, k)` state matrix; `B`: `(k, m)` input matrix; `C`: `(c, k)` observation matrix.
    - `dt`: time step (scales the noise).
    - `noise`: process-noise std sigma; `clamp`: if > 0, the state is clipped to `[-clamp, clamp]`
      after the observation of the new state has been taken (reference-code order).
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    dt: float = 1.0
    noise: float = 0.0
    clamp: float = 0.0

    @property
    def n_states(self) -> int:
        return self.A.shape[0]

    @property
    def n_controls(self) -> int:
        return self.B.shape[1]

    @property
    def n_observed(self) -> int:
        return self.C.shape[0]

    @property
    def is_double_integrator(self) -> bool:
        """Whether this is the double integrator of spec §1.1 (`A = [[1, 1], [0, 1]]`, `B = e_2`, `C = e_1^T`)."""
        return (self.A.shape == (2, 2) and np.allclose(self.A, [[1, 1], [0, 1]]) and np.allclose(self.B, [[0], [1]])
                and np.allclose(self.C, [[1, 0]]))

    def step(self, x, u, key=None, noise=None):
        """One step for a batch: returns `(x_next, y_next)`; `noise` overrides the std (traced ok)."""
        A, B, C = (jnp.asarray(M, dtype=x.dtype) for M in (self.A, self.B, self.C))
        x_next = x @ A.T + u @ B.T
        sigma = self.noise if noise is None else noise
        if key is not None:
            x_next = x_next + sigma * jnp.sqrt(self.dt) * jax.random.normal(key, x_next.shape, x.dtype)
        y_next = x_next @ C.T
        if self.clamp > 0:
            x_next = jnp.clip(x_next, -self.clamp, self.clamp)
        return x_next, y_next


def integrator(order: int = 2, dt: float = 1.0, n_controls: int = 1, n_observed: int = 1,
               noise: float = 0.0, clamp: float = 0.0) -> LinearPlant:
    """The k-th order integrator of spec §1.1: `A = I + dt·J` (J the superdiagonal),
    the last `min(k, m)` states driven with gain `dt`, the first `c` states observed."""
    k, m, c = order, n_controls, n_observed
    A = np.eye(k) + dt * np.eye(k, k=1)
    B = np.zeros((k, m))
    for i in range(1, min(k, m) + 1):
        B[k - i, m - i] = dt
    C = np.eye(c, k)
    return LinearPlant(A, B, C, float(dt), float(noise), float(clamp))


def double_integrator(noise: float = 0.0, clamp: float = 0.0) -> LinearPlant:
    """Position and velocity, dt = 1, position observed only: `A = [[1,1],[0,1]]`, `B = e_2`, `C = e_1^T`."""
    return integrator(2, 1.0, 1, 1, noise, clamp)


def point_mass_2d(dt: float = 0.1, n_observed: int = 2, noise: float = 0.0, clamp: float = 0.0) -> LinearPlant:
    """2-D point mass, state `(x, v_x, y, v_y)`, controls `(a_x, a_y)` (spec §1.2).
    `n_observed = 2` observes the positions, 4 the full state."""
    a = np.array([[1.0, dt], [0.0, 1.0]])
    A = np.kron(np.eye(2), a)
    B = np.zeros((4, 2))
    B[1, 0] = B[3, 1] = dt
    C = np.eye(4)[[0, 2]] if n_observed == 2 else np.eye(4)[: n_observed]
    return LinearPlant(A, B, C, float(dt), float(noise), float(clamp))


def plant_from_config(cfg) -> LinearPlant:
    """Build the plant of a :class:`~loopdyn._config.PlantConfig`."""
    if cfg.kind == "double_integrator":
        return double_integrator(cfg.noise, cfg.clamp)
    if cfg.kind == "integrator":
        return integrator(cfg.order, cfg.dt, cfg.n_controls, cfg.n_observed, cfg.noise, cfg.clamp)
    return point_mass_2d(cfg.dt, cfg.n_observed, cfg.noise, cfg.clamp)
