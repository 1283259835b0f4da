r"""The stages experiment (Ger & Barak 2025, Figs 3-5; spec §4.1-4.5).

The linear rank-1 network trained in closed loop from a seed whose $\sigma_{zm}(0) > 0$, so that all three
stages of closed-loop learning appear (phase `closed`); then continuations from epoch `T_start_epoch` with
several episode lengths T (phase `T-continuation`, Fig 4e) and from the stabilisation epoch with control
penalties β (phase `beta-continuation`, Fig 5d). Its analysis adds the theory runs: the stage-1
geometric-sum loss against simulation (Fig 3d), $\sigma_{zm}$ trajectories from several starts (Fig 3e),
the surrogate α-sweep (Fig 4d), and beside every β-continuation (Fig 5d) two models in overlap space: the
paper's 4-D effective model trained by plain gradient descent on the four visible overlaps (naive), and the
exact overlap dynamics (the Gram matrix of m, z, u, v under the image of SGD on the vectors, Ger & Barak
2026, spec §7.4), which reproduces the full model to round-off; and the stage-2 approximations of
$|\lambda_1|^2$ and $\lambda_3$ with the gradient conflict.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
import json

import jax
import jax.numpy as jnp
import numpy as np

from .. import config as cfg_mod
from ..agents import AgentParams, gram_matrix
from ..analysis import closed_loop_trajectory as closed_loop_trajectory  # in loopdyn.analysis; kept for old imports
from ..analysis import (NONE, checkpoint_params, complex_pair, dominant_pair, effective_exact, n_eig,
                        overlaps_of, store_config, third_eigenvalue, zigzag)
from ..config import NON_NEGATIVE, POSITIVE, each, param
from ..errors import ConfigError, StoreError
from ..plots import closed_run, figure_3, figure_4, figure_5, figure_stage2_theory, run_stages
from ..store import read_analysis
from ..system import OVERLAP_NAMES, effective_matrix, spectrum
from ..theory import (geometric_sum_loss, optimise_surrogate, simulated_stage1_loss, train_effective_model,
                      train_overlap_model)
from ..training import HyperParams, build_problem, init_run, make_epoch
from ._base import POSITIVE_INTEGERS, Experiment, Reproduce, register

PHASES = ("closed", "T-continuation", "beta-continuation")
STAGE1_GRID = (np.linspace(-0.5, -1e-4, 100), np.linspace(1e-4, 0.3, 100))
r"""$\sigma_{zm}$ grids of Fig 3d (spec §4.3): the figure's negative and positive branches."""
SIGMA_TRAJ_STARTS = np.linspace(-0.2, 0.2, 10)
SIGMA_TRAJ_EPOCHS = 50

VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "stage1_sigma": (("stage1_sigma",),
        "sigma_zm grid of Fig 3d: linspace(-0.5, -1e-4, 100) and linspace(1e-4, 0.3, 100)"),
    "stage1_log_loss_theory": (("stage1_sigma",),
        "log of the geometric-sum loss 1/2 (1 - r^T')/(1 - r), r = |1 + sqrt(sigma_zm)|^2, T' = 101 (spec "
        "§4.3)"),
    "stage1_log_loss_sim": (("stage1_sigma",),
        "log of sum_{t<100} 1/2 (x_t^2 + v_t^2) from (1, -1) of a fresh rank-1 network with sigma_zm set "
        "exactly (over = sigma; spec §4.3)"),
    "sigma_traj_start": (("sigma_traj_start",),
        "initial sigma_zm (agent.over) of the Fig 3e networks: linspace(-0.2, 0.2, 10)"),
    "sigma_traj_epoch": (("sigma_traj_epoch",),
        "epoch (parameters after that many updates) of the Fig 3e trajectories"),
    "sigma_zm_traj": (("sigma_traj_start", "sigma_traj_epoch"),
        "sigma_zm of networks trained closed loop with the closed phase's settings (spec §3.1) from over = "
        "sigma_traj_start, same seed, 50 epochs (Fig 3e)"),
    "surrogate_alpha": (("surrogate_alpha",), "alpha of the surrogate alpha L_inf^T + (1 - alpha) L_0 (Fig 4d)"),
    "surrogate_step": (("surrogate_step",),
        "surrogate SGD step (lr 1e-3, clip 1); 0 = start = the overlaps of the closed run at T_start_epoch"),
    "surrogate_dominant": (("run", "surrogate_alpha", "surrogate_step"),
        "dominant root of the effective cubic along the surrogate optimisation from this closed run's "
        "overlaps (spec §4.4, Fig 4d)"),
    "surrogate_loss": (("run", "surrogate_alpha", "surrogate_step"), "surrogate loss along the optimisation"),
    "surrogate_sigma": (("run", "surrogate_alpha", "surrogate_step", "overlap"),
        "overlaps along the surrogate optimisation"),
    "overlap": (("overlap",), "names of the four visible overlaps"),
    "effective_train_loss": (("run", "epoch"),
        "training loss of the 4-D effective model trained from this beta-continuation run's start overlaps "
        "with its beta, same lr/clip/batch/T and the same initial states every epoch (spec §4.5, Fig 5d)"),
    "effective_sigma": (("run", "epoch", "overlap"), "overlaps of the effective model after `epoch` updates"),
    "effective_eigenvalues": (("run", "epoch", "effective_eig"),
        "eigenvalues of P_eff(effective_sigma), decreasing modulus"),
    "exact_train_loss": (("run", "epoch"),
        "training loss of the exact overlap dynamics (Gram matrix of m, z, u, v under the image of SGD on the trained "
        "vectors, spec §7.4) from this beta-continuation run's start, same initial states every epoch (Fig 5d)"),
    "exact_sigma": (("run", "epoch", "overlap"), "visible overlaps of the exact overlap dynamics after `epoch` updates"),
    "exact_gram": (("run", "epoch", "gram_row", "gram_col"),
        "Gram matrix of m, z, u, v of the exact overlap dynamics after `epoch` updates (invisible overlaps included)"),
}
DEPARTURE = 0.01
"""Relative deviation of the training loss from the full model's at which a model in overlap space departs from it."""


