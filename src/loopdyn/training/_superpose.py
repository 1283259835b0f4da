r"""Superposition: exact batch losses of linear loops from the rollouts of a few basis episodes.

A task whose episodes are superpositions of basis episodes (`task.superposable`; tracking: episode $b$
has the reference $\sum_k c_{bk} e_k$ and starts at rest) driven through a linear agent and a linear plant
without noise gives every episode the same superposition of the basis episodes' trajectories — as long as
the plant's clamp does not act. With $E_{tk}$ the basis episodes' errors (tracking errors in closed loop,
student-minus-teacher actions in open loop) and $G_{kl} = \sum_{t,d} E_{tkd} E_{tld}$ their Gram matrix,
episode $b$'s squared-error sum is $q_b = c_b^\top G c_b$ and the batch loss is
$s\,\operatorname{mean}_b q_b = s \operatorname{tr}(G S)$, $S = \operatorname{mean}_b c_b c_b^\top$: the loss and
gradient of the batch (to round-off) from $2K$ rollouts instead of `batch` (Ger & Barak 2025's tracking
task: 8 instead of 100). Every rollout is a :func:`loopdyn.system.rollout`.

The clamp. The basis episodes run on the plant with its clamp moved out to :data:`GUARD` (so that an
unstable loop stays finite); each episode's states are rebuilt as $\sum_k c_{bk} X_{tk}$ and the
superposition is used only if no basis state reached the guard and no rebuilt state leaves
$[-\text{clamp}, \text{clamp}]$ — then the clamp never acts and both computations agree. Otherwise the
batch is rolled out as it is. The choice is a `lax.cond` (only the branch taken runs, forward and
backward); in a vmapped ensemble it is made for all runs of the block together (`problem.run_axis`),
so that it stays a branch rather than a select of both.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..agents import make_core
from ..system import rollout

GUARD = 1e6
"""Clamp of the basis episodes' plant: far outside any task's clamp, it only keeps diverging loops finite."""


class Basis(NamedTuple):
    """The closed loop's basis episodes: `states (T, n_basis, k)`, plant states $x_{t+1}$ (clamp off,
    guarded), and `gram (n_basis, n_basis)`, the Gram matrix of their tracking errors."""

    states: jax.Array
    gram: jax.Array


def _guarded(plant):
    return dataclasses.replace(plant, clamp=GUARD)


def quadratic(gram, coef):
    """$q_b = c_b^\\top G c_b$ for `coef (batch, n_basis)`."""
    return jnp.einsum("bk,kl,bl->b", coef, gram, coef)


def _gram(errors):
    return jnp.einsum("tkd,tld->kl", errors, errors)


def all_runs(problem, ok):
    """`ok` for every run of the vmapped block (`problem.run_axis`), or `ok` itself outside one."""
    if problem.run_axis is None:
        return ok
    return lax.pmin(ok.astype(jnp.int32), problem.run_axis) > 0


def fits(problem, states, coef):
    """Whether the superposition of the basis `states (T, n_basis, k)` with `coef (batch, n_basis)` is exact:
    no basis state at the guard and every rebuilt state within the plant's clamp (module docstring)."""
    states = lax.stop_gradient(states)
    ok = jnp.all(jnp.abs(states) < GUARD)
    clamp = problem.plant.clamp
    if clamp > 0:
        rebuilt = jnp.einsum("bk,tks->tbs", lax.stop_gradient(coef), states)
        ok &= jnp.all(jnp.abs(rebuilt) <= clamp)
    return all_runs(problem, ok)


def closed_basis(problem, core) -> Basis:
    """Roll the task's basis episodes out in closed loop with `core`."""
    task = problem.task
    ep = task.basis_episode(problem.dtype)
    traj = rollout(core, _guarded(problem.plant), ep.x0, task.T, exo=ep.exo, timing=task.timing, emit=("x_next",))
    return Basis(traj.x_next, _gram(task.errors(traj, ep)))


def closed_loop_loss(problem, params, hyper, episode):
    """The closed-loop training loss of `episode` by superposition (or plainly where the clamp may act).

    **Returns:** `(loss, basis)`, the basis (gradient stopped) for the epoch's evaluation."""
    task = problem.task
    core = make_core(problem.spec, params, hyper.g)
    basis = closed_basis(problem, core)
    ok = fits(problem, basis.states, episode.coef)

    def superposed(gram):
        return task.loss_scale * jnp.mean(quadratic(gram, episode.coef))

    @jax.checkpoint  # a branch's residuals are allocated whichever branch runs: keep the rare one's small
    def plain(gram, params):
        traj = rollout(make_core(problem.spec, params, hyper.g), problem.plant, episode.x0, task.T, exo=episode.exo,
                       timing=task.timing, emit=task.emit)
        return task.episode_loss(traj, episode, hyper.beta)

    loss = lax.cond(ok, lambda gram, params: superposed(gram), plain, basis.gram, params)
    return loss, lax.stop_gradient(basis)


def teacher_drive(problem, teacher_core):
    """The teacher's closed loop on the basis episodes (`x_next`, `u`, `inputs`; no gradient)."""
    task = problem.task
    ep = task.basis_episode(problem.dtype)
    drive = rollout(teacher_core, _guarded(problem.plant), ep.x0, task.T, exo=ep.exo, timing=task.timing,
                    emit=("x_next", "u", "inputs"))
    return lax.stop_gradient(drive)


def teacher_driven_loss(problem, params, hyper, episode, teacher_core, plain_loss, drive=None):
    """The open-loop imitation loss of `episode` by superposition: the teacher drives the basis episodes
    (`drive`, from :func:`teacher_drive` when `None`), the student imitates its actions on the inputs it
    saw; `plain_loss()` where the clamp may act."""
    task = problem.task
    drive = teacher_drive(problem, teacher_core) if drive is None else drive
    ok = fits(problem, drive.x_next, episode.coef)
    student = rollout(make_core(problem.spec, params, hyper.g), None, exo=drive.inputs, timing=task.timing, emit=("u",))
    gram = _gram(student.u - drive.u.astype(student.u.dtype))

    def superposed(gram):
        return task.imitation_scale * jnp.mean(quadratic(gram, episode.coef))

    return lax.cond(ok, superposed, jax.checkpoint(lambda gram: plain_loss()), gram)


def closed_loop_sq(problem, core, episode, basis=None):
    """Squared-error sums $q_b$ `(batch,)` of closed-loop `episode`s (forward only): by superposition of
    `basis` (rolled out here when `None`), or plainly where the clamp may act."""
    task = problem.task
    basis = closed_basis(problem, core) if basis is None else basis
    ok = fits(problem, basis.states, episode.coef)

    def plain():
        traj = rollout(core, problem.plant, episode.x0, task.T, exo=episode.exo, timing=task.timing, emit=task.emit)
        return jnp.sum(task.errors(traj, episode) ** 2, axis=(0, 2))

    return lax.cond(ok, lambda: quadratic(basis.gram, episode.coef), plain)
