"""ablation-time: the discrete model against the leaky RNN on the continuous-time double integrator (spec §6.4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...analysis import closed_loop_trajectory, fmt_spread
from ...config import UNIT_INTERVAL, param
from ...errors import ConfigError
from ...plots import condition_colors, condition_runs, first_run
from .._base import Reproduce, register
from ._ablation import Ablation, ablation_numbers, in_memory


@dataclass(frozen=True)
class TimeStepTable:
    """The table `[ablation_time]`."""

    dt: float = param(0.1, doc="the time step of the continuous condition (plant.dt and agent.alpha)",
                      check=UNIT_INTERVAL)


@register
class TimeStep(Ablation):
    name = "ablation-time"
    description = "discrete time vs a leaky RNN on the continuous-time double integrator, dt = 0.1 (spec §6.4)"
    table = TimeStepTable
    figure_names = ("ablation_time",)
    n_panels = 1
    reproduce = Reproduce(
        "ablation-time", quick=("epochs=150",), quick_seeds="0..3", order=33,
        claims={"ablation_time": "Spec §6.4 (summary of the paper): the findings carry over to continuous-time "
                                 "(leaky) models, simulated here with dt = 0.1 for plant and RNN and episodes of the "
                                 "same duration (T = 500 steps)."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        if cfg.plant.kind != "double_integrator" or cfg.agent.alpha != 1.0:
            raise ConfigError(f"{cfg.source}: the ablation-time experiment starts from the discrete double integrator "
                              f"and alpha = 1 (its continuous condition sets plant.dt and agent.alpha = dt)")

    def conditions(self, cfg):
        dt = float(cfg.table["dt"])
        steps = max(int(round(cfg.task.T / dt)), 1)
        return [("discrete", {}),
                (f"dt={dt:g}", {"plant.kind": "integrator", "plant.order": 2, "plant.dt": dt, "plant.n_controls": 1,
                                "plant.n_observed": 1, "agent.alpha": dt, "task.T": steps})]

    def panels(self, ds, axes, numbers) -> None:
        """Position under the final controller of one seed per condition, against physical time t dt."""
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = first_run(ds, row["condition"])
            phase = dict(ds.attrs["phases"])[str(ds["phase"].values[i])]
            dt, T = float(phase["plant"]["dt"]), int(phase["task"]["T"])
            n = int(phase["epochs"])
            xs = closed_loop_trajectory(ds, i, n - 1, T)
            ax.plot(np.arange(T) * dt, xs[:, 0], color=color, lw=1.1, label=f"{row['condition']} (T = {T})")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set(xlabel="time t dt", ylabel="position x", title=f"seed {int(ds.seed.values[0])}: final controllers from (1, -1)")
        ax.legend(fontsize=7.5)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = ablation_numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            idx = condition_runs(ds, r["condition"])
            s1, s2 = ds.stage1_end.values[idx], ds.stage2_end.values[idx]
            parts.append(f"{r['condition']}: stage 1 ends {fmt_spread(m['stage1_end'], epochs=True)} (a stage 1 in "
                         f"{int(np.sum(s1 > 0))}/{len(idx)} seeds), stable from {fmt_spread(m['stage2_end'], epochs=True)}, "
                         f"final test loss {fmt_spread(m['final_test_loss'], '{:.3g}')}, gains k1 "
                         f"{fmt_spread(m['k1'], '{:.3f}')}, k2 {fmt_spread(m['k2'], '{:.3f}')}; stable at the end in "
                         f"{int(np.sum(s2 >= 0))}/{len(idx)}")
        return {"ablation_time": "Epochs; the continuous plant's gains act through B = dt e2: "
                                 + "; ".join(parts) + "."}
