r"""Training modes: what an epoch's loss is (Ger & Barak 2025; spec §3).

A mode is a strategy with `loss(problem, params, constants, key) -> (loss, aux)` and
`prepare(problem, constants) -> constants` (what it computes once from the constants for all epochs of
a chunk, `RunConstants.prepared`): `params` the agent's full `AgentParams`, `aux` a :class:`LossAux` with what the loss already simulated that the epoch
reuses (the float64 gain moments of closed-loop trajectories, the closed loop's basis episodes). The modes
know tasks only through their interface (episodes, losses, timing; :mod:`loopdyn.tasks`). Every
simulation is a :func:`loopdyn.system.rollout`; for a superposable task with a linear agent
(`problem.superposed`) the closed-loop and teacher-driven losses are computed by superposition of basis
episodes (:mod:`loopdyn.training._superpose`, same loss and gradient).

- :class:`ClosedLoop` (`closed_loop`, spec §3.1-3.2, §3.4): the agent drives the plant through the task's
  episodes ($x_0 \sim U(-a, a)$; or a reference); the gradient flows through the plant. For regulation
  the gains are fitted on these training trajectories.
- Open loop (teacher-student, spec §3.3-3.4): a student imitates a teacher's actions, its own actions
  never act on the plant; the loss is the task's imitation MSE (regulation:
  $\mathcal L = dt \sum_{t<T} \operatorname{mean}_{b,j}\big(u^S_{t,b,j} - u^T_{t,b,j}\big)^2$; tracking: the
  same divided by T).

  - :class:`OpenLoopNoise` (`open_loop_noise`, the paper's open loop, Figs 1c/2): both nets receive the
    same i.i.d. inputs $\xi_t \sim \mathcal N(0, 1)$ at every $t = 0..T-1$; no plant at all.
  - :class:`OpenLoopTeacher` (`open_loop_teacher`): the teacher drives the plant through the task's
    episodes; the student sees its inputs (observations and references, with the same timing).
  - :class:`OpenLoopGain` (`open_loop_gain`): the teacher is a static state feedback $u^T = K x$ (code
    sign convention) driving the plant; as in the reference (its static-gain teacher), both actions are 0
    at $t = 0$, where the student cannot act yet ($h_0 = 0$).
- :class:`OpenLoopTarget` (`open_loop_target`, Ger & Barak 2026, spec §7.1): no plant and no teacher; the
  network's response to the task's inputs follows the task's target (:class:`loopdyn.tasks.ImpulseTarget`).

The training episodes come from `task.train_episode`: a fresh batch, or the quadrature batch of the
expected objective (:class:`loopdyn.tasks.Regulation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..agents import gain_core, make_core
from ..system import gain_moments, rollout
from . import _superpose


class LossAux(NamedTuple):
    """What a mode's loss hands the epoch besides the loss: `moments`, the float64 gain moments of the
    closed-loop trajectories it simulated (regulation), and `basis`, the closed loop's basis episodes
    (superposition), reused by the epoch's evaluation; `None` where not simulated."""

    moments: Any = None
    basis: Any = None


def imitation_loss(u_student, u_teacher, dt: float):
    """`dt sum_t mean_{b,j} (u_student - u_teacher)^2` over arrays `(T, batch, n_out)`."""
    return dt * jnp.sum(jnp.mean((u_student - u_teacher) ** 2, axis=tuple(range(1, u_student.ndim))))


@dataclass(frozen=True)
class ClosedLoop:
    """Closed-loop training: the gradient flows through the plant."""

    name: str = "closed_loop"

    def prepare(self, problem, consts):
        return consts

    def loss(self, problem, params, consts, key, horizon=None):
        """`horizon`: the episode length of this epoch (a curriculum over T, `schedule.T`), or `None` = `task.T`."""
        task, hp = problem.task, consts.hyper
        k_x, k_w = jax.random.split(key)
        episode = task.train_episode(k_x, problem.dtype)
        if problem.compress_batch and task.objective == "sampled":
            episode = episode._replace(x0=task.second_moment_batch(episode.x0))
        if problem.superposed:
            loss, basis = _superpose.closed_loop_loss(problem, params, hp, episode)
            return loss, LossAux(basis=basis)
        traj = rollout(make_core(problem.spec, params, hp.g), problem.plant, episode.x0, task.T, exo=episode.exo,
                       timing=task.timing, key=k_w if problem.noisy else None, noise=hp.noise,
                       emit=tuple(dict.fromkeys(task.emit + (("x", "u") if task.gains or problem.terms else ()))))
        moments = None
        if task.gains:  # sums over the `batch` states the episodes stand for (k states when compressed)
            moments = jax.tree.map(lambda a: a * (task.batch / episode.batch), gain_moments(traj.x, traj.u))
        loss = (task.episode_loss(traj, episode, hp.beta) if horizon is None
                else task.episode_loss(traj, episode, hp.beta, horizon=horizon))
        for term in problem.terms:  # further loss terms (quadratic forms when the batch is compressed)
            loss = loss + term(traj.x, traj.u)
        return loss, LossAux(moments=moments)