def _put(result, name, values) -> None:
    result.put(name, values, *VARIABLES[name])


def _full(result, name, shape, dtype):
    return result.full(name, shape, dtype, *VARIABLES[name])


@dataclass(frozen=True)
class StagesTable:
    """The table `[stages]`."""

    T_start_epoch: int = param(10, doc="epoch of the closed phase the T-continuation starts from (< epochs)",
                               check=NON_NEGATIVE)
    T_values: tuple[int, ...] = param((10, 20, 50, 100, 120), doc="episode lengths T of the T-continuation (Fig 4e)",
                                      check=POSITIVE_INTEGERS)
    T_epochs: int = param(150, doc="epochs of the T-continuation", check=POSITIVE)
    beta_start: str = param("stabilisation", doc="where the beta-continuation starts: 'stabilisation' or an epoch of "
                            "the closed phase (< epochs)", check=("'stabilisation' or an epoch (digits)",
                                                                  lambda v: v == "stabilisation" or v.isdigit()))
    beta_values: tuple[float, ...] = param((0.0, 0.5, 2.0, 5.0), doc="control penalties beta of the beta-continuation "
                                           "(Fig 5d)", check=each(">= 0", lambda b: b >= 0))
    beta_epochs: int = param(1000, doc="epochs of the beta-continuation", check=POSITIVE)
    alphas: tuple[float, ...] = param((0.0, 0.48, 0.52, 0.55, 1.0), doc="the surrogate's alpha values (Fig 4d)",
                                      check=each("in [0, 1]", lambda a: 0 <= a <= 1))
    surrogate_T: int = param(10, doc="episode length of the surrogate alpha-sweep", check=POSITIVE)
    surrogate_steps: int = param(240, doc="gradient steps of the surrogate alpha-sweep", check=POSITIVE)


