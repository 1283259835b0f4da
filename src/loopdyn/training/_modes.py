r"""Open-loop (teacher-student) training modes (spec §3.3).

A student imitates a teacher's actions; its own actions never act on the plant, so no gradient
flows through the environment. The loss is the reference's imitation MSE

$$\mathcal L = dt \sum_{t<T} \operatorname{mean}_{b,j}\big(u^S_{t,b,j} - u^T_{t,b,j}\big)^2 .$$

- :class:`OpenLoopNoise` (`open_loop_noise`, the paper's open loop, Figs 1c/2): both nets receive
  the same i.i.d. inputs $\xi_t \sim \mathcal N(0, 1)$ at every $t = 0..T-1$; no plant at all.
- :class:`OpenLoopTeacher` (`open_loop_teacher`): the teacher drives the plant from
  $x_0 \sim U(-a, a)$; both nets see its observations (with the $u_0 = 0$ convention).
- :class:`OpenLoopGain` (`open_loop_gain`): the teacher is a static state feedback
  $u^T = K x$ (code sign convention) that drives the plant; the student sees the observations.
  As in the reference (`train_rnn(teacher=K)`), both actions are 0 at $t = 0$, where the student
  cannot act yet ($h_0 = 0$).

The teacher lives in the run constants (`consts["teacher"]`: parameters, or `K`), loaded by the
experiment layer before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax

from ..agents import make_core


def imitation_loss(u_student, u_teacher, dt: float):
    return dt * jnp.sum(jnp.mean((u_student - u_teacher) ** 2, axis=tuple(range(1, u_student.ndim))))


def _drive(problem, params_list, y_seq):
    """Run several agents on the same input sequence `y_seq (T, batch, n_in)`, calling each at
    every step (h_{-1} = 0); returns their outputs, each `(T, batch, n_out)`."""
    spec = problem.spec
    cores = [make_core(spec, p, g) for p, g in params_list]

    def step(hs, y):
        new = [update(h, y) for (readout, update), h in zip(cores, hs)]
        return new, [readout(h) for (readout, _), h in zip(cores, new)]

    h0 = [jnp.zeros((y_seq.shape[1], spec.hidden_dim), y_seq.dtype) for _ in cores]
    _, us = lax.scan(step, h0, y_seq)
    return us


def _teacher_driven(problem, student, teacher_act, x0, key, hp):
    """Plant driven by `teacher_act(x, h_T) -> (u_T, h_T')`; the student reads the same observations.

    Follows the closed-loop timing: u_0 = 0 for both; afterwards each net is updated with
    y_t = C x_t and acts."""
    spec, plant = problem.spec, problem.plant
    readout, update = make_core(spec, student, hp["g"])
    keys = jax.random.split(key, problem.task.T) if problem.noisy else None

    def step(carry, k_t):
        x, h_s, h_t, u_t = carry
        u_s = readout(h_s)
        x1, y1 = plant.step(x, u_t, k_t, hp["noise"])
        u_t1, h_t1 = teacher_act(x1, y1, h_t)
        return (x1, update(h_s, y1), h_t1, u_t1), (u_s, u_t)

    B = x0.shape[0]
    h0 = jnp.zeros((B, spec.hidden_dim), x0.dtype)
    u0 = jnp.zeros((B, spec.n_out), x0.dtype)
    _, (us, ut) = lax.scan(step, (x0, h0, h0, u0), keys, length=problem.task.T)
    return us, ut


@dataclass(frozen=True)
class OpenLoopNoise:
    name: str = "open_loop_noise"

    def loss(self, problem, params, consts, key):
        T, batch = problem.task.T, problem.task.batch
        xi = jax.random.normal(key, (T, batch, problem.spec.n_in), problem.dtype)
        g = consts["hp"]["g"]
        us, ut = _drive(problem, [(params, g), ({**params, **consts["teacher"]}, g)], xi)
        return imitation_loss(us, lax.stop_gradient(ut), problem.plant.dt)


def _teacher_driven_loss(problem, params, consts, key, teacher_act):
    hp = consts["hp"]
    k_x, k_w = jax.random.split(key)
    x0 = problem.task.sample_x0(k_x, problem.task.batch, problem.dtype)
    us, ut = _teacher_driven(problem, params, teacher_act, x0, k_w, hp)
    return imitation_loss(us, lax.stop_gradient(ut), problem.plant.dt)


@dataclass(frozen=True)
class OpenLoopTeacher:
    name: str = "open_loop_teacher"

    def loss(self, problem, params, consts, key):
        t_read, t_update = make_core(problem.spec, {**params, **consts["teacher"]}, consts["hp"]["g"])

        def teacher_act(x1, y1, h):
            h1 = t_update(h, y1)
            return t_read(h1), h1

        return _teacher_driven_loss(problem, params, consts, key, teacher_act)


@dataclass(frozen=True)
class OpenLoopGain:
    name: str = "open_loop_gain"

    def loss(self, problem, params, consts, key):
        K = consts["teacher"]["K"]

        def teacher_act(x1, y1, h):
            return x1 @ K.T, h

        return _teacher_driven_loss(problem, params, consts, key, teacher_act)


OPEN_LOOP_MODES = {m.name: m for m in (OpenLoopNoise(), OpenLoopTeacher(), OpenLoopGain())}