@dataclass(frozen=True)
class OpenLoopNoise:
    """Both nets driven by the same white noise, called at every step (no plant)."""

    name: str = "open_loop_noise"

    def prepare(self, problem, consts):
        return consts

    def loss(self, problem, params, consts, key):
        T, batch = problem.task.T, problem.task.batch
        xi = jax.random.normal(key, (T, batch, problem.spec.n_in), problem.dtype)
        g = consts.hyper.g
        student = rollout(make_core(problem.spec, params, g), None, exo=xi, timing="immediate", emit=("u",))
        teacher = rollout(make_core(problem.spec, consts.teacher, g), None, exo=xi, timing="immediate", emit=("u",))
        return problem.task.imitation_loss(student.u, lax.stop_gradient(teacher.u)), LossAux()


def _teacher_driven_loss(problem, params, consts, key, teacher_core, observe, drive=None):
    """The teacher drives the plant; the student, driven by the inputs the teacher's steps produced,
    imitates its actions (a gain teacher reads the state; the student then sees `C x`)."""
    task, hp = problem.task, consts.hyper
    k_x, k_w = jax.random.split(key)
    episode = task.train_episode(k_x, problem.dtype)

    def plain():
        drive = rollout(teacher_core, problem.plant, episode.x0, task.T, exo=episode.exo, observe=observe,
                        timing=task.timing, key=k_w if problem.noisy else None, noise=hp.noise, emit=("u", "inputs"))
        seen = drive.inputs if observe == "output" else problem.plant.observe(drive.inputs)
        student = rollout(make_core(problem.spec, params, hp.g), None, exo=lax.stop_gradient(seen), timing=task.timing,
                          emit=("u",))
        return task.imitation_loss(student.u, lax.stop_gradient(drive.u))

    if problem.superposed and observe == "output":
        return _superpose.teacher_driven_loss(problem, params, hp, episode, teacher_core, drive), LossAux()
    return plain(), LossAux()


@dataclass(frozen=True)
class OpenLoopTeacher:
    """The teacher RNN drives the plant; the student sees its observations."""

    name: str = "open_loop_teacher"

    def prepare(self, problem, consts):
        """The teacher's drive of the basis episodes (superposition): the same for every epoch."""
        if not problem.superposed or consts.prepared is not None:
            return consts
        core = make_core(problem.spec, consts.teacher, consts.hyper.g)
        return consts._replace(prepared=_superpose.teacher_drive(problem, core))

    def loss(self, problem, params, consts, key):
        core = make_core(problem.spec, consts.teacher, consts.hyper.g)
        return _teacher_driven_loss(problem, params, consts, key, core, "output", consts.prepared)


@dataclass(frozen=True)
class OpenLoopGain:
    """A static feedback `u = K x` drives the plant; the student sees the observations."""

    name: str = "open_loop_gain"

    def prepare(self, problem, consts):
        return consts

    def loss(self, problem, params, consts, key):
        return _teacher_driven_loss(problem, params, consts, key, gain_core(consts.teacher), "state")


@dataclass(frozen=True)
class OpenLoopTarget:
    """The network alone, driven by the task's inputs, follows the task's target; it is tested on the same
    loss without target noise. No closed loop is simulated (the task records no gains)."""

    name: str = "open_loop_target"

    def prepare(self, problem, consts):
        return consts

    def loss(self, problem, params, consts, key):
        return self.test(problem, params, consts.hyper, key), LossAux()

    def test(self, problem, params, hyper, key=None):
        task = problem.task
        traj = rollout(make_core(problem.spec, params, hyper.g), None, exo=task.inputs(problem.spec.n_in, problem.dtype),
                       timing=task.timing, emit=("u",))
        return task.train_loss(traj.u, key)


MODES = {m.name: m for m in (ClosedLoop(), OpenLoopNoise(), OpenLoopTeacher(), OpenLoopGain(), OpenLoopTarget())}
"""Training modes by their `train.mode` name."""
