r"""Exact learning dynamics in overlap space: discrete SGD and gradient flow of the Gram matrix
(Ger & Barak 2026; spec §7.2, §7.4).

A linear low-rank agent with $g = 0$ is fully described, for learning, by the Gram matrix $G = X^\top X$ of
$X = [m\;z\;U\;V]$: the loss is a function of the visible overlaps read from $G$, and the SGD step of the
vectors maps $G$ to $(I - \eta s C)^\top G (I - \eta s C)$ (:mod:`loopdyn.agents`, `gram_step`). Here:

- :func:`overlap_descent`: that step scanned (:func:`loopdyn.optim.gradient_descent` with the Gram
  optimiser, the trainer's step in the overlap representation), for any loss of $G$;
- :func:`gradient_flow`: its limit $\eta \to 0$, $\dot G = -s(G)\,(C^\top G + G C)$ in the flow time
  $\tau = \eta \times$ epochs, integrated with Diffrax (adaptive steps, dense output); $s$ is the clip factor
  $\min(1, c/\|\nabla_\theta\mathcal L\|)$, which only reparametrises time, so the conserved quantities of
  the unclipped flow (:func:`loopdyn.agents.conserved_quantities`) stay conserved;
- :func:`train_overlap_model`: the stage-3 β-continuation in overlap space (spec §4.5), the exact counterpart
  of :func:`loopdyn.theory.train_effective_model`'s plain gradient descent on the four visible overlaps.

SGD and the flow differ by $O(\eta)$ at a fixed flow time (one Euler step of the flow per epoch, and the
$O(\eta^2)$ term $\eta^2 C^\top G C$ of the step).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ..agents import AgentParams, GramLayout, gram_coefficients, gram_core, gram_gradient_sq_norm, gram_velocity
from ..optim import gradient_descent, init_optimizer, make_optimizer
from ..plants import double_integrator
from ..system import OVERLAP_NAMES, all_overlaps, effective_matrix, rollout, spectrum
from ..tasks import Regulation
from ._stage3 import betas_and_epoch_keys

RANK1 = GramLayout(1, 1, 1)
"""The Gram layout of a rank-1 agent with one input and one output (rows m, z, u, v)."""


def gram_episode_loss(G, x0, beta, T: int, *, layout: GramLayout = RANK1, plant=None, loss: str = "mean"):
    r"""The regulation training loss (spec §3.1) of an agent given by its Gram matrix, one batch `x0` `(batch, k)`:
    a :func:`loopdyn.system.rollout` of :func:`loopdyn.agents.gram_core` on `plant` (default the double
    integrator), $h_0 = 0$."""
    plant = double_integrator() if plant is None else plant
    traj = rollout(gram_core(G, layout), plant, x0, T)
    task = Regulation(n_states=plant.n_states, T=T, batch=x0.shape[0], loss=loss, dt=plant.dt)
    return task.train_loss(traj.x, traj.u, beta)


def overlap_descent(loss: Callable, G0, mask, *, lr, clip=0.0, clip_eps: float = 0.0, xs=None, steps: int | None = None):
    r"""Clipped SGD of the vectors, carried out exactly on their Gram matrix.

    **Arguments:** `loss(G, x) -> scalar` (or `loss(G)` without `xs`); `G0` `(d, d)`; `mask` `(d,)` (1 for
    trained columns, :meth:`loopdyn.agents.GramLayout.mask`); `lr`, `clip` (0 = off), `clip_eps`: as the
    trainer's optimiser; `xs`: per-step inputs (e.g. PRNG keys), leading axis = steps; `steps` without `xs`.

    **Returns:** `(trail, losses)`: Gram matrices after `0..steps` updates `(steps + 1, d, d)` and the loss of
    each step's starting point `(steps,)`.
    """
    G0 = jnp.asarray(G0)
    opt = make_optimizer("sgd", clip_eps, gram_mask=np.asarray(mask))
    state = init_optimizer(opt, G0, lr, clip)

    def objective(G, *x):
        return loss(G, *x), None

    return jax.jit(lambda g, s, x: gradient_descent(objective, g, opt, s, x, steps=steps))(G0, state, xs)


class Flow(NamedTuple):
    """Result of :func:`gradient_flow`: `ts` flow times, `G` `(len(ts), d, d)` and `loss` there, `steps` the
    solver's accepted steps, and `solution` (the Diffrax solution; `solution.evaluate(t)` is the dense output)."""

    ts: np.ndarray
    G: np.ndarray
    loss: np.ndarray
    steps: int
    solution: object


def flow_velocity(loss: Callable, G, mask, clip=0.0, clip_eps: float = 0.0):
    r"""$\dot G = -s\,(C^\top G + G C)$ with $C = (F + F^\top)M$, $F = \partial\mathcal L/\partial G$, and the clip
    factor $s$ of :func:`loopdyn.optim.gram_sgd` (1 for `clip = 0`)."""
    C = gram_coefficients(jax.grad(loss)(G), jnp.asarray(mask, G.dtype))
    norm = jnp.sqrt(gram_gradient_sq_norm(G, C))
    if clip_eps > 0:
        s = jnp.where(clip > 0, jnp.minimum(clip / (norm + clip_eps), 1.0), 1.0)
    else:
        s = jnp.where((clip > 0) & (norm >= clip), clip / norm, 1.0)
    return s * gram_velocity(G, C)


