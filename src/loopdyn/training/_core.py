"""The compiled training step: one epoch of one run, scanned over epochs, vmapped over runs.

An epoch evaluates the training loss of the current parameters on a fresh batch, the
closed-loop test metric on the fixed test batch, and then (unless the run has diverged, or
this is epoch 0 with `skip_first_update`) applies one clipped optimiser update. The record of
epoch `e` therefore describes the parameters *after e updates* (after e-1 with the skip), the
ones that produced `train_loss[e]` and `test_loss[e]`.

A run whose loss or gradient is not finite is marked diverged at that epoch; from then on its
parameters are frozen and its losses recorded as NaN, while the other runs go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from ..agents import AgentSpec, init_params, split_trainable
from ..plants import LinearPlant
from ..tasks import Regulation
from ._rollout import closed_loop

HP_NAMES = ("lr", "clip", "beta", "over", "g", "noise")


def make_optimizer(name: str, lr, clip) -> optax.GradientTransformation:
    """Global-norm clipping (off when `clip <= 0`) followed by SGD or Adam; `lr`, `clip` may be traced."""
    base = optax.sgd(lr) if name == "sgd" else optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(jnp.where(clip > 0, clip, jnp.inf)), base)


@dataclass(frozen=True)
class ClosedLoop:
    """Closed-loop training (spec §3.1-3.2): the gradient flows through the plant."""

    name: str = "closed_loop"

    def loss(self, problem: "Problem", params: dict, consts: dict, key) -> jax.Array:
        task, hp = problem.task, consts["hp"]
        k_x, k_w = jax.random.split(key)
        x0 = task.sample_x0(k_x, task.batch, problem.dtype)
        xs, us = closed_loop(problem.spec, problem.plant, params, x0, task.T, g=hp["g"], noise=hp["noise"],
                             key=k_w if problem.noisy else None)
        return task.train_loss(xs, us, hp["beta"])


@dataclass(frozen=True)
class Problem:
    """Everything static about one compiled group of runs."""

    spec: AgentSpec
    plant: LinearPlant
    task: Regulation
    optimizer: str = "sgd"
    skip_first_update: bool = False
    noisy: bool = False
    dtype: Any = jnp.float32
    mode: Any = field(default_factory=ClosedLoop)

    def closed_loop_test(self, params: dict, hp: dict, test_x0) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Closed-loop test metric on the fixed test batch (noise-free), and the float64 sufficient
        statistics `sum x x^T` (k, k) and `sum x u^T` (k, m) over t >= 1 of the same trajectories,
        from which the host solves the least-squares effective gains (spec §4.6).

        The solve stays out of the compiled loop: LAPACK calls inside a program sharded over several
        CPU devices have been seen to deadlock (XLA CPU, jax 0.10)."""
        xs, us = closed_loop(self.spec, self.plant, params, test_x0, self.task.T, g=hp["g"])
        x = xs[1:].reshape(-1, xs.shape[-1]).astype(jnp.float64)
        u = us[1:].reshape(-1, us.shape[-1]).astype(jnp.float64)
        return self.task.test_metric(xs), x.T @ x, x.T @ u


def init_run(problem: Problem, seed, hp: dict) -> tuple[dict, dict]:
    """`(state, constants)` of one run; `seed` an integer (traced ok), `hp` scalars.

    The initial weights depend only on the seed and the agent, never on the training mode.
    """
    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    params = init_params(problem.spec, k_init, g=hp["g"], over=hp["over"], dtype=problem.dtype)
    trained, frozen = split_trainable(params, problem.spec.trainable)
    opt_state = make_optimizer(problem.optimizer, hp["lr"], hp["clip"]).init(trained)
    state = {"params": trained, "opt": opt_state, "diverged": jnp.asarray(-1, jnp.int32)}
    consts = {"frozen": frozen, "hp": hp, "key": k_train}
    return state, consts


def make_epoch(problem: Problem, test_x0) -> Callable:
    """`epoch(state, consts, e) -> (state, record)` for a single run."""

    def epoch(state, consts, e):
        trained, frozen, hp = state["params"], consts["frozen"], consts["hp"]
        key = jax.random.fold_in(consts["key"], e)
        loss, grads = jax.value_and_grad(lambda p: problem.mode.loss(problem, {**p, **frozen}, consts, key))(trained)
        test, gram, cross = problem.closed_loop_test({**trained, **frozen}, hp, test_x0)
        opt = make_optimizer(problem.optimizer, hp["lr"], hp["clip"])
        updates, opt_state = opt.update(grads, state["opt"], trained)
        new_params = optax.apply_updates(trained, updates)

        finite = jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        alive = state["diverged"] < 0
        step = alive & finite
        if problem.skip_first_update:
            step = step & (e > 0)

        def keep(new, old):
            return jax.tree.map(lambda a, b: jnp.where(step, a, b), new, old)

        nan = jnp.asarray(jnp.nan, loss.dtype)
        new_state = {
            "params": keep(new_params, trained),
            "opt": keep(opt_state, state["opt"]),
            "diverged": jnp.where(alive & ~finite, e, state["diverged"]).astype(jnp.int32),
        }
        record = {
            "train_loss": jnp.where(alive, loss, nan),
            "test_loss": jnp.where(alive, test, nan),
            "gram": gram,
            "cross": cross,
            "params": trained,
        }
        return new_state, record

    return epoch


def make_chunk(problem: Problem, test_x0) -> Callable:
    """`chunk(states, consts, epochs) -> (states, records)`: scan over `epochs` (an int array),
    vmapped over the leading run axis of `states` and `consts`; records have shape `(run, epoch, ...)`."""
    epoch = make_epoch(problem, test_x0)

    def one_run(state, consts, epochs):
        return jax.lax.scan(lambda s, e: epoch(s, consts, e), state, epochs)

    return jax.vmap(one_run, in_axes=(0, 0, None))