@register
class Stages(Experiment):
    name = "stages"
    description = "the three stages of closed-loop learning with the stage theories and T and beta continuations"
    table = StagesTable
    figure_names = ("fig_3", "fig_4", "fig_5", "fig_4_theory")
    reproduce = Reproduce(
        "stages", quick=("epochs=250", "stages.T_values=[10, 50, 120]", "stages.T_epochs=50", "stages.beta_epochs=100",
               "stages.surrogate_steps=100"),
        order=20,
        claims={"fig_3": "Fig 3 / spec §4.3: stage 1 (negative-position policy): the loss drops fast while "
                         "sigma_zm is driven to a small negative value by an asymmetric landscape (the geometric-sum "
                         "theory); the dominant pair 1 ± sqrt(sigma_zm) turns from real to complex, and the joint "
                         "system is still unstable (oscillatory divergence). Reference run: stage 1 ends at epoch 8.",
                "fig_4": "Fig 4 / spec §4.4: stage 2 (building a world model): the loss plateaus while the dominant "
                         "eigenvalue zig-zags toward the unit circle (the short- and long-term gradients nearly "
                         "opposite); it ends when lambda_1 enters the unit circle (epoch 129, at ≈0.986 + 0.147i). "
                         "The surrogate's alpha and the episode length T set the direction: alpha -> 0 / short T up "
                         "the imaginary axis, alpha -> 1 / long T down.",
                "fig_5": "Fig 5 / spec §4.5: stage 3 (policy refinement): fast non-oscillatory trajectories, a third "
                         "real eigenvalue grows to ≈0.72, final eigenvalues ≈0.43 ± 0.50i; the 4-D effective model "
                         "reproduces the learning curves for every beta (final ≈0.25, 1.2, 2.2, 3.5 for beta = 0, 0.5, "
                         "2, 5).",
                "fig_4_theory": "Spec §4.4: |lambda_1|^2 ≈ c + b lambda_3 + lambda_3^2 and the perturbative lambda_3 "
                                "track the spectrum of P through stage 2, and grad L_0 and grad L_inf point in nearly "
                                "opposite directions."})

    def validate(self, cfg) -> None:
        t, s = cfg.table, cfg.source
        a = cfg.agent
        if not (a.rank == 1 and a.activation == "linear" and a.g == 0 and a.alpha == 1.0 and cfg.plant.kind == "double_integrator"):
            raise ConfigError(f"{s}: the stages experiment needs the linear rank-1 agent (g = 0, alpha = 1) on the double "
                              f"integrator, whose 4-D effective model the theories use; start from the shipped 'stages' config")
        if cfg.teacher.store or cfg.start.store or cfg.train.mode != "closed_loop":
            raise ConfigError(f"{s}: the stages experiment trains closed_loop from a fresh start; remove [teacher] and [start]")
        if t["T_start_epoch"] >= cfg.epochs:
            raise ConfigError(f"{s}: stages.T_start_epoch = {t['T_start_epoch']} must be < epochs = {cfg.epochs} "
                              f"(the T-continuation starts from that epoch of the closed phase)")
        b = t["beta_start"]
        if b != "stabilisation" and int(b) >= cfg.epochs:
            raise ConfigError(f"{s}: stages.beta_start = {b!r} must be 'stabilisation' or an epoch < epochs = {cfg.epochs}")

    def phases(self, cfg):
        t = cfg.table
        t_cont = self.variant(cfg, {"start.store": "self", "start.epoch": str(t["T_start_epoch"])},
                              sweep={**dict(cfg.sweep), "task.T": list(t["T_values"])}, epochs=t["T_epochs"])
        b_cont = self.variant(cfg, {"start.store": "self", "start.epoch": str(t["beta_start"])},
                              sweep={**dict(cfg.sweep), "task.beta": list(t["beta_values"])}, epochs=t["beta_epochs"])
        return [(cfg, "closed"), (t_cont, "T-continuation"), (b_cont, "beta-continuation")]

    def analyse(self, ds, runs, result) -> None:
        if not all(effective_exact(r) for r in runs):
            return
        settings = store_config(ds).table
        closed = next(r for r in runs if r.phase == "closed")
        _stage1_theory(closed, result)
        _sigma_trajectories(closed, result)
        _surrogate(ds, runs, settings, result)
        _effective_training(ds, runs, result)
        _stage2_numbers(ds, runs, result)
        _t_numbers(ds, runs, result)

    def summary_lines(self, numbers: dict) -> list[str]:
        return _summary_lines(numbers)

    def captions(self, ds) -> dict:
        return _captions(ds)

    def figures(self, ds) -> dict:
        analysis = ds.attrs.get("analysis")
        if analysis is None or "stage1" not in analysis.get("numbers", {}):
            raise StoreError("the stages figures need the store's analysis; run 'loopdyn analyze STORE' first")
        return {"fig_3": figure_3(ds), "fig_4": figure_4(ds), "fig_5": figure_5(ds), "fig_4_theory": figure_stage2_theory(ds)}


