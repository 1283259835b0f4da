r"""`loopdyn analyze STORE`: the analyses of spec §4.1-4.5, computed from a store and written back into it.

Every run gets its spectra, stages and (rank-1 linear runs) the effective-system quantities; a store of the
`stages` experiment (phases `closed`, `T-continuation`, `beta-continuation`) also gets the theory runs of
Figs 3d, 3e, 4d and 5d. What is added (see :data:`VARIABLES` for each array's dimensions and meaning):

- per run: `stage1_end`, `stage2_end`, `stabilisation_epoch` (epochs of the run's own phase, `-1` = none);
- linear agents, per run and epoch: `dominant_eigenvalue`, `lambda3` (from the stored `eigenvalues` of $P$);
- nonlinear agents, per run and checkpoint: `jacobian_eigenvalues`, `jacobian_spectral_radius`,
  `jacobian_dominant_eigenvalue`, `jacobian_lambda3` — the spectrum of the Jacobian $J(0)$ of the joint map
  at the origin (:mod:`loopdyn.analysis._jacobian`; $\phi'(0)$: tanh 1, relu ½);
- rank-1 linear agents on the double integrator, per run and epoch: `lambda3_approx`, `modulus_sq_approx`,
  `effective_discrepancy`, `gradient_angle`;
- `stages` experiment: `stage1_*` (Fig 3d), `sigma_traj*` (Fig 3e), `surrogate_*` (Fig 4d),
  `effective_*` (Fig 5d).

Writing follows the store's conventions: every array carries `dimension_names` and a `description`
attribute, so `xarray.open_zarr` reads it without loopdyn. The group attribute `analysis` (JSON: the
variables written and the summary numbers) is removed before anything is written and set again only
when all arrays are complete, so readers (`loopdyn figures stages`) can trust an analysis that has it.
Running the analysis again overwrites the same arrays with identical values (fixed PRNG keys).

Stage definitions (spec §8 row 5), all in epochs of the run's own phase:

- linear agents: :func:`loopdyn.analysis.detect_stages_linear` on the spectra of $P$ — stage 1 ends at the
  first epoch whose dominant pair is complex, stage 2 at the stabilisation epoch ($\rho(P) < 1$ from then on);
- nonlinear agents on the double integrator: :func:`loopdyn.analysis.detect_stages_gains` on the recorded
  effective gains $(k_1, k_2)$ — stage 1 ends when the gain path turns away from the $k_2 \approx 0$ axis
  (its 4-epoch displacement leaves the cone $|\Delta k_2| \le |\Delta k_1|$, $\Delta k_1 < 0$), stage 2 when
  the gains enter the stable triangle for good; there `stabilisation_epoch` is that of $\rho(J(0))$, at
  checkpoint resolution, and may differ from `stage2_end` (local stability of the origin vs stability of
  the least-squares linear policy);
- nonlinear agents on other plants: :func:`loopdyn.analysis.detect_stages_linear` on the spectra of $J(0)$.
"""

from __future__ import annotations

import datetime
import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import _config
from .._config import Config
from ..agents import AgentSpec
from ..plants import LinearPlant
from ..store import _zarr as zs
from ..store._zarr import StoreError, open_run
from ._effective import OVERLAP_NAMES, dominant_modulus_sq_approx, effective_spectrum_discrepancy, lambda3_perturbative
from ._jacobian import activation_slope, jacobian_spectra
from ._joint import spectral_radius
from ._stages import NONE, detect_stages_gains, detect_stages_linear, dominant_pair, stabilisation_epoch, third_eigenvalue

STAGE_LABELS = ("closed", "T-continuation", "beta-continuation")
"""Phase labels of the `stages` experiment (`loopdyn.experiments._run.phases_for`)."""

STAGE1_GRID = (np.linspace(-0.5, -1e-4, 100), np.linspace(1e-4, 0.3, 100))
r"""$\sigma_{zm}$ grids of Fig 3d (spec §4.3): the figure's negative and positive branches."""

SIGMA_TRAJ_STARTS = np.linspace(-0.2, 0.2, 10)
SIGMA_TRAJ_EPOCHS = 50

VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "stage1_end": (("run",),
        "first epoch of stage 2 (spec §8 row 5); 0 = no stage 1 (run starts on the plateau), -1 = stage 1 "
        "never ends"),
    "stage2_end": (("run",),
        "first epoch of stage 3 = the epoch the joint system is stable from (linear: rho(P) < 1; nonlinear: "
        "gains in the stable triangle); -1 = never stabilises, no stage 3"),
    "stabilisation_epoch": (("run",),
        "ep_of_stab (spec §4.1): first epoch with rho < 1 for the rest of the run's phase (rho of P, or of "
        "J(0) for nonlinear agents, at checkpoint resolution); -1 = never"),
    "dominant_eigenvalue": (("run", "epoch"),
        "lambda_1: positive-imaginary member of the dominant pair of P (the pair born at 1, spec §4.3-4.5); "
        "the larger of the two when they are real"),
    "lambda3": (("run", "epoch"),
        "lambda_3: largest-modulus eigenvalue of P outside the dominant pair (spec §4.4-4.5)"),
    "jacobian_eigenvalues": (("run", "checkpoint", "jacobian_eig"),
        "eigenvalues of J(0), the Jacobian of the joint map at the origin (P with m, W scaled by phi'(0); "
        "tanh 1, relu 1/2), decreasing modulus"),
    "jacobian_spectral_radius": (("run", "checkpoint"), "max |eigenvalue| of J(0)"),
    "jacobian_dominant_eigenvalue": (("run", "checkpoint"),
        "dominant pair member of J(0) with positive imaginary part (as dominant_eigenvalue)"),
    "jacobian_lambda3": (("run", "checkpoint"), "largest-modulus eigenvalue of J(0) outside its dominant pair"),
    "lambda3_approx": (("run", "epoch"),
        "perturbative lambda_3 = s_vu + s_vm s_zu / (s_vu^2 - 2 s_vu - s_zm + 1) (spec §4.4)"),
    "modulus_sq_approx": (("run", "epoch"),
        "|lambda_1|^2 ~ c + b lambda_3 + lambda_3^2, b = -s_vu - 2, c = 2 s_vu - s_zm + 1 (spec §4.4)"),
    "effective_discrepancy": (("run", "epoch"),
        "max |root of the effective cubic - stored eigenvalue of P| over the three nonzero eigenvalues (spec "
        "§4.2)"),
    "gradient_angle": (("run", "epoch"),
        "angle in degrees between grad L_0 and grad L_inf^T over the four overlaps (spec §4.4); near 180 = "
        "conflict"),
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
}


@dataclass
class _Run:
    index: int
    seed: int
    label: str
    epochs: int  # epochs of the run's phase
    cfg: Config
    spec: AgentSpec
    plant: LinearPlant
    g: float


def _runs(ds) -> list[_Run]:
    """One record per run, in store order, rebuilt from the stored phases exactly as the trainer laid them out."""
    from ..training._runner import make_groups

    source = str(ds.attrs.get("config_source", "<store>"))
    phases = ds.attrs.get("phases") or [[ds.attrs["config"]["train"]["mode"], ds.attrs["config"]]]
    out: list[_Run] = []
    for p, (label, d) in enumerate(phases):
        cfg = _config.from_dict(d, source=source)
        _, groups = make_groups(cfg, offset=len(out), phase=p, label=label)
        for gr in groups:
            for j, r in enumerate(gr.runs):
                out.append(_Run(r, int(gr.seeds[j]), label, gr.cfg.epochs, gr.cfg, gr.problem.spec, gr.problem.plant,
                                float(gr.hp["g"][j])))
    out.sort(key=lambda r: r.index)
    if len(out) != ds.sizes["run"]:
        raise StoreError(f"the store has {ds.sizes['run']} runs but its stored phases describe {len(out)}; the store is corrupt")
    return out


def _is_double_integrator(plant: LinearPlant) -> bool:
    return (plant.A.shape == (2, 2) and np.allclose(plant.A, [[1, 1], [0, 1]]) and np.allclose(plant.B, [[0], [1]])
            and np.allclose(plant.C, [[1, 0]]))


def _effective_ok(run: _Run) -> bool:
    """Whether $P_{\\rm eff}$ of spec §4.2 is exact: rank-1 linear, no random part, α = 1, double integrator."""
    s = run.spec
    return s.linear and s.rank1_overlaps and not s.random and s.alpha == 1.0 and _is_double_integrator(run.plant)


