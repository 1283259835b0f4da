r"""Figs 3, 4 and 5 of the paper (spec §5): the three stages of closed-loop learning.

Drawn from an analysed store of the `stages` experiment (`loopdyn train stages`, then `loopdyn analyze`):
the closed run gives the loss curves, trajectories and spectra of panels a-c; the analysis adds the
theory runs of panels 3d (stage-1 geometric-sum loss), 3e ($\sigma_{zm}$ trajectories), 4d (surrogate
α sweep) and 5d (effective model), and panel 4e is the T-continuation. A supplementary figure shows the
stage-2 approximations of spec §4.4 ($|\lambda_1|^2$, $\lambda_3$, gradient angle) against the spectra.

Every panel function takes the store's `xarray.Dataset` (as `loopdyn.open_run` returns it, analysed) and
a Matplotlib `Axes`. Figures are built with `matplotlib.figure.Figure` (Agg canvas, no pyplot state).
Epoch axes of log-log plots show `epoch + 1` so that epoch 0 appears.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .. import _config
from ..analysis._joint import reduced_joint_matrix
from ..analysis._store import read_analysis
from ..store import StoreError, open_run

STAGE_COLORS = ("#b7e3d1", "#5fa8c4", "#3a5a9a")  # light -> dark, after seaborn's mako_r
CLOSED_BLUE = "#4c72b0"  # seaborn "deep" blue
THEORY_RED = "#c44e52"


# ------------------------------------------------------------------------------------------ data access
def _closed_run(ds) -> int:
    modes = [str(m) for m in ds["mode"].values]
    if "closed" not in modes:
        raise StoreError("not a store of the stages experiment (no run with mode 'closed')")
    return modes.index("closed")


def _runs(ds, mode: str) -> list[int]:
    return [i for i, m in enumerate(ds["mode"].values) if str(m) == mode]


def _phase_epochs(ds, mode: str) -> int:
    for label, cfg in ds.attrs.get("phases", []):
        if label == mode:
            return int(cfg["epochs"])
    return ds.sizes["epoch"]


def _stages(ds, run: int) -> tuple[int, int, int]:
    """`(stage1_end, stage2_end, n_epochs)` of a run, `-1` replaced by the natural edge."""
    n = _phase_epochs(ds, str(ds["mode"].values[run]))
    s1, s2 = int(ds.stage1_end.values[run]), int(ds.stage2_end.values[run])
    s2 = n if s2 < 0 else s2
    s1 = s2 if s1 < 0 else s1
    return s1, s2, n


def _params_at(ds, run: int, epoch: int) -> dict:
    out = {}
    for name in ("m", "z", "U", "V"):
        var = ds[name].isel(run=run)
        if "checkpoint" in var.dims:
            var = var.sel(checkpoint=epoch)
        out[name] = jnp.asarray(np.asarray(var.values, np.float64))
    return out


def closed_loop_trajectory(ds, run: int, epoch: int, steps: int, x0=(1.0, -1.0)) -> np.ndarray:
    """States `(steps, k)` of the linear model of `run` at `epoch` from `x0`, $h_0 = 0$: powers of the
    reduced joint matrix $P$ (spec §4.1; exactly `loopdyn.training.closed_loop`), in float64."""
    from ..plants import plant_from_config

    phases = {label: cfg for label, cfg in ds.attrs["phases"]}
    cfg = _config.from_dict(phases[str(ds["mode"].values[run])], source="<store>")
    if cfg.agent.activation != "linear" or cfg.agent.rank == 0:
        raise StoreError(f"trajectory panels need a linear low-rank agent, not {cfg.agent.activation} rank {cfg.agent.rank}")
    plant = plant_from_config(cfg.plant)
    p = _params_at(ds, run, epoch)
    P = np.asarray(reduced_joint_matrix(plant.A, plant.B, plant.C, p["m"], p["U"], p["V"], p["z"], cfg.agent.alpha))
    s = np.zeros(P.shape[0])
    s[: plant.n_states] = x0
    out = np.empty((steps, plant.n_states))
    for t in range(steps):
        out[t] = s[: plant.n_states]
        s = P @ s
    return out


# ------------------------------------------------------------------------------------------ panels
def _unit_circle(ax, **kw) -> None:
    th = np.linspace(0, 2 * np.pi, 2000)
    ax.plot(np.cos(th), np.sin(th), **{"color": "k", "ls": "--", "lw": 0.8, **kw})


def loss_panel(ds, ax, highlight: int) -> None:
    """Closed-run test loss, log-log, with the three stages shaded and `highlight` (1, 2 or 3) emphasised."""
    r = _closed_run(ds)
    s1, s2, n = _stages(ds, r)
    x = np.arange(n) + 1.0
    y = ds.test_loss.values[r, :n]
    edges = [(1, 0, s1), (2, s1, s2), (3, s2, n)]
    for k, lo, hi in edges:
        if hi > lo:
            ax.axvspan(lo + 1, hi + 1, color=STAGE_COLORS[k - 1], alpha=0.55 if k == highlight else 0.15, lw=0)
            ax.text(np.sqrt((lo + 1) * (hi + 1)), 0.93, f"Stage {k}", transform=ax.get_xaxis_transform(), ha="center",
                    fontsize=7, fontweight="bold" if k == highlight else "normal")
    for b in (s1, s2):
        if 0 < b < n:
            ax.axvline(b + 1, color="k", ls="--", lw=0.7)
    ax.loglog(x, y, color=CLOSED_BLUE, lw=1.3)
    ax.set(xlabel="epoch + 1", ylabel=r"test loss $\langle x^2 + v^2\rangle$", xlim=(1, n + 1))
    ax.set_ylim(min(np.nanmin(y) / 3, 0.1), np.nanmax(y) * 20)


def trajectory_panel(ds, ax, epoch: int, steps: int, horizon: int | None) -> None:
    """Position of the closed run's model at `epoch` from $(x, v) = (1, -1)$; red line at the horizon T."""
    r = _closed_run(ds)
    xs = closed_loop_trajectory(ds, r, epoch, steps)
    ax.plot(np.arange(steps), xs[:, 0], color=CLOSED_BLUE, lw=1.0)
    ax.axhline(0, color="0.6", lw=0.6)
    if horizon is not None:
        ax.axvline(horizon, color=THEORY_RED, ls="--", lw=1.0, label=f"T = {horizon}")
        ax.legend(fontsize=7, loc="upper left")
    ax.set(xlabel="time step t", ylabel="position x", title=f"model of epoch {epoch}")


