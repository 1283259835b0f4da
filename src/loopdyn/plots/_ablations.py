"""Panels of the ablations (spec §6): per condition of a store (:func:`loopdyn.analysis.conditions_of`), losses
as median and IQR bands, final gains, and one strip of every run's value per statistic."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from matplotlib import colormaps

from ..analysis import conditions_of, epochs_of, stability_boundaries


def condition_colors(n: int):
    return colormaps["viridis"](np.linspace(0.0, 0.85, max(n, 1)))


def condition_runs(ds, label: str) -> list[int]:
    return dict(conditions_of(ds))[label]


def condition_epochs(ds, label: str) -> int:
    return epochs_of(ds, condition_runs(ds, label))


def loss_bands_panel(ds, ax, rows, colors, var: str = "test_loss") -> None:
    """Median (line) and IQR (band) over seeds of a loss per epoch, one colour per condition, log-log."""
    for row, color in zip(rows, colors):
        label = row["condition"]
        n = condition_epochs(ds, label)
        y = np.asarray(ds[var].values[condition_runs(ds, label), :n], np.float64)
        with no_nan_warning():
            q25, med, q75 = np.nanpercentile(y, [25, 50, 75], axis=0)
        x = np.arange(n) + 1.0
        ax.fill_between(x, q25, q75, color=color, alpha=0.25, lw=0)
        ax.loglog(x, med, color=color, lw=1.3, label=label)
    what = "closed-loop test loss" if var == "test_loss" else "training loss"
    ax.set(xlabel="epoch + 1 (of the condition's phase)", ylabel=f"{what}\n(median, IQR)")
    # many conditions: the legend beside the axes, where it cannot cover curves or other text
    ax.legend(fontsize=7.5, **({"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)} if len(rows) > MANY_CONDITIONS else {}))


@contextlib.contextmanager
def no_nan_warning():
    """Quantiles over epochs where every run is NaN (all diverged) are NaN: no warning for the plot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def gains_panel(ds, ax, rows, colors) -> None:
    """Final effective gains of every run, $(k_1, k_2)$, one colour per condition, medians as crosses;
    on the double integrator the edges of the stable triangle ($k_1 = 0$, $k_2 = k_1$)."""
    g = ds.final_gains.values[:, 0]
    for row, color in zip(rows, colors):
        idx = condition_runs(ds, row["condition"])
        ax.scatter(g[idx, 0], g[idx, 1], s=8, color=color, alpha=0.6, lw=0, label=row["condition"])
        med = [row["metrics"].get(k, {}).get("median") for k in ("k1", "k2")]
        if None not in med:
            ax.plot(*med, "X", ms=9, color=color, mec="k", mew=0.8, zorder=5)
    finite = g[np.isfinite(g[:, 0]) & np.isfinite(g[:, 1])]
    if len(finite):
        lo = min(finite[:, 0].min(), finite[:, 1].min(), 0.0)
        k1 = np.linspace(lo * 1.1, 0, 100)
        b = stability_boundaries(k1)
        ax.plot(*b["complex_unit"], color="k", lw=0.6, ls="--")
        ax.axvline(0, color="k", lw=0.6, ls="--")
    ax.set(xlabel=r"final $k_1$", ylabel=r"final $k_2$", title="final gains; crosses: medians" +
           ("" if len(rows) <= MANY_CONDITIONS else " (colours as in the losses' legend)"))
    if len(rows) <= MANY_CONDITIONS:
        ax.legend(fontsize=7.5)


MANY_CONDITIONS = 5
"""Above this many conditions a strip's tick labels stand vertically (one line each)."""


def vertical_ticks(rows) -> bool:
    """Whether a strip's tick labels stand vertically: many conditions, or names longer than the ~0.8 in a
    condition gets (about 12 characters at 7.5 pt)."""
    return len(rows) > MANY_CONDITIONS or max((len(r["condition"]) for r in rows), default=0) > 12


def _tick(label: str, s: dict | None, epochs: bool) -> str:
    """A strip's tick label: the condition, then the median and (k/n) on lines of their own (the IQR is the
    bar, and in the report's table)."""
    if not s or s["median"] is None:
        return f"{label}\n{'never' if epochs and s and s['n'] else '-'}"
    fmt = (lambda v: f"{v:.0f}") if epochs else (lambda v: f"{v:.3g}")
    text = f"{label}\n{fmt(s['median'])}"
    return text + (f"\n({s['n_valid']}/{s['n']})" if s["n_valid"] < s["n"] else "")


def strip_panel(ds, ax, rows, name: str, colors, title: str) -> None:
    """Every run's value (jittered dot) per condition, median and IQR as a bar; the tick labels give the
    median and, when some runs have no value (never reached, diverged), (k/n)."""
    epochs = name.endswith(("_end", "_epoch"))
    rng = np.random.default_rng(0)
    ticks = []
    for j, (row, color) in enumerate(zip(rows, colors)):
        v = np.asarray(ds[name].values[condition_runs(ds, row["condition"])], np.float64)
        v = v[np.isfinite(v)]
        v = v[v >= 0] if epochs else v
        ax.scatter(j + rng.uniform(-0.18, 0.18, v.size), v, s=7, color=color, alpha=0.55, lw=0)
        s = row["metrics"].get(name)
        if s and s["median"] is not None:
            ax.errorbar(j + 0.3, s["median"], yerr=[[s["median"] - s["q25"]], [s["q75"] - s["median"]]], fmt="o",
                        color="k", ms=4, capsize=3, lw=1)
        ticks.append(_tick(row["condition"], s, epochs))
    if name.endswith("loss"):
        ax.set_yscale("log")
    if vertical_ticks(rows):  # one vertical line each: about 0.5 in per condition, no overlap
        ax.set_xticks(range(len(rows)), [t.replace("\n", "  ") for t in ticks], fontsize=7.5, rotation=90)
    else:
        ax.set_xticks(range(len(rows)), ticks, fontsize=7.5)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(title, fontsize=8)


def first_run(ds, label: str) -> int:
    return condition_runs(ds, label)[0]
