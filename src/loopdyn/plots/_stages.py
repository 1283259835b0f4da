r"""Panels and figures of the stages experiment (Figs 3-5 and the stage-2 theory; spec §4.3-4.5), drawn from
a store the stages experiment trained and analysed (:mod:`loopdyn.experiments.stages`)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis import closed_loop_trajectory
from ..errors import StoreError
from ..store import read_analysis
from ._style import CLOSED_BLUE, FIGURE_WIDTH, OPEN_RED, STAGE_COLORS, label_panels, unit_circle

THEORY_RED = OPEN_RED


def closed_run(ds) -> int:
    """The index of the store's first run of phase `closed` (the stages experiment's reference run)."""
    phases = [str(m) for m in ds["phase"].values]
    if "closed" not in phases:
        raise StoreError("not a store of the stages experiment (no run of phase 'closed')")
    return phases.index("closed")


def _runs(ds, phase: str) -> list[int]:
    return [i for i, m in enumerate(ds["phase"].values) if str(m) == phase]


def _phase_epochs(ds, phase: str) -> int:
    for label, cfg in ds.attrs.get("phases", []):
        if label == phase:
            return int(cfg["epochs"])
    return ds.sizes["epoch"]


def run_stages(ds, run: int) -> tuple[int, int, int]:
    """`(stage1_end, stage2_end, n_epochs)` of a run, `-1` replaced by the natural edge."""
    n = _phase_epochs(ds, str(ds["phase"].values[run]))
    s1, s2 = int(ds.stage1_end.values[run]), int(ds.stage2_end.values[run])
    s2 = n if s2 < 0 else s2
    s1 = s2 if s1 < 0 else s1
    return s1, s2, n


def loss_panel(ds, ax, highlight: int) -> None:
    """Closed-run test loss, log-log, with the three stages shaded and `highlight` (1, 2 or 3) emphasised."""
    r = closed_run(ds)
    s1, s2, n = run_stages(ds, r)
    x = np.arange(n) + 1.0
    y = ds.test_loss.values[r, :n]
    edges = [(1, 0, s1), (2, s1, s2), (3, s2, n)]
    for k, lo, hi in edges:
        if hi > lo:
            ax.axvspan(lo + 1, hi + 1, color=STAGE_COLORS[k - 1], alpha=0.55 if k == highlight else 0.15, lw=0)
            ax.text(np.sqrt((lo + 1) * (hi + 1)), 0.93, f"Stage {k}", transform=ax.get_xaxis_transform(), ha="center",
                    fontsize=7.5, fontweight="bold" if k == highlight else "normal")
    for b in (s1, s2):
        if 0 < b < n:
            ax.axvline(b + 1, color="k", ls="--", lw=0.7)
    ax.loglog(x, y, color=CLOSED_BLUE, lw=1.3)
    ax.set(xlabel="epoch + 1", ylabel=r"test loss $\langle x^2 + v^2\rangle$", xlim=(1, n + 1))
    ax.set_ylim(min(np.nanmin(y) / 3, 0.1), np.nanmax(y) * 20)


def trajectory_panel(ds, ax, epoch: int, steps: int, horizon: int | None) -> None:
    """Position of the closed run's model at `epoch` from $(x, v) = (1, -1)$; red line at the horizon T."""
    r = closed_run(ds)
    xs = closed_loop_trajectory(ds, r, epoch, steps)
    ax.plot(np.arange(steps), xs[:, 0], color=CLOSED_BLUE, lw=1.0)
    ax.axhline(0, color="0.6", lw=0.6)
    if horizon is not None:
        ax.axvline(horizon, color=THEORY_RED, ls="--", lw=1.0, label=f"T = {horizon}")
        ax.legend(fontsize=7.5, loc="upper left")
    ax.set(xlabel="time step t", ylabel="position x", title=f"model of epoch {epoch}")