# ------------------------------------------------------------------------------------------ analysis
def _stage1_theory(closed, result) -> None:
    sigma = np.concatenate(STAGE1_GRID)
    theory = np.asarray(geometric_sum_loss(sigma, 101, log=True))
    sim = np.asarray(simulated_stage1_loss(jnp.asarray(sigma), key=jax.random.PRNGKey(closed.seed), N=closed.spec.N,
                                           steps=100, log=True))
    _put(result, "stage1_sigma", sigma)
    _put(result, "stage1_log_loss_theory", theory)
    _put(result, "stage1_log_loss_sim", sim)
    rel = np.abs(theory - sim) / np.abs(sim)
    i = int(np.argmax(rel))
    result.numbers["stage1"] = {"max_rel_err_log_loss": float(rel[i]), "at_sigma": float(sigma[i]),
                         "max_abs_err_log_loss": float(np.max(np.abs(theory - sim))),
                         "max_rel_err_by_band": {f"{b:g}": float(np.max(rel[np.abs(sigma) >= b])) for b in (0.01, 0.05, 0.1)}}


def _sigma_trajectories(closed, result) -> None:
    r"""Fig 3e: 10 runs of the closed phase's problem that differ only in `agent.over`, trained with its
    loss, optimiser and epoch keys (`train._core`); $\sigma_{zm}$ recorded before every update."""
    traj = np.asarray(_over_runner(json.dumps(cfg_mod.to_dict(closed.cfg), sort_keys=True), closed.cfg.source)(
        jnp.asarray(SIGMA_TRAJ_STARTS), closed.seed))
    _put(result, "sigma_traj_start", SIGMA_TRAJ_STARTS)
    _put(result, "sigma_traj_epoch", np.arange(SIGMA_TRAJ_EPOCHS + 1))
    _put(result, "sigma_zm_traj", traj)
    result.numbers["sigma_traj"] = {"start": SIGMA_TRAJ_STARTS.round(4).tolist(), "end": traj[:, -1].round(4).tolist()}


@functools.lru_cache(maxsize=4)
def _over_runner(cfg_json: str, source: str):
    """Compiled `(overs, seed) -> sigma_zm (len(overs), SIGMA_TRAJ_EPOCHS + 1)`, cached per configuration."""
    cfg = cfg_mod.from_dict(json.loads(cfg_json), source=source)
    problem = build_problem(cfg)
    test_x0 = problem.task.sample_x0(jax.random.PRNGKey(cfg.task.test_seed), cfg.task.test_batch, problem.dtype)
    epoch = make_epoch(problem, test_x0)  # the trainer's own epoch: same loss, clipping, optimiser, keys

    def one(over, seed):
        hyper = HyperParams(**{name: jnp.asarray(cfg.hyper(name), problem.dtype) for name in cfg_mod.HYPERPARAMETERS})
        state, consts = init_run(problem, seed, hyper._replace(over=over.astype(problem.dtype)))
        epochs = jnp.arange(SIGMA_TRAJ_EPOCHS + 1, dtype=jnp.int32)
        _, rec = jax.lax.scan(lambda s, e: epoch(s, consts, e), state, epochs)
        return rec.params.z[:, :, 0] @ consts.frozen.m[:, 0]  # parameters before each update

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def _surrogate(ds, runs, settings: dict, result) -> None:
    R = ds.sizes["run"]
    alphas = np.asarray(settings["alphas"], np.float64)
    steps, T, e0 = int(settings["surrogate_steps"]), int(settings["surrogate_T"]), int(settings["T_start_epoch"])
    dom = np.full((R, len(alphas), steps + 1), np.nan, np.complex128)
    loss = np.full((R, len(alphas), steps + 1), np.nan)
    sig = np.full((R, len(alphas), steps + 1, 4), np.nan)
    for run in runs:
        if run.phase != "closed":
            continue
        path = optimise_surrogate(overlaps_of(ds, run)[e0], alphas, T=T, steps=steps)
        dom[run.index], loss[run.index], sig[run.index] = path.dominant, path.loss, path.sigma
        if "surrogate" not in result.numbers:
            result.numbers["surrogate"] = _surrogate_numbers(path, T, e0)
    _put(result, "surrogate_alpha", alphas)
    _put(result, "surrogate_step", np.arange(steps + 1))
    _put(result, "overlap", np.array(OVERLAP_NAMES))
    _put(result, "surrogate_dominant", dom)
    _put(result, "surrogate_loss", loss)
    _put(result, "surrogate_sigma", sig)


