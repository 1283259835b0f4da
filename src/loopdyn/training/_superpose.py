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
unstable loop stays finite); each episode's states are rebuilt as $\sum_k c_{bk} X_{tk}$, and an episode
whose rebuilt states stay within $[-\text{clamp}, \text{clamp}]$ never meets the clamp: its $q_b$ is exact.
Three branches, chosen every epoch (a `lax.switch`: only the branch taken runs, forward and backward):
every episode fits — superposition alone; at most :func:`capacity` episodes do not — those few are rolled
out as they are (on the clamped plant) and the others superposed; more, or a basis state at the guard —
the whole batch is rolled out. In a vmapped ensemble the branch is chosen for all runs of the block
together (the most demanding one, `problem.run_axis`), so that it stays a branch rather than a select of all.
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


CAPACITY = 16
"""Most episodes of a batch rolled out one by one beside the superposition (:func:`capacity`)."""


def capacity(batch: int) -> int:
    """Episodes of a batch of `batch` that may be rolled out beside the superposition: :data:`CAPACITY`,
    at most half the batch (beyond that the whole batch costs hardly more)."""
    return max(1, min(CAPACITY, batch // 2))


def all_runs(problem, ok):
    """`ok` for every run of the vmapped block (`problem.run_axis`), or `ok` itself outside one."""
    if problem.run_axis is None:
        return ok
    return lax.pmin(ok.astype(jnp.int32), problem.run_axis) > 0


def _outside(problem, states, coef):
    """`(finite, outside)`: whether no basis state reached the guard, and per episode whether a rebuilt
    state leaves the clamp `(batch,)`."""
    states = lax.stop_gradient(states)
    finite = jnp.all(jnp.abs(states) < GUARD)
    clamp = problem.plant.clamp
    if clamp <= 0:
        return finite, jnp.zeros(coef.shape[0], bool)
    rebuilt = jnp.einsum("bk,tks->tbs", lax.stop_gradient(coef), states)
    return finite, jnp.any(jnp.abs(rebuilt) > clamp, axis=(0, 2))


def fits(problem, states, coef):
    """Whether the superposition of the basis `states (T, n_basis, k)` with `coef (batch, n_basis)` is exact
    for the whole batch (of every run of the block): no basis state at the guard, no rebuilt state
    outside the clamp."""
    finite, outside = _outside(problem, states, coef)
    return all_runs(problem, finite & ~jnp.any(outside))


def _mixed(problem, states, episode, superposed_sq, plain_sq, operands):
    """Per-episode squared-error sums `(batch,)` by the branch the clamp allows (module docstring).

    `superposed_sq(*operands)` gives every episode's superposed $q_b$; `plain_sq(episode, *operands)` those
    of episodes rolled out as they are."""
    finite, outside = _outside(problem, states, episode.coef)
    k = capacity(episode.batch)
    n = jnp.sum(outside)
    branch = jnp.where(~finite | (n > k), 2, jnp.where(n > 0, 1, 0)).astype(jnp.int32)
    if problem.run_axis is not None:
        branch = lax.pmax(branch, problem.run_axis)
    pick = jnp.argsort(~outside, stable=True)[:k]  # the episodes outside first
    subset = jax.tree.map(lambda a, axis: jnp.take(a, pick, axis=axis), episode, type(episode)(0, 1, 0))

    def partial(*ops):
        q = superposed_sq(*ops)
        return q.at[pick].set(jnp.where(outside[pick], plain_sq(subset, *ops), q[pick]))

    # a branch's residuals are allocated whichever branch runs: the rolled-out ones recompute theirs
    return lax.switch(branch, [superposed_sq, jax.checkpoint(partial),
                               jax.checkpoint(lambda *ops: plain_sq(episode, *ops))], *operands)


def closed_basis(problem, core) -> Basis:
    """Roll the task's basis episodes out in closed loop with `core`."""
    task = problem.task
    ep = task.basis_episode(problem.dtype)
    traj = rollout(core, _guarded(problem.plant), ep.x0, task.T, exo=ep.exo, timing=task.timing, emit=("x_next",))
    return Basis(traj.x_next, _gram(task.errors(traj, ep)))


def _closed_sq(problem, core, episode):
    """Squared-error sums of closed-loop episodes rolled out as they are."""
    task = problem.task
    traj = rollout(core, problem.plant, episode.x0, task.T, exo=episode.exo, timing=task.timing, emit=task.emit)
    return jnp.sum(task.errors(traj, episode) ** 2, axis=(0, 2))


def closed_loop_loss(problem, params, hyper, episode):
    """The closed-loop training loss of `episode` by superposition (episodes that may meet the clamp
    rolled out as they are).

    **Returns:** `(loss, basis)`, the basis (gradient stopped) for the epoch's evaluation."""
    task = problem.task
    basis = closed_basis(problem, make_core(problem.spec, params, hyper.g))
    q = _mixed(problem, basis.states, episode,
               lambda gram, p: quadratic(gram, episode.coef),
               lambda ep, gram, p: _closed_sq(problem, make_core(problem.spec, p, hyper.g), ep),
               (basis.gram, params))
    return task.loss_scale * jnp.mean(q), lax.stop_gradient(basis)


def teacher_drive(problem, teacher_core):
    """The teacher's closed loop on the basis episodes (`x_next`, `u`, `inputs`; no gradient)."""
    task = problem.task
    ep = task.basis_episode(problem.dtype)
    drive = rollout(teacher_core, _guarded(problem.plant), ep.x0, task.T, exo=ep.exo, timing=task.timing,
                    emit=("x_next", "u", "inputs"))
    return lax.stop_gradient(drive)


def _imitation_sq(problem, student_core, teacher_core, episode):
    """Squared imitation-error sums of episodes the teacher drives as they are."""
    task = problem.task
    drive = rollout(teacher_core, problem.plant, episode.x0, task.T, exo=episode.exo, timing=task.timing,
                    emit=("u", "inputs"))
    drive = lax.stop_gradient(drive)
    student = rollout(student_core, None, exo=drive.inputs, timing=task.timing, emit=("u",))
    return jnp.sum((student.u - drive.u) ** 2, axis=(0, 2))


def teacher_driven_loss(problem, params, hyper, episode, teacher_core, drive=None):
    """The open-loop imitation loss of `episode` by superposition: the teacher drives the basis episodes
    (`drive`, from :func:`teacher_drive` when `None`), the student imitates its actions on the inputs it
    saw (episodes whose teacher-driven states may meet the clamp rolled out as they are)."""
    task = problem.task
    drive = teacher_drive(problem, teacher_core) if drive is None else drive
    student = rollout(make_core(problem.spec, params, hyper.g), None, exo=drive.inputs, timing=task.timing, emit=("u",))
    gram = _gram(student.u - drive.u)
    q = _mixed(problem, drive.x_next, episode,
               lambda gram, p: quadratic(gram, episode.coef),
               lambda ep, gram, p: _imitation_sq(problem, make_core(problem.spec, p, hyper.g), teacher_core, ep),
               (gram, params))
    return task.imitation_scale * jnp.mean(q)


def closed_loop_sq(problem, core, episode, basis=None):
    """Squared-error sums $q_b$ `(batch,)` of closed-loop `episode`s (forward only): by superposition of
    `basis` (rolled out here when `None`), episodes that may meet the clamp rolled out as they are."""
    basis = closed_basis(problem, core) if basis is None else basis
    return _mixed(problem, basis.states, episode, lambda gram: quadratic(gram, episode.coef),
                  lambda ep, gram: _closed_sq(problem, core, ep), (basis.gram,))
