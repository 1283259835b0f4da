r"""Panels and figure of the tracking experiment (Fig 6; spec §4.7, §5), drawn from a store the tracking
experiment trained and analysed (:mod:`loopdyn.experiments.tracking`): an example path, the closed- and
open-loop test losses, the probes' staircase, eig(W) against the frequencies, interference and acquisition
times against the human data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from ..agents import AgentParams, make_core
from ..analysis import checkpoint_params, store_runs
from ..errors import StoreError
from ..store import read_analysis
from ..system import rollout
from ._style import CLOSED_BLUE, FIGURE_WIDTH, OPEN_RED, label_panels, set_caption


def _phase_runs(ds) -> list[tuple[int, int, int | None]]:
    """`(seed, closed run, open run or None)` per seed with a closed run, in seed order."""
    phases = [str(p) for p in ds["phase"].values]
    seeds = [int(s) for s in ds["seed"].values]
    closed = {s: i for i, (s, p) in enumerate(zip(seeds, phases)) if p == "closed"}
    opened = {s: i for i, (s, p) in enumerate(zip(seeds, phases)) if p == "open"}
    if not closed:
        raise StoreError(f"not a store of the tracking experiment: no 'closed' run (phases: {sorted(set(phases))})")
    return [(s, closed[s], opened.get(s)) for s in sorted(closed)]


class _Model:
    """A run of a store, able to simulate its network of any checkpoint on the task's episodes."""

    def __init__(self, ds, run: int):
        self.ds, self.run = ds, run
        self.info = next(r for r in store_runs(ds) if r.index == run)
        self.problem = self.info.problem
        self.task = self.problem.task

    def params(self, epoch: int) -> tuple[int, AgentParams]:
        """`(checkpoint epoch, parameters)` at the checkpoint nearest `epoch` within the run's phase."""
        ckpts = self.ds.checkpoint.values
        sel = np.nonzero(ckpts < self.info.epochs)[0]
        c = sel[int(np.argmin(np.abs(ckpts[sel] - epoch)))]
        p = checkpoint_params(self.ds, self.info, np.array([c]))
        return int(ckpts[c]), AgentParams.of({k: jnp.asarray(v[0] if v.ndim == 3 else v) for k, v in p.present().items()})

    def simulate(self, params: AgentParams, episode):
        """Closed-loop positions `(T, batch, 2)` of `episode` (float64, the real clamped plant): the tracked point."""
        core = make_core(self.problem.spec, params, float(self.info.g))
        traj = rollout(core, self.problem.plant, episode.x0.astype(jnp.float64), self.task.T,
                       exo=episode.exo.astype(jnp.float64), timing=self.task.timing, emit=("x_next",))
        if self.task.effector is not None:  # the tracked point of a plant that declares one (the arm's hand)
            return np.asarray(self.task.effector.effector(traj.x_next))
        return np.asarray(traj.x_next[..., list(self.task.positions)])


def _analysis(ds) -> dict:
    return read_analysis(ds)["numbers"]["tracking"]


W_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _w_color(j: int) -> str:
    return W_COLORS[j % len(W_COLORS)]


def example_panel(ax, model: _Model, epoch: int, samples=(48, 126)) -> None:
    """Fig 6a: the closed-loop path of the network of `epoch` (dashed) on a reference (thick black),
    samples `samples` of one episode with fixed phases."""
    ck, params = model.params(epoch)
    episode = model.task.sample_episode(jax.random.PRNGKey(model.info.cfg.task.test_seed + 1), 1, jnp.float64)
    pos = model.simulate(params, episode)[:, 0]
    ref = np.asarray(episode.exo[:, 0])
    lo, hi = samples
    ax.plot(ref[lo:hi, 0], ref[lo:hi, 1], color="k", lw=3.0, label="reference")
    ax.plot(pos[lo:hi, 0], pos[lo:hi, 1], color=CLOSED_BLUE, ls="--", lw=1.6, label="RNN")
    # the reference's reach: the sum of its amplitudes on the larger axis (+12.5 %; the paper's 5.2 for 2 x 2.31)
    reach = max(sum(model.task.amps_x), sum(model.task.amps_y))
    lim = max(1.125 * reach, float(np.max(np.abs(ref[lo:hi]))) * 1.1)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="x", ylabel="y", aspect="equal",
           title=f"tracking, epoch {ck}, t = {lo * model.task.dt:g}-{(hi - 1) * model.task.dt:g} s")
    ax.legend(fontsize=7.5, loc="upper right")