def eigenvalue_transition_panel(ds, ax) -> None:
    """Fig 3c: spectra of P around the real-to-complex transition of the dominant pair (end of stage 1)."""
    r = _closed_run(ds)
    s1, _, n = _stages(ds, r)
    epochs = np.arange(max(s1 - 4, 0), min(s1 + 3, n))
    lam = ds.eigenvalues.values[r, epochs]
    cmap = colormaps["viridis"]
    norm = Normalize(epochs[0], epochs[-1])
    for e, l in zip(epochs, lam):
        edge = dict(edgecolors="k", linewidths=1.2, s=46, zorder=4) if e == s1 else dict(s=26, zorder=3)
        ax.scatter(l.real, l.imag, color=cmap(norm(e)), **edge)
    _unit_circle(ax)
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
    ax.legend(fontsize=7)


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
    r = _closed_run(ds)
    s1, s2, n = _stages(ds, r)
    start = max(s1 + 2, min(10, s2))
    epochs = np.arange(start, min(s2 + 1, n))
    lam = ds.dominant_eigenvalue.values[r, epochs]
    ax.plot(lam.real, lam.imag, color="0.75", lw=0.6, zorder=1)
    cmap, norm = colormaps["viridis"], Normalize(epochs[0], epochs[-1])
    ax.scatter(lam.real[:-1], lam.imag[:-1], c=epochs[:-1], cmap=cmap, norm=norm, s=12, alpha=0.8, zorder=2)
    ax.scatter(lam.real[-1], lam.imag[-1], color=cmap(norm(epochs[-1])), edgecolors="k", linewidths=1.2, s=50, zorder=3)
    _unit_circle(ax)
    pad_x = max(np.ptp(lam.real) * 0.15, 2e-3)
    pad_y = max(np.ptp(lam.imag) * 0.15, 5e-3)
    ax.set(xlim=(lam.real.min() - pad_x, max(lam.real.max(), 1.0) + pad_x), ylim=(lam.imag.min() - pad_y, lam.imag.max() + pad_y),
           xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$", title=f"$\\lambda_1$, epochs {epochs[0]}-{epochs[-1]}; edged: {s2}")
    ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="epoch", fraction=0.05)