def eigenvalue_transition_panel(ds, ax) -> None:
    """Fig 3c: spectra of P around the real-to-complex transition of the dominant pair (end of stage 1)."""
    r = closed_run(ds)
    s1, _, n = run_stages(ds, r)
    epochs = np.arange(max(s1 - 4, 0), min(s1 + 3, n))
    lam = ds.eigenvalues.values[r, epochs]
    cmap = colormaps["viridis"]
    norm = Normalize(epochs[0], epochs[-1])
    for e, l in zip(epochs, lam):
        edge = dict(edgecolors="k", linewidths=1.2, s=46, zorder=4) if e == s1 else dict(s=26, zorder=3)
        ax.scatter(l.real, l.imag, color=cmap(norm(e)), **edge)
    unit_circle(ax)
    pair = np.concatenate([lam[:, :2].ravel()])
    half = max(np.max(np.abs(pair - 1)) * 1.25, 0.05)
    ax.set(xlim=(1 - half, 1 + half), ylim=(-half * 1.5, half * 1.5), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$",
           title=f"eig(P), epochs {epochs[0]}-{epochs[-1]}; edged: {s1}")
    ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="epoch", fraction=0.05)


def stage1_theory_panel(ds, ax) -> None:
    """Fig 3d: $\\log\\mathcal L$ against $\\sigma_{zm}$, geometric-sum theory (dashed) vs simulation (solid)."""
    s = ds.stage1_sigma.values
    ax.plot(s, ds.stage1_log_loss_sim.values, color=CLOSED_BLUE, lw=1.5, label="simulation")
    ax.plot(s, ds.stage1_log_loss_theory.values, color="k", ls="--", lw=1.2, label="theory")
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set(xlabel=r"$\sigma_{zm}$", ylabel=r"$\log \mathcal{L}$", title="Theoretical")
    ax.legend(fontsize=7.5)


def sigma_trajectories_panel(ds, ax) -> None:
    """Fig 3e: $\\sigma_{zm}$ against epoch from 10 initial values in $[-0.2, 0.2]$."""
    starts = ds.sigma_traj_start.values
    cmap, norm = colormaps["plasma"], Normalize(starts.min(), starts.max() + 0.1 * np.ptp(starts))
    for s, traj in zip(starts, ds.sigma_zm_traj.values):
        ax.plot(ds.sigma_traj_epoch.values, traj, color=cmap(norm(s)), lw=1.2)
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel="epoch", ylabel=r"$\sigma_{zm}$", title="Empirical")


def stage2_eigenvalue_panel(ds, ax) -> None:
    """Fig 4c: the dominant eigenvalue through stage 2 (zig-zag), stabilisation epoch edged."""
    r = closed_run(ds)
    s1, s2, n = run_stages(ds, r)
    start = max(s1 + 2, min(10, s2))
    epochs = np.arange(start, min(s2 + 1, n))
    lam = ds.dominant_eigenvalue.values[r, epochs]
    ax.plot(lam.real, lam.imag, color="0.75", lw=0.6, zorder=1)
    cmap, norm = colormaps["viridis"], Normalize(epochs[0], epochs[-1])
    ax.scatter(lam.real[:-1], lam.imag[:-1], c=epochs[:-1], cmap=cmap, norm=norm, s=12, alpha=0.8, zorder=2)
    ax.scatter(lam.real[-1], lam.imag[-1], color=cmap(norm(epochs[-1])), edgecolors="k", linewidths=1.2, s=50, zorder=3)
    unit_circle(ax)
    pad_x = max(np.ptp(lam.real) * 0.15, 2e-3)
    pad_y = max(np.ptp(lam.imag) * 0.15, 5e-3)
    ax.set(xlim=(lam.real.min() - pad_x, max(lam.real.max(), 1.0) + pad_x), ylim=(lam.imag.min() - pad_y, lam.imag.max() + pad_y),
           xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$", title=f"$\\lambda_1$, epochs {epochs[0]}-{epochs[-1]}; edged: {s2}")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # readable ticks on a narrow range
    ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="epoch", fraction=0.05)


