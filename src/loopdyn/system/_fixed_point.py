r"""Fixed points of a nonlinear closed loop, the joint matrix there, and the basin of the target (issue #19).

One noise-free step of the loop (delayed timing of :func:`loopdyn.system.rollout`) is a map
$F: s_t = (x_t, h_t) \mapsto s_{t+1}$ of the joint state (:func:`loopdyn.system.joint_step`; with a
constant exogenous input $e$ appended to every observation, :func:`loop_step`). A fixed point $s^* = F(s^*)$
is found by Newton's method on $G(s) = F(s) - s$,

$$s_{n+1} = s_n - \big(J(s_n) - I\big)^{-1}\big(F(s_n) - s_n\big),\qquad J = \partial F/\partial s \text{ (`jax.jacfwd`)},$$

from a guess near the target (the origin by default), and $P = J(s^*)$ is the loop's joint matrix there:
for a linear plant and agent it is :func:`loopdyn.system.agent_joint_matrix`, for a loop whose origin is an
equilibrium $J(0)$ (:mod:`loopdyn.system._jacobian`), and for a loop with a nonzero equilibrium (a constant
load or input) the matrix whose spectrum decides the local stability of the state it settles to.

A run for which no fixed point is found is not an error: :func:`newton_fixed_point` returns NaN for
$s^*$ and $P$, `converged = False` and a `status` code naming why (:data:`FIXED_POINT_STATUS`): no
convergence within `max_iter` steps, a non-finite step (singular $J - I$, e.g. a loop with an eigenvalue 1
and a line of equilibria, or overflow), or an iterate farther than `radius` from the guess (Newton went to
another, far equilibrium). Everything is pure JAX (`jit`, `vmap` over runs).

The **basin** (:func:`basin`) is the fraction of a fixed test set of initial plant states (agent at rest,
$h_0 = 0$) whose closed-loop trajectory converges to the target: $\max|x_t - x^\dagger| \le$ `tol` over the
last `hold` of `T` steps. The test set (:func:`basin_test_set`) is the same for every run of a plant: the
$2k$ signed unit vectors $\pm e_i$ and `n_random` unit vectors drawn once (`jax.random.PRNGKey(0)`,
normalised Gaussians), each times every scale of :data:`BASIN_SCALES` (0.1, 0.3, 1, 3: small to large
perturbations, in the units of the state: m, rad, m/s, rad/s).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import AgentParams, make_core
from ._jacobian import joint_step
from ._rollout import rollout

FIXED_POINT_STATUS = (
    "converged",
    "no convergence within max_iter Newton steps",
    "non-finite Newton step (J - I singular, e.g. a line of equilibria, or overflow)",
    "left the neighbourhood: an iterate went farther than radius from the guess",
)
"""What `FixedPoint.status` means, by code."""

BASIN_SCALES = (0.1, 0.3, 1.0, 3.0)
"""The norms of the initial plant states of the basin's test set (:func:`basin_test_set`)."""


class FixedPoint(NamedTuple):
    """What :func:`newton_fixed_point` returns (leading batch axes under `vmap`).

    - `s`: the fixed point $s^* = (x^*, h^*)$, `(n,)`, NaN when none was found;
    - `P`: $J(s^*)$, the Jacobian of the one-step map there, `(n, n)`, NaN when none was found;
    - `converged`: bool; `status`: int, index into :data:`FIXED_POINT_STATUS`;
    - `residual`: $\\max|F(s) - s|$ at the last iterate; `iterations`: Newton steps taken.
    """

    s: jax.Array
    P: jax.Array
    converged: jax.Array
    status: jax.Array
    residual: jax.Array
    iterations: jax.Array

    @property
    def reason(self) -> str:
        """The status in words (an unbatched result)."""
        return FIXED_POINT_STATUS[int(self.status)]


def _default_tol(dtype) -> float:
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5


