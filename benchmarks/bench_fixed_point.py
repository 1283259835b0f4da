"""Cost of recording a nonlinear loop's joint system (issue #19) against its training time.

Trains a `nonlinear-stages` store (default: the inverted pendulum, both agents — rank-1 linear and tanh
N = 100 —, closed loop then open-loop student, the shipped 1000 epochs and 60 log-spaced checkpoints, 2 seeds),
then times `loopdyn.analyze` on it twice: the first call includes compilation, the second is the steady cost.
The analysis of a nonlinear loop is, per run and checkpoint, the fixed point of the closed-loop map (Newton
from the origin; the origin test first), the spectrum of P there, and at `BASIN_CHECKPOINTS` log-spaced
checkpoints the basin (64 closed-loop trajectories of 4T steps); plus the stage detection and statistics.
Target: analysis <= 10 % of training.

    .venv/bin/python benchmarks/bench_fixed_point.py [--config nonlinear-stages] [--seeds 0,1] [--epochs 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_plants import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="nonlinear-stages")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=1000)
    args = ap.parse_args()
    import loopdyn

    cfg = loopdyn.load_config(args.config, [f"epochs={args.epochs}"], args.seeds)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = loopdyn.train(cfg, Path(tmp) / "s.zarr", progress=False)
        t_train = time.perf_counter() - t0
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            loopdyn.analyze(path)
            times.append(time.perf_counter() - t0)
        ds = loopdyn.open_run(path)
        n_ck = int(ds.sizes["checkpoint"])
    print(f"cpu: {cpu_model()}")
    print(f"{args.config}: {ds.sizes['run']} runs x {args.epochs} epochs, {n_ck} checkpoints")
    print(f"training {t_train:.1f} s (compilation included); analysis {times[0]:.1f} s first (compilation included), "
          f"{times[1]:.1f} s again")
    print(f"analysis / training: {times[0] / t_train:.3f} (first), {times[1] / t_train:.3f} (steady)")


if __name__ == "__main__":
    main()
