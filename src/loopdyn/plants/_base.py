r"""The plant interface: what every plant, shipped or a user's, declares and does.

A plant is a discrete-time system stepped for a batch of states (rows):

$$x_{t+1} = f(x_t, u_t) + w_t,\quad w_t \sim \mathcal N(0, (\sigma\sqrt{dt})^2 I),\qquad y_{t+1} = g(x_{t+1}),$$

then, when `clamp > 0`, the state is clipped to `[-clamp, clamp]` (after its observation has been taken,
the reference code's order). A subclass gives its sizes, `dynamics` ($f$) and `observe` ($g$), written
with `jax.numpy` so that gradients flow through them.

A plant that is linear, $f = A x + B u$, $g = C x$, derives from :class:`LinearPlant` and gives
`matrices()`; only such a plant gets the shortcuts that linearity makes exact (superposition of basis
episodes, second-moment compression of the batch, the joint matrix P, the expected objective). Every
other plant is stepped as it is, by the plain rollout.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np

from ..config import NON_NEGATIVE, POSITIVE, Part, declare_family, param


class Plant(Part):
    """A plant (module docstring). Parameters common to every plant: `dt`, `noise`, `clamp`."""

    dt: float = param(1.0, doc="plant time step", check=POSITIVE)
    noise: float = param(0.0, doc="process-noise std sigma (added as sigma sqrt(dt) N(0, I) each step)",
                         check=NON_NEGATIVE)
    clamp: float = param(0.0, doc="clip the state to [-clamp, clamp] after each step; 0 = off", check=NON_NEGATIVE)

    linear = False

    @property
    @abc.abstractmethod
    def n_states(self) -> int:
        """k, the size of the state x."""

    @property
    @abc.abstractmethod
    def n_controls(self) -> int:
        """m, the size of the control u."""

    @property
    @abc.abstractmethod
    def n_observed(self) -> int:
        """c, the size of the observation y."""

    @abc.abstractmethod
    def dynamics(self, x, u):
        """`f(x, u)`: the next state of a batch, `x (B, k)`, `u (B, m)` -> `(B, k)`, before noise and clamp."""

    @abc.abstractmethod
    def observe(self, x):
        """`g(x)`: what the agent sees of a batch of states, `(B, k)` -> `(B, c)`."""

    def step(self, x, u, key=None, noise=None, draws=None):
        """One step for a batch: `(x_next, y_next)`; `noise` overrides the std (traced ok); none drawn without `key`.
        `draws`: the process noise's standard-normal draws `(B, k)`, used instead of drawing them from `key`."""
        x_next = self.dynamics(x, u)
        if key is not None or draws is not None:
            sigma = self.noise if noise is None else noise
            eps = jax.random.normal(key, x_next.shape, x_next.dtype) if draws is None else draws.astype(x_next.dtype)
            x_next = x_next + sigma * jnp.sqrt(self.dt) * eps
        y_next = self.observe(x_next)
        if self.clamp > 0:
            x_next = jnp.clip(x_next, -self.clamp, self.clamp)
        return x_next, y_next

    @property
    def is_double_integrator(self) -> bool:
        """Whether this is the double integrator of spec §1.1 (`A = [[1, 1], [0, 1]]`, `B = e_2`, `C = e_1^T`)."""
        return False

    def in_range(self, x):
        """Whether each state of a batch `(..., k)` lies in the plant's valid range, `(...)` bool (default: every
        state). Leaving it is not an error: the analysis records, per run, the fraction of closed-loop test
        trajectories that do (`range_exits`), so one run that swings a pendulum over never loses an ensemble."""
        return jnp.ones(x.shape[:-1], bool)

    def linearisation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""`(A, B, C)` of the plant linearised at the origin, float64: $A = \partial f/\partial x$,
        $B = \partial f/\partial u$ at $(x, u) = (0, 0)$ and $C = \partial g/\partial x$ at 0 (`jax.jacfwd`). The
        origin must be an equilibrium ($f(0, 0) = 0$) for the loop's Jacobian at 0 to describe it."""
        x0 = jnp.zeros((1, self.n_states), jnp.float64)
        u0 = jnp.zeros((1, self.n_controls), jnp.float64)
        A = jax.jacfwd(lambda x: self.dynamics(x[None], u0)[0])(x0[0])
        B = jax.jacfwd(lambda u: self.dynamics(x0, u[None])[0])(u0[0])
        C = jax.jacfwd(lambda x: self.observe(x[None])[0])(x0[0])
        return np.asarray(A), np.asarray(B), np.asarray(C)


class LinearPlant(Plant):
    r"""A linear plant $x' = A x + B u + w$, $y = C x$: a subclass gives `matrices() -> (A (k, k), B (k, m), C (c, k))`."""

    linear = True

    @abc.abstractmethod
    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(A, B, C)` as float64 numpy arrays."""

    def linearisation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.matrices()

    @property
    def A(self) -> np.ndarray:
        return self.matrices()[0]

    @property
    def B(self) -> np.ndarray:
        return self.matrices()[1]

    @property
    def C(self) -> np.ndarray:
        return self.matrices()[2]

    @property
    def n_states(self) -> int:
        return self.A.shape[0]

    @property
    def n_controls(self) -> int:
        return self.B.shape[1]

    @property
    def n_observed(self) -> int:
        return self.C.shape[0]

    def dynamics(self, x, u):
        A, B, _ = (jnp.asarray(M, dtype=x.dtype) for M in self.matrices())
        return x @ A.T + u @ B.T

    def observe(self, x):
        return x @ jnp.asarray(self.C, dtype=x.dtype).T

    @property
    def is_double_integrator(self) -> bool:
        A, B, C = self.matrices()
        return (A.shape == (2, 2) and B.shape == (2, 1) and C.shape == (1, 2) and np.allclose(A, [[1, 1], [0, 1]])
                and np.allclose(B, [[0], [1]]) and np.allclose(C, [[1, 0]]))


PLANTS = declare_family("plant", Plant, "loopdyn.plants", default="double_integrator")
"""The plant family: `[plant] kind = ...` (:mod:`loopdyn.config._parts`)."""
