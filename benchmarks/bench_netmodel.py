"""Cost per run-epoch of the `model` rule's network model on the inverted pendulum (docs/learning-rules.md),
against bptt at the same N, T and batch, in the same process, on the shipped learning-rules-pendulum config
(N = 100, T = 50, batch 100; the network: hidden 32, 20 Adam steps of 256 transitions, replay 10 x 500).

bptt of the linear agent runs on the reduced (rank-1) network, as every rule does; `model` rolls the plant out
once (the transitions), refits, then back-propagates through the model. The rows "+ variance" add the half-batch
gradient-variance estimate (what the learning-rules experiment records).

    PYTHONPATH=src python benchmarks/bench_netmodel.py [--runs 4] [--epochs 20] [--agents linear,tanh]
"""

from __future__ import annotations

import argparse
import os
import subprocess


RULES = {  # name -> (kind, parameters)
    "bptt": ("bptt", {}),
    "model linear": ("model", {"variance": False, "sigma": 0.1}),
    "model network": ("model", {"variance": False, "sigma": 0.1, "model": "network"}),
    "model network + variance": ("model", {"variance": True, "sigma": 0.1, "model": "network"}),
}


def main() -> None:
    import time

    import jax
    import jax.numpy as jnp

    import loopdyn
    from loopdyn.config import family, with_parts
    from loopdyn.training import HyperParams, compile_chunk, init_run, make_groups

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", default="linear,tanh")
    args = ap.parse_args()
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), "?")
    print(f"cpu: {cpu}; {os.cpu_count()} cores; {args.runs} runs x {args.epochs} epochs per call; best of "
          f"{args.rounds} interleaved rounds")
    for agent in args.agents.split(","):
        base = [f"epochs={args.epochs}", f"record.chunk={args.epochs}", f'agent.activation="{agent}"']
        calls = {}
        for name, (kind, values) in RULES.items():  # compile every rule first, then time them interleaved
            cfg = loopdyn.load_config("learning-rules-pendulum", base, f"0..{args.runs - 1}")
            cfg = with_parts(cfg, gradient=family("gradient").resolve(kind)(**values))
            (g,) = make_groups([(cfg, name)])
            hyper = HyperParams(**{k: jnp.asarray(v, g.problem.dtype) for k, v in g.hyper.items()})
            s, c = jax.vmap(lambda seed, h, g=g: init_run(g.problem, seed, h))(jnp.asarray(g.seeds), hyper)
            test_x0 = g.problem.task.test_set(jax.random.PRNGKey(0), g.problem.dtype)
            epochs = jnp.arange(args.epochs, dtype=jnp.int32)
            fn = compile_chunk(g.problem, test_x0).lower(s, c, epochs).compile()
            out = fn(s, c, epochs)
            jax.block_until_ready(out)
            calls[name] = (fn, out[0] if isinstance(out, tuple) else s, c, epochs)  # a warm model state
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(args.rounds):
            for name, (fn, s, c, epochs) in calls.items():
                t0 = time.perf_counter()
                jax.block_until_ready(fn(s, c, epochs + args.epochs))
                best[name] = min(best[name], (time.perf_counter() - t0) / (args.runs * args.epochs))
        for name, t in best.items():
            print(f"{agent:6s} {name:26s} {1e3 * t:8.3f} ms per run-epoch ({t / best['bptt']:.2f}x bptt)", flush=True)


if __name__ == "__main__":
    main()