def _surrogate_numbers(path, T: int, e0: int) -> dict:
    rows = []
    for a, d in zip(path.alpha, path.dominant):
        inside = np.abs(d) < 1
        cross = int(np.argmax(inside)) if inside.any() else NONE
        real = np.abs(d.imag) < 1e-9
        rows.append({"alpha": float(a), "end": complex_pair(d[-1]), "end_modulus": float(np.abs(d[-1])),
                     "real_from_step": int(np.argmax(real)) if real.any() else NONE,
                     "max_imag": float(np.max(d.imag)), "min_imag": float(np.min(d.imag)),
                     "unit_circle_step": cross, "at_unit_circle": complex_pair(d[cross]) if cross != NONE else None})
    return {"T": T, "start_epoch": e0, "start": complex_pair(path.dominant[0, 0]), "paths": rows}


def _effective_training(ds, runs, result) -> None:
    R, E = ds.sizes["run"], ds.sizes["epoch"]
    rows = []
    for run in runs:
        if run.phase != "beta-continuation":
            continue
        cfg, n = run.cfg, run.epochs
        if cfg.task.loss != "mean" or cfg.train.optimizer != "sgd":  # the authors' effective model: SGD, mean loss
            result.numbers["effective_training_skipped"] = (f"the effective model is trained with SGD on the 'mean' loss, this "
                                                     f"phase has {cfg.train.optimizer} on {cfg.task.loss!r}")
            continue
        # The epoch keys of the full-model run (train._core.init_run / ClosedLoop.loss): same x0 batches.
        k_train = jax.random.split(jax.random.PRNGKey(run.seed))[1]
        keys = jax.vmap(lambda e: jax.random.split(jax.random.fold_in(k_train, e))[0])(jnp.arange(n, dtype=jnp.int32))
        beta = float(ds.beta.values[run.index])
        res = train_effective_model(overlaps_of(ds, run, 1)[0], epoch_keys=keys, epochs=n, lr=cfg.train.lr, clip=cfg.train.clip,
                                    batch=cfg.task.batch, T=cfg.task.T, beta=beta, x0_range=cfg.task.x0_range)
        sigma = res.sigma[:n]  # record convention: after e updates, the parameters that produced loss[e]
        lam = spectrum(effective_matrix(*(sigma[:, i] for i in range(4))))
        _full(result, "effective_train_loss", (R, E), np.float64)[run.index, :n] = res.loss
        _full(result, "effective_sigma", (R, E, 4), np.float64)[run.index, :n] = sigma
        _full(result, "effective_eigenvalues", (R, E, 4), np.complex128)[run.index, :n] = lam
        start = checkpoint_params(ds, run, np.array([0]))  # the phase's epoch 0: its start parameters
        G0 = gram_matrix(AgentParams(**{k: (v if v.ndim == 2 else v[0]) for k, v in start.present().items()}))
        exact = train_overlap_model(G0, trainable=cfg.agent.trainable, epoch_keys=keys, epochs=n, lr=cfg.train.lr,
                                    clip=cfg.train.clip, clip_eps=cfg.train.clip_eps, batch=cfg.task.batch, T=cfg.task.T,
                                    beta=beta, x0_range=cfg.task.x0_range)
        _full(result, "exact_train_loss", (R, E), np.float64)[run.index, :n] = exact.loss
        _full(result, "exact_sigma", (R, E, 4), np.float64)[run.index, :n] = exact.sigma[:n]
        _full(result, "exact_gram", (R, E, 4, 4), np.float64)[run.index, :n] = exact.gram[:n]
        full = ds.train_loss.values[run.index, :n]
        full_sigma = overlaps_of(ds, run)
        tail = slice(max(n - 50, 0), n)
        full_lam = ds.eigenvalues.values[run.index, n - 1, : n_eig(run)]
        rows.append({"run": run.index, "beta": beta, "start_epoch": int(ds.start_epoch.values[run.index]),
                     "start_loss_full": float(full[0]), "start_loss_effective": float(res.loss[0]),
                     "final_loss_full": float(full[-1]), "final_loss_effective": float(res.loss[-1]),
                     "final50_mean_full": float(np.mean(full[tail])), "final50_mean_effective": float(np.mean(res.loss[tail])),
                     "mean_abs_log_ratio": float(np.mean(np.abs(np.log(res.loss / full)))),
                     "final_eigs_full": [complex_pair(z) for z in _pair_and_third(full_lam)],
                     "final_eigs_effective": [complex_pair(z) for z in _pair_and_third(lam[-1])],
                     **_departure("effective", res.loss, sigma, full, full_sigma),
                     **_departure("exact", exact.loss, exact.sigma[:n], full, full_sigma),
                     "final_loss_exact": float(exact.loss[-1])})
    result.numbers["effective_training"] = rows


