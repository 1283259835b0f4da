"""ablation-T: episode length T, continued from each seed's epoch-`start_epoch` model (spec §6.2, Fig 4e)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...analysis import BASE, fmt_spread
from ...config import NON_NEGATIVE, param
from ...plots import OPEN_RED, condition_colors, condition_epochs, condition_runs, first_run, no_nan_warning, unit_circle
from .._base import POSITIVE_INTEGERS, Reproduce, register
from ._ablation import Ablation, ablation_numbers, in_memory


@dataclass(frozen=True)
class EpisodeLengthTable:
    """The table `[ablation_T]`."""

    T_values: tuple[int, ...] = param((10, 20, 50, 100, 120), doc="the episode length task.T of each condition",
                                      check=POSITIVE_INTEGERS)
    start_epoch: int = param(10, doc="the epoch of the base phase (T = task.T) every condition continues from",
                             check=NON_NEGATIVE)


@register
class EpisodeLength(Ablation):
    name = "ablation-T"
    description = "episode length T, continued from each seed's epoch-10 model (spec §6.2, Fig 4e)"
    table = EpisodeLengthTable
    figure_names = ("ablation_T",)
    extra_metrics = ("imag_change",)
    n_panels = 2
    reproduce = Reproduce(
        "ablation-T", quick=("epochs=100", "ablation_T.T_values=[10, 50, 120]"), quick_seeds="0..3", order=30,
        claims={"ablation_T": "Fig 4e / spec §6.2: the episode length sets the trade-off between myopic improvement "
                              "and long-term stability: from the same stage-2 model, short T moves the dominant "
                              "eigenvalue up the imaginary axis (more oscillatory, it stays unstable), long T moves it "
                              "down toward the real axis."})

    def base(self, cfg):
        e = int(cfg.table["start_epoch"])
        return self.variant(cfg, {}, sweep=dict(cfg.sweep) or None, epochs=e + 1), BASE

    def conditions(self, cfg):
        e = str(cfg.table["start_epoch"])
        return [(f"T={T}", {"task.T": int(T), "start.store": "self", "start.epoch": e}) for T in cfg.table["T_values"]]

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = condition_colors(len(rows))
        ax = axes[0]
        seed = int(ds.seed.values[first_run(ds, rows[0]["condition"])])
        pts = []
        for row, color in zip(rows, colors):
            i = next(i for i in condition_runs(ds, row["condition"]) if int(ds.seed.values[i]) == seed)
            n = condition_epochs(ds, row["condition"])
            s2 = int(ds.stage2_end.values[i])
            d = ds.dominant_eigenvalue.values[i, : (s2 + 1 if s2 >= 0 else n)]
            d = d[np.isfinite(d)]
            ax.plot(d.real, d.imag, color=color, lw=0.9, label=row["condition"])
            ax.plot(d.real[-1], d.imag[-1], "o", color=color, mec="k", ms=4)
            pts.append(d)
        start = pts[0][0]
        ax.plot(start.real, start.imag, "o", color=OPEN_RED, ms=6, zorder=5)
        unit_circle(ax)
        allp = np.concatenate(pts)
        ax.set(xlim=(allp.real.min() - 0.005, max(allp.real.max(), 1.0) + 0.005),
               ylim=(max(allp.imag.min() - 0.02, 0), allp.imag.max() * 1.12 + 1e-3), xlabel=r"Re $\lambda_1$",
               ylabel=r"Im $\lambda_1$", title=f"seed {seed}: $\\lambda_1$ until stable")
        ax.legend(fontsize=7.5)
        ax = axes[1]
        for row, color in zip(rows, colors):
            idx = condition_runs(ds, row["condition"])
            n = condition_epochs(ds, row["condition"])
            im = ds.dominant_eigenvalue.values[idx, :n].imag
            delta = im - im[:, :1]
            s2 = ds.stage2_end.values[idx]
            unstable = np.arange(n)[None, :] <= np.where(s2 >= 0, s2, n)[:, None]
            delta = np.where(unstable, delta, np.nan)  # stage 3 moves the pair for other reasons
            alive = unstable.sum(0) >= max(len(idx) // 4, 1)
            with no_nan_warning():
                q25, med, q75 = np.nanpercentile(delta[:, alive], [25, 50, 75], axis=0)
            x = np.arange(n)[alive]
            ax.fill_between(x, q25, q75, color=color, alpha=0.2, lw=0)
            ax.plot(x, med, color=color, lw=1.2, label=row["condition"])
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="epoch of the continuation", ylabel=r"Im $\lambda_1$ - Im $\lambda_1$(start)",
               title=r"change of Im $\lambda_1$ until stable (median, IQR; while >= 1/4 of the seeds are unstable)")

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = ablation_numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            ic = m["imag_change"]
            runs = condition_runs(ds, r["condition"])
            up = int(np.sum(ds.imag_change.values[runs] > 0))
            parts.append(f"{r['condition']}: Im λ1 change {fmt_spread(ic, '{:+.3f}')}, up in {up}/{len(runs)} seeds; "
                         f"stable from {fmt_spread(m['stage2_end'], epochs=True)}")
        meds = [r["metrics"]["imag_change"]["median"] for r in rows]
        order = "decreases monotonically with T" if all(a is not None and b is not None and a >= b for a, b in
                                                         zip(meds, meds[1:])) else "is not monotone in T"
        return {"ablation_T": "Continuations of " + str(condition_epochs(ds, rows[0]["condition"])) + " epochs: " + "; ".join(parts) + f". The median change of Im λ1 {order}."}
