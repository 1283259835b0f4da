"""learning-rules: do the three stages survive learning without a known plant, and does a T-curriculum shorten the
plateau? (issue 20; docs/learning-rules.md)

On the configuration's plant (the double integrator: `learning-rules`; the inverted pendulum:
`learning-rules-pendulum`), for each agent (the rank-1 linear network and the same network with tanh), one phase per
condition: `bptt` (the gradient through the plant), `reinforce` at each exploration noise `sigmas`, `model` (BPTT
through a model of the plant refitted every epoch: least-squares linear, or a small network for a nonlinear
plant, `model`) and `bptt` with a curriculum over the episode length
(`T_values` from `T_epochs`, e.g. T = 10 -> 50) — all from the same initial weights per seed, the test loss always
at T = task.T.
Per condition: the stage boundaries from the gains on the double integrator (one detector for both agents), from
the spectra of P(theta) at the checkpoints on any other plant (as `nonlinear-stages`), stabilisation, final losses and
gains (median, IQR over seeds), and the fraction of runs that stabilise and that show all three stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis import METRICS, SHORT, condition_statistics, fmt_spread, run_metrics, spread, store_config
from ..config import each, param
from ..errors import ConfigError
from ..plots import condition_colors, condition_epochs, condition_runs, no_nan_warning
from ._base import Reproduce, register
from .ablations import Ablation, ablation_numbers, in_memory

ACTIVATIONS = ("linear", "tanh", "relu")
GRAD_VARIANCE = "gradient variance tr Cov(g) at the last epoch (half-batch estimate)"
INITIAL_GRAD_VARIANCE = ("gradient variance tr Cov(g) at epoch 0 (half-batch estimate; the initial weights, the same "
                         "per seed in every condition)")


@dataclass(frozen=True)
class LearningRulesTable:
    """The table `[learning_rules]`."""

    activations: tuple[str, ...] = param(("linear", "tanh"), doc="the agent.activation of each agent",
                                         check=each("one of linear, tanh, relu", lambda a: a in ACTIVATIONS))
    sigmas: tuple[float, ...] = param((0.1, 0.3), doc="the exploration noise of each reinforce condition",
                                      check=each("finite and > 0", lambda s: s > 0))
    model_replay: int = param(10, doc="epochs of transitions the model condition fits on",
                              check=("> 0", lambda v: v > 0))
    model: str = param("linear", doc="the model condition's gradient.model: a least-squares linear model, or a small "
                                     "network (nonlinear plants)", choices=("linear", "network"))
    model_sigma: float = param(0.0, doc="the model condition's exploration noise gradient.sigma while collecting "
                                        "transitions (a nonlinear model needs it to tell the action's effect from "
                                        "the state's: docs/learning-rules.md)", check=("finite and >= 0",
                                                                                        lambda v: 0 <= v < float("inf")))
    T_values: tuple[int, ...] = param((10, 20, 35, 50), doc="the episode lengths of the curriculum condition "
                                      "(schedule.T, steps), ending at task.T", check=each("> 0", lambda T: T > 0))
    T_epochs: tuple[int, ...] = param((0, 100, 200, 300), doc="the epoch from which each of T_values holds "
                                      "(strictly increasing)", check=each(">= 0", lambda e: e >= 0))


def stage_names(ds) -> tuple[str, str]:
    """The arrays the stage boundaries are read from: the gains' on the double integrator (one detector for both
    agents), the spectra of P(theta) at the checkpoints on any other plant (as nonlinear-stages)."""
    if store_config(ds).plant.is_double_integrator:
        return "gain_stage1_end", "gain_stage2_end"
    return "stage1_end", "stage2_end"


def _three_stages(ds, idx):
    n1, n2 = stage_names(ds)
    s1, s2 = ds[n1].values[idx], ds[n2].values[idx]
    return int(np.sum((s1 > 0) & (s2 > s1))), int(np.sum(s2 >= 0))


@register
class LearningRules(Ablation):
    name = "learning-rules"
    description = "bptt vs reinforce vs model vs a T-curriculum (issue 20)"
    table = LearningRulesTable
    figure_names = ("learning_rules",)
    extra_metrics = ("gain_stage1_end", "gain_stage2_end", "zigzag_k1", "final_grad_variance", "initial_grad_variance")
    n_panels = 1
    reproduce = Reproduce(
        "learning-rules", quick=("epochs=150", "learning_rules.activations=['linear']",
                                 "learning_rules.T_values=[10, 50]", "learning_rules.T_epochs=[0, 50]"),
        quick_seeds="0..3", order=40,
        claims={"learning_rules": "Issue 20: do the three stages survive model-free learning (REINFORCE, a learned "
                                  "linear model), and does a curriculum over the episode length (short episodes "
                                  "first) shorten the stage-1 plateau?"})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        T, E = cfg.table["T_values"], cfg.table["T_epochs"]
        if len(T) != len(E) or any(b <= a for a, b in zip(E, E[1:])):
            raise ConfigError(f"{cfg.source}: learning_rules.T_epochs = {list(E)} must give one strictly increasing "
                              f"epoch per T value ({len(T)})")
        if T[-1] != cfg.task.T:
            raise ConfigError(f"{cfg.source}: learning_rules.T_values must end at task.T = {cfg.task.T} (the "
                              f"fixed-T condition's length), not at {T[-1]}")
        if cfg.get("gradient.kind", "bptt") != "bptt" or cfg.schedule.scheduled:
            raise ConfigError(f"{cfg.source}: the learning-rules experiment sets [gradient] and [schedule] per "
                              f"condition itself; remove them")

    def conditions(self, cfg):
        t = cfg.table
        out = []
        for a in t["activations"]:
            act = {"agent.activation": a}
            # every rule records its gradient variance (bptt too: the same half-batch estimate, from the plain
            # rollout of the batch), so that the rules' variances compare at the same weights (epoch 0)
            out.append((f"{a}/bptt", {**act, "gradient.variance": True}))
            for s in t["sigmas"]:
                out.append((f"{a}/reinforce-{s:g}", {**act, "gradient.kind": "reinforce", "gradient.sigma": float(s),
                                                      "gradient.variance": True}))
            model = {"gradient.kind": "model", "gradient.replay": int(t["model_replay"]), "gradient.variance": True,
                     "gradient.model": t["model"], "gradient.sigma": float(t["model_sigma"])}
            out.append((f"{a}/model" + ("-network" if t["model"] == "network" else ""), {**act, **model}))
            out.append((f"{a}/bptt-T{t['T_values'][0]}to{cfg.task.T}",
                        {**act, "gradient.variance": True,
                         "schedule.T": [[e, T] for e, T in zip(t["T_epochs"], t["T_values"])]}))
        return out

    def analyse(self, ds, runs, result) -> None:
        run_metrics(ds, runs, result)
        v, v0 = np.full(ds.sizes["run"], np.nan), np.full(ds.sizes["run"], np.nan)
        if "grad_variance" in ds:
            gv = ds.grad_variance.values
            for run in runs:
                v[run.index], v0[run.index] = gv[run.index, run.epochs - 1], gv[run.index, 0]
        result.put("final_grad_variance", v, ("run",), GRAD_VARIANCE)
        result.put("initial_grad_variance", v0, ("run",), INITIAL_GRAD_VARIANCE)
        arrays = {name: values for name, (_, values) in result.arrays.items()
                  if name in (*METRICS, *self.extra_metrics, "final_gains")}
        result.numbers["conditions"] = condition_statistics(ds, arrays, self.extra_metrics)
        result.numbers["metric_descriptions"] = {**METRICS, **{k: SHORT[k] for k in self.extra_metrics if k in SHORT},
                                                 "final_grad_variance": GRAD_VARIANCE,
                                                 "initial_grad_variance": INITIAL_GRAD_VARIANCE}

    def panels(self, ds, axes, numbers) -> None:
        ax = axes[0]
        rows = [r for r in numbers["conditions"] if "grad_variance" in ds]
        for row, color in zip(numbers["conditions"], condition_colors(len(numbers["conditions"]))):
            if "grad_variance" not in ds:
                break
            idx = condition_runs(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            g = ds.grad_variance.values[idx, :n]
            if not np.any(np.isfinite(g)):
                continue
            with no_nan_warning():
                ax.plot(np.arange(n), np.nanmedian(g, axis=0), color=color, lw=0.9, label=row["condition"])
        ax.set(yscale="log", xlabel="epoch", ylabel="tr Cov(g) (half-batch)",
               title="gradient variance (median; colours as in b)")

    def answers(self, ds) -> dict[str, str]:
        """The two questions of issue 20, answered from the analysed store, and (`variance`, for stores that record
        it for every rule) each rule's gradient variance at the initial weights relative to bptt's, paired by seed."""
        rows = {r["condition"]: r for r in ablation_numbers(ds)["conditions"]}
        curriculum, survive, noise = [], [], []
        for label in rows:
            agent, rule = label.split("/", 1)
            base = rows.get(f"{agent}/bptt")
            if base is None or rule == "bptt":
                continue
            idx, idx0 = condition_runs(ds, label), condition_runs(ds, f"{agent}/bptt")
            if rule.startswith("bptt-T"):
                # the plateau lasts while the loop is unstable: it ends at stabilisation (the end of stage 2)
                n1, n2 = (ds[n].values for n in stage_names(ds))
                s2, s2_0 = (np.where(a >= 0, a, np.inf) for a in (n2[idx], n2[idx0]))
                pairs = [(a, b) for a, b in zip(s2, s2_0) if np.isfinite(a) or np.isfinite(b)]  # same seed order
                shorter = sum(a < b for a, b in pairs)
                m = spread(n2[idx], epochs=True)
                m0 = spread(n2[idx0], epochs=True)
                s1 = spread(n1[idx], epochs=True)
                s1_0 = spread(n1[idx0], epochs=True)
                verdict = ("yes" if m["median"] is not None and (m0["median"] is None or m["median"] < m0["median"])
                           and shorter > len(pairs) / 2 else "no")
                curriculum.append(f"{agent}: {verdict} — stable from epoch {fmt_spread(m, epochs=True)} with the "
                                  f"curriculum vs {fmt_spread(m0, epochs=True)} at fixed T (median [IQR]), earlier in "
                                  f"{shorter}/{len(pairs)} seeds; stage 1 ends {fmt_spread(s1, epochs=True)} vs "
                                  f"{fmt_spread(s1_0, epochs=True)}")
            else:
                three, stable = _three_stages(ds, idx)
                three0, stable0 = _three_stages(ds, idx0)
                zig, zig0 = (fmt_spread(spread(ds.zigzag_k1.values[i]), "{:.2f}") for i in (idx, idx0))
                survive.append(f"{label}: all three stages in {three}/{len(idx)} seeds (bptt {three0}/{len(idx0)}), "
                               f"stable at the end in {stable}/{len(idx)} (bptt {stable0}/{len(idx0)}), stage-2 "
                               f"zig-zag of k1 {zig} (bptt {zig0})")
                if "initial_grad_variance" in ds:  # same seed order in every condition: same initial weights
                    v0 = ds.initial_grad_variance.values
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = v0[idx] / v0[idx0]
                    noise.append(f"{label} {fmt_spread(spread(ratio), '{:.3g}')}x")
        answers = {"curriculum": "Does a T-curriculum shorten the plateau? " + "; ".join(curriculum) + ".",
                   "survive": "Do the stages survive model-free learning? " + "; ".join(survive) + "."}
        if noise:
            answers["variance"] = ("Gradient variance at the initial weights (the same per seed in every condition), "
                                   "relative to bptt's, per seed: " + "; ".join(noise) + ".")
        return answers

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = ablation_numbers(ds)["conditions"]
        n1, n2 = stage_names(ds)
        parts = []
        for r in rows:
            m = r["metrics"]
            idx = condition_runs(ds, r["condition"])
            three, stable = _three_stages(ds, idx)
            parts.append(f"{r['condition']}: stage 1 ends {fmt_spread(m[n1], epochs=True)}, stable from "
                         f"{fmt_spread(m[n2], epochs=True)} ({stable}/{len(idx)} stable, {three} with "
                         f"three stages); final test loss {fmt_spread(m['final_test_loss'], '{:.3g}')}, train "
                         f"{fmt_spread(m['final_train_loss'], '{:.3g}')}")
        a = self.answers(ds)
        source = "the gains" if n1.startswith("gain") else "P(theta) at the checkpoints"
        answers = " ".join(a[k] for k in ("curriculum", "survive", "variance") if k in a)
        return {"learning_rules": f"{answers} Per condition (median [IQR] over seeds; stage boundaries from {source}): "
                                  + "; ".join(parts) + "."}
