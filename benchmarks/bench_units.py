"""Cost of training as units on local Dask workers (`loopdyn train CONFIG --workers W`, docs/scaling.md) against the
same training in process, and what the workers' shared compilation cache saves: each unit's chunk program is
compiled once per sweep instead of once per unit.

Runs the CLI three ways, each in fresh processes, in interleaved rounds (best of each), on the cores this process may use (`taskset -c 0` for one core):
in process, `--workers W` (shared cache, the default) and `--workers W` with the cache off
(`JAX_COMPILATION_CACHE_DIR=`). Prints wall and CPU time (the CPU time of every process of the run) and the ratios.

    PYTHONPATH=src taskset -c 0 python benchmarks/bench_units.py [--config linear-rank1] [--seeds 0..15]
        [--set epochs=200 --set 'agent.activation="tanh"'] [--workers 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import cpu_model


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """`(wall s, CPU s)` of one CLI run (its own and its descendants' CPU time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loopdyn_cli", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="linear-rank1")
    ap.add_argument("--seeds", default="0..15")
    ap.add_argument("--set", action="append", default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is reported")
    args = ap.parse_args()
    sets = args.set if args.set is not None else ["epochs=200", 'agent.activation="tanh"']
    base = ["train", args.config, "--seeds", args.seeds, "--quiet", *(x for s in sets for x in ("--set", s))]
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    print(f"cpu: {cpu_model()}; {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores; {args.config} "
          f"{' '.join(sets)}, seeds {args.seeds}; {args.workers} worker(s)")
    runs = (("in process", [], env),
            (f"--workers {args.workers}, shared cache", ["--workers", str(args.workers)], env),
            (f"--workers {args.workers}, no cache", ["--workers", str(args.workers)],
             {**env, "JAX_COMPILATION_CACHE_DIR": ""}))
    times = {name: (float("inf"), float("inf")) for name, _, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, extra, e) in enumerate(runs):
                out = Path(tmp) / f"{r}-{i}"
                w, c = timed([*base, *extra, "--out", str(out)], e)
                times[name] = (min(times[name][0], w), min(times[name][1], c))
    for name, (w, c) in times.items():
        print(f"{name:32s} wall {w:6.1f} s  cpu {c:6.1f} s (best of {args.rounds})", flush=True)
    ref = times["in process"]
    for name, (w, c) in list(times.items())[1:]:
        print(f"{name}: {w / ref[0]:.2f}x the in-process wall time, {c / ref[1]:.2f}x its CPU time")


if __name__ == "__main__":
    main()
