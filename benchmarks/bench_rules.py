"""Cost per run-epoch of the learning rules (docs/learning-rules.md): reinforce and model against bptt at the same
N, T and batch, in the same process, on the shipped learning-rules config (N = 100, T = 50, batch 100).

Targets (issue 20): reinforce <= 1x bptt (it needs no backward pass through the plant), model <= 2x bptt.
bptt of a linear agent on a noise-free plant runs on the batch's second moment (k = 2 states instead of 100,
docs/architecture.md); the rules sample episodes and cannot, so for the linear agent the comparison is also made
with bptt's plain rollout of the batch (`variance = true`, which adds the half-batch variance estimate).
`--plant inverted_pendulum` (any plant kind) runs the same protocol on another plant: on a nonlinear plant, whose
backward pass costs something, reinforce (no backward pass through the plant) should be below bptt.

Timed by the process's CPU time (`--clock cpu`, the default: on a shared machine it counts only this process's
work; run it on one core, `taskset -c 0`; where it and the wall time differ: `_timing.py`) or by `--clock wall`
(the loop is `_timing.py`'s, shared with `bench_netmodel.py`).

    PYTHONPATH=src taskset -c 0 python benchmarks/bench_rules.py [--runs 4] [--epochs 20] [--agents linear,tanh]
        [--plant inverted_pendulum] [--clock cpu]
"""

from __future__ import annotations

import argparse

from _timing import best_per_run_epoch, compile_rules, header

RULES = {  # name -> (kind, parameters)
    "bptt": ("bptt", {}),
    "bptt plain (variance)": ("bptt", {"variance": True}),
    "reinforce": ("reinforce", {"variance": False}),
    "reinforce + variance": ("reinforce", {"variance": True}),
    "model": ("model", {"variance": False}),
    "model + variance": ("model", {"variance": True}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", default="linear,tanh")
    ap.add_argument("--plant", default=None, help="plant.kind (default: the config's, the double integrator)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    print(f"{header(args.runs, args.epochs, args.rounds, args.clock)}; plant {args.plant or 'double_integrator'}")
    for agent in args.agents.split(","):
        base = [f"epochs={args.epochs}", f"record.chunk={args.epochs}", f'agent.activation="{agent}"']
        base += [f'plant.kind="{args.plant}"'] if args.plant else []
        calls = compile_rules("learning-rules", base, args.runs, args.epochs, RULES)
        best = best_per_run_epoch(calls, args.runs, args.epochs, args.rounds, args.clock)
        for name, t in best.items():
            print(f"{agent:6s} {name:22s} {1e3 * t:8.3f} ms per run-epoch")
        ref, plain = best["bptt"], best["bptt plain (variance)"]
        print(f"{agent}: reinforce/bptt = {best['reinforce'] / ref:.2f}x (with variance "
              f"{best['reinforce + variance'] / ref:.2f}x), model/bptt = {best['model'] / ref:.2f}x (with variance "
              f"{best['model + variance'] / ref:.2f}x); against bptt's plain rollout of the batch: reinforce "
              f"{best['reinforce'] / plain:.2f}x, model {best['model'] / plain:.2f}x; like for like (both with the "
              f"variance estimate): reinforce {best['reinforce + variance'] / plain:.2f}x, model "
              f"{best['model + variance'] / plain:.2f}x", flush=True)


if __name__ == "__main__":
    main()
