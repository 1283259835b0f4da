r"""Training modes: what an epoch's loss is (Ger & Barak 2025; spec §3).

A mode is a strategy with `loss(problem, params, constants, key) -> (loss, moments)`: `params` the
agent's full `AgentParams`, `moments` the float64 gain moments of closed-loop trajectories that the
loss already simulated (`None` when it simulated none). Every simulation is a :func:`loopdyn.system.rollout`.

- :class:`ClosedLoop` (`closed_loop`, spec §3.1-3.2): the agent drives the plant from $x_0 \sim U(-a, a)$;
  the gradient flows through the plant. The gains are fitted on these training trajectories.
- Open loop (teacher-student, spec §3.3): a student imitates a teacher's actions, its own actions never
  act on the plant; the loss is the reference's imitation MSE
  $\mathcal L = dt \sum_{t<T} \operatorname{mean}_{b,j}\big(u^S_{t,b,j} - u^T_{t,b,j}\big)^2$.

  - :class:`OpenLoopNoise` (`open_loop_noise`, the paper's open loop, Figs 1c/2): both nets receive the
    same i.i.d. inputs $\xi_t \sim \mathcal N(0, 1)$ at every $t = 0..T-1$; no plant at all.
  - :class:`OpenLoopTeacher` (`open_loop_teacher`): the teacher drives the plant from $x_0 \sim U(-a, a)$;
    the student sees its observations (with the same timing as the closed loop).
  - :class:`OpenLoopGain` (`open_loop_gain`): the teacher is a static state feedback $u^T = K x$ (code
    sign convention) driving the plant; as in the reference (its static-gain teacher), both actions are 0
    at $t = 0$, where the student cannot act yet ($h_0 = 0$).
- :class:`OpenLoopTarget` (`open_loop_target`, Ger & Barak 2026, spec §7.1): no plant and no teacher; the
  network's response to the task's inputs follows the task's target (:class:`loopdyn.tasks.ImpulseTarget`).

The initial states of the plant come from `task.train_x0`: a fresh batch, or the quadrature batch of the
expected objective (:class:`loopdyn.tasks.Regulation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax

from ..agents import gain_core, make_core
from ..system import gain_moments, rollout


def imitation_loss(u_student, u_teacher, dt: float):
    """`dt sum_t mean_{b,j} (u_student - u_teacher)^2` over arrays `(T, batch, n_out)`."""
    return dt * jnp.sum(jnp.mean((u_student - u_teacher) ** 2, axis=tuple(range(1, u_student.ndim))))


@dataclass(frozen=True)
class ClosedLoop:
    """Closed-loop training: the gradient flows through the plant."""

    name: str = "closed_loop"

    def loss(self, problem, params, consts, key):
        task, hp = problem.task, consts.hyper
        k_x, k_w = jax.random.split(key)
        x0 = task.train_x0(k_x, problem.dtype)
        if problem.compress_batch and task.objective == "sampled":
            x0 = task.second_moment_batch(x0)
        traj = rollout(make_core(problem.spec, params, hp.g), problem.plant, x0, task.T, timing=task.timing,
                       key=k_w if problem.noisy else None, noise=hp.noise)
        return task.train_loss(traj.x, traj.u, hp.beta), gain_moments(traj.x, traj.u)


@dataclass(frozen=True)
class OpenLoopNoise:
    """Both nets driven by the same white noise, called at every step (no plant)."""

    name: str = "open_loop_noise"

    def loss(self, problem, params, consts, key):
        T, batch = problem.task.T, problem.task.batch
        xi = jax.random.normal(key, (T, batch, problem.spec.n_in), problem.dtype)
        g = consts.hyper.g
        student = rollout(make_core(problem.spec, params, g), None, exo=xi, timing="immediate", emit=("u",))
        teacher = rollout(make_core(problem.spec, consts.teacher, g), None, exo=xi, timing="immediate", emit=("u",))
        return imitation_loss(student.u, lax.stop_gradient(teacher.u), problem.plant.dt), None


def _teacher_driven_loss(problem, params, consts, key, teacher_core, observe):
    """The teacher drives the plant; the student, driven by the observations the teacher's steps produced,
    imitates its actions (a gain teacher reads the state; the student then sees `C x`)."""
    task, hp = problem.task, consts.hyper
    k_x, k_w = jax.random.split(key)
    x0 = task.train_x0(k_x, problem.dtype)
    drive = rollout(teacher_core, problem.plant, x0, task.T, observe=observe, timing=task.timing,
                    key=k_w if problem.noisy else None, noise=hp.noise, emit=("u", "inputs"))
    seen = drive.inputs if observe == "output" else drive.inputs @ jnp.asarray(problem.plant.C, problem.dtype).T
    student = rollout(make_core(problem.spec, params, hp.g), None, exo=lax.stop_gradient(seen), timing=task.timing,
                      emit=("u",))
    return imitation_loss(student.u, lax.stop_gradient(drive.u), problem.plant.dt), None


@dataclass(frozen=True)
class OpenLoopTeacher:
    """The teacher RNN drives the plant; the student sees its observations."""

    name: str = "open_loop_teacher"

    def loss(self, problem, params, consts, key):
        core = make_core(problem.spec, consts.teacher, consts.hyper.g)
        return _teacher_driven_loss(problem, params, consts, key, core, "output")


@dataclass(frozen=True)
class OpenLoopGain:
    """A static feedback `u = K x` drives the plant; the student sees the observations."""

    name: str = "open_loop_gain"

    def loss(self, problem, params, consts, key):
        return _teacher_driven_loss(problem, params, consts, key, gain_core(consts.teacher), "state")


@dataclass(frozen=True)
class OpenLoopTarget:
    """The network alone, driven by the task's inputs, follows the task's target; it is tested on the same
    deterministic loss. No closed loop is simulated: its gain moments are NaN (no gains)."""

    name: str = "open_loop_target"

    def loss(self, problem, params, consts, key):
        k, m = problem.plant.n_states, problem.plant.n_controls
        nan = jnp.full((k, k + m), jnp.nan, jnp.float64)
        return self.test(problem, params, consts.hyper, key), (nan[:, :k], nan[:, k:])

    def test(self, problem, params, hyper, key=None):
        task = problem.task
        traj = rollout(make_core(problem.spec, params, hyper.g), None, exo=task.inputs(problem.spec.n_in, problem.dtype),
                       timing=task.timing, emit=("u",))
        return task.train_loss(traj.u, key)


MODES = {m.name: m for m in (ClosedLoop(), OpenLoopNoise(), OpenLoopTeacher(), OpenLoopGain(), OpenLoopTarget())}
"""Training modes by their `train.mode` name."""
