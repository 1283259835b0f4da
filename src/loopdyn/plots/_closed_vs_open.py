r"""Panels and figures of the closed-vs-open experiment (Figs 1c and 2; spec §4.6, §5): the closed run and its
open-loop student per seed, losses and paths in gain space on the double integrator's stability map."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis import (Stages, closed_open_pairs, closed_stages, lqr_gain, stability_boundaries, store_config,
                        training_cost_lqr_weights)
from ._gains import GAIN_AXES, LANDSCAPE_LABEL, boundaries, gain_path, landscape, path, stage_points
from ._style import FIGURE_WIDTH, CLOSED_BLUE, OPEN_RED, STAGE1_MARK, STAGE2_MARK, label_panels, log_limits, set_caption, shade_stages


GAIN_BOX = (-1.2, 0.6)  # k1 and k2 range of Fig 2b (spec §4.6)
ZOOM_K1, ZOOM_K2 = (-0.06, 0.02), (-0.06, 0.04)  # Fig 2c


def loss_pair_panel(ax, run, stages: Stages, color: str, title: str, test_label: str, train_label: str) -> None:
    """Fig 1c: one run's closed-loop test loss (left axis, `color`) and training loss (right axis,
    dashed black) over `epoch + 1`, log-log, both axes on the same range; the closed run's stages shaded."""
    test = np.asarray(run["test_loss"].values, dtype=np.float64)
    train = np.asarray(run["train_loss"].values, dtype=np.float64)
    n = test.size
    x = np.arange(n) + 1.0
    shade_stages(ax, stages.spans(n))
    ax.loglog(x, test, color=color, lw=1.3)
    ax2 = ax.twinx()
    ax2.loglog(x, train, color="k", ls="--", lw=0.9)
    lo, hi = log_limits(test, train)
    for a in (ax, ax2):
        a.set_ylim(lo, hi)
    ax.set_xlim(0.8, n * 1.1)
    ax.set_xlabel("epoch + 1")
    ax.set_ylabel(test_label, color=color, fontsize=7.5)
    ax2.set_ylabel(train_label, fontsize=7.5)
    ax.tick_params(axis="y", colors=color)
    ax.set_title(title, fontsize=8)


def test_loss_panel(ax, closed, open_, stages: Stages, test_label: str) -> None:
    """Fig 2a: closed-loop test loss of the closed (blue) and open (red) run, log-log; silver marker at
    the end of stage 1, gold at stabilisation (both on the closed curve), the open run's peak marked."""
    tc = np.asarray(closed["test_loss"].values, dtype=np.float64)
    to = np.asarray(open_["test_loss"].values, dtype=np.float64)
    n = tc.size
    x = np.arange(n) + 1.0
    shade_stages(ax, stages.spans(n))
    ax.loglog(x, tc, color=CLOSED_BLUE, lw=1.3, label="closed loop")
    ax.loglog(np.arange(to.size) + 1.0, to, color=OPEN_RED, lw=1.3, label="open loop")
    for epoch, colour, what in ((int(stages.stage1_end), STAGE1_MARK, "end of stage 1"),
                                (int(stages.stage2_end), STAGE2_MARK, "stabilisation")):
        if 0 < epoch < n:
            ax.plot(epoch + 1, tc[epoch], "o", ms=7, color=colour, mec="k", mew=0.6, zorder=5,
                    label=f"{what} (epoch {epoch})")
    if np.any(np.isfinite(to)):
        peak = int(np.nanargmax(to))
        # centred above the peak, or starting at it where the peak is near the left edge (the tick labels)
        left = peak + 1 < 3
        ax.annotate(f"Peak\n(epoch {peak})", (peak + 1, to[peak]), xytext=(2 if left else 0, 6), textcoords="offset points",
                    ha="left" if left else "center", va="bottom", fontsize=7.5, color=OPEN_RED)
    lo, hi = log_limits(tc, to)
    ax.set_ylim(lo, hi * 10)
    ax.set_xlim(0.8, n * 1.1)
    ax.set(xlabel="epoch + 1", ylabel=test_label)
    ax.yaxis.label.set_fontsize(7.5)
    ax.legend(fontsize=7.5, loc="lower left")