def newton_fixed_point(F, s0, *, tol: float | None = None, max_iter: int = 50, radius: float = 10.0) -> FixedPoint:
    r"""A fixed point of `F` near `s0` by Newton's method (module docstring).

    **Arguments:**
    - `F`: a map of one vector `(n,) -> (n,)` in `jax.numpy`; `s0`: the guess `(n,)`;
    - `tol`: converged when $\max|F(s) - s| \le$ `tol` $(1 + \max|s|)$ (default 1e-10 in float64, 1e-5 otherwise);
    - `max_iter`: Newton steps at most; `radius`: give up when $\max|s_n - s_0| >$ `radius`.

    **Returns:** a :class:`FixedPoint`; never raises for a loop without a fixed point.
    """
    s0 = jnp.asarray(s0)
    tol = _default_tol(s0.dtype) if tol is None else tol
    def step(s):  # a map that computes in another dtype (a reduced core: float64) keeps the iterate's
        return F(s).astype(s.dtype)

    jac = jax.jacfwd(step)
    eye = jnp.eye(s0.shape[0], dtype=s0.dtype)
    running = -1

    def residual(s):
        return jnp.max(jnp.abs(step(s) - s))

    def body(carry):
        s, it, status, _ = carry
        r = step(s) - s
        res = jnp.max(jnp.abs(r))
        done = res <= tol * (1 + jnp.max(jnp.abs(s)))
        s_new = s + jnp.linalg.solve(jac(s) - eye, -r)
        bad = ~jnp.all(jnp.isfinite(s_new))
        far = jnp.max(jnp.abs(s_new - s0)) > radius
        status = jnp.where(done, 0, jnp.where(bad, 2, jnp.where(far, 3, running))).astype(jnp.int32)
        s = jnp.where(done | bad | far, s, s_new)
        return s, it + (~done).astype(jnp.int32), status, res

    def cond(carry):
        _, it, status, _ = carry
        return (status == running) & (it < max_iter)

    def solve(s0):
        init = (s0, jnp.asarray(0, jnp.int32), jnp.asarray(running, jnp.int32), jnp.asarray(jnp.inf, s0.dtype))
        s, it, status, res = jax.lax.while_loop(cond, body, init)
        # out of steps: accept the last iterate only if it satisfies the tolerance
        res_last = residual(s)
        ok_last = res_last <= tol * (1 + jnp.max(jnp.abs(s)))
        status = jnp.where(status == running, jnp.where(ok_last, 0, 1), status).astype(jnp.int32)
        res = jnp.where(status == 0, res_last, res)
        converged = status == 0
        nan = jnp.asarray(jnp.nan, s.dtype)
        P = jnp.where(converged, jac(s), nan)
        return FixedPoint(jnp.where(converged, s, nan), P, converged, status, res, it)

    return jax.jit(solve)(s0)


def loop_step(spec, plant, params: AgentParams, g=0.0, exo=None):
    r"""The one-step joint map $F(s)$ of the loop (noise-free, delayed timing); with `exo` `(n_exo,)` that
    constant input is appended to the agent's observation at every step. Without `exo` it is
    :func:`loopdyn.system.joint_step`."""
    if exo is None:
        return joint_step(spec, plant, params, g)
    core = make_core(spec, params, g)
    k = plant.n_states
    exo = jnp.asarray(exo)

    def F(s):
        traj = rollout(core, plant, s[None, :k], 1, h0=s[None, k:], exo=exo.astype(s.dtype)[None, None],
                       emit=("x_next", "h_next"))
        return jnp.concatenate([traj.x_next[0, 0], traj.h_next[0, 0]])

    return F


def _param_dtype(params: AgentParams):
    return jax.tree.leaves(params)[0].dtype


def fixed_point(spec, plant, params: AgentParams, g=0.0, *, s0=None, exo=None, tol: float | None = None,
                max_iter: int = 50, radius: float = 10.0) -> FixedPoint:
    r"""The closed loop's fixed point near the target, and $P = J(s^*)$ there (module docstring).

    **Arguments:**
    - `spec`, `params`, `g`: the agent (`AgentSpec`, `AgentParams`, gain of its random part); `plant`: any
      :class:`loopdyn.plants.Plant`;
    - `s0`: the guess `(k + d,)` ($d$ = the core's state size, `spec.hidden_dim`), default the origin (the
      regulation target with the agent at rest); `exo`: a constant exogenous input `(n_exo,)` (:func:`loop_step`);
    - `tol`, `max_iter`, `radius`: as :func:`newton_fixed_point`.

    **Returns:** a :class:`FixedPoint` in the dtype the core computes in (that of the parameters, float64 for a
    reduced linear agent). `s` and `P` are in the core's coordinates, like :func:`loopdyn.system.joint_step`:
    neurons, or for a reduced agent the coordinates on $[m\;U]$ (then $P$ is similar to, not equal to,
    :func:`loopdyn.system.agent_joint_matrix`, which uses an orthonormal basis).
    """
    core = make_core(spec, params, g)
    dtype = core.dtype or _param_dtype(params)
    F = loop_step(spec, plant, params, g, exo)
    if s0 is None:
        s0 = jnp.zeros((plant.n_states + core.hidden_dim,), dtype)
    return newton_fixed_point(F, jnp.asarray(s0, dtype), tol=tol, max_iter=max_iter, radius=radius)


