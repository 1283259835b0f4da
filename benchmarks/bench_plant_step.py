"""The plant's own share of a training step: one episode's RK4 steps and their gradient, hand-written derivative
(`vector_field_jvp`, what the arm and the cart-pole train with) against JAX's differentiation of the same vector
field (rematerialised, what a plant without a hand derivative gets), and a trivial Euler step of
the same sizes (oscillators driven by the controls' sum) as the floor.

A batch of `--batch` episodes of `--T` steps under a fixed linear state feedback u = -K x, the loss the sum of
squared states; `jax.value_and_grad` with respect to K, compiled, CPU time (pin to one core: `taskset -c 0`).
docs/nonlinear.md quotes its numbers.

    PYTHONPATH=src taskset -c 0 python benchmarks/bench_plant_step.py [--batch 100] [--T 50]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _timing import cpu_model
from loopdyn.plants import CartPole, TwoLinkArm
from loopdyn.plants._rk4 import rk4_step


def episode_gradient(step, x0, T):
    def loss(K):
        def body(x, _):
            x = step(x, -x @ K.T)
            return x, jnp.sum(x**2)
        return jnp.sum(jax.lax.scan(body, x0, None, length=T)[1])
    return jax.jit(jax.value_and_grad(loss))


def best_time(fn, arg, reps=50, rounds=5):
    jax.block_until_ready(fn(arg))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(reps):
            jax.block_until_ready(fn(arg))
        best = min(best, (time.process_time() - t0) / reps)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--T", type=int, default=50)
    args = ap.parse_args()
    print(f"cpu: {cpu_model()}; batch {args.batch}, T {args.T}, float32; value and gradient of one episode batch")
    rng = np.random.default_rng(0)
    for plant in (TwoLinkArm(), CartPole()):
        k, m = plant.n_states, plant.n_controls
        x0 = jnp.asarray(rng.normal(size=(args.batch, k)) * 0.05, jnp.float32)
        K = jnp.asarray(rng.normal(size=(m, k)) * 0.1, jnp.float32)
        autodiff = jax.checkpoint(lambda x, u, p=plant: rk4_step(p.vector_field, x, u, p.dt))
        floor = lambda x, u, dt=plant.dt: x + dt * jnp.concatenate(  # noqa: E731
            [x[:, k // 2:], jnp.sum(u, -1, keepdims=True) - x[:, :k // 2]], -1)  # oscillators driven by sum(u)
        times = {name: best_time(episode_gradient(step, x0, args.T), K)
                 for name, step in (("hand derivative (shipped)", plant.dynamics),
                                    ("autodiff, rematerialised", autodiff), ("trivial Euler step", floor))}
        for name, t in times.items():
            print(f"{type(plant).__name__:11s} {name:26s} {1e6 * t:9.1f} us per batch")
        a, h, f = (times[n] for n in ("autodiff, rematerialised", "hand derivative (shipped)", "trivial Euler step"))
        print(f"{type(plant).__name__:11s} the plant's share above the floor: {(h - f) / (a - f):.2f}x of autodiff's",
              flush=True)


if __name__ == "__main__":
    main()
