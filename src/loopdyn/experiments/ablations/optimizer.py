"""ablation-optimizer: SGD against Adam from the same initial weights; the stage-2 zig-zag (spec §6.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...analysis import fmt_spread, zigzag
from ...config import each, param
from ...errors import ConfigError
from ...plots import condition_colors, condition_epochs, condition_runs, first_run
from .._base import Reproduce, register
from ._ablation import Ablation, ablation_numbers, in_memory


@dataclass(frozen=True)
class OptimizerTable:
    """The table `[ablation_optimizer]`."""

    optimizers: tuple[str, ...] = param(("sgd", "adam"), doc="the train.optimizer of each condition",
                                        check=each("sgd or adam", lambda o: o in ("sgd", "adam")))
    lrs: tuple[float, ...] = param((0.01, 0.001), doc="the train.lr of each condition (one per optimiser)",
                                   check=each("> 0", lambda lr: lr > 0))


@register
class Optimizer(Ablation):
    name = "ablation-optimizer"
    description = "SGD vs Adam from the same initial weights, the stage-2 zig-zag (spec §6.3)"
    table = OptimizerTable
    figure_names = ("ablation_optimizer",)
    extra_metrics = ("zigzag_imag", "zigzag_k1")
    n_panels = 1
    reproduce = Reproduce(
        "ablation-optimizer", quick=("epochs=150",), quick_seeds="0..3", order=31,
        claims={"ablation_optimizer": "Spec §6.3 (summary of the paper): with Adam the stage-2 zig-zag is mitigated — "
                                      "adaptive per-parameter scaling reduces the conflict between the short-term and "
                                      "long-term gradient directions."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        t = cfg.table
        if len(t["optimizers"]) != len(t["lrs"]):
            raise ConfigError(f"{cfg.source}: ablation_optimizer.optimizers and .lrs must have the same length "
                              f"({len(t['optimizers'])} vs {len(t['lrs'])})")

    def conditions(self, cfg):
        return [(f"{o} {lr:g}", {"train.optimizer": o, "train.lr": float(lr)})
                for o, lr in zip(cfg.table["optimizers"], cfg.table["lrs"])]

    def panels(self, ds, axes, numbers) -> None:
        """Im λ1 through stage 2 of one seed per optimiser (period-2 zig-zag visible as a band)."""
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = first_run(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            s1, s2 = int(ds.stage1_end.values[i]), int(ds.stage2_end.values[i])
            lo, hi = max(s1, 0), (n if s2 < 0 else s2)
            d = ds.dominant_eigenvalue.values[i, lo:hi] if "dominant_eigenvalue" in ds else np.array([])
            ax.plot(np.arange(lo, hi), d.imag, color=color, lw=0.8, marker="o", ms=1.5,
                    label=f"{row['condition']}, zig-zag {zigzag(d.imag):.2f}")
        ax.set(xlabel="epoch (stage 2)", ylabel=r"Im $\lambda_1$",
               title=f"seed {int(ds.seed.values[0])}: " + r"Im $\lambda_1$ through stage 2")
        ax.legend(fontsize=7.5)

    def captions(self, ds) -> dict:
        from scipy.stats import mannwhitneyu

        ds = in_memory(ds)

        rows = ablation_numbers(ds)["conditions"]
        parts = [f"{r['condition']}: zig-zag of Im λ1 {fmt_spread(r['metrics']['zigzag_imag'], '{:.2f}')}, of k1 "
                 f"{fmt_spread(r['metrics']['zigzag_k1'], '{:.2f}')}; stage 2 ends at "
                 f"{fmt_spread(r['metrics']['stage2_end'], epochs=True)}" for r in rows]
        text = "Zig-zag = the fraction of sign changes of the per-epoch increments during stage 2 (1 = pure " \
               "period-2 zig-zag, 0.5 = random walk, 0 = monotone): " + "; ".join(parts) + "."
        if len(rows) == 2:
            a, b = (ds.zigzag_imag.values[condition_runs(ds, r["condition"])] for r in rows)
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) > 1 and len(b) > 1:
                p = mannwhitneyu(a, b).pvalue
                text += f" Mann-Whitney U test of the Im λ1 zig-zag, {rows[0]['condition']} vs {rows[1]['condition']}: p = {p:.2g}."
        return {"ablation_optimizer": text}