def surrogate_panel(ds, ax) -> None:
    """Fig 4d: dominant root along the surrogate optimisation, coloured by α; start (red dot) from the
    closed run at `T_start_epoch`; a black dot where a path enters the unit circle."""
    r = _closed_run(ds)
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
    _unit_circle(ax)
    finite = paths[np.abs(paths.imag) > 1e-9]
    ax.set(xlim=(min(finite.real.min(), 0.97) - 0.005, max(finite.real.max(), 1.0) + 0.01),
           ylim=(0, min(finite.imag.max(), 0.8) * 1.08), xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$",
           title=rf"Theoretical (surrogate, $T$ = {int(_surrogate_T(ds))})")
    ax.legend(fontsize=6, loc="upper left")


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
    _unit_circle(ax)
    pts = np.concatenate(allpts)
    ax.set(xlim=(pts.real.min() - 0.005, max(pts.real.max(), 1.0) + 0.005), ylim=(max(pts.imag.min() - 0.02, 0), pts.imag.max() * 1.12),
           xlabel=r"Re $\lambda_1$", ylabel=r"Im $\lambda_1$", title="Empirical (episode length T)")
    ax.legend(fontsize=6, loc="upper right", ncol=1)


def stage3_eigenvalue_panel(ds, ax) -> None:
    """Fig 5c: spectra of P through stage 3 — the stabilisation epoch (faint), the pair every 40th epoch, λ3
    every 4th epoch for 50 epochs, the final spectrum (edged)."""
    r = _closed_run(ds)
    _, s2, n = _stages(ds, r)
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
    _unit_circle(ax)
    ax.set(xlim=(-0.3, 1.2), ylim=(-1.05, 1.05), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$",
           title=rf"eig(P), epochs {s2}-{n - 1}; squares: $\lambda_3$")
    ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="epoch", fraction=0.05)


def effective_panel(ds, ax) -> None:
    """Fig 5d: β-continuation training losses, full model (solid, coloured) vs effective model (dashed black)."""
    runs = _runs(ds, "beta-continuation")
    n = _phase_epochs(ds, "beta-continuation")
    betas = np.array([float(ds.beta.values[i]) for i in runs])
    cmap = colormaps["viridis"]
    x = np.arange(n) + 1.0
    for k, (i, b) in enumerate(zip(runs, betas)):
        color = cmap(k / max(len(runs) - 1, 1) * 0.9)
        ax.loglog(x, ds.train_loss.values[i, :n], color=color, lw=1.2, label=rf"$\beta$ = {b:g}")
        if "effective_train_loss" in ds:
            ax.loglog(x, ds.effective_train_loss.values[i, :n], color="k", ls="--", lw=0.9)
    if "effective_train_loss" in ds:
        ax.plot([], [], color="k", ls="--", lw=0.9, label="effective model")
    start = int(ds.start_epoch.values[runs[0]])
    ax.set(xlabel="epoch + 1", ylabel="training loss", title=f"Theoretical & Empirical (from epoch {start})")
    ax.legend(fontsize=7)


def stage2_theory_panels(ds, axes) -> None:
    """Supplement: $|\\lambda_1|^2$ and $\\lambda_3$ against their approximations (spec §4.4) and the angle
    between $\\nabla\\mathcal L_0$ and $\\nabla\\mathcal L_\\infty$, over stages 1-2 and the start of stage 3."""
    r = _closed_run(ds)
    s1, s2, n = _stages(ds, r)
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
            ax.legend(fontsize=7)