def loss_panel(ax, ds, seeds) -> None:
    """Fig 6b: closed-loop loss of the closed runs (their training loss: the closed loop on the epoch's
    batch) and closed-loop test loss of the open-loop students, log-log; acquisition epochs marked."""
    t = _analysis(ds)
    acq = ds.acquisition_epoch.values
    for k, (seed, c, o) in enumerate(seeds):
        lw, alpha = (1.3, 1.0) if k == 0 else (0.7, 0.45)
        n = _phase_epochs(ds, "closed")
        y = ds.train_loss.values[c, :n]
        x = np.arange(n) + 1.0
        ax.loglog(x, y, color=CLOSED_BLUE, lw=lw, alpha=alpha, label="closed loop" if k == 0 else None)
        if o is not None:
            m = _phase_epochs(ds, "open")
            ax.loglog(np.arange(m) + 1.0, ds.test_loss.values[o, :m], color=OPEN_RED, lw=lw, alpha=alpha,
                      label="open loop (student, closed-loop test)" if k == 0 else None)
        if k == 0:
            for j, e in enumerate(acq[c]):
                if e >= 0:
                    ax.axvline(e + 1, color=_w_color(j), ls=":", lw=0.9)
                    ax.plot(e + 1, y[e], "o", color=_w_color(j), mec="k", ms=5, zorder=5,
                            label=rf"$\omega_{j + 1}$ = {t['omegas'][j]:.2f}")
    ax.set(xlabel="epoch + 1", ylabel="closed-loop tracking loss", title=f"seed {seeds[0][0]}" +
           (f" (+{len(seeds) - 1} seeds, faint)" if len(seeds) > 1 else ""))
    ax.legend(fontsize=7.5, loc="lower left")


def probe_panels(axes, model: _Model, acquisitions) -> None:
    """Fig 6c: each frequency's probe (its axis, reference dashed) with the network of its acquisition."""
    probe = model.task.probe_episode(jnp.float64)
    ref = np.asarray(probe.exo)
    t = np.arange(model.task.T) * model.task.dt
    for j, ax in enumerate(axes):
        axis = int(model.task.components[j][1])
        ax.plot(t, ref[:, j, axis], color="k", ls="--", lw=0.9)
        if acquisitions[j] >= 0:
            ck, params = model.params(int(acquisitions[j]))
            pos = model.simulate(params, probe)
            ax.plot(t, pos[:, j, axis], color=_w_color(j), lw=1.1)
            label = f"epoch {ck}"
        else:
            label = "not acquired"
        ax.text(0.01, 0.97, rf"$\omega_{j + 1}$ ({'xy'[axis]}), {label}", transform=ax.transAxes, fontsize=7.5,
                va="top")
        amp = max(max(model.task.amps_x), max(model.task.amps_y))
        ax.set_ylim(-1.95 * amp, 1.95 * amp)  # the paper's +-4.5 for amplitude 2.31
        ax.tick_params(labelsize=7.5)
        if j < len(axes) - 1:
            ax.set_xticklabels([])
    axes[-1].set_xlabel("time [s]", fontsize=7.5)


