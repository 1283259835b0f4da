"""Training speed: ms per run-epoch of the compiled epoch loop (store writes excluded).

For each shipped config, a single run and a 64-run ensemble; compile time reported separately.
Each measurement runs in a fresh process with 1 and with all host devices (XLA runs one vmapped
computation on one core; with several host devices the ensemble is sharded over the cores).

    .venv/bin/python benchmarks/bench_train.py [--configs linear-rank1 tanh-closed] [--runs 1 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def time_chunk(cfg, epochs: int, mesh_devices: bool = True, clock=None):
    """Compile the chunk of `cfg`'s single group and time it: `(group, compile s, best s of 3, records)`;
    `clock`: the timer of the 3 repetitions (default wall time, `time.perf_counter`)."""
    import time

    import jax
    import jax.numpy as jnp

    from loopdyn.training import HyperParams, compile_chunk, device_layout, init_run, make_groups

    (g,) = make_groups([(cfg, "bench")])
    hyper = HyperParams(**{k: jnp.asarray(v, g.problem.dtype) for k, v in g.hyper.items()})
    s, c = jax.vmap(lambda seed, h: init_run(g.problem, seed, h))(jnp.asarray(g.seeds), hyper)
    mesh, n = device_layout(len(g.runs)) if mesh_devices else (None, len(g.runs))
    if n != len(g.runs):
        s, c = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], n - len(g.runs), 0)]), (s, c))
    if mesh is not None:
        s, c = jax.device_put((s, c), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("run")))
    test_x0 = g.problem.task.sample_x0(jax.random.PRNGKey(0), cfg.task.test_batch, g.problem.dtype)
    fn = compile_chunk(g.problem, test_x0, mesh)
    epochs_arr = jnp.arange(epochs, dtype=jnp.int32)
    t0 = time.perf_counter()
    compiled = fn.lower(s, c, epochs_arr).compile()
    t_compile = time.perf_counter() - t0
    s, rec = compiled(s, c, epochs_arr)  # warm-up
    jax.block_until_ready(rec)
    clock = clock or time.perf_counter
    reps = []
    for _ in range(3):
        t0 = clock()
        s, rec = compiled(s, c, epochs_arr + epochs)
        jax.block_until_ready(rec)
        reps.append(clock() - t0)
    return g, t_compile, min(reps), rec


def measure(config: str, n_runs: int, epochs: int) -> dict:
    import jax
    import numpy as np

    import loopdyn

    cfg = loopdyn.load_config(config, [f"epochs={epochs}", f"record.chunk={epochs}"], f"0..{n_runs - 1}")
    _, t_compile, best, rec = time_chunk(cfg, epochs)
    return {"config": config, "runs": n_runs, "devices": len(jax.devices()), "epochs": epochs,
            "compile_s": round(t_compile, 2), "ms_per_run_epoch": round(1e3 * best / (n_runs * epochs), 4),
            "ms_per_epoch_ensemble": round(1e3 * best / epochs, 3), "finite": bool(np.all(np.isfinite(np.asarray(rec.train_loss))))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["linear-rank1", "tanh-closed"])
    ap.add_argument("--runs", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--devices", nargs="+", type=int, default=[1, os.cpu_count() or 1])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--processes", action="store_true",
                    help="also: the ensemble split over one single-device process per core, run at once (as --workers)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "unknown")
    print(f"machine: {model}, {os.cpu_count()} cores")
    print(f"{'config':>14} {'runs':>5} {'devices':>7} {'compile s':>9} {'ms/run-epoch':>13} {'ms/epoch (all runs)':>20}")
    for config in args.configs:
        for n_runs in args.runs:
            for dev in sorted(set(args.devices)):
                if n_runs == 1 and dev > 1:
                    continue
                env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={dev}")
                out = subprocess.run([sys.executable, __file__, "--child", config, str(n_runs), str(args.epochs)],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr[-2000:])
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{config:>14} {n_runs:>5} {dev:>7} {r['compile_s']:>9} {r['ms_per_run_epoch']:>13} {r['ms_per_epoch_ensemble']:>20}",
                      flush=True)
            if args.processes and n_runs > 1:
                n_proc = os.cpu_count() or 1
                env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
                procs = [subprocess.Popen([sys.executable, __file__, "--child", config, str(n_runs // n_proc), str(args.epochs)],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                         for _ in range(n_proc)]
                rs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
                # processes run side by side: the ensemble's time is the slowest process's
                ms = max(r["ms_per_epoch_ensemble"] for r in rs)
                print(f"{config:>14} {n_runs:>5} {str(n_proc) + ' proc':>7} {max(r['compile_s'] for r in rs):>9} "
                      f"{round(ms / n_runs, 4):>13} {ms:>20}", flush=True)


if __name__ == "__main__":
    main()
