"""The overview figure of any store: loss curves and spectral radius per run, stabilisation marked."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..analysis import stabilisation_epoch
from ._style import FIGURE_WIDTH, axes_width, mathtext, wrap


def _hue(ds, hue: str | None):
    """`(colour per run, label per run)`: runs coloured by the per-run coordinate `hue` (default: the first
    swept setting, else each seed its own colour), each label naming the value once."""
    from ..store import swept_keys

    runs = ds.sizes["run"]
    if hue is None:
        keys = swept_keys(ds)
        hue = keys[0] if keys else None
    if hue is None:
        colors = colormaps["viridis"](np.linspace(0, 0.9, runs))
        return colors, [f"seed {int(s)}" for s in ds.seed.values]
    if hue not in ds.coords or ds[hue].dims != ("run",):
        from ..errors import ConfigError

        per_run = [str(c) for c, v in ds.coords.items() if v.dims == ("run",) and c != "run"]
        raise ConfigError(f"--hue {hue}: not a per-run coordinate of the store; choose among {', '.join(per_run)}")
    values = np.asarray(ds[hue].values)
    levels = list(dict.fromkeys(values.tolist()))
    palette = colormaps["viridis"](np.linspace(0, 0.9, len(levels)))
    colors = np.array([palette[levels.index(v)] for v in values.tolist()])
    labels, seen = [], set()
    for v in values.tolist():
        labels.append(None if v in seen else f"{hue} = {v:g}" if isinstance(v, float) else f"{hue} = {v}")
        seen.add(v)
    return colors, labels


def training_figure(ds, hue: str | None = None) -> Figure:
    """Training loss, closed-loop test loss and (linear agents) the spectral radius of P per run, coloured
    by the per-run coordinate `hue` (default: the first swept setting; the legend names its values)."""
    has_eig = "spectral_radius" in ds
    fig = Figure(figsize=(FIGURE_WIDTH if has_eig else FIGURE_WIDTH * 2 / 3, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if has_eig else 2)
    epochs = ds.epoch.values + 1
    stab = stabilisation_epoch(ds.spectral_radius.values) if has_eig else None
    colors, labels = _hue(ds, hue)
    for i in range(ds.sizes["run"]):
        axes[0].loglog(epochs, ds.train_loss.values[i], color=colors[i], lw=1, label=labels[i])
        axes[1].loglog(epochs, ds.test_loss.values[i], color=colors[i], lw=1)
        if has_eig:
            axes[2].semilogx(epochs, ds.spectral_radius.values[i], color=colors[i], lw=1)
            if stab[i] >= 0:
                for ax, y in ((axes[1], ds.test_loss.values[i][stab[i]]), (axes[2], ds.spectral_radius.values[i][stab[i]])):
                    ax.plot(stab[i] + 1, y, "o", color=colors[i], mec="k", ms=6)
    axes[0].set(xlabel="epoch + 1", ylabel="train loss", title=mathtext(ds.attrs.get("train_loss_definition", "")))
    axes[1].set(xlabel="epoch + 1", ylabel="closed-loop test loss", title=mathtext(ds.attrs.get("test_loss_definition", "")))
    if has_eig:
        axes[2].axhline(1.0, color="k", ls="--", lw=0.8)
        axes[2].set(xlabel="epoch + 1", ylabel=r"spectral radius $\rho(P)$", title="joint matrix; dots = stabilisation epoch")
    if sum(lb is not None for lb in labels) <= 16:
        axes[0].legend(fontsize=7.5)
    for ax in axes:
        ax.set_title(wrap(ax.get_title(), axes_width(ax), 8), fontsize=8)
    return fig
