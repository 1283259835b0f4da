"""Training speed of the overlap representation (Ger & Barak 2026; spec §7) against the vectors.

ms per run-epoch of the compiled epoch loop (store writes and host summaries excluded, compile time apart) for
the `linear-rank1` protocol (N = 100, T = 50, batch 100, SGD 0.01, clip 1) as a 64-run ensemble, in both
representations, and the same at N = 10 000; then the whole `loopdyn.train` call (host summaries and store
writes included) for the 64-run ensemble in the overlap representation. Each measurement runs in a fresh
process with the given number of host devices (the ensemble is sharded over them).

XLA runs with `--xla_cpu_enable_concurrency_optimized_scheduler=false`: with the default scheduler, the vectors'
chunk (a scan of epochs) at N = 10 000 with 4 or more runs on one host device deadlocks (jaxlib 0.10.2: every
worker thread idle, the host waiting for the result); the overlap representation is not affected.

    .venv/bin/python benchmarks/bench_overlaps.py [--runs 64] [--epochs 1000] [--devices 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys


def _cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(representation: str, N: int, n_runs: int, epochs: int, end_to_end: bool) -> dict:
    import shutil
    import tempfile
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    import loopdyn
    from loopdyn.training import HyperParams, compile_chunk, device_layout, init_run, make_groups

    cfg = loopdyn.load_config("linear-rank1", [f"epochs={epochs}", f"record.chunk={epochs}", f"agent.N={N}",
                                               f"agent.representation='{representation}'"], f"0..{n_runs - 1}")
    if end_to_end:
        out = tempfile.mkdtemp()
        t0 = time.perf_counter()
        loopdyn.train(cfg, f"{out}/b.zarr", progress=False)
        wall = time.perf_counter() - t0
        shutil.rmtree(out)
        return {"representation": representation, "N": N, "runs": n_runs, "devices": len(jax.devices()),
                "epochs": epochs, "end_to_end_s": round(wall, 2),
                "end_to_end_ms_per_run_epoch": round(1e3 * wall / (n_runs * epochs), 5)}
    (g,) = make_groups([(cfg, "bench")])
    p = g.problem
    hyper = HyperParams(**{k: jnp.asarray(v, p.dtype) for k, v in g.hyper.items()})
    s, c = jax.vmap(lambda seed, h: init_run(p, seed, h))(jnp.asarray(g.seeds), hyper)
    mesh, n = device_layout(n_runs)
    if n != n_runs:
        raise SystemExit(f"{n_runs} runs do not split evenly over {len(jax.devices())} devices")
    if mesh is not None:
        s, c = jax.device_put((s, c), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("run")))
    test_x0 = p.task.sample_x0(jax.random.PRNGKey(cfg.task.test_seed), cfg.task.test_batch, p.dtype)
    fn = compile_chunk(p, test_x0, mesh)
    e = jnp.arange(epochs, dtype=jnp.int32)
    t0 = time.perf_counter()
    compiled = fn.lower(s, c, e).compile()
    t_compile = time.perf_counter() - t0
    s, rec = compiled(s, c, e)  # warm-up
    jax.block_until_ready(rec)
    reps = []
    for k in range(3):
        t0 = time.perf_counter()
        s, rec = compiled(s, c, e + (k + 1) * epochs)
        jax.block_until_ready(rec)
        reps.append(time.perf_counter() - t0)
    best = min(reps)
    return {"representation": representation, "N": N, "runs": n_runs, "devices": len(jax.devices()), "epochs": epochs,
            "compile_s": round(t_compile, 2), "ms_per_run_epoch": round(1e3 * best / (n_runs * epochs), 5),
            "ms_per_epoch_ensemble": round(1e3 * best / epochs, 4),
            "finite": bool(np.all(np.isfinite(np.asarray(rec.train_loss))))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--devices", nargs="+", type=int, default=[1, os.cpu_count() or 1])
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        rep, N, runs, epochs, e2e = args.child
        print(json.dumps(measure(rep, int(N), int(runs), int(epochs), e2e == "1")))
        return
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores")
    print(f"{'representation':>14} {'N':>6} {'runs':>5} {'devices':>7} {'epochs':>6} {'compile s':>9} "
          f"{'ms/run-epoch':>13} {'ms/epoch (all)':>14}")
    jobs = [(rep, N, args.runs, args.epochs if N <= 100 else max(args.epochs // 10, 10), "0")
            for N in (100, 10_000) for rep in ("vectors", "overlaps")]
    jobs.append(("overlaps", 100, args.runs, args.epochs, "1"))
    for rep, N, runs, epochs, e2e in jobs:
        for dev in sorted(set(args.devices)):
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={dev} --xla_cpu_enable_concurrency_optimized_scheduler=false")
            out = subprocess.run([sys.executable, __file__, "--child", rep, str(N), str(runs), str(epochs), e2e],
                                 env=env, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-2000:])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if e2e == "1":
                print(f"{rep:>14} {N:>6} {runs:>5} {dev:>7} {epochs:>6}   loopdyn.train end to end: {r['end_to_end_s']} s, "
                      f"{r['end_to_end_ms_per_run_epoch']} ms/run-epoch", flush=True)
            else:
                print(f"{rep:>14} {N:>6} {runs:>5} {dev:>7} {epochs:>6} {r['compile_s']:>9} {r['ms_per_run_epoch']:>13} "
                      f"{r['ms_per_epoch_ensemble']:>14}", flush=True)


if __name__ == "__main__":
    main()
