"""The overview figure of any store: loss curves and spectral radius per run, stabilisation marked."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..analysis import stabilisation_epoch


def training_figure(ds) -> Figure:
    """Training loss, closed-loop test loss and (linear agents) the spectral radius of P per run."""
    has_eig = "spectral_radius" in ds
    fig = Figure(figsize=(15 if has_eig else 10, 4), layout="constrained")
    axes = fig.subplots(1, 3 if has_eig else 2)
    epochs = ds.epoch.values + 1
    stab = stabilisation_epoch(ds.spectral_radius.values) if has_eig else None
    colors = colormaps["viridis"](np.linspace(0, 0.9, ds.sizes["run"]))
    for i in range(ds.sizes["run"]):
        axes[0].loglog(epochs, ds.train_loss.values[i], color=colors[i], lw=1, label=f"seed {int(ds.seed[i])}")
        axes[1].loglog(epochs, ds.test_loss.values[i], color=colors[i], lw=1)
        if has_eig:
            axes[2].semilogx(epochs, ds.spectral_radius.values[i], color=colors[i], lw=1)
            if stab[i] >= 0:
                for ax, y in ((axes[1], ds.test_loss.values[i][stab[i]]), (axes[2], ds.spectral_radius.values[i][stab[i]])):
                    ax.plot(stab[i] + 1, y, "o", color=colors[i], mec="k", ms=6)
    axes[0].set(xlabel="epoch + 1", ylabel="train loss", title=ds.attrs.get("train_loss_definition", ""))
    axes[1].set(xlabel="epoch + 1", ylabel="closed-loop test loss", title=ds.attrs.get("test_loss_definition", ""))
    if has_eig:
        axes[2].axhline(1.0, color="k", ls="--", lw=0.8)
        axes[2].set(xlabel="epoch + 1", ylabel=r"spectral radius $\rho(P)$", title="joint matrix; dots = stabilisation epoch")
    if ds.sizes["run"] <= 16:
        axes[0].legend(fontsize=7)
    for ax in axes:
        ax.title.set_fontsize(8)
    return fig