def _departure(name: str, loss, sigma, full_loss, full_sigma) -> dict:
    """How a model in overlap space deviates from the full model: the first epoch its loss is off by more than
    :data:`DEPARTURE` (relative; -1 = never), the largest relative loss deviation and the largest overlap deviation
    relative to the overlaps' scale."""
    rel = np.abs(loss - full_loss) / np.abs(full_loss)
    off = rel > DEPARTURE
    scale = np.max(np.abs(full_sigma), axis=0)
    return {f"{name}_departs_at": int(np.argmax(off)) if off.any() else NONE, f"{name}_max_rel_loss_dev": float(np.max(rel)),
            f"{name}_max_rel_sigma_dev": float(np.max(np.abs(sigma - full_sigma) / scale))}


def _pair_and_third(lam) -> list[complex]:
    return [dominant_pair(lam)[0], third_eigenvalue(lam)]


def _stage2_numbers(ds, runs, result) -> None:
    """|lambda_1|^2 and lambda_3 approximations along stage 2 of every closed run, gradient angles there."""
    rows = []
    for run in runs:
        if run.phase != "closed" or not effective_exact(run):
            continue
        s1 = int(result.arrays["stage1_end"][1][run.index])
        s2 = int(result.arrays["stage2_end"][1][run.index])
        lo, hi = max(s1, 0), (run.epochs if s2 == NONE else s2)
        if hi <= lo:
            continue
        i = run.index
        dom = result.arrays["dominant_eigenvalue"][1][i, lo:hi]
        l3 = result.arrays["lambda3"][1][i, lo:hi].real
        mod_emp = np.abs(dom) ** 2
        mod_th = result.arrays["modulus_sq_approx"][1][i, lo:hi]
        l3_th = result.arrays["lambda3_approx"][1][i, lo:hi]
        ang = result.arrays["gradient_angle"][1][i, lo:hi]
        rows.append({"run": i, "epochs": [lo, hi],
                     "modulus_sq_max_abs_err": float(np.max(np.abs(mod_th - mod_emp))),
                     "modulus_sq_max_rel_err": float(np.max(np.abs(mod_th - mod_emp) / mod_emp)),
                     "modulus_sq_range": [float(mod_emp[0]), float(mod_emp[-1])],
                     "lambda3_max_abs_err": float(np.max(np.abs(l3_th - l3))),
                     "lambda3_max_rel_err": float(np.max(np.abs(l3_th - l3) / np.abs(l3))),
                     "lambda3_range": [float(l3[0]), float(l3[-1])],
                     "gradient_angle_range": [float(np.min(ang)), float(np.max(ang))],
                     "gradient_angle_median": float(np.median(ang))})
    result.numbers["stage2"] = rows


def _t_numbers(ds, runs, result) -> None:
    rows = []
    for run in runs:
        if run.phase != "T-continuation":
            continue
        dom = result.arrays["dominant_eigenvalue"][1][run.index, : run.epochs]
        inside = np.abs(dom) < 1
        # first epoch from which the dominant pair stays inside the unit circle
        settled = np.flip(np.cumsum(np.flip(~inside))) == 0
        entry = int(np.argmax(settled)) if settled[-1] else NONE
        before = dom[: entry + 1] if entry != NONE else dom
        stab = int(result.arrays["stabilisation_epoch"][1][run.index])
        rows.append({"run": run.index, "T": int(run.cfg.task.T), "stabilisation_epoch": stab,
                     "pair_inside_from": entry, "pair_at_entry": complex_pair(dom[entry]) if entry != NONE else None,
                     "max_imag_before_entry": float(np.max(before.imag)), "final": complex_pair(dom[-1]),
                     "final_loss": float(ds.train_loss.values[run.index, run.epochs - 1])})
    result.numbers["T_continuation"] = sorted(rows, key=lambda r: r["T"])


# ------------------------------------------------------------------------------------------ summary
def _fc(z) -> str:
    if z is None:
        return "-"
    re_, im = z
    return f"{re_:.4f}{im:+.4f}i" if abs(im) > 5e-7 else f"{re_:.4f}"


