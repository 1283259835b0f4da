r"""Panels of the effective-gain plane $(k_1, k_2)$ of the double integrator (spec §4.6, Fig 2b-c):
the landscape $\log(\mathcal L/50)$ of static feedback, the edges of the stability map, and gain paths."""

from __future__ import annotations

import numpy as np

from ..analysis import Stages, stability_boundaries
from ..analysis import gain_loss_landscape as _loss_landscape
from ._style import STAGE1_MARK, STAGE2_MARK

LANDSCAPE_LABEL = r"$\log(\mathcal{L}/50)$ of $u = Kx$: $\mathcal{L} = \sum_{t=1}^{50}\|x_t\|^2$, $x_0 = (1, 1)$"
GAIN_AXES = (r"$k_1$ (position gain; $u = k_1 x + k_2 v$)", r"$k_2$ (velocity gain)")


def gain_path(run) -> tuple[np.ndarray, np.ndarray]:
    """`(k1, k2)` per epoch of one run (`ds.isel(run=i)`): `gains[:, 0, 0]`, `gains[:, 0, 1]`."""
    g = np.asarray(run["gains"].values, dtype=np.float64)
    return g[:, 0, 0], g[:, 0, 1]


def landscape(ax, k1_lim, k2_lim, n: int, vmin=None, vmax=None):
    """Filled contours of the static-feedback loss landscape; returns the artist (for a colour bar)."""
    k1 = np.linspace(*k1_lim, n)
    k2 = np.linspace(*k2_lim, n)
    Z = np.asarray(_loss_landscape(k1, k2))
    cs = ax.contourf(k1, k2, Z, levels=40, cmap="viridis", vmin=vmin, vmax=vmax, zorder=0)
    cs.set_rasterized(True)  # keeps the PDF small and quick to write
    return cs


def boundaries(ax, k1_range, lw_main: float) -> None:
    """Edges of the stable triangle ($k_1 = 0$, $k_2 = k_1$) and the real/complex parabola (dotted)."""
    b = stability_boundaries(k1_range)
    ax.plot(*b["real_unit"], color="k", lw=lw_main, zorder=3)
    ax.plot(*b["complex_unit"], color="k", lw=lw_main, zorder=3)
    ax.plot(*b["discriminant_upper"], color="k", lw=0.8, ls=":", zorder=3)


def path(ax, k1, k2, color, label, ms: float = 0.0, lw: float = 1.0) -> None:
    ok = np.isfinite(k1) & np.isfinite(k2)
    ax.plot(k1[ok], k2[ok], color=color, lw=lw, label=label, zorder=4, marker="o" if ms else None, ms=ms, mew=0)


def stage_points(ax, k1, k2, stages: Stages) -> None:
    """Silver dot at the end of stage 1, gold at stabilisation."""
    for epoch, colour in ((int(stages.stage1_end), STAGE1_MARK), (int(stages.stage2_end), STAGE2_MARK)):
        if 0 < epoch < k1.size:
            ax.plot(k1[epoch], k2[epoch], "o", ms=7, color=colour, mec="k", mew=0.6, zorder=6)