def surrogate_panel(ds, ax) -> None:
    """Fig 4d: dominant root along the surrogate optimisation, coloured by α; start (red dot) from the
    closed run at `T_start_epoch`; a black dot where a path enters the unit circle."""
    r = closed_run(ds)
    alphas = ds.surrogate_alpha.values
    paths = ds.surrogate_dominant.values[r]
    colors = colormaps["viridis"](np.linspace(0, 0.92, len(alphas)))
    for a, d, color in zip(alphas, paths, colors):
        ax.plot(d.real, d.imag, color=color, lw=1.6, label=rf"$\alpha$ = {a:g}")
        inside = np.abs(d) < 1
        if inside.any():
            i = int(np.argmax(inside))
            ax.plot(d.real[i], d.imag[i], "o", color="k", ms=3.5, zorder=4)
    start = paths[0, 0]
    ax.plot(start.real, start.imag, "o", color=THEORY_RED, ms=6, zorder=5)
    unit_circle(ax)
    finite = paths[np.abs(paths.imag) > 1e-9]
    ax.set(xlim=(min(finite.real.min(), 0.97) - 0.005, max(finite.real.max(), 1.0) + 0.01),
           ylim=(0, min(finite.imag.max(), 0.8) * 1.08), xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$",
           title=rf"Theoretical (surrogate, $T$ = {int(_surrogate_T(ds))})")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # readable ticks on a narrow range
    ax.legend(fontsize=7.5, loc="upper left")


def _surrogate_T(ds) -> int:
    return int(read_analysis(ds)["numbers"]["surrogate"]["T"])


def horizon_panel(ds, ax) -> None:
    """Fig 4e: dominant eigenvalue of the T-continuation runs (from `T_start_epoch`), coloured by T, each
    up to the epoch its dominant pair enters the unit circle for good (or its last epoch)."""
    runs = _runs(ds, "T-continuation")
    Ts = np.array([float(ds["T"].values[i]) for i in runs])
    colors = colormaps["viridis"](np.linspace(0, 0.92, len(runs)))
    n = _phase_epochs(ds, "T-continuation")
    info = {row["run"]: row for row in read_analysis(ds)["numbers"].get("T_continuation", [])}
    allpts = []
    for i, T, color in sorted(zip(runs, Ts, colors), key=lambda t: t[1]):
        d = ds.dominant_eigenvalue.values[i, :n]
        stop = info.get(i, {}).get("pair_inside_from", -1)
        d = d[: (stop + 1 if stop >= 0 else n)]
        ax.plot(d.real, d.imag, color=color, lw=0.9, alpha=0.9, label=f"T = {T:g}")
        ax.plot(d.real[-1], d.imag[-1], "o", color=color, mec="k", ms=4)
        allpts.append(d)
    start = ds.dominant_eigenvalue.values[runs[0], 0]
    ax.plot(start.real, start.imag, "o", color=THEORY_RED, ms=6, zorder=5)
    unit_circle(ax)
    pts = np.concatenate(allpts)
    ax.set(xlim=(pts.real.min() - 0.005, max(pts.real.max(), 1.0) + 0.005), ylim=(max(pts.imag.min() - 0.02, 0), pts.imag.max() * 1.12),
           xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$", title="Empirical (episode length T)")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # readable ticks on a narrow range
    ax.legend(fontsize=7.5, loc="upper right", ncol=1)


def stage3_eigenvalue_panel(ds, ax) -> None:
    """Fig 5c: spectra of P through stage 3 — the stabilisation epoch (faint), the pair every 40th epoch, λ3
    every 4th epoch for 50 epochs, the final spectrum (edged)."""
    r = closed_run(ds)
    _, s2, n = run_stages(ds, r)
    lam = ds.eigenvalues.values[r]
    cmap, norm = colormaps["viridis"], Normalize(s2, n - 1)
    ax.scatter(lam[s2].real, lam[s2].imag, color="0.6", s=20, alpha=0.6, zorder=2)
    for e in range(s2, n, 40):
        pair = ds.dominant_eigenvalue.values[r, e]
        ax.scatter([pair.real] * 2, [pair.imag, -pair.imag], color=cmap(norm(e)), s=16, zorder=3)
    for e in range(s2, min(s2 + 51, n), 4):
        l3 = ds.lambda3.values[r, e]
        ax.scatter(l3.real, l3.imag, color=cmap(norm(e)), marker="s", s=12, zorder=3)
    ax.scatter(lam[n - 1].real, lam[n - 1].imag, color=cmap(norm(n - 1)), edgecolors="k", linewidths=1.2, s=50, zorder=4)
    unit_circle(ax)
    ax.set(xlim=(-0.3, 1.2), ylim=(-1.05, 1.05), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$",
           title=rf"eig(P), epochs {s2}-{n - 1}; squares: $\lambda_3$")
    ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="epoch", fraction=0.05)


