"""Rematerialising the agent's update in the backward pass (`jax.checkpoint` on `Core.update`): the whole compiled
chunk of epochs (gradient, optimiser step, records, test evaluation) with the shipped rule (a low-rank nonlinear
core without random part rematerialises, `loopdyn.agents._rnn.REMATERIALISE`), never, and always (every core),
same process, interleaved, CPU time on one core; the results are checked to be bit-identical. docs/learning-rules.md
quotes it.

    PYTHONPATH=src taskset -c 0 python benchmarks/bench_checkpoint_update.py [--config learning-rules] [--rules bptt,reinforce]
        [--activation tanh] [--runs 4] [--epochs 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses

import jax
import numpy as np

import loopdyn.agents._rnn as rnn
import loopdyn.training._modes as modes
import loopdyn.training._rules as rules
from _timing import best_per_run_epoch, compile_rules, cpu_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="learning-rules")
    ap.add_argument("--rules", default="bptt,reinforce")
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    plain = modes.make_core

    def checkpointed(*a, **k):
        core = plain(*a, **k)
        return dataclasses.replace(core, update=jax.checkpoint(core.update))

    kinds = {"bptt": ("bptt", {}), "reinforce": ("reinforce", {"variance": True})}
    calls = {}
    for variant in ("never", "shipped", "always"):
        rnn.REMATERIALISE = variant == "shipped"
        modes.make_core = rules.make_core = checkpointed if variant == "always" else plain
        chosen = {f"{r} {variant}": kinds[r] for r in args.rules.split(",")}
        calls.update(compile_rules(args.config, [f'agent.activation="{args.activation}"'], args.runs, args.epochs,
                                   chosen))
    rnn.REMATERIALISE, modes.make_core, rules.make_core = True, plain, plain
    best = best_per_run_epoch(calls, args.runs, args.epochs, args.rounds, "cpu")
    outputs = {name: jax.tree.leaves(fn(s, c, e)) for name, (fn, s, c, e, _) in calls.items()}
    print(f"cpu: {cpu_model()}; {args.config}, {args.activation}; {args.runs} runs x {args.epochs} epochs per call")
    for name in args.rules.split(","):
        t0 = best[f"{name} never"]
        for variant in ("shipped", "always"):
            same = all(np.array_equal(a, b) for a, b in zip(outputs[f"{name} never"], outputs[f"{name} {variant}"]))
            t1 = best[f"{name} {variant}"]
            print(f"{name:10s} never {1e3 * t0:.3f} -> {variant} {1e3 * t1:.3f} ms per run-epoch ({t1 / t0:.2f}x); "
                  f"bit-identical: {same}")


if __name__ == "__main__":
    main()