def _summary_lines(numbers: dict) -> list[str]:
    lines = []
    if "stage1" in numbers:
        s = numbers["stage1"]
        bands = ", ".join(f"{b}: {v:.3f}" for b, v in s["max_rel_err_by_band"].items())
        lines.append(f"stage-1 theory (log geometric-sum loss vs simulation, sigma in [-0.5, 0.3]): max relative error "
                     f"{s['max_rel_err_log_loss']:.3f} at sigma_zm = {s['at_sigma']:+.4f} "
                     f"(max |diff| {s['max_abs_err_log_loss']:.2f} in log L); for |sigma_zm| >= {bands}")
    if "sigma_traj" in numbers:
        t = numbers["sigma_traj"]
        lines.append("sigma_zm after 50 epochs from " + ", ".join(f"{a:+.3f}->{b:+.4f}" for a, b in zip(t["start"], t["end"])))
    for r in numbers.get("stage2", []):
        m, l3, ang = r["modulus_sq_range"], r["lambda3_range"], r["gradient_angle_range"]
        lines.append(f"stage 2 of run {r['run']} (epochs {r['epochs'][0]}-{r['epochs'][1] - 1}): "
                     f"|lambda1|^2 {m[0]:.4f}->{m[1]:.4f}, approximation max error {r['modulus_sq_max_abs_err']:.2e} "
                     f"(relative {r['modulus_sq_max_rel_err']:.2e}); lambda3 {l3[0]:.4f}->{l3[1]:.4f}, approximation "
                     f"max error {r['lambda3_max_abs_err']:.2e}; angle(grad L0, grad Linf) {ang[0]:.1f}-{ang[1]:.1f} deg "
                     f"(median {r['gradient_angle_median']:.1f})")
    if "surrogate" in numbers:
        s = numbers["surrogate"]
        lines.append(f"surrogate (T = {s['T']}, from epoch {s['start_epoch']}, start {_fc(s['start'])}): "
                     "end point / |lambda| / max imag / first step inside the unit circle")
        for p in s["paths"]:
            at = f" at {_fc(p['at_unit_circle'])}" if p["at_unit_circle"] else ""
            real = f"; real (pair on the real axis) from step {p['real_from_step']}" if p["real_from_step"] != NONE else ""
            lines.append(f"  alpha={p['alpha']:<5g} {_fc(p['end']):>18}  |l|={p['end_modulus']:.4f}  "
                         f"max imag {p['max_imag']:.4f}  inside from step {p['unit_circle_step']}{at}{real}")
    if "T_continuation" in numbers:
        lines.append("T-continuation (dominant eigenvalue): T / max imag before entering the unit circle / "
                     "entry epoch and point / final")
        for r in numbers["T_continuation"]:
            lines.append(f"  T={r['T']:<4} max imag {r['max_imag_before_entry']:.4f}  inside from {r['pair_inside_from']} "
                         f"at {_fc(r['pair_at_entry'])}  (stab {r['stabilisation_epoch']})  final {_fc(r['final'])}")
    if "effective_training_skipped" in numbers:
        lines.append(f"stage 3 effective model not trained: {numbers['effective_training_skipped']}")
    if numbers.get("effective_training"):
        lines.append("stage 3, full model vs effective model (beta-continuation; same initial states every epoch):")
        for r in numbers["effective_training"]:
            full = ", ".join(_fc(z) for z in r["final_eigs_full"])
            eff = ", ".join(_fc(z) for z in r["final_eigs_effective"])
            lines.append(f"  beta={r['beta']:<4g} from epoch {r['start_epoch']}: loss {r['start_loss_full']:.4g} "
                         f"(eff {r['start_loss_effective']:.4g}) -> final {r['final_loss_full']:.4g} "
                         f"(eff {r['final_loss_effective']:.4g}); last-50 mean {r['final50_mean_full']:.4g} "
                         f"(eff {r['final50_mean_effective']:.4g}); mean |log ratio| {r['mean_abs_log_ratio']:.3f}; "
                         f"final eig {full} (eff {eff})")
            if "exact_max_rel_loss_dev" in r:
                lines.append(f"    vs full model: naive 4-D training {_departs(r, 'effective')}; exact overlap dynamics "
                             f"{_departs(r, 'exact')}")
    return lines


def _departs(r: dict, name: str) -> str:
    at = r[f"{name}_departs_at"]
    where = f"departs at epoch {at} (loss off by > {DEPARTURE:.0%})" if at != NONE else f"never departs (< {DEPARTURE:.0%})"
    return (f"{where}, max relative loss deviation {r[f'{name}_max_rel_loss_dev']:.2e}, max overlap deviation "
            f"{r[f'{name}_max_rel_sigma_dev']:.2e} of their scale")