def effective_panel(ds, ax) -> None:
    """Fig 5d: β-continuation training losses, full model (solid, coloured), the paper's 4-D effective model
    trained naively on the visible overlaps (dashed black) and the exact overlap dynamics (dotted white on the
    full model's line, which it reproduces)."""
    runs = _runs(ds, "beta-continuation")
    n = _phase_epochs(ds, "beta-continuation")
    betas = np.array([float(ds.beta.values[i]) for i in runs])
    cmap = colormaps["viridis"]
    x = np.arange(n) + 1.0
    for k, (i, b) in enumerate(zip(runs, betas)):
        color = cmap(k / max(len(runs) - 1, 1) * 0.9)
        ax.loglog(x, ds.train_loss.values[i, :n], color=color, lw=2.2, label=rf"$\beta$ = {b:g}")
        if "effective_train_loss" in ds:
            ax.loglog(x, ds.effective_train_loss.values[i, :n], color="k", ls="--", lw=0.9)
        if "exact_train_loss" in ds:
            ax.loglog(x, ds.exact_train_loss.values[i, :n], color="w", ls=":", lw=1.0)
    if "effective_train_loss" in ds:
        ax.plot([], [], color="k", ls="--", lw=0.9, label="naive 4-D model")
    if "exact_train_loss" in ds:
        ax.plot([], [], color="0.5", ls=":", lw=1.0, label="exact overlaps")
    start = int(ds.start_epoch.values[runs[0]])
    ax.set(xlabel="epoch + 1", ylabel="training loss", title=f"Theoretical & Empirical (from epoch {start})")
    ax.legend(fontsize=7.5)


def stage2_theory_panels(ds, axes) -> None:
    """Supplement: $|\\lambda_1|^2$ and $\\lambda_3$ against their approximations (spec §4.4) and the angle
    between $\\nabla\\mathcal L_0$ and $\\nabla\\mathcal L_\\infty$, over stages 1-2 and the start of stage 3."""
    r = closed_run(ds)
    s1, s2, n = run_stages(ds, r)
    e = np.arange(0, min(s2 + 30, n))
    mod = np.abs(ds.dominant_eigenvalue.values[r, e]) ** 2
    ax = axes[0]
    ax.plot(e, mod, color=CLOSED_BLUE, lw=1.2, label=r"$|\lambda_1|^2$ of P")
    ax.plot(e, ds.modulus_sq_approx.values[r, e], color="k", ls="--", lw=1.0, label=r"$c + b\lambda_3 + \lambda_3^2$")
    ax.axhline(1, color="0.5", lw=0.6)
    ax.set(ylim=(0.985, 1.05), ylabel=r"$|\lambda_1|^2$")
    ax = axes[1]
    ax.plot(e, ds.lambda3.values[r, e].real, color=CLOSED_BLUE, lw=1.2, label=r"$\lambda_3$ of P")
    ax.plot(e, ds.lambda3_approx.values[r, e], color="k", ls="--", lw=1.0, label="perturbative")
    ax.set(ylabel=r"$\lambda_3$")
    ax = axes[2]
    ax.plot(e, ds.gradient_angle.values[r, e], color=CLOSED_BLUE, lw=1.0)
    ax.set(ylabel=r"$\angle(\nabla\mathcal{L}_0, \nabla\mathcal{L}_\infty)$ [deg]")
    for ax in axes:
        for k, lo, hi in ((1, 0, s1), (2, s1, s2), (3, s2, e[-1] + 1)):
            if hi > lo:
                ax.axvspan(lo, hi, color=STAGE_COLORS[k - 1], alpha=0.25, lw=0)
        ax.set_xlabel("epoch")
        if ax is not axes[2]:
            ax.legend(fontsize=7.5)


