"""Training speed on the nonlinear plants of issue #19: ms per run-epoch of the plain rollout training step.

The same agent, task and optimiser for every plant (a shipped config, by default `tanh-closed`: full-rank
tanh RNN N = 100, T = 50, batch 100, closed loop, SGD), only `[plant] kind` changed (each plant with its
default parameters; the agent's input size follows the plant's observation). The double integrator, stepped
by the same plain rollout (a nonlinear agent gets no linear shortcut), is the baseline. Each measurement
runs in a fresh process with one host device; compile time is reported separately, store writes excluded
(the pattern of `bench_train.py`).

`shape_reference` (defined here, not a library plant) has the cart-pole's and the arm's sizes — 4 states,
2 controls, 2 observations — but trivial physics: two decoupled unit oscillators $\ddot p_i = -p_i + u_i$ stepped
by one explicit Euler step. Its ratio is what the sizes alone cost (two observations into the agent, two
controls out); a plant's ratio above it is what its physics and RK4 cost.

    .venv/bin/python benchmarks/bench_plants.py [--config tanh-closed] [--runs 1] [--epochs 20] [--cpu-time]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import jax.numpy as jnp

from loopdyn.config import POSITIVE, param
from loopdyn.plants import Plant

PLANTS = {
    "double_integrator": "double_integrator",
    "inverted_pendulum": "loopdyn.plants._pendulum:InvertedPendulum",
    "cartpole": "loopdyn.plants._cartpole:CartPole",
    "two_link_arm": "loopdyn.plants._arm:TwoLinkArm",
    "shape_reference": "bench_plants:ShapeReference",
}


class ShapeReference(Plant):
    """4 states, 2 controls, 2 observed; x' = x + dt (v_1, v_2, u_1 - p_1, u_2 - p_2) (module docstring)."""

    dt: float = param(0.01, doc="Euler step", check=POSITIVE)

    @property
    def n_states(self) -> int:
        return 4

    @property
    def n_controls(self) -> int:
        return 2

    @property
    def n_observed(self) -> int:
        return 2

    def dynamics(self, x, u):
        field = jnp.stack([x[..., 2], x[..., 3], u[..., 0] - x[..., 0], u[..., 1] - x[..., 1]], axis=-1)
        return x + self.dt * field

    def observe(self, x):
        return x[..., :2]


def measure(config: str, kind: str, n_runs: int, epochs: int, cpu: bool = False) -> dict:
    import time

    import numpy as np

    import loopdyn
    from bench_train import time_chunk

    cfg = loopdyn.load_config(config, [f"epochs={epochs}", f"record.chunk={epochs}", f"plant.kind={kind!r}"],
                              f"0..{n_runs - 1}")
    g, t_compile, best, rec = time_chunk(cfg, epochs, mesh_devices=False, clock=time.process_time if cpu else None)
    assert not (g.problem.linear_loop or g.problem.superposed or g.problem.compress_batch)  # the plain rollout
    return {"kind": kind, "runs": n_runs, "epochs": epochs, "compile_s": round(t_compile, 2),
            "ms_per_run_epoch": round(1e3 * best / (n_runs * epochs), 3),
            "states": cfg.plant.n_states, "observed": cfg.plant.n_observed,
            "N": cfg.agent.N, "T": cfg.task.T, "batch": cfg.task.batch,
            "finite": bool(np.all(np.isfinite(np.asarray(rec.train_loss))))}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tanh-closed")
    ap.add_argument("--plants", nargs="+", default=list(PLANTS), choices=list(PLANTS))
    ap.add_argument("--runs", nargs="+", type=int, default=[1])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--cpu-time", action="store_true", help="time by the process's CPU time instead of wall time "
                    "(robust when other jobs share the core; pin the benchmark to one core, e.g. taskset -c 0)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], int(args.child[2]), int(args.child[3]),
                                 args.child[4] == "cpu")))
        return
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; config {args.config}, one host device per process; "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    print(f"{'plant':>18} {'k':>2} {'c':>2} {'N':>4} {'T':>4} {'batch':>5} {'runs':>4} {'compile s':>9} "
          f"{'ms/run-epoch':>13} {'vs DI':>6}")
    base = {}
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    for n_runs in args.runs:
        for name in args.plants:
            out = subprocess.run([sys.executable, __file__, "--child", args.config, PLANTS[name], str(n_runs),
                                  str(args.epochs), "cpu" if args.cpu_time else "wall"], env=env, capture_output=True, text=True)
            if out.returncode:
                print(name, out.stderr[-2000:])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if name == "double_integrator":
                base[n_runs] = r["ms_per_run_epoch"]
            ratio = f"{r['ms_per_run_epoch'] / base[n_runs]:.2f}" if n_runs in base else "-"
            print(f"{name:>18} {r['states']:>2} {r['observed']:>2} {r['N']:>4} {r['T']:>4} {r['batch']:>5} {n_runs:>4} "
                  f"{r['compile_s']:>9} {r['ms_per_run_epoch']:>13} {ratio:>6}" + ("" if r["finite"] else "  (non-finite loss)"),
                  flush=True)


if __name__ == "__main__":
    main()
