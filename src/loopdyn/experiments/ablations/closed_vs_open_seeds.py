"""closed-vs-open-seeds: the closed-vs-open experiment over seeds; the open-loop student's peak test loss (spec §6.6)."""

from __future__ import annotations

import numpy as np

from ...analysis import METRIC_VARIABLES, fmt_spread, rebound_peak
from ...plots import CLOSED_BLUE, OPEN_RED, condition_colors, condition_epochs, condition_runs, no_nan_warning
from .._base import Reproduce, register
from ..closed_vs_open import ClosedVsOpen, ClosedVsOpenTable
from ._ablation import Ablation, ablation_numbers, in_memory


@register
class ClosedVsOpenSeeds(Ablation):
    name = "closed-vs-open-seeds"
    description = "closed vs open loop over seeds: the open-loop student's peak closed-loop test loss (spec §6.6)"
    table = ClosedVsOpenTable
    figure_names = ("closed_vs_open_seeds",)
    extra_metrics = ("peak_test_loss", "peak_epoch", "peak_rise")
    n_panels = 2
    reproduce = Reproduce(
        "closed-vs-open-seeds", quick=("epochs=100",), quick_seeds="0..1", order=35,
        claims={"closed_vs_open_seeds": "Figs 1c, 2 / spec §6.6: the open-loop student's training loss falls "
                                        "monotonically while its closed-loop test loss first improves, then blows up "
                                        "(reference tanh run: peak 5.1e5 at epoch 221) before closed and open runs "
                                        "converge to the same solution (test loss ≈ 6.3, gains ≈ (-0.36, -1.0))."})

    def validate(self, cfg) -> None:
        ClosedVsOpen.validate(self, cfg)

    def phases(self, cfg):
        return ClosedVsOpen.phases(self, cfg)

    def palette(self, n: int):
        return [CLOSED_BLUE, OPEN_RED, *condition_colors(n)][:n]

    def more_metrics(self, ds, runs, result) -> None:
        R = ds.sizes["run"]
        out = {name: np.full(R, np.nan) for name in ("peak_test_loss", "peak_epoch", "peak_rise")}
        test = ds.test_loss.values
        for run in runs:
            y = np.asarray(test[run.index, : run.epochs], np.float64)
            peak = rebound_peak(y)
            if peak is not None:
                out["peak_epoch"][run.index], out["peak_test_loss"][run.index], out["peak_rise"][run.index] = peak
        for name, values in out.items():
            result.put(name, values, ("run",), METRIC_VARIABLES[name])

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = self.palette(len(rows))
        ax = axes[0]
        for row, color in zip(rows, colors):
            idx = condition_runs(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            for i in idx:
                ax.loglog(np.arange(n) + 1.0, ds.test_loss.values[i, :n], color=color, lw=0.4, alpha=0.35)
        ax.set(xlabel="epoch + 1", ylabel="closed-loop test loss", title="every seed: closed (blue), open (red)")
        ax = axes[1]
        open_rows = [r for r in rows if r["condition"] != "closed"]
        for row in open_rows:
            idx = condition_runs(ds, row["condition"])
            ax.scatter(ds.peak_epoch.values[idx], ds.peak_test_loss.values[idx], s=10, color=OPEN_RED, alpha=0.7, lw=0)
            pe, pl = row["metrics"]["peak_epoch"], row["metrics"]["peak_test_loss"]
            if pe["median"] is not None:
                ax.errorbar(pe["median"], pl["median"], xerr=[[pe["median"] - pe["q25"]], [pe["q75"] - pe["median"]]],
                            yerr=[[pl["median"] - pl["q25"]], [pl["q75"] - pl["median"]]], fmt="X", color="k", ms=7,
                            capsize=3)
        ax.set_yscale("log")
        ax.set(xlabel="epoch of the peak", ylabel="peak closed-loop test loss",
               title="open-loop students: peak test loss and its epoch (cross: medians, IQR)")

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = {r["condition"]: r for r in ablation_numbers(ds)["conditions"]}
        c, o = rows.get("closed"), rows.get("open")
        if c is None or o is None:
            return {}
        ci, oi = condition_runs(ds, "closed"), condition_runs(ds, "open")
        blow = int(np.sum(ds.peak_rise.values[oi] > 10))
        fc, fo = ds.final_test_loss.values[ci], ds.final_test_loss.values[oi]
        gc, go = ds.final_gains.values[ci, 0], ds.final_gains.values[oi, 0]
        dist = np.linalg.norm(gc - go, axis=-1)
        with no_nan_warning():
            text = (f"Over {len(oi)} seeds: the open run's closed-loop test loss peaks at "
                    f"{fmt_spread(o['metrics']['peak_test_loss'], '{:.3g}')} at epoch "
                    f"{fmt_spread(o['metrics']['peak_epoch'], epochs=True)}, "
                    f"{fmt_spread(o['metrics']['peak_rise'], '{:.3g}')} times its minimum before the peak (closed runs: "
                    f"{fmt_spread(c['metrics']['peak_rise'], '{:.3g}')}); it blows up (> 10x) in {blow}/{len(oi)} seeds. "
                    f"Final test loss closed {fmt_spread(c['metrics']['final_test_loss'], '{:.3g}')}, open "
                    f"{fmt_spread(o['metrics']['final_test_loss'], '{:.3g}')} (open/closed per seed: median "
                    f"{np.nanmedian(fo / fc):.3g}); final gains closed k1 {fmt_spread(c['metrics']['k1'], '{:.3f}')}, k2 "
                    f"{fmt_spread(c['metrics']['k2'], '{:.3f}')}, open k1 {fmt_spread(o['metrics']['k1'], '{:.3f}')}, "
                    f"k2 {fmt_spread(o['metrics']['k2'], '{:.3f}')}; distance open vs closed per seed: median "
                    f"{np.nanmedian(dist):.3g}.")
        return {"closed_vs_open_seeds": text}