def basin_test_set(n_states: int, scales=BASIN_SCALES, n_random: int = 8, dtype=jnp.float64):
    r"""The basin's fixed initial plant states, `(len(scales) * (2 n_states + n_random), n_states)`: for each
    scale (outer) the directions $+e_1, -e_1, \dots, +e_k, -e_k$ then `n_random` unit vectors drawn with
    `jax.random.PRNGKey(0)`, times the scale."""
    axes = np.repeat(np.eye(n_states), 2, axis=0) * np.tile([1.0, -1.0], n_states)[:, None]
    rand = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (n_random, n_states), jnp.float64))
    rand = rand / np.linalg.norm(rand, axis=1, keepdims=True)
    dirs = np.concatenate([axes, rand])
    return jnp.asarray(np.concatenate([s * dirs for s in scales]), dtype)


class Basin(NamedTuple):
    """What :func:`basin` returns: `fraction` of the test states that converge; per state `(n,)`: `converged`,
    `error` ($\\max|x_t - x^\\dagger|$ over the last `hold` steps, inf for a diverged run); the states `x0` `(n, k)`."""

    fraction: jax.Array
    converged: jax.Array
    error: jax.Array
    x0: jax.Array


def basin(spec, plant, params: AgentParams, g=0.0, *, T: int = 500, hold: int | None = None, tol: float = 1e-3,
          target=None, x0=None, exo=None) -> Basin:
    r"""The fraction of the fixed test set (:func:`basin_test_set`) whose closed loop converges to the target.

    **Arguments:**
    - `spec`, `params`, `g`, `plant`: the loop (as :func:`fixed_point`); each trajectory starts with the agent
      at rest ($h_0 = 0$) and is stepped `T` times without noise (delayed timing);
    - `hold`: the last steps over which $\max|x_t - x^\dagger| \le$ `tol` must hold (default `T // 10`);
    - `target`: $x^\dagger$ `(k,)`, default the origin (e.g. `fixed_point(...).s[:k]` for a loop with a nonzero
      equilibrium); `x0`: other initial states `(n, k)`; `exo`: a constant exogenous input `(n_exo,)`.

    **Returns:** a :class:`Basin`. Angles are not wrapped: a pendulum that swings over to $2\pi$ does not converge.
    """
    core = make_core(spec, params, g)
    dtype = core.dtype or _param_dtype(params)
    k = plant.n_states
    x0 = basin_test_set(k, dtype=dtype) if x0 is None else jnp.asarray(x0, dtype)
    target = jnp.zeros((k,), dtype) if target is None else jnp.asarray(target, dtype)
    hold = max(1, T // 10) if hold is None else hold
    e = None if exo is None else jnp.broadcast_to(jnp.asarray(exo, dtype), (T, x0.shape[0], jnp.size(exo)))

    @jax.jit
    def run(x0, target, e):
        traj = rollout(core, plant, x0, T, exo=e, emit=("x_next",))
        dev = jnp.abs(traj.x_next[T - hold:] - target)  # (hold, n, k)
        error = jnp.max(jnp.where(jnp.isfinite(dev), dev, jnp.inf), axis=(0, 2))
        converged = error <= tol
        return Basin(jnp.mean(converged.astype(dtype)), converged, error, x0)

    return run(x0, target, e)


def _broadcast_params(params: AgentParams):
    """`(AgentParams with one leading axis L on every array, L)`: frozen parameters (no leading axis) are
    broadcast to the batch of the trained ones (as :func:`loopdyn.system.jacobian_spectra` does)."""
    present = params.present()
    lead = max((np.shape(v)[:-2] for v in present.values()), key=len)
    n = int(np.prod(lead)) if lead else 1
    flat = {k: np.broadcast_to(np.asarray(v), lead + np.shape(v)[-2:]).reshape((n,) + np.shape(v)[-2:])
            for k, v in present.items()}
    return AgentParams.of({k: jnp.asarray(v) for k, v in flat.items()}), n


@partial(jax.jit, static_argnames=("spec", "plant", "max_iter"))
def _fixed_points(spec, plant, params, g, max_iter):
    return jax.vmap(lambda q: fixed_point(spec, plant, q, g, max_iter=max_iter))(params)


@partial(jax.jit, static_argnames=("spec", "plant", "T"))
def _basin_fractions(spec, plant, params, g, x0, T, tol):
    return jax.vmap(lambda q: basin(spec, plant, q, g, T=T, tol=tol, x0=x0).fraction)(params)


def fixed_points(spec, plant, params: AgentParams, g=0.0, *, max_iter: int = 50) -> FixedPoint:
    r""":func:`fixed_point` (guess: the origin) for a batch of parameter sets, e.g. every checkpoint of a run:
    `params` arrays share one leading axis `L` (frozen ones without it are broadcast). One compilation per
    agent and plant. **Returns:** a :class:`FixedPoint` with leading axis `L`."""
    batch, _ = _broadcast_params(params)
    return _fixed_points(spec, plant, batch, jnp.asarray(g, _param_dtype(batch)), max_iter)


def basin_fractions(spec, plant, params: AgentParams, g=0.0, *, T: int = 500, tol: float = 1e-3) -> np.ndarray:
    r"""`basin(...).fraction` (the fixed test set, target the origin) for a batch of parameter sets, as
    :func:`fixed_points`; `(L,)` float64."""
    batch, _ = _broadcast_params(params)
    dtype = _param_dtype(batch)
    x0 = basin_test_set(plant.n_states, dtype=dtype)
    return np.asarray(_basin_fractions(spec, plant, batch, jnp.asarray(g, dtype), x0, T, jnp.asarray(tol, dtype)),
                      np.float64)


@partial(jax.jit, static_argnames=("spec", "plant"))
def _origin_residuals(spec, plant, params, g):
    def one(q):
        F = loop_step(spec, plant, q, g)
        s0 = jnp.zeros((plant.n_states + make_core(spec, q, g).hidden_dim,), _param_dtype(q))
        return jnp.max(jnp.abs(F(s0).astype(s0.dtype)))

    return jax.vmap(one)(params)


def origin_residuals(spec, plant, params: AgentParams, g=0.0) -> np.ndarray:
    r"""$\max|F(0)|$ of the loop's one-step map at the origin for a batch of parameter sets (as :func:`fixed_points`):
    0 where the origin is the loop's equilibrium, so that Newton's method from there stops at once with
    $s^* = 0$ and $P = J(0)$ (what :func:`loopdyn.system.jacobian_spectra` computes in closed form). `(L,)`."""
    batch, _ = _broadcast_params(params)
    return np.asarray(_origin_residuals(spec, plant, batch, jnp.asarray(g, _param_dtype(batch))))


@partial(jax.jit, static_argnames=("spec", "plant", "T", "timing"))
def _range_exits(spec, plant, params, g, x0, T, timing):
    traj = rollout(make_core(spec, params, g), plant, x0, T, timing=timing, emit=("x_next",))
    inside = plant.in_range(traj.x_next) & jnp.all(jnp.isfinite(traj.x_next), axis=-1)
    return jnp.mean(~jnp.all(inside, axis=0))


def range_exits(spec, plant, params: AgentParams, g, x0, T: int, timing: str = "delayed") -> float:
    r"""The fraction of the closed-loop trajectories from `x0` `(n, k)` (`T` noise-free steps, agent at rest) whose
    state leaves the plant's valid range (:meth:`loopdyn.plants.Plant.in_range`) or stops being finite."""
    dtype = _param_dtype(params)
    return float(_range_exits(spec, plant, params, jnp.asarray(g, dtype), jnp.asarray(x0, dtype), T, timing))
