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
Branches chosen every epoch (a `lax.switch`: only the branch taken runs, forward and backward): every
episode fits — superposition alone; a few do not — the smallest of the :func:`capacities` that holds them
is rolled out as it is (on the clamped plant; the episodes outside first) and the others superposed; more
than half the batch, or a basis state at the guard — the whole batch is rolled out. In a vmapped
ensemble the branch is chosen for all runs of the block together (the most demanding one,
`problem.run_axis`), so that it stays a branch rather than a select of all: every run of the block then
pays for the episodes of the one that needs most, which is why the partial branches come in sizes (a good
tracker grazes the clamp with one to four episodes of a batch of 100 in about half its epochs).
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


CAPACITIES = (4, 16)
"""Sizes of the partial branches: how many episodes of a batch may be rolled out beside the superposition."""


def capacities(batch: int) -> tuple[int, ...]:
    """The partial branches' sizes for a batch of `batch` episodes: :data:`CAPACITIES`, none above half the
    batch (beyond that the whole batch costs hardly more)."""
    top = max(1, batch // 2)
    return tuple(sorted({min(k, top) for k in CAPACITIES}))


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
    sizes = capacities(episode.batch)
    n = jnp.sum(outside)
    # 0: superposition alone; i + 1: the partial branch of sizes[i], the smallest that holds the n outside;
    # len(sizes) + 1: the whole batch
    branch = jnp.where(n > 0, 1 + jnp.searchsorted(jnp.asarray(sizes), n), 0)
    branch = jnp.where(finite, branch, len(sizes) + 1).astype(jnp.int32)
    if problem.run_axis is not None:
        branch = lax.pmax(branch, problem.run_axis)
    order = jnp.argsort(~outside, stable=True)  # the episodes outside first

    def partial(k):
        pick = order[:k]
        subset = jax.tree.map(lambda a, axis: jnp.take(a, pick, axis=axis), episode, type(episode)(0, 1, 0))

        def sq(*ops):
            q = superposed_sq(*ops)
            return q.at[pick].set(jnp.where(outside[pick], plain_sq(subset, *ops), q[pick]))

        return sq

    return lax.switch(branch, [superposed_sq, *map(partial, sizes), lambda *ops: plain_sq(episode, *ops)], *operands)


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


# The residuals of every branch of a differentiated `lax.switch` are allocated (and zero-filled) whichever
# branch runs: the rolled-out episodes' T x episodes x N activations would stream through memory every
# epoch. Their branches recompute them in the backward pass instead (`jax.checkpoint`); what does not
# depend on the parameters (the teacher's drive) is computed once, outside it.
def _closed_sq_remat(problem, params, g, episode):
    return jax.checkpoint(lambda p, ep: _closed_sq(problem, make_core(problem.spec, p, g), ep))(params, episode)


def closed_loop_loss(problem, params, hyper, episode):
    """The closed-loop training loss of `episode` by superposition (episodes that may meet the clamp
    rolled out as they are).

    **Returns:** `(loss, basis)`, the basis (gradient stopped) for the epoch's evaluation."""
    task = problem.task
    basis = closed_basis(problem, make_core(problem.spec, params, hyper.g))
    q = _mixed(problem, basis.states, episode,
               lambda gram, p: quadratic(gram, episode.coef),
               lambda ep, gram, p: _closed_sq_remat(problem, p, hyper.g, ep),
               (basis.gram, params))
    return task.loss_scale * jnp.mean(q), lax.stop_gradient(basis)


def teacher_drive(problem, teacher_core):
    """The teacher's closed loop on the basis episodes (`x_next`, `u`, `inputs`; no gradient)."""
    task = problem.task
    ep = task.basis_episode(problem.dtype)
    drive = rollout(teacher_core, _guarded(problem.plant), ep.x0, task.T, exo=ep.exo, timing=task.timing,
                    emit=("x_next", "u", "inputs"))
    return lax.stop_gradient(drive)


def _imitation_sq(problem, params, g, teacher_core, episode):
    """Squared imitation-error sums of episodes the teacher drives as they are (the student's rollout
    recomputed in the backward pass, the teacher's drive computed once)."""
    task = problem.task
    drive = rollout(teacher_core, problem.plant, episode.x0, task.T, exo=episode.exo, timing=task.timing,
                    emit=("u", "inputs"))
    drive = lax.stop_gradient(drive)

    def student_sq(p, inputs, u_teacher):
        student = rollout(make_core(problem.spec, p, g), None, exo=inputs, timing=task.timing, emit=("u",))
        return jnp.sum((student.u - u_teacher) ** 2, axis=(0, 2))

    return jax.checkpoint(student_sq)(params, drive.inputs, drive.u)


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
               lambda ep, gram, p: _imitation_sq(problem, p, hyper.g, teacher_core, ep),
               (gram, params))
    return task.imitation_scale * jnp.mean(q)


def closed_loop_sq(problem, core, episode, basis=None):
    """Squared-error sums $q_b$ `(batch,)` of closed-loop `episode`s (forward only): by superposition of
    `basis` (rolled out here when `None`), episodes that may meet the clamp rolled out as they are."""
    basis = closed_basis(problem, core) if basis is None else basis
    return _mixed(problem, basis.states, episode, lambda gram: quadratic(gram, episode.coef),
                  lambda ep, gram: _closed_sq(problem, core, ep), (basis.gram,))
