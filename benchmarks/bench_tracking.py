"""Tracking-task training speed: ms per run-epoch of the compiled epoch loop (store writes excluded).

For each phase of the shipped `tracking` experiment (closed loop; the open-loop student), a single run
and an 8-run ensemble, with the superposition of basis episodes (`strategy = auto`) and with every episode
rolled out (`plain`); compile time reported separately. Each measurement runs in a fresh process with the
given number of host devices (an ensemble is sharded over them). The authors' implementation takes about
103 ms per epoch on a 2-core machine (spec §8 / issue #9). The open phase's teacher here is a stand-in
(the initial network scaled down, so that no episode meets the clamp): the loop alone.

`--experiment 0 0..7` instead times what a user runs: the whole shipped `tracking` experiment
(`loopdyn.train`: both phases, the trained teacher, the store), one line per seed set, with each
phase's wall time (compilation included) and ms per run-epoch.

    .venv/bin/python benchmarks/bench_tracking.py [--runs 1 8] [--strategies auto plain] [--epochs 100]
    .venv/bin/python benchmarks/bench_tracking.py --experiment 0 0..7 [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys


def measure(phase: str, strategy: str, n_runs: int, epochs: int) -> dict:
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    import loopdyn
    from loopdyn import config as cfg_mod
    from loopdyn.agents import combine
    from loopdyn.experiments import get
    from loopdyn.training import HyperParams, compile_chunk, device_layout, init_run, make_groups

    cfg = loopdyn.load_config("tracking", [f"epochs={epochs}", f"tracking.open_epochs={epochs}"], f"0..{n_runs - 1}")
    phases = dict((label, c) for c, label in get("tracking").phases(cfg))
    (g,) = make_groups([(phases[phase], phase)])
    problem = dataclasses.replace(g.problem, strategy=strategy)
    dtype = problem.dtype
    hyper = HyperParams(**{k: jnp.asarray(v, dtype) for k, v in g.hyper.items()})
    states, consts = jax.vmap(lambda seed, h: init_run(problem, seed, h))(jnp.asarray(g.seeds), hyper)
    if phase == "open":  # a fixed teacher that keeps the mass within the clamp: the initial network, scaled down
        full = combine(states.params, consts.frozen)
        teacher = jax.tree.map(lambda a: a * 0.3, full)
        consts = consts._replace(teacher=teacher)
    mesh, n = device_layout(n_runs)
    assert n == n_runs, "choose a run count that the host devices divide"
    if mesh is not None:
        states, consts = jax.device_put((states, consts), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("run")))
    test_set = problem.task.test_set(jax.random.PRNGKey(cfg.task.test_seed), dtype)
    fn = compile_chunk(problem, test_set, mesh)
    epochs_arr = jnp.arange(epochs, dtype=jnp.int32)
    t0 = time.perf_counter()
    compiled = fn.lower(states, consts, epochs_arr).compile()
    t_compile = time.perf_counter() - t0
    states, rec = compiled(states, consts, epochs_arr)  # warm-up
    jax.block_until_ready(rec)
    reps = []
    for i in range(3):
        t0 = time.perf_counter()
        states, rec = compiled(states, consts, epochs_arr + (i + 1) * epochs)
        jax.block_until_ready(rec)
        reps.append(time.perf_counter() - t0)
    best = min(reps)
    return {"phase": phase, "strategy": strategy, "runs": n_runs, "devices": len(jax.devices()), "epochs": epochs,
            "compile_s": round(t_compile, 2), "ms_per_run_epoch": round(1e3 * best / (n_runs * epochs), 3),
            "ms_per_epoch_ensemble": round(1e3 * best / epochs, 3),
            "finite": bool(np.all(np.isfinite(np.asarray(rec.train_loss))))}


def experiment(seeds: str, keep: str | None = None) -> dict:
    """Wall time of `loopdyn.train` on the shipped `tracking` experiment, per phase (stamped at each
    committed chunk); the store is kept in the directory `keep` if given."""
    import tempfile
    import time
    from pathlib import Path

    import loopdyn

    cfg = loopdyn.load_config("tracking", [], seeds)
    stamps = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(keep or tmp) / f"tracking-{seeds}.zarr"

        def stamp():
            if (store / "zarr.json").exists():  # polled once before the store exists
                stamps.append((time.perf_counter(), loopdyn.store.read_progress(store)))
            return False

        t0 = time.perf_counter()
        loopdyn.train(cfg, store, progress=False, should_stop=stamp)
        total = time.perf_counter() - t0
        runs = loopdyn.open_run(store).sizes["run"] // 2
    closed_end = max(t for t, prog in stamps if prog["phase"] == 0)
    return {"seeds": seeds, "runs": runs, "total_s": round(total, 1), "closed_s": round(closed_end - t0, 1),
            "open_s": round(t0 + total - closed_end, 1), "epochs": cfg.epochs,
            "open_epochs": int(cfg.table["open_epochs"])}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phases", nargs="+", default=["closed", "open"])
    ap.add_argument("--strategies", nargs="+", default=["auto", "plain"])
    ap.add_argument("--runs", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--experiment", nargs="+", metavar="SEEDS",
                    help="time the whole tracking experiment for these seed sets (e.g. 0 0..7)")
    ap.add_argument("--keep", metavar="DIR", help="with --experiment: keep the stores in DIR")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--child-experiment", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        phase, strategy, n_runs, epochs = args.child
        print(json.dumps(measure(phase, strategy, int(n_runs), int(epochs))))
        return
    if args.child_experiment:
        print(json.dumps(experiment(args.child_experiment, args.keep)))
        return
    if args.experiment:
        print(f"# {cpu_model()}, {os.cpu_count()} cores; {args.devices} host devices; the shipped tracking "
              "experiment, closed + open phase (wall time, compilation included)")
        print(f"{'seeds':>8} {'runs':>5} {'total s':>8} {'closed s':>9} {'open s':>7} {'closed ms/run-epoch':>20} "
              f"{'open ms/run-epoch':>18}")
        for seeds in args.experiment:
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}")
            keep = ["--keep", args.keep] if args.keep else []
            out = subprocess.run([sys.executable, __file__, "--child-experiment", seeds, *keep], env=env,
                                 capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-2000:])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            closed_ms = 1e3 * r["closed_s"] / (r["runs"] * r["epochs"])
            open_ms = 1e3 * r["open_s"] / (r["runs"] * max(r["open_epochs"], 1))
            print(f"{seeds:>8} {r['runs']:>5} {r['total_s']:>8} {r['closed_s']:>9} {r['open_s']:>7} "
                  f"{closed_ms:>20.2f} {open_ms:>18.2f}", flush=True)
        return
    print(f"# {cpu_model()}, {os.cpu_count()} cores; {args.devices} host devices for ensembles")
    print(f"{'phase':>6} {'strategy':>8} {'runs':>5} {'devices':>7} {'compile s':>9} {'ms/run-epoch':>13} "
          f"{'ms/epoch (all runs)':>20}")
    for phase in args.phases:
        for strategy in args.strategies:
            for n_runs in args.runs:
                dev = 1 if n_runs == 1 else args.devices
                env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={dev}")
                out = subprocess.run([sys.executable, __file__, "--child", phase, strategy, str(n_runs), str(args.epochs)],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr[-2000:])
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{phase:>6} {strategy:>8} {n_runs:>5} {dev:>7} {r['compile_s']:>9} {r['ms_per_run_epoch']:>13} "
                      f"{r['ms_per_epoch_ensemble']:>20}" + ("" if r["finite"] else "  (non-finite loss)"), flush=True)


if __name__ == "__main__":
    main()
