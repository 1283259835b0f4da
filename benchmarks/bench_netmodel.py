"""Cost per run-epoch of the `model` rule's network model on the inverted pendulum (docs/learning-rules.md),
against bptt at the same N, T and batch, in the same process, on the shipped learning-rules-pendulum config
(N = 100, T = 50, batch 100; the network: hidden 32, replay 10 x 500, the rule's default fit and gradient).

bptt of the linear agent runs on the reduced (rank-1) network, as every rule does; `model` rolls the plant out
once (the transitions), refits, then back-propagates through the model. The rows "+ variance" add the half-batch
gradient-variance estimate (what the learning-rules experiment records); like for like, they are also compared
with bptt recording the same estimate ("bptt + variance", a plain rollout of the batch with its two halves). Timed
by `_timing.py`'s loop (shared
with `bench_rules.py`): CPU time by default, so run it on one core (`taskset -c 0`).

`--parts` also times the network rule's parts, each jitted alone and run over the runs as the trainer runs an
epoch (in blocks of vmapped runs), from the same warm states: the collection rollout through the plant, the replay update and refit, and the gradient (the rollout
and backward pass through the model) — their sum exceeds the whole epoch by what XLA shares between them.
`--set gradient.X=V` (repeatable) changes the network rule's parameters (e.g. `--set fit_steps=5`).

    PYTHONPATH=src taskset -c 0 python benchmarks/bench_netmodel.py [--runs 8] [--epochs 10] [--rounds 3]
        [--agents linear,tanh] [--parts] [--set fit_steps=5] [--clock cpu]
"""

from __future__ import annotations

import argparse
import ast

from _timing import CLOCKS, best_per_run_epoch, compile_rules, header


def rules(extra: dict) -> dict:
    net = {"sigma": 0.1, "model": "network", **extra}
    return {  # name -> (kind, parameters)
        "bptt": ("bptt", {}),
        "bptt + variance": ("bptt", {"variance": True}),
        "model linear": ("model", {"variance": False, "sigma": 0.1}),
        "model network": ("model", {**net, "variance": False}),
        "model network + variance": ("model", {**net, "variance": True}),
    }


def parts(call, rounds: int, runs: int, clock: str) -> dict:
    """`{part: seconds per run}` of the network rule's parts (module docstring), from the warm states of `call`."""
    import jax

    from loopdyn.training import _netmodel as nm
    from loopdyn.agents import combine, make_core
    from loopdyn.training._rules import Settings, _costs, collect_transitions, per_episode_gradient

    _, s, c, _, problem = call
    rule, settings, key = problem.rule, Settings(), jax.random.PRNGKey(7)

    def collect(st, co):
        return collect_transitions(rule, problem, st.params, co, key, settings)

    def fit(st, co):
        *_, traj, _ = collect(st, co)
        new = nm.draw_transitions(key, traj.x, traj.u, traj.x_next, problem.plant.observe(traj.x_next), None,
                                  rule.keep)
        replay, moments = nm.add_transitions(st.rule, tuple(a.astype(st.rule.replay.x.dtype) for a in new))
        return nm.refit(rule, st.rule, replay, moments, key)

    def blocked(f):  # the runs in blocks of the trainer's (Problem.runs_per_block), each block vmapped
        return jax.jit(lambda *a: jax.lax.map(lambda b: f(*b), a, batch_size=problem.runs_per_block or runs))

    model = blocked(fit)(s, c)

    def through(st, co, fitted):  # the rollout and backward pass through the fitted model
        m, _, C = fitted
        episode, _, xi, _, traj, _ = collect(st, co)
        if rule.path == "observed":
            plant = nm.LinearisedPlant(C_hat=C, m=traj.u.shape[-1])
            points = nm.Point(traj.x, traj.u, traj.x_next, *nm.jacobians(m, traj.x, traj.u))
        else:
            plant, points = nm.NetworkPlant.of(m, C), None

        def f(tr, sel=None):
            core = make_core(problem.spec, combine(tr, co.frozen), co.hyper.g)
            return _costs(problem, core, plant, episode, co.hyper, None, None, xi, sel=sel, draws=points)[0]

        return per_episode_gradient(f, st.params, rule.variance)

    def whole(st, co):
        return rule.gradient(problem, st.params, co, key, settings, st.rule)

    fns = {name: blocked(f) for name, f in (("collect", collect), ("collect + refit", fit),
                                                        ("collect + gradient", through), ("whole rule", whole))}
    args = {name: (s, c, model) if name == "collect + gradient" else (s, c) for name in fns}
    for name, f in fns.items():
        jax.block_until_ready(f(*args[name]))
    tick, best = CLOCKS[clock], dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, f in fns.items():
            t0 = tick()
            jax.block_until_ready(f(*args[name]))
            best[name] = min(best[name], (tick() - t0) / runs)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", default="linear,tanh")
    ap.add_argument("--parts", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="a network-rule parameter, e.g. fit_steps=5")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    extra = {k.removeprefix("gradient."): ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    print(f"{header(args.runs, args.epochs, args.rounds, args.clock)}; network rule {extra or 'defaults'}")
    for agent in args.agents.split(","):
        base = [f"epochs={args.epochs}", f"record.chunk={args.epochs}", f'agent.activation="{agent}"']
        calls = compile_rules("learning-rules-pendulum", base, args.runs, args.epochs, rules(extra), warm=True)
        best = best_per_run_epoch(calls, args.runs, args.epochs, args.rounds, args.clock)
        for name, t in best.items():
            print(f"{agent:6s} {name:26s} {1e3 * t:8.3f} ms per run-epoch ({t / best['bptt']:.2f}x bptt)", flush=True)
        print(f"{agent:6s} like for like: model network + variance / bptt + variance = "
              f"{best['model network + variance'] / best['bptt + variance']:.2f}x", flush=True)
        if args.parts:
            for name, t in parts(calls["model network"], args.rounds, args.runs, args.clock).items():
                print(f"{agent:6s}   part: {name:20s} {1e3 * t:8.3f} ms per run", flush=True)


if __name__ == "__main__":
    main()