# ------------------------------------------------------------------------------------------ figures
def _figure(ncols: int, width: float = 3.3, height: float = 3.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _label(axes) -> None:
    for ax, letter in zip(axes, "abcde"):
        ax.text(-0.02, 1.02, letter, transform=ax.transAxes, ha="right", va="bottom", fontsize=11, fontweight="bold")
        ax.title.set_fontsize(8)


def figure_3(ds) -> Figure:
    r"""Fig 3 — stage 1: a loss, b trajectory of the stage-1-end model (300 steps), c spectra at the
    real-to-complex transition, d stage-1 theory, e $\sigma_{zm}$ trajectories."""
    fig, ax = _figure(5)
    r = _closed_run(ds)
    s1, _, _ = _stages(ds, r)
    T = int(ds.attrs["config"]["task"]["T"])
    loss_panel(ds, ax[0], 1)
    trajectory_panel(ds, ax[1], s1, 300, T)
    eigenvalue_transition_panel(ds, ax[2])
    stage1_theory_panel(ds, ax[3])
    sigma_trajectories_panel(ds, ax[4])
    _label(ax)
    fig.suptitle("Stage 1: negative-position policy", fontsize=10)
    return fig


def figure_4(ds) -> Figure:
    """Fig 4 — stage 2: a loss, b trajectory just after stabilisation (300 steps), c zig-zag of the
    dominant eigenvalue, d surrogate α sweep, e T-continuation."""
    fig, ax = _figure(5)
    r = _closed_run(ds)
    _, s2, n = _stages(ds, r)
    T = int(ds.attrs["config"]["task"]["T"])
    loss_panel(ds, ax[0], 2)
    trajectory_panel(ds, ax[1], min(s2 + 10, n - 1), 300, T)
    stage2_eigenvalue_panel(ds, ax[2])
    surrogate_panel(ds, ax[3])
    horizon_panel(ds, ax[4])
    _label(ax)
    fig.suptitle("Stage 2: building a world model", fontsize=10)
    return fig


def figure_5(ds) -> Figure:
    """Fig 5 — stage 3: a loss, b trajectory of the final model (50 steps), c spectra through stage 3,
    d β-continuation of the full and effective models."""
    fig, ax = _figure(4, width=3.6)
    r = _closed_run(ds)
    _, _, n = _stages(ds, r)
    loss_panel(ds, ax[0], 3)
    trajectory_panel(ds, ax[1], n - 1, 50, None)
    stage3_eigenvalue_panel(ds, ax[2])
    effective_panel(ds, ax[3])
    _label(ax)
    fig.suptitle("Stage 3: policy refinement", fontsize=10)
    return fig


def figure_stage2_theory(ds) -> Figure:
    """Supplement to Fig 4: the stage-2 approximations of spec §4.4 along the closed run."""
    fig, ax = _figure(3, width=3.8)
    stage2_theory_panels(ds, ax)
    _label(ax)
    fig.suptitle(r"Stage 2 theory: $|\lambda_1|^2$, $\lambda_3$ and the gradient conflict", fontsize=10)
    return fig


def draw(store, outdir) -> list[Path]:
    """Draw Figs 3, 4, 5 and the stage-2 supplement of an analysed `stages` store as PNG and PDF.

    **Arguments:** `store`: path of the store; `outdir`: output directory (created).

    **Returns:** the written paths: `fig_3.png`, `fig_3.pdf`, `fig_4.png`, ..., `fig_4_theory.pdf`.
    """
    ds = open_run(store)
    analysis = read_analysis(ds)
    if analysis.get("experiment") != "stages":
        raise StoreError(f"{store}: not an analysed store of the stages experiment; train it with 'loopdyn train stages' "
                         f"and run 'loopdyn analyze {store}'")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (("fig_3", figure_3), ("fig_4", figure_4), ("fig_5", figure_5), ("fig_4_theory", figure_stage2_theory)):
        fig = make(ds)
        for ext in ("png", "pdf"):
            p = outdir / f"{name}.{ext}"
            fig.savefig(p, dpi=150)
            fig.set_layout_engine("none")  # keep the solved layout for the second format
            paths.append(p)
    return paths