def eigenvalue_panel(ax, ds, run: int) -> None:
    """Fig 6d: eig(W) at the checkpoints of the acquisition epochs (edged: the eigenvalue nearest each
    $\\omega_j$), a line at every $\\omega_j$."""
    t = _analysis(ds)
    ckpts = list(ds.checkpoint.values)
    for j, w in enumerate(t["omegas"]):
        ax.axhline(w, color=_w_color(j), lw=0.8, ls="--")
        e = int(ds.acquisition_checkpoint.values[run, j])
        if e < 0:
            continue
        lam = ds.eig_W.values[run, ckpts.index(e)]
        ax.scatter(lam.real, lam.imag, s=9, color=_w_color(j), alpha=0.7, label=rf"epoch {e} ($\omega_{j + 1}$)")
        z = ds.acquisition_eigenvalue.values[run, j]
        ax.scatter([z.real], [z.imag], s=40, facecolor="none", edgecolor="k", lw=1.1, zorder=5)
    ax.set(xlim=(-2, 2), ylim=(-1, 3), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$", title="eig(W) at the acquisitions")
    ax.legend(fontsize=7.5, loc="upper left")


def interference_panel(ax, ds, run: int, first: int = 0, later: int = 1) -> None:
    """Fig 6e: around the acquisition of frequency `later`, its probe loss (left axis) and that of the
    acquired frequency `first` (right axis)."""
    t = _analysis(ds)
    acq = ds.acquisition_epoch.values[run]
    if acq[later] < 0 or acq[first] < 0 or acq[first] >= acq[later]:
        ax.text(0.5, 0.5, rf"no interference episode ($\omega_{later + 1}$ not acquired after $\omega_{first + 1}$)",
                ha="center", va="center", fontsize=7.5, transform=ax.transAxes)
        ax.set_axis_off()
        return
    w = int(t["interference_window"])
    n = _phase_epochs(ds, str(ds.phase.values[run]))
    lo, hi = max(int(acq[later]) - w, 0), min(int(acq[later]) + w, n - 1)
    e = np.arange(lo, hi + 1)
    probe = ds.probe_loss.values[run]
    ax.plot(e, probe[lo: hi + 1, later], color=_w_color(later), lw=1.2)
    ax.set_ylabel(rf"probe loss $\omega_{later + 1}$", color=_w_color(later), fontsize=7.5)
    ax2 = ax.twinx()
    ax2.plot(e, probe[lo: hi + 1, first], color=_w_color(first), lw=1.2)
    ax2.set_ylabel(rf"probe loss $\omega_{first + 1}$", color=_w_color(first), fontsize=7.5)
    peak = int(ds.interference_epoch.values[run, first, later])
    if peak >= 0:
        ax2.plot(peak, probe[peak, first], "v", color="k", ms=5)
    ax.axvline(acq[later], color="k", ls=":", lw=0.8)
    rise = float(ds.interference_rise.values[run, first, later])
    ax.set(xlabel="epoch", title=rf"interference: $\omega_{first + 1}$ rises by {rise:+.3g} as $\omega_{later + 1}$ is learned")


def acquisition_time_panel(ax, ds, seeds) -> None:
    """Fig 6f: acquisition epochs / closed-phase epochs per frequency (dots: seeds, line: mean) against the
    human data."""
    t = _analysis(ds)
    f = np.asarray(t["frequencies"])
    times = np.array([ds.acquisition_time.values[c] for _, c, _ in seeds], np.float64)
    for row in times:
        ax.plot(f, row, "o", color=CLOSED_BLUE, alpha=0.5, ms=4)
    mean = np.array([np.mean(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in times.T])
    ax.plot(f, mean, "-o", color=CLOSED_BLUE, lw=1.5, label=f"RNN ({len(seeds)} seed"
            + ("s)" if len(seeds) > 1 else ")"))
    human = np.asarray(t["human"])
    if len(human) == len(f):
        ax.plot(f, human, "-s", color="k", lw=1.5, label="human data")
    ax.set(xlabel="frequency [Hz]", ylabel="normalised acquisition time", ylim=(0, None), xticks=f,
           title="acquisition time / training length")
    ax.legend(fontsize=7.5)


def _phase_epochs(ds, label: str) -> int:
    return next(int(d["epochs"]) for lab, d in ds.attrs["phases"] if lab == label)


def figure_6(ds) -> Figure:
    """Fig 6: (a) tracking example, (b) closed vs open loss with the acquisitions, (c) probes at the
    acquisitions, (d) eig(W) there, (e) interference episode, (f) normalised acquisition times."""
    seeds = _phase_runs(ds)
    seed, c, _ = seeds[0]
    model = _Model(ds, c)
    K = model.task.n_components
    fig = Figure(figsize=(FIGURE_WIDTH, 7.6), layout="constrained")  # a page's width: readable in print
    grid = fig.add_gridspec(2, 3)
    ax_a, ax_b = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    probe_grid = grid[0, 2].subgridspec(K, 1, hspace=0.08)
    ax_c = [fig.add_subplot(probe_grid[j]) for j in range(K)]
    ax_d, ax_e, ax_f = (fig.add_subplot(grid[1, i]) for i in range(3))
    example_panel(ax_a, model, model.info.epochs - 1)
    loss_panel(ax_b, ds, seeds)
    probe_panels(ax_c, model, ds.acquisition_epoch.values[c])
    ax_c[0].set_title("probes at the acquisition epochs", fontsize=8)
    eigenvalue_panel(ax_d, ds, c)
    interference_panel(ax_e, ds, c)
    acquisition_time_panel(ax_f, ds, seeds)
    label_panels([ax_a, ax_b, ax_c[0], ax_d, ax_e, ax_f])
    fig.suptitle(f"Multi-frequency tracking (seed {seed})", fontsize=10)
    set_caption(fig, f"{ds.attrs.get('train_loss_definition', '')}; open loop: {ds.attrs.get('test_loss_definition', '')}. "
                     f"Probe: {ds.attrs.get('probe_loss_definition', '')}.")
    return fig