def gain_space_panel(ax, closed, open_, stages: Stages, lqr: tuple[np.ndarray, str] | None = None,
                     grid: int = 200):
    r"""Fig 2b: gain paths of the closed (blue) and open (red) run over $\log(\mathcal L/50)$ of the
    static policy $u = k_1 x + k_2 v$ from $x_0 = (1, 1)$ (spec §4.6), on $[-1.2, 0.6]^2$.

    Solid black: edges of the stable region ($k_1 = 0$: an eigenvalue at $+1$; $k_2 = k_1$: a complex
    pair on the unit circle); dotted: the parabola $k_1 = -k_2^2/4$ between the two unstable regions.
    `lqr = (K, label)` marks an LQR gain (an arrow at the edge when it lies outside the box).

    **Returns:** the filled-contour artist (for a colour bar).
    """
    cs = landscape(ax, GAIN_BOX, GAIN_BOX, grid)
    boundaries(ax, np.linspace(*GAIN_BOX, 400), lw_main=1.3)
    (c1, c2), (o1, o2) = _both_paths(ax, closed, open_, stages, lw=0.7)
    ax.annotate("Start", (c1[0], c2[0]), xytext=(6, 6), textcoords="offset points", fontsize=7.5, color="w")
    for k1, k2, colour in ((c1, c2, CLOSED_BLUE), (o1, o2, OPEN_RED)):
        ax.plot(k1[-1], k2[-1], "*", ms=11, color=colour, mec="w", mew=0.7, zorder=7)
    ax.annotate("End", (c1[-1], c2[-1]), xytext=(8, -4), textcoords="offset points", fontsize=7.5, color="w")
    if lqr is not None:
        K, label = lqr
        k1, k2 = float(K[0, 0]), float(K[0, 1])
        lo, hi = GAIN_BOX
        if lo <= k1 <= hi and lo <= k2 <= hi:
            ax.plot(k1, k2, "X", ms=8, color="w", mec="k", zorder=7)
            ax.annotate(f"{label}", (k1, k2), xytext=(6, -10), textcoords="offset points", fontsize=7.5, color="w")
        else:  # an arrow from inside the box towards the gain, ending on the box edge
            edge = (min(max(k1, lo), hi), min(max(k2, lo), hi))
            ax.annotate(f"{label}:\n({k1:.2f}, {k2:.2f}), off the map", edge, xytext=(-0.1, -0.97), ha="left",
                        fontsize=7.5, color="w", zorder=7, arrowprops=dict(arrowstyle="->", color="w", lw=0.9))
    ax.text(-1.1, 0.5, "Unstable (osc.)", fontsize=7.5, color="w", va="top")
    ax.text(0.12, -0.6, "Unstable\n(real)", fontsize=7.5, color="w")
    ax.text(-0.95, -1.1, "Stable", fontsize=8, color="w", fontweight="bold")
    ax.set(xlim=GAIN_BOX, ylim=GAIN_BOX, xticks=[-0.9, 0, 0.5], yticks=[-0.9, 0, 0.5])
    ax.set_xlabel(GAIN_AXES[0], fontsize=7.5)
    ax.set_ylabel(GAIN_AXES[1], fontsize=7.5)
    ax.legend(fontsize=7.5, loc="upper right")
    return cs


def _both_paths(ax, closed, open_, stages: Stages, **style):
    """Draw both gain paths, the stage markers of the closed run and its start; return the paths."""
    c1, c2 = gain_path(closed)
    o1, o2 = gain_path(open_)
    path(ax, c1, c2, CLOSED_BLUE, "closed loop", **style)
    path(ax, o1, o2, OPEN_RED, "open loop", **style)
    stage_points(ax, c1, c2, stages)
    ax.plot(c1[0], c2[0], "o", ms=6, color="w", mec="k", zorder=7)
    return (c1, c2), (o1, o2)


def gain_zoom_panel(ax, closed, open_, stages: Stages, grid: int = 120):
    r"""Fig 2c: zoom on stages 1 and 2, $k_1 \in [-0.06, 0.02]$, $k_2 \in [-0.06, 0.04]$; one dot per
    epoch, the boundaries $k_1 = 0$ and $k_2 = k_1$ drawn thick.

    **Returns:** the filled-contour artist.
    """
    cs = landscape(ax, ZOOM_K1, ZOOM_K2, grid)
    k1r = np.linspace(min(ZOOM_K1[0], ZOOM_K2[0]), 0.0, 200)
    ax.plot(np.zeros(2), [ZOOM_K2[0], 0.0], color="k", lw=2.5, zorder=3)
    ax.plot(k1r, k1r, color="k", lw=2.5, zorder=3)
    ax.plot(*stability_boundaries(k1r)["discriminant_upper"], color="k", lw=0.8, ls=":", zorder=3)
    (c1, c2), _ = _both_paths(ax, closed, open_, stages, ms=2.0)
    ax.text(-0.055, 0.035, "Unstable (osc.)", fontsize=7.5, color="w", va="top")
    ax.text(-0.055, -0.055, "Stable", fontsize=7.5, color="w", fontweight="bold")
    ax.text(0.003, -0.02, r"$k_1 = 0$", fontsize=7.5, color="w", rotation=90)
    ax.text(-0.045, -0.041, r"$k_2 = k_1$", fontsize=7.5, color="w", rotation=45)
    ax.set(xlim=ZOOM_K1, ylim=ZOOM_K2)
    ax.set_xlabel(GAIN_AXES[0], fontsize=7.5)
    ax.set_ylabel(GAIN_AXES[1], fontsize=7.5)
    return cs


TEST_LABELS = {"sum_t": r"test loss $\sum_{t<T}\langle\|x_t\|^2\rangle_b$",
               "mean_xv": r"test loss $\langle\|x_t\|^2\rangle_{t,b}$"}


