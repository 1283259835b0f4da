"""ablation-activation: the rank-1 network with a linear against a tanh activation, all else equal (spec §6.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...analysis import fmt_spread, stability_boundaries
from ...config import each, param
from ...plots import condition_colors, condition_epochs, condition_runs, first_run
from .._base import Reproduce, register
from ._ablation import Ablation, ablation_numbers, in_memory

ACTIVATIONS = ("linear", "tanh", "relu")


@dataclass(frozen=True)
class ActivationTable:
    """The table `[ablation_activation]`."""

    activations: tuple[str, ...] = param(("linear", "tanh"), doc="the agent.activation of each condition",
                                         check=each("one of linear, tanh, relu", lambda a: a in ACTIVATIONS))


@register
class Activation(Ablation):
    name = "ablation-activation"
    description = "rank-1 network with phi linear vs tanh, all else equal: the three stages (spec §6.1)"
    table = ActivationTable
    figure_names = ("ablation_activation",)
    extra_metrics = ("gain_stage1_end", "gain_stage2_end")
    n_panels = 1
    reproduce = Reproduce(
        "ablation-activation", quick=("epochs=150",), quick_seeds="0..3", order=32,
        claims={"ablation_activation": "Spec §6.1 (summary of the paper): nonlinear RNNs show qualitatively the same "
                                       "three stages as the linear network (reference runs: linear stage 1 ends at "
                                       "epoch 8 and stage 2 at 129; tanh 12 and 110)."})

    def conditions(self, cfg):
        return [(a, {"agent.activation": a}) for a in cfg.table["activations"]]

    def panels(self, ds, axes, numbers) -> None:
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = first_run(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            g = ds.gains.values[i, :n, 0]
            ax.plot(g[:, 0], g[:, 1], color=color, lw=0.9, label=row["condition"])
            for e, mark in ((ds.gain_stage1_end.values[i], "silver"), (ds.gain_stage2_end.values[i], "gold")):
                if np.isfinite(e) and 0 < e < n:
                    ax.plot(g[int(e), 0], g[int(e), 1], "o", color=mark, mec="k", ms=6, zorder=5)
        lo = min(float(np.nanmin(ds.gains.values[:, :, 0, :2])), -1e-3)
        k1 = np.linspace(lo, 0, 100)
        ax.plot(*stability_boundaries(k1)["complex_unit"], color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel=r"$k_1$", ylabel=r"$k_2$", title=f"seed {int(ds.seed.values[0])}: gain paths (silver: end of "
               "stage 1, gold: stable)")
        ax.legend(fontsize=7.5)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = ablation_numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            idx = condition_runs(ds, r["condition"])
            s1, s2 = ds.stage1_end.values[idx], ds.stage2_end.values[idx]
            three = int(np.sum((s1 > 0) & (s2 > s1)))
            parts.append(f"{r['condition']}: stage 1 ends {fmt_spread(m['stage1_end'], epochs=True)}, stage 2 "
                         f"{fmt_spread(m['stage2_end'], epochs=True)}; from the gains {fmt_spread(m['gain_stage1_end'], epochs=True)} "
                         f"and {fmt_spread(m['gain_stage2_end'], epochs=True)}; all three stages in {three}/{len(idx)} "
                         f"seeds, stable at the end in {int(np.sum(s2 >= 0))}/{len(idx)}; final test loss "
                         f"{fmt_spread(m['final_test_loss'], '{:.3g}')}")
        return {"ablation_activation": "Stage boundaries from P for linear and from the gains for tanh runs, and "
                                       "from the gains for both: " + "; ".join(parts) + "."}