def gradient_flow(loss: Callable, G0, mask, t1: float, *, ts=None, clip: float = 0.0, clip_eps: float = 0.0,
                  rtol: float = 1e-10, atol: float = 1e-12, solver=None, max_steps: int = 100_000) -> Flow:
    r"""Integrate the gradient flow of the overlaps from $G_0$ over flow time $[0, t_1]$ (module docstring).

    **Arguments:** `loss(G) -> scalar`, a deterministic loss (e.g. the expected loss, or one fixed batch);
    `G0` `(d, d)` float64; `mask` `(d,)`; `t1`: final flow time ($\eta$ times epochs); `ts`: times to save
    (default 101 points); `clip`, `clip_eps`: as :func:`overlap_descent`; `rtol`, `atol`: the adaptive step
    controller's tolerances (`diffrax.PIDController`); `solver`: a Diffrax solver (default `Tsit5`);
    `max_steps`: the solver's step budget.

    **Returns:** :class:`Flow`.
    """
    G0 = jnp.asarray(G0, jnp.float64)
    ts = np.linspace(0.0, t1, 101) if ts is None else np.asarray(ts, np.float64)
    mask = np.asarray(mask, np.float64)

    def field(t, G, args):
        return flow_velocity(loss, G, mask, clip, clip_eps)

    sol = _solve(diffrax.ODETerm(field), solver or diffrax.Tsit5(), float(t1), G0, jnp.asarray(ts), rtol, atol, max_steps)
    G = np.asarray(sol.ys)
    return Flow(ts, G, np.asarray(jax.vmap(loss)(sol.ys)), int(sol.stats["num_accepted_steps"]), sol)


@partial(jax.jit, static_argnames=("term", "solver", "max_steps"))
def _solve(term, solver, t1, G0, ts, rtol, atol, max_steps):
    return diffrax.diffeqsolve(term, solver, t0=0.0, t1=t1, dt0=None, y0=G0,
                               stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                               saveat=diffrax.SaveAt(ts=ts, dense=True), max_steps=max_steps)


class OverlapTraining(NamedTuple):
    """Result of :func:`train_overlap_model`; a leading `beta` axis when several β were given.

    - `loss` `(..., epochs)`: training loss of epoch `e`, from `gram[e]` before its update;
    - `gram` `(..., epochs + 1, 4, 4)`: Gram matrices of m, z, u, v after `e` updates;
    - `sigma` `(..., epochs + 1, 4)`: the visible overlaps $(\\sigma_{zm}, \\sigma_{zu}, \\sigma_{vm}, \\sigma_{vu})$;
    - `eigenvalues` complex `(..., 4)`: spectrum of the final $P_{\\rm eff}$, decreasing modulus.
    """

    loss: np.ndarray
    gram: np.ndarray
    sigma: np.ndarray
    eigenvalues: np.ndarray


def train_overlap_model(G_start, *, trainable=("z", "U", "V"), key=None, epoch_keys=None, epochs: int = 1000,
                        lr: float = 0.01, clip: float = 1.0, clip_eps: float = 0.0, batch: int = 100, T: int = 50,
                        beta=0.0, x0_range: float = 2.0) -> OverlapTraining:
    r"""The rank-1 agent on the double integrator trained exactly in overlap space (spec §4.5, §7.4).

    The same protocol as :func:`loopdyn.theory.train_effective_model` (fresh $x_0 \sim U(-a, a)^2$ each epoch
    from `epoch_keys`, the `mean` loss, clipped SGD), but the step is that of SGD on the vectors named in
    `trainable`, mapped onto their Gram matrix: it reproduces the full N-dimensional model to round-off.

    **Arguments:** `G_start` `(4, 4)`: Gram matrix of $m, z, u, v$ (:func:`loopdyn.agents.gram_matrix` of the
    full model's parameters); `trainable`: the trained vectors; the rest as `train_effective_model`.

    **Returns:** :class:`OverlapTraining`.
    """
    G0 = jnp.asarray(G_start, jnp.float64)
    if G0.shape != (4, 4):
        raise ValueError(f"G_start must have shape (4, 4), got {G0.shape}")
    betas, keys = betas_and_epoch_keys(beta, key, epoch_keys, epochs, jnp.float64)
    loss, gram = _train(G0, keys, betas, jnp.asarray(lr, jnp.float64), jnp.asarray(clip, jnp.float64),
                        jnp.asarray(x0_range, jnp.float64), mask=tuple(RANK1.mask(trainable)), clip_eps=clip_eps,
                        batch=batch, T=T)
    loss, gram = np.asarray(loss), np.asarray(gram)
    ov = all_overlaps(AgentParams(G=gram))
    sigma = np.stack([ov[k] for k in OVERLAP_NAMES], axis=-1)
    final = sigma[..., -1, :]
    lam = spectrum(effective_matrix(*(final[..., i] for i in range(4))))
    return OverlapTraining(loss, gram, sigma, lam)


@partial(jax.jit, static_argnames=("mask", "clip_eps", "batch", "T"))
def _train(G0, keys, betas, lr, clip, x0_range, *, mask, clip_eps, batch, T):
    task = Regulation(n_states=2, T=T, batch=batch, x0_range=x0_range, loss="mean")
    opt = make_optimizer("sgd", clip_eps, gram_mask=np.asarray(mask))

    def run(b):
        def objective(G, k):
            return gram_episode_loss(G, task.sample_x0(k, batch, G.dtype), b, T), None

        trail, loss = gradient_descent(objective, G0, opt, init_optimizer(opt, G0, lr, clip), keys)
        return loss, trail

    return jax.vmap(run)(betas) if betas.ndim else run(betas)
