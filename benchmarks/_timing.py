"""The timing loop shared by the learning-rule benchmarks (`bench_rules.py`, `bench_netmodel.py`): every rule of a
protocol compiled as the trainer compiles a chunk of epochs, then timed in interleaved rounds (best of the rounds,
per run-epoch), by the process's CPU time (`cpu`: on a shared machine it counts only this process's work; run the
benchmark on one core, `taskset -c 0`) or the wall time. The two agree for most programs; where XLA's CPU runtime
hands work between its threads, the wall time on one core adds the waits: reinforce on the double integrator's
tanh agent is 0.97x bptt by CPU time, 1.05x by wall time, and 1.00x by wall time with XLA single-threaded
(`XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`); bptt's own times agree to 1 %."""

from __future__ import annotations

import os
import subprocess
import time

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def cpu_model() -> str:
    """The `lscpu` model name of this machine."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def header(runs: int, epochs: int, rounds: int, clock: str) -> str:
    return (f"cpu: {cpu_model()}; {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores; {runs} runs x {epochs} "
            f"epochs per call; best of {rounds} interleaved rounds; {clock} time")


def compile_rules(config: str, overrides: list[str], runs: int, epochs: int, rules: dict, warm: bool = False):
    """`{name: (fn, states, constants, epochs, problem)}` for each rule `name -> (kind, parameters)` on the
    shipped `config` with `overrides`: the compiled chunk of `epochs` epochs of `runs` runs, run once; `warm`: timed from the state that first call ends
    at (a rule's replay full), else from the initial state."""
    import jax
    import jax.numpy as jnp

    import loopdyn
    from loopdyn.config import family, with_parts
    from loopdyn.training import HyperParams, compile_chunk, init_run, make_groups

    calls = {}
    for name, (kind, values) in rules.items():
        cfg = loopdyn.load_config(config, overrides, f"0..{runs - 1}")
        cfg = with_parts(cfg, gradient=family("gradient").resolve(kind)(**values))
        (g,) = make_groups([(cfg, name)])
        hyper = HyperParams(**{k: jnp.asarray(v, g.problem.dtype) for k, v in g.hyper.items()})
        s, c = jax.vmap(lambda seed, h, g=g: init_run(g.problem, seed, h))(jnp.asarray(g.seeds), hyper)
        test_x0 = g.problem.task.test_set(jax.random.PRNGKey(0), g.problem.dtype)
        e = jnp.arange(epochs, dtype=jnp.int32)
        fn = compile_chunk(g.problem, test_x0).lower(s, c, e).compile()
        out = jax.block_until_ready(fn(s, c, e))
        calls[name] = (fn, out[0] if warm else s, c, e + epochs, g.problem)
    return calls


def best_per_run_epoch(calls: dict, runs: int, epochs: int, rounds: int, clock: str = "cpu") -> dict:
    """`{name: seconds}`: the best over `rounds` interleaved rounds of each call's time per run-epoch."""
    import jax

    tick = CLOCKS[clock]
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, (fn, s, c, e, _) in calls.items():
            t0 = tick()
            jax.block_until_ready(fn(s, c, e))
            best[name] = min(best[name], (tick() - t0) / (runs * epochs))
    return best