def _captions(ds) -> dict:
    """The measured numbers behind each figure's claim (report captions)."""
    numbers = read_analysis(ds)["numbers"]
    r = closed_run(ds)
    s1, s2, n = run_stages(ds, r)
    sz = ds.sigma_zm.values[r]
    rho = ds.spectral_radius.values[r]
    out = {}
    s = numbers.get("stage1", {})
    traj = numbers.get("sigma_traj", {}).get("end", [])
    out["fig_3"] = (f"stage 1 ends at epoch {s1}; sigma_zm {sz[0]:+.4f} at epoch 0 -> {sz[min(s1, n - 1)]:+.4f} there, "
                    f"rho(P) = {rho[min(s1, n - 1)]:.4f} (unstable: {rho[min(s1, n - 1)] > 1}); geometric-sum theory vs "
                    f"simulation, max relative error of log L for |sigma_zm| >= 0.01: "
                    f"{s.get('max_rel_err_by_band', {}).get('0.01', float('nan')):.3f}; sigma_zm after 50 epochs from "
                    f"10 starts in [-0.2, 0.2]: {sum(v < 0 for v in traj)}/{len(traj)} negative, range "
                    f"[{min(traj, default=float('nan')):+.4f}, {max(traj, default=float('nan')):+.4f}].")
    dom = ds.dominant_eigenvalue.values[r]
    zz = zigzag(dom[s1:s2].imag) if s2 > s1 else float("nan")
    entry = dom[min(s2, n - 1)]
    text = (f"stage 2 = epochs {s1}-{s2} (stable from {s2}), lambda_1 enters at {entry.real:.4f}{entry.imag:+.4f}i; "
            f"zig-zag of Im lambda_1 in stage 2: {zz:.2f} of the increments change sign (1 = pure period 2).")
    sur = numbers.get("surrogate")
    if sur:
        text += " Surrogate from epoch {}: ".format(sur["start_epoch"]) + "; ".join(
            f"alpha {p['alpha']:g}: max Im {p['max_imag']:.3f}, " + (f"inside the unit circle from step {p['unit_circle_step']}"
                                                                    if p["unit_circle_step"] >= 0 else "never inside")
            for p in sur["paths"]) + "."
    tc = numbers.get("T_continuation", [])
    if tc:
        text += " T-continuation: " + "; ".join(
            f"T={row['T']}: max Im {row['max_imag_before_entry']:.3f}, " + (f"inside from epoch {row['pair_inside_from']}"
                                                                          if row["pair_inside_from"] >= 0 else "never inside")
            for row in tc) + "."
    out["fig_4"] = text
    lam = ds.eigenvalues.values[r, n - 1]
    pair, l3 = dominant_pair(lam[np.isfinite(lam)]), third_eigenvalue(lam[np.isfinite(lam)])
    text = f"final eigenvalues {pair[0].real:.3f} ± {abs(pair[0].imag):.3f}i and {l3.real:.3f}."
    eff = numbers.get("effective_training", [])
    if eff:
        text += " beta-continuation from epoch {}: ".format(eff[0]["start_epoch"]) + "; ".join(
            f"beta={row['beta']:g}: final loss {row['final_loss_full']:.3g} (effective model {row['final_loss_effective']:.3g}, "
            f"mean |log ratio| {row['mean_abs_log_ratio']:.3f})" for row in eff) + "."
        versus = [f"beta={row['beta']:g}: naive 4-D training {_departs(row, 'effective')}, exact overlap dynamics "
                  f"{_departs(row, 'exact')}" for row in eff if "exact_departs_at" in row]
        if versus:
            text += " Against the full model: " + "; ".join(versus) + "."
    out["fig_5"] = text
    st2 = numbers.get("stage2", [])
    if st2:
        row = st2[0]
        out["fig_4_theory"] = (f"over stage 2 (epochs {row['epochs'][0]}-{row['epochs'][1] - 1}): |lambda_1|^2 approximation "
                               f"max relative error {row['modulus_sq_max_rel_err']:.2e}; lambda_3 approximation max error "
                               f"{row['lambda3_max_abs_err']:.2e}; angle between grad L_0 and grad L_inf "
                               f"{row['gradient_angle_range'][0]:.1f}-{row['gradient_angle_range'][1]:.1f} deg (median "
                               f"{row['gradient_angle_median']:.1f}).")
    return out
