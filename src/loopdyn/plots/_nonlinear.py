"""The nonlinear-stages figure (issue #19): losses, the spectral radius of P(theta) at the loop's fixed point and
the basin over epochs, median and interquartile band over seeds per condition."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._style import CLOSED_BLUE, FIGURE_WIDTH, OPEN_RED, label_panels

_STYLE = {"closed": (CLOSED_BLUE, "-"), "open": (OPEN_RED, "-")}


def _band(ax, x, Y, color, ls, label):
    Y = np.asarray(Y, np.float64)
    ok = np.any(np.isfinite(Y), axis=0)
    if not ok.any():
        return
    with np.errstate(all="ignore"):
        q25, med, q75 = np.nanpercentile(Y[:, ok], [25, 50, 75], axis=0)
    ax.plot(x[ok] + 1, med, color=color, ls=ls, lw=1.2, label=label)
    ax.fill_between(x[ok] + 1, q25, q75, color=color, alpha=0.2, lw=0)


def figure_nonlinear_stages(ds, title: str = "") -> Figure:
    """Per agent (rows: the conditions' agents): (a) closed-loop test loss of the closed run and of the open-loop
    student, (b) spectral radius of P(theta) of both with rho = 1, (c) the basin; median and IQR over seeds,
    log epoch axes (epoch + 1). `title`: a short one (the whole measured answer is the figure's caption)."""
    phases = [str(p) for p in dict.fromkeys(ds.phase.values)]
    agents = list(dict.fromkeys(p.split("-", 1)[1] for p in phases if "-" in p))
    fig = Figure(figsize=(FIGURE_WIDTH, 3.0 * len(agents) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(agents), 3, squeeze=False))
    epochs, ckpts = ds.epoch.values, ds.checkpoint.values
    for row, agent in zip(axes, agents):
        for mode in ("closed", "open"):
            runs = np.nonzero(ds.phase.values == f"{mode}-{agent}")[0]
            if not len(runs):
                continue
            color, ls = _STYLE[mode]
            _band(row[0], epochs, ds.test_loss.values[runs], color, ls, f"{mode} loop")
            if "jacobian_spectral_radius" in ds:
                _band(row[1], ckpts, ds.jacobian_spectral_radius.values[runs], color, ls, f"{mode} loop")
            if "basin" in ds:
                B = ds.basin.values[runs]
                keep = np.any(np.isfinite(B), axis=0)
                _band(row[2], ckpts[keep], B[:, keep], color, ls, f"{mode} loop")
        row[0].set(xscale="log", yscale="log", ylabel=f"{agent}: closed-loop test loss", xlabel="epoch + 1")
        lo, hi = row[0].get_ylim()
        if hi < 10 * lo:  # within a decade a log axis has no labelled tick: a linear one reads better
            row[0].set_yscale("linear")
        else:
            row[0].yaxis.set_minor_formatter(NullFormatter())  # a narrow range labels minor ticks, close together
        row[1].axhline(1.0, color="k", lw=0.8, ls="--")
        row[1].set(xscale="log", ylabel=r"$\rho(P(\theta))$ at the fixed point", xlabel="epoch + 1")
        row[2].set(xscale="log", ylim=(-0.02, 1.02), ylabel="basin fraction", xlabel="epoch + 1")
        row[0].legend(fontsize=7.5)
    label_panels(list(axes.ravel()))
    if title:
        fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 12)), fontsize=9)
    return fig
