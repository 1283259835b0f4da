"""Batch-to-batch spread of the effective gains (k1, k2) at the end of tanh-closed training.

Trains `tanh-closed` (one seed, 1000 epochs), then refits the least-squares gains of the final network on
many independent batches of closed-loop trajectories from x0 ~ U(-1, 1)^2 and prints the standard
deviation of k2 for batches of 10 states (the authors' gain test, what loopdyn stored before), of 100
states (one training batch) and of `record.gain_window` x 100 states (what loopdyn stores now: the training
batches of the last w epochs). It also prints the epoch-to-epoch SD of the stored k2 over the last 100
epochs around a linear trend.

    .venv/bin/python benchmarks/gain_spread.py [--epochs 1000] [--draws 200]
"""

import argparse
import tempfile
from pathlib import Path

import jax
import numpy as np

import loopdyn
from loopdyn.agents import AgentParams, make_core
from loopdyn.system import effective_gains, rollout
from loopdyn.training import build_problem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = loopdyn.load_config("tanh-closed", [f"epochs={args.epochs}"], str(args.seed))
    store = loopdyn.train(cfg, Path(tempfile.mkdtemp()) / "t.zarr", progress=False)
    ds = loopdyn.open_run(store)
    e = args.epochs - 1
    problem = build_problem(cfg)
    params = AgentParams(**{k: np.asarray(ds[k].values[0, e], np.float64) for k in ("m", "W", "z")})
    core = make_core(problem.spec, params)
    stored = ds.gains.values[0, e, 0]
    print(f"tanh-closed seed {args.seed}, epoch {e}: stored gains (k1, k2) = ({stored[0]:.4f}, {stored[1]:.4f})")
    w = cfg.record.gain_window
    for batch in sorted({10, cfg.task.batch, cfg.task.batch * w}):
        ks = []
        for i in range(args.draws):
            x0 = jax.random.uniform(jax.random.PRNGKey(1000 + i), (batch, 2), np.float64, -1, 1)
            traj = rollout(core, problem.plant, x0, cfg.task.T)
            ks.append(effective_gains(traj.x, traj.u)[0])
        ks = np.array(ks)
        print(f"batch {batch:>3}: mean (k1, k2) = ({ks[:, 0].mean():.4f}, {ks[:, 1].mean():.4f}); "
              f"SD k1 = {ks[:, 0].std(ddof=1):.4f}, SD k2 = {ks[:, 1].std(ddof=1):.4f} over {args.draws} batches")
    k2 = ds.gains.values[0, -100:, 0, 1].astype(np.float64)
    t = np.arange(k2.size)
    resid = k2 - np.polyval(np.polyfit(t, k2, 1), t)
    print(f"stored k2 over the last 100 epochs (gain_window = {w}): SD around a linear trend {resid.std(ddof=2):.4f}")


if __name__ == "__main__":
    main()
