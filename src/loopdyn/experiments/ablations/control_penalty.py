"""ablation-beta: control penalties beta, from scratch, as one vmapped sweep (spec §6.5, Fig 5d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...analysis import closed_loop_trajectory, fmt_spread
from ...config import each, param
from ...plots import condition_colors, condition_epochs, first_run, loss_bands_panel
from .._base import Reproduce, register
from ._ablation import Ablation, ablation_numbers, in_memory


@dataclass(frozen=True)
class ControlPenaltyTable:
    """The table `[ablation_beta]`."""

    beta_values: tuple[float, ...] = param((0.0, 0.5, 2.0, 5.0), doc="the control penalty task.beta of each condition",
                                           check=each(">= 0", lambda b: b >= 0))


@register
class ControlPenalty(Ablation):
    name = "ablation-beta"
    description = "control penalty beta, from scratch (spec §6.5, Fig 5d)"
    table = ControlPenaltyTable
    figure_names = ("ablation_beta",)
    n_panels = 2
    reproduce = Reproduce(
        "ablation-beta", quick=("epochs=150",), quick_seeds="0..3", order=34,
        claims={"ablation_beta": "Fig 5d / spec §6.5: a control penalty beta slows stage 3 and ends at a higher "
                                 "loss (reference run, continued from its stabilisation epoch: final training loss "
                                 "≈ 0.25, 1.2, 2.2, 3.5 for beta = 0, 0.5, 2, 5)."})

    def conditions(self, cfg):
        return [(f"beta={b:g}", {"task.beta": float(b)}) for b in cfg.table["beta_values"]]

    def phases(self, cfg):
        """One phase, beta swept: beta is vmapped, so all conditions share one compiled ensemble."""
        sweep = {**dict(cfg.sweep), "task.beta": [float(b) for b in cfg.table["beta_values"]]}
        return [(self.variant(cfg, {}, sweep=sweep), "closed")]

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = condition_colors(len(rows))
        loss_bands_panel(ds, axes[0], rows, colors, var="train_loss")
        axes[0].set_title(r"training loss (incl. $\beta\sum_t u_t^2$)", fontsize=8)
        ax = axes[1]
        for row, color in zip(rows, colors):
            i = first_run(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            xs = closed_loop_trajectory(ds, i, n - 1, 50)
            ax.plot(np.arange(50), xs[:, 0], color=color, lw=1.1, label=row["condition"])
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set(xlabel="time step t", ylabel="position x", title=f"seed {int(ds.seed.values[0])}: final controllers from (1, -1)")
        ax.legend(fontsize=7.5)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = ablation_numbers(ds)["conditions"]
        parts = [f"{r['condition']}: final training loss {fmt_spread(r['metrics']['final_train_loss'], '{:.3g}')}, "
                 f"gains k1 {fmt_spread(r['metrics']['k1'], '{:.3f}')}, k2 {fmt_spread(r['metrics']['k2'], '{:.3f}')}, "
                 f"stable from {fmt_spread(r['metrics']['stage2_end'], epochs=True)}" for r in rows]
        meds = [r["metrics"]["final_train_loss"]["median"] for r in rows]
        mono = all(a is not None and b is not None and a < b for a, b in zip(meds, meds[1:]))
        return {"ablation_beta": "Trained from scratch: " + "; ".join(parts) +
                f". The median final loss {'increases' if mono else 'does not increase monotonically'} with beta."}