def _n_eig(run: _Run) -> int:
    return run.plant.n_states + run.spec.hidden_dim


class _Out:
    """Arrays to write: name -> (dims, values)."""

    def __init__(self):
        self.arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}

    def full(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        if name not in self.arrays:
            fill = NONE if np.issubdtype(np.dtype(dtype), np.integer) else np.nan
            self.arrays[name] = (VARIABLES[name][0], np.full(shape, fill, dtype=dtype))
        return self.arrays[name][1]

    def put(self, name: str, values) -> None:
        self.arrays[name] = (VARIABLES[name][0], np.asarray(values))


# ------------------------------------------------------------------------------------------ per run
def _linear_spectra(ds, runs, out: _Out, numbers: dict) -> None:
    R, E = ds.sizes["run"], ds.sizes["epoch"]
    for run in runs:
        if not run.spec.linear or "eigenvalues" not in ds:
            continue
        n = run.epochs
        lam = ds.eigenvalues.values[run.index, :n, : _n_eig(run)]
        rho = ds.spectral_radius.values[run.index, :n]
        stages = detect_stages_linear(lam)
        out.full("stage1_end", (R,), np.int64)[run.index] = stages.stage1_end
        out.full("stage2_end", (R,), np.int64)[run.index] = stages.stage2_end
        out.full("stabilisation_epoch", (R,), np.int64)[run.index] = stabilisation_epoch(rho)
        out.full("dominant_eigenvalue", (R, E), np.complex128)[run.index, :n] = dominant_pair(lam)[..., 0]
        out.full("lambda3", (R, E), np.complex128)[run.index, :n] = third_eigenvalue(lam)


def _checkpoint_params(ds, run: _Run, sel: np.ndarray) -> dict[str, np.ndarray]:
    N = run.spec.N
    params = {}
    for name in ("m", "z", "W", "U", "V", "J"):
        if name not in ds:
            continue
        var = ds[name].isel(run=run.index)
        if "checkpoint" in var.dims:
            var = var.isel(checkpoint=sel)
        a = np.asarray(var.values, np.float64)
        a = a[..., :N, :N] if name in ("W", "J") else a[..., :N, :]
        if name in ("U", "V"):
            a = a[..., : run.spec.rank]
        params[name] = a
    if run.spec.rank == 0:
        params.pop("U", None), params.pop("V", None), params.pop("J", None)
    else:
        params.pop("W", None)
        if not run.spec.random:
            params.pop("J", None)
    return params


def _nonlinear_spectra(ds, runs, out: _Out, numbers: dict) -> None:
    nonlinear = [r for r in runs if not r.spec.linear]
    if not nonlinear:
        return
    R, C = ds.sizes["run"], ds.sizes["checkpoint"]
    ckpts = ds.checkpoint.values
    width = max(_n_eig(r) for r in nonlinear)
    for run in nonlinear:
        sel = np.nonzero(ckpts < run.epochs)[0]
        params = _checkpoint_params(ds, run, sel)
        # Checkpoints are finite wherever training wrote them (a diverged run keeps its last finite
        # parameters); anything else is a gap in the store and is left out, and stays NaN here.
        finite = np.ones(len(sel), bool)
        for v in params.values():
            if v.ndim == 3:
                finite &= np.all(np.isfinite(v), axis=(1, 2))
            elif not np.all(np.isfinite(v)):
                finite[:] = False
        sel, params = sel[finite], {k: (v[finite] if v.ndim == 3 else v) for k, v in params.items()}
        if len(sel) == 0:
            continue
        lam = jacobian_spectra(run.spec, run.plant, params, run.g)
        rho = spectral_radius(lam)
        out.full("jacobian_eigenvalues", (R, C, width), np.complex128)[run.index, sel, : lam.shape[-1]] = lam
        out.full("jacobian_spectral_radius", (R, C), np.float64)[run.index, sel] = rho
        out.full("jacobian_dominant_eigenvalue", (R, C), np.complex128)[run.index, sel] = dominant_pair(lam)[..., 0]
        out.full("jacobian_lambda3", (R, C), np.complex128)[run.index, sel] = third_eigenvalue(lam)
        epochs_of = ckpts[sel]
        i_stab = stabilisation_epoch(rho)
        out.full("stabilisation_epoch", (R,), np.int64)[run.index] = NONE if i_stab == NONE else int(epochs_of[i_stab])
        if _is_double_integrator(run.plant):
            K = ds.gains.values[run.index, : run.epochs, 0]
            stages = detect_stages_gains(K[:, 0], K[:, 1])
            s1, s2 = stages.stage1_end, stages.stage2_end
        else:
            stages = detect_stages_linear(lam)
            s1, s2 = (NONE if i == NONE else int(epochs_of[i]) for i in (stages.stage1_end, stages.stage2_end))
        out.full("stage1_end", (R,), np.int64)[run.index] = s1
        out.full("stage2_end", (R,), np.int64)[run.index] = s2
    numbers["jacobian_slopes"] = {r.spec.activation: activation_slope(r.spec.activation) for r in nonlinear}


def _sigma(ds, run: _Run, n: int | None = None) -> np.ndarray:
    n = run.epochs if n is None else n
    return np.stack([ds[k].values[run.index, :n] for k in OVERLAP_NAMES], axis=-1).astype(np.float64)


def _effective_quantities(ds, runs, out: _Out, numbers: dict) -> None:
    from ..theory import gradient_angle

    R, E = ds.sizes["run"], ds.sizes["epoch"]
    eff = [r for r in runs if _effective_ok(r) and "sigma_zm" in ds]
    if not eff:
        return
    disc, sigmas = [], np.full((len(eff), E, 4), np.nan)
    for j, run in enumerate(eff):
        n = run.epochs
        sigma = _sigma(ds, run)
        sigmas[j, :n] = sigma
        parts = [sigma[:, i] for i in range(4)]
        out.full("lambda3_approx", (R, E), np.float64)[run.index, :n] = lambda3_perturbative(*parts)
        out.full("modulus_sq_approx", (R, E), np.float64)[run.index, :n] = dominant_modulus_sq_approx(*parts)
        d = effective_spectrum_discrepancy(sigma, ds.eigenvalues.values[run.index, :n, : _n_eig(run)])
        out.full("effective_discrepancy", (R, E), np.float64)[run.index, :n] = d
        disc.append(np.nanmax(d))
    # one call (one compilation) for all runs; the padding beyond each run's epochs is dropped below
    angles = np.asarray(gradient_angle(np.nan_to_num(sigmas)))
    for j, run in enumerate(eff):
        out.full("gradient_angle", (R, E), np.float64)[run.index, : run.epochs] = angles[j, : run.epochs]
    numbers["effective_discrepancy_max"] = float(np.max(disc))


# ------------------------------------------------------------------------------------------ stages experiment
def _is_stages_store(ds, runs) -> bool:
    labels = {r.label for r in runs}
    return set(STAGE_LABELS) <= labels and all(_effective_ok(r) for r in runs)


def _stage1_theory(closed: _Run, out: _Out, numbers: dict) -> None:
    from ..theory import geometric_sum_loss, simulated_stage1_loss

    sigma = np.concatenate(STAGE1_GRID)
    theory = np.asarray(geometric_sum_loss(sigma, 101, log=True))
    sim = np.asarray(simulated_stage1_loss(jnp.asarray(sigma), key=jax.random.PRNGKey(closed.seed), N=closed.spec.N,
                                           steps=100, log=True))
    out.put("stage1_sigma", sigma)
    out.put("stage1_log_loss_theory", theory)
    out.put("stage1_log_loss_sim", sim)
    rel = np.abs(theory - sim) / np.abs(sim)
    i = int(np.argmax(rel))
    numbers["stage1"] = {"max_rel_err_log_loss": float(rel[i]), "at_sigma": float(sigma[i]),
                         "max_abs_err_log_loss": float(np.max(np.abs(theory - sim))),
                         "max_rel_err_by_band": {f"{b:g}": float(np.max(rel[np.abs(sigma) >= b])) for b in (0.01, 0.05, 0.1)}}


def _sigma_trajectories(closed: _Run, out: _Out, numbers: dict) -> None:
    r"""Fig 3e: 10 runs of the closed phase's problem that differ only in `agent.over`, trained with its
    loss, optimiser and epoch keys (`train._core`); $\sigma_{zm}$ recorded before every update."""
    traj = np.asarray(_over_runner(json.dumps(closed.cfg.to_dict(), sort_keys=True), closed.cfg.source)(
        jnp.asarray(SIGMA_TRAJ_STARTS), closed.seed))
    out.put("sigma_traj_start", SIGMA_TRAJ_STARTS)
    out.put("sigma_traj_epoch", np.arange(SIGMA_TRAJ_EPOCHS + 1))
    out.put("sigma_zm_traj", traj)
    numbers["sigma_traj"] = {"start": SIGMA_TRAJ_STARTS.round(4).tolist(), "end": traj[:, -1].round(4).tolist()}


@functools.lru_cache(maxsize=4)
def _over_runner(cfg_json: str, source: str):
    """Compiled `(overs, seed) -> sigma_zm (len(overs), SIGMA_TRAJ_EPOCHS + 1)`, cached per configuration."""
    from ..training._core import HP_NAMES, init_run, make_epoch
    from ..training._runner import HP_KEYS, build_problem

    cfg = _config.from_dict(json.loads(cfg_json), source=source)
    problem = build_problem(cfg)
    test_x0 = problem.task.sample_x0(jax.random.PRNGKey(cfg.task.test_seed), cfg.task.test_batch, problem.dtype)
    epoch = make_epoch(problem, test_x0)  # the trainer's own epoch: same loss, clipping, optimiser, keys

    def one(over, seed):
        hp = {name: jnp.asarray(cfg.get(HP_KEYS[name]), problem.dtype) for name in HP_NAMES}
        hp["over"] = over.astype(problem.dtype)
        state, consts = init_run(problem, seed, hp)
        epochs = jnp.arange(SIGMA_TRAJ_EPOCHS + 1, dtype=jnp.int32)
        _, rec = jax.lax.scan(lambda s, e: epoch(s, consts, e), state, epochs)
        return rec["params"]["z"][:, :, 0] @ consts["frozen"]["m"][:, 0]  # parameters before each update

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def _surrogate(ds, runs, settings: dict, out: _Out, numbers: dict) -> None:
    from ..theory import optimise_surrogate

    R = ds.sizes["run"]
    alphas = np.asarray(settings["alphas"], np.float64)
    steps, T, e0 = int(settings["surrogate_steps"]), int(settings["surrogate_T"]), int(settings["T_start_epoch"])
    dom = np.full((R, len(alphas), steps + 1), np.nan, np.complex128)
    loss = np.full((R, len(alphas), steps + 1), np.nan)
    sig = np.full((R, len(alphas), steps + 1, 4), np.nan)
    for run in runs:
        if run.label != "closed":
            continue
        path = optimise_surrogate(_sigma(ds, run)[e0], alphas, T=T, steps=steps)
        dom[run.index], loss[run.index], sig[run.index] = path.dominant, path.loss, path.sigma
        if "surrogate" not in numbers:
            numbers["surrogate"] = _surrogate_numbers(path, T, e0)
    out.put("surrogate_alpha", alphas)
    out.put("surrogate_step", np.arange(steps + 1))
    out.put("overlap", np.array(OVERLAP_NAMES))
    out.put("surrogate_dominant", dom)
    out.put("surrogate_loss", loss)
    out.put("surrogate_sigma", sig)


def _surrogate_numbers(path, T: int, e0: int) -> dict:
    rows = []
    for a, d in zip(path.alpha, path.dominant):
        inside = np.abs(d) < 1
        cross = int(np.argmax(inside)) if inside.any() else NONE
        real = np.abs(d.imag) < 1e-9
        rows.append({"alpha": float(a), "end": _c(d[-1]), "end_modulus": float(np.abs(d[-1])),
                     "real_from_step": int(np.argmax(real)) if real.any() else NONE,
                     "max_imag": float(np.max(d.imag)), "min_imag": float(np.min(d.imag)),
                     "unit_circle_step": cross, "at_unit_circle": _c(d[cross]) if cross != NONE else None})
    return {"T": T, "start_epoch": e0, "start": _c(path.dominant[0, 0]), "paths": rows}


def _effective_training(ds, runs, out: _Out, numbers: dict) -> None:
    from ._joint import effective_matrix, spectrum
    from ..theory import train_effective_model

    R, E = ds.sizes["run"], ds.sizes["epoch"]
    rows = []
    for run in runs:
        if run.label != "beta-continuation":
            continue
        cfg, n = run.cfg, run.epochs
        if cfg.task.loss != "mean" or cfg.train.optimizer != "sgd":  # P_Model_eff of the reference: SGD, mean loss
            numbers["effective_training_skipped"] = (f"the effective model is trained with SGD on the 'mean' loss, this "
                                                     f"phase has {cfg.train.optimizer} on {cfg.task.loss!r}")
            continue
        # The epoch keys of the full-model run (train._core.init_run / ClosedLoop.loss): same x0 batches.
        k_train = jax.random.split(jax.random.PRNGKey(run.seed))[1]
        keys = jax.vmap(lambda e: jax.random.split(jax.random.fold_in(k_train, e))[0])(jnp.arange(n, dtype=jnp.int32))
        beta = float(ds.beta.values[run.index])
        res = train_effective_model(_sigma(ds, run, 1)[0], epoch_keys=keys, epochs=n, lr=cfg.train.lr, clip=cfg.train.clip,
                                    batch=cfg.task.batch, T=cfg.task.T, beta=beta, x0_range=cfg.task.x0_range)
        sigma = res.sigma[:n]  # record convention: after e updates, the parameters that produced loss[e]
        lam = spectrum(effective_matrix(*(sigma[:, i] for i in range(4))))
        out.full("effective_train_loss", (R, E), np.float64)[run.index, :n] = res.loss
        out.full("effective_sigma", (R, E, 4), np.float64)[run.index, :n] = sigma
        out.full("effective_eigenvalues", (R, E, 4), np.complex128)[run.index, :n] = lam
        full = ds.train_loss.values[run.index, :n]
        tail = slice(max(n - 50, 0), n)
        full_lam = ds.eigenvalues.values[run.index, n - 1, : _n_eig(run)]
        rows.append({"run": run.index, "beta": beta, "start_epoch": int(ds.start_epoch.values[run.index]),
                     "start_loss_full": float(full[0]), "start_loss_effective": float(res.loss[0]),
                     "final_loss_full": float(full[-1]), "final_loss_effective": float(res.loss[-1]),
                     "final50_mean_full": float(np.mean(full[tail])), "final50_mean_effective": float(np.mean(res.loss[tail])),
                     "mean_abs_log_ratio": float(np.mean(np.abs(np.log(res.loss / full)))),
                     "final_eigs_full": [_c(z) for z in _pair_and_third(full_lam)],
                     "final_eigs_effective": [_c(z) for z in _pair_and_third(lam[-1])]})
    numbers["effective_training"] = rows


def _pair_and_third(lam) -> list[complex]:
    return [dominant_pair(lam)[0], third_eigenvalue(lam)]


def _stage2_numbers(ds, runs, arrays: dict, numbers: dict) -> None:
    """|lambda_1|^2 and lambda_3 approximations along stage 2 of every closed run, gradient angles there."""
    rows = []
    for run in runs:
        if run.label != "closed" or not _effective_ok(run):
            continue
        s1 = int(arrays["stage1_end"][1][run.index])
        s2 = int(arrays["stage2_end"][1][run.index])
        lo, hi = max(s1, 0), (run.epochs if s2 == NONE else s2)
        if hi <= lo:
            continue
        i = run.index
        dom = arrays["dominant_eigenvalue"][1][i, lo:hi]
        l3 = arrays["lambda3"][1][i, lo:hi].real
        mod_emp = np.abs(dom) ** 2
        mod_th = arrays["modulus_sq_approx"][1][i, lo:hi]
        l3_th = arrays["lambda3_approx"][1][i, lo:hi]
        ang = arrays["gradient_angle"][1][i, lo:hi]
        rows.append({"run": i, "epochs": [lo, hi],
                     "modulus_sq_max_abs_err": float(np.max(np.abs(mod_th - mod_emp))),
                     "modulus_sq_max_rel_err": float(np.max(np.abs(mod_th - mod_emp) / mod_emp)),
                     "modulus_sq_range": [float(mod_emp[0]), float(mod_emp[-1])],
                     "lambda3_max_abs_err": float(np.max(np.abs(l3_th - l3))),
                     "lambda3_max_rel_err": float(np.max(np.abs(l3_th - l3) / np.abs(l3))),
                     "lambda3_range": [float(l3[0]), float(l3[-1])],
                     "gradient_angle_range": [float(np.min(ang)), float(np.max(ang))],
                     "gradient_angle_median": float(np.median(ang))})
    numbers["stage2"] = rows


def _t_numbers(ds, runs, arrays: dict, numbers: dict) -> None:
    rows = []
    for run in runs:
        if run.label != "T-continuation":
            continue
        dom = arrays["dominant_eigenvalue"][1][run.index, : run.epochs]
        inside = np.abs(dom) < 1
        # first epoch from which the dominant pair stays inside the unit circle
        settled = np.flip(np.cumsum(np.flip(~inside))) == 0
        entry = int(np.argmax(settled)) if settled[-1] else NONE
        before = dom[: entry + 1] if entry != NONE else dom
        stab = int(arrays["stabilisation_epoch"][1][run.index])
        rows.append({"run": run.index, "T": int(run.cfg.task.T), "stabilisation_epoch": stab,
                     "pair_inside_from": entry, "pair_at_entry": _c(dom[entry]) if entry != NONE else None,
                     "max_imag_before_entry": float(np.max(before.imag)), "final": _c(dom[-1]),
                     "final_loss": float(ds.train_loss.values[run.index, run.epochs - 1])})
    numbers["T_continuation"] = sorted(rows, key=lambda r: r["T"])


def _c(z) -> list[float]:
    z = complex(z)
    return [round(z.real, 6), round(z.imag, 6)]


# ------------------------------------------------------------------------------------------ entry point
def analyze_store(store) -> str:
    r"""Compute the analyses of a store and write them into it; returns a human-readable summary.

    See the module docstring for what is computed and :data:`VARIABLES` for every array written
    (name, dimensions, meaning). Linear stores need no recomputation of spectra (the trainer stores the
    spectra of $P$); nonlinear agents get the spectra of $J(0)$ from their parameter checkpoints. A store
    of the `stages` experiment also gets the theory runs of Figs 3d, 3e, 4d and 5d (a few seconds).

    **Arguments:** `store`: path of a complete store written by `loopdyn train`.

    **Returns:** the summary: stage boundaries per run and the numbers of issue item 8 (effective-system
    discrepancy, stage-1 theory error, stage-2 approximation errors, gradient angles, surrogate and
    T-continuation end points, β-continuation final losses and eigenvalues of the full and effective models).
    The same numbers are stored as JSON in the group attribute `analysis`.
    """
    path = Path(store)
    ds = open_run(path)
    if not ds.attrs["complete"]:
        raise StoreError(f"{path}: training is incomplete ({ds.attrs['epochs_done']} epochs of the current phase); "
                         f"finish it with 'loopdyn train --resume {path}' before analysing")
    runs = _runs(ds)
    out, numbers = _Out(), {}
    _linear_spectra(ds, runs, out, numbers)
    _nonlinear_spectra(ds, runs, out, numbers)
    _effective_quantities(ds, runs, out, numbers)
    stages_store = _is_stages_store(ds, runs)
    if stages_store:
        from ..experiments._run import stages_settings

        settings = stages_settings(_config.from_dict(ds.attrs["config"], source=str(ds.attrs.get("config_source"))))
        closed = next(r for r in runs if r.label == "closed")
        _stage1_theory(closed, out, numbers)
        _sigma_trajectories(closed, out, numbers)
        _surrogate(ds, runs, settings, out, numbers)
        _effective_training(ds, runs, out, numbers)
        _stage2_numbers(ds, runs, out.arrays, numbers)
        _t_numbers(ds, runs, out.arrays, numbers)
    numbers["stages"] = _stage_rows(ds, runs, out.arrays)
    _write(path, out, numbers, experiment="stages" if stages_store else None)
    return summary(numbers, path)


def _stage_rows(ds, runs, arrays) -> list[dict]:
    rows = []
    for run in runs:
        row = {"run": run.index, "seed": run.seed, "mode": run.label, "epochs": run.epochs}
        for k in ("stage1_end", "stage2_end", "stabilisation_epoch"):
            if k in arrays:
                row[k] = int(arrays[k][1][run.index])
        if "T" in ds and run.label == "T-continuation":
            row["T"] = int(ds["T"].values[run.index])
        if run.label == "beta-continuation":
            row["beta"] = float(ds.beta.values[run.index])
        if "dominant_eigenvalue" in arrays and run.spec.linear:
            lam = ds.eigenvalues.values[run.index, run.epochs - 1, : _n_eig(run)]
            row["final_eigenvalues"] = [_c(z) for z in _pair_and_third(lam)]
        rows.append(row)
    return rows


def _write(path: Path, out: _Out, numbers: dict, experiment: str | None) -> None:
    group = zs.open_group(path, mode="r+")
    previous = json.loads(group.attrs.get("analysis", "{}")).get("variables", [])
    if "analysis" in group.attrs:
        del group.attrs["analysis"]
    with warnings.catch_warnings():  # progress.json and state/ are the trainer's, not Zarr nodes
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        for name in previous:
            if name not in out.arrays and name in group:
                del group[name]
        for name, (dims, values) in out.arrays.items():
            values = np.asarray(values)
            if values.dtype.kind == "U":
                arr = group.create_array(name, shape=values.shape, dtype=str, dimension_names=list(dims), overwrite=True)
            else:
                chunks = (1,) + values.shape[1:] if dims[0] == "run" and values.ndim > 1 else values.shape
                arr = group.create_array(name, shape=values.shape, chunks=chunks, dtype=values.dtype, overwrite=True,
                                         dimension_names=list(dims), fill_value=zs._fill(values.dtype))
            arr[...] = values
            arr.attrs["description"] = VARIABLES[name][1]
    record = {"variables": sorted(out.arrays), "experiment": experiment, "numbers": numbers,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    group.attrs["analysis"] = json.dumps(record, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o))


def read_analysis(ds_or_path) -> dict:
    """The `analysis` record (variables written, summary numbers) of an analysed store; raises
    :class:`StoreError` if the store has not been analysed (or the analysis was interrupted)."""
    attrs = ds_or_path.attrs if hasattr(ds_or_path, "attrs") else zs.open_group(Path(ds_or_path), mode="r").attrs
    raw = attrs.get("analysis")
    if raw is None:
        raise StoreError("the store has not been analysed; run 'loopdyn analyze STORE' first")
    return json.loads(raw) if isinstance(raw, str) else raw


# ------------------------------------------------------------------------------------------ summary text
def _fc(z) -> str:
    if z is None:
        return "-"
    re_, im = z
    return f"{re_:.4f}{im:+.4f}i" if abs(im) > 5e-7 else f"{re_:.4f}"


def summary(numbers: dict, path: Path | str = "") -> str:
    """Human-readable summary of the `numbers` of an analysis."""
    lines = [f"analysis of {path}" if path else "analysis",
             "stages (epochs of each run's phase; stage 1 = [0, s1), stage 2 = [s1, s2), stage 3 = [s2, end); -1 = none):"]
    for r in numbers.get("stages", []):
        extra = (f" T={r['T']}" if "T" in r else "") + (f" beta={r['beta']:g}" if "beta" in r else "")
        eig = "  final eig: " + ", ".join(_fc(z) for z in r["final_eigenvalues"]) if "final_eigenvalues" in r else ""
        lines.append(f"  run {r['run']:>2} {r['mode']:<17}{extra:<10} s1={r.get('stage1_end', '-'):>4} "
                     f"s2={r.get('stage2_end', '-'):>4} stab={r.get('stabilisation_epoch', '-'):>4}{eig}")
    if "jacobian_slopes" in numbers:
        slopes = ", ".join(f"{k}: {v:g}" for k, v in numbers["jacobian_slopes"].items())
        lines.append(f"nonlinear agents: spectra of J(0) with phi'(0) = {slopes}")
    if "effective_discrepancy_max" in numbers:
        lines.append(f"effective cubic vs spectrum of P: max discrepancy {numbers['effective_discrepancy_max']:.2e} "
                     "over all runs and epochs")
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
    return "\n".join(lines)