TRAIN_LABELS = {"sum": r"train loss $\sum_t [\langle x_{t,i}^2\rangle_{b,i} + \beta\sum_b u_t^2]$",
                "mean": r"train loss $\langle x_{t,i}^2\rangle_{t,i,b} + \beta\langle\sum_t u_t^2\rangle_b$"}


IMITATION_LABEL = r"imitation loss $\sum_t\langle(u^S_t - u^T_t)^2\rangle_b$"


def _loss_labels(ds) -> tuple[str, str, str]:
    """Short axis labels (mathtext) of the test, training and imitation losses of a store."""
    cfg = ds.attrs["config"]
    return TEST_LABELS[cfg["task"]["test_loss"]], TRAIN_LABELS[cfg["task"]["loss"]], IMITATION_LABEL


def _definitions(ds, extra: str = "") -> str:
    """One caption line with the exact loss definitions recorded in the store."""
    t = ds.attrs["config"]["task"]
    test = ds.attrs.get("test_loss_definition", "").removeprefix("closed-loop test loss ")
    train = ds.attrs.get("train_loss_definition", "").removeprefix("train loss ")
    imitation = ds.attrs.get("imitation_loss_definition", "").split(": ", 1)[-1]
    return (f"Closed-loop test loss {test} over a fixed batch of {t['test_batch']} x0 ~ U(-{t['x0_range']:g}, "
            f"{t['x0_range']:g})^2, T = {t['T']}.  Closed run trained on {train} (reg = {t['beta']:g}).  "
            f"Open run trained on the imitation loss {imitation}.{extra}")


def figure_1c(ds) -> Figure:
    """Fig 1c: one row per seed; closed run (left), open run (right)."""
    pairs = closed_open_pairs(ds)
    test, train, imitation = _loss_labels(ds)
    fig = Figure(figsize=(FIGURE_WIDTH, 3.0 * len(pairs) + 0.5), layout="constrained")
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    for row, (seed, c, o) in enumerate(pairs):
        closed, open_ = ds.isel(run=c), ds.isel(run=o)
        stages = closed_stages(closed)
        loss_pair_panel(axes[row, 0], closed, stages, CLOSED_BLUE, f"seed {seed}: closed loop", test, train)
        loss_pair_panel(axes[row, 1], open_, stages, OPEN_RED,
                        f"seed {seed}: open loop (teacher-student), stages of the closed run", test, imitation)
    handles = [Line2D([], [], color=CLOSED_BLUE, label="closed-loop test loss, closed run"),
               Line2D([], [], color=OPEN_RED, label="closed-loop test loss, open run"),
               Line2D([], [], color="k", ls="--", label="training loss (right axis)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=7.5)
    fig.suptitle("Closed vs open loop: test loss of each run; the stages of the closed run shaded", fontsize=10)
    set_caption(fig, _definitions(ds))
    return fig


def figure_2(ds) -> Figure:
    """Fig 2: one row per seed; (a) test losses, (b) gain space, (c) zoom on stages 1-2."""
    pairs = closed_open_pairs(ds)
    test, _, _ = _loss_labels(ds)
    cfg = store_config(ds)
    plant = cfg.plant
    R = training_cost_lqr_weights(cfg, plant.n_states)
    K, _ = lqr_gain(plant.A, plant.B, np.eye(plant.n_states), R)
    lqr = (K, f"LQR, Q = I, R = {R:g}")
    fig = Figure(figsize=(FIGURE_WIDTH, 3.4 * len(pairs)), layout="constrained")
    axes = fig.subplots(len(pairs), 3, squeeze=False)
    for row, (seed, c, o) in enumerate(pairs):
        closed, open_ = ds.isel(run=c), ds.isel(run=o)
        stages = closed_stages(closed)
        test_loss_panel(axes[row, 0], closed, open_, stages, test)
        axes[row, 0].set_title(f"seed {seed}: closed-loop test loss", fontsize=8)
        cs = gain_space_panel(axes[row, 1], closed, open_, stages, lqr)
        fig.colorbar(cs, ax=axes[row, 1], label=LANDSCAPE_LABEL, shrink=0.9).ax.yaxis.label.set_fontsize(7.5)
        axes[row, 1].set_title(f"seed {seed}: effective gains (least squares, $u = Kx$)", fontsize=8)
        cz = gain_zoom_panel(axes[row, 2], closed, open_, stages)
        fig.colorbar(cz, ax=axes[row, 2], label=LANDSCAPE_LABEL, shrink=0.9).ax.yaxis.label.set_fontsize(7.5)
        axes[row, 2].set_title(f"seed {seed}: stages 1-2 (dots: epochs)", fontsize=8)
        label_panels(axes[row])
    fig.suptitle("Closed vs open loop: test losses and the paths of the effective gains", fontsize=10)
    set_caption(fig, _definitions(ds, "  Gains: least-squares K with u = Kx over each epoch's closed-loop trajectories "
                                      "of a batch (t = 0 dropped); black lines: edges of the stable region (k1 = 0, "
                                      "k2 = k1), dotted: real/complex eigenvalue boundary k1 = -k2^2/4; silver: end of "
                                      "stage 1, gold: stabilisation (closed run)."))
    return fig