def _figure(n: int, width: float = 3.3, height: float = 3.0) -> tuple[Figure, list]:
    """`n` panels in rows of at most :data:`FIGURE_WIDTH` (readable once printed at a page's width)."""
    ncols = max(1, min(n, int(FIGURE_WIDTH // width)))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.3), layout="constrained")
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]


def figure_3(ds) -> Figure:
    r"""Fig 3 — stage 1: a loss, b trajectory of the stage-1-end model (300 steps), c spectra at the
    real-to-complex transition, d stage-1 theory, e $\sigma_{zm}$ trajectories."""
    fig, ax = _figure(5)
    r = closed_run(ds)
    s1, _, _ = run_stages(ds, r)
    T = int(ds.attrs["config"]["task"]["T"])
    loss_panel(ds, ax[0], 1)
    trajectory_panel(ds, ax[1], s1, 300, T)
    eigenvalue_transition_panel(ds, ax[2])
    stage1_theory_panel(ds, ax[3])
    sigma_trajectories_panel(ds, ax[4])
    label_panels(ax)
    fig.suptitle("Stage 1: negative-position policy", fontsize=10)
    return fig


def figure_4(ds) -> Figure:
    """Fig 4 — stage 2: a loss, b trajectory just after stabilisation (300 steps), c zig-zag of the
    dominant eigenvalue, d surrogate α sweep, e T-continuation."""
    fig, ax = _figure(5)
    r = closed_run(ds)
    _, s2, n = run_stages(ds, r)
    T = int(ds.attrs["config"]["task"]["T"])
    loss_panel(ds, ax[0], 2)
    trajectory_panel(ds, ax[1], min(s2 + 10, n - 1), 300, T)
    stage2_eigenvalue_panel(ds, ax[2])
    surrogate_panel(ds, ax[3])
    horizon_panel(ds, ax[4])
    label_panels(ax)
    fig.suptitle("Stage 2: building a world model", fontsize=10)
    return fig


def figure_5(ds) -> Figure:
    """Fig 5 — stage 3: a loss, b trajectory of the final model (50 steps), c spectra through stage 3,
    d β-continuation of the full and effective models."""
    fig, ax = _figure(4, width=3.6)
    r = closed_run(ds)
    _, _, n = run_stages(ds, r)
    loss_panel(ds, ax[0], 3)
    trajectory_panel(ds, ax[1], n - 1, 50, None)
    stage3_eigenvalue_panel(ds, ax[2])
    effective_panel(ds, ax[3])
    label_panels(ax)
    fig.suptitle("Stage 3: policy refinement", fontsize=10)
    return fig


def figure_stage2_theory(ds) -> Figure:
    """Supplement to Fig 4: the stage-2 approximations of spec §4.4 along the closed run."""
    fig, ax = _figure(3, width=3.8)
    stage2_theory_panels(ds, ax)
    label_panels(ax)
    fig.suptitle(r"Stage 2 theory: $|\lambda_1|^2$, $\lambda_3$ and the gradient conflict", fontsize=10)
    return fig
