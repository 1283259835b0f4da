r"""`loopdyn analyze STORE`: the per-run analyses of spec §4.1-4.4, written into the store's analysis group.

Every run gets its stages and spectra, and rank-1 linear runs the effective-system quantities; an
experiment adds its own analyses and theory runs through `extra` hooks (:mod:`loopdyn.experiments`).
What is written (see :data:`VARIABLES` for each array's dimensions and meaning):

- per run: `stage1_end`, `stage2_end`, `stabilisation_epoch` (epochs of the run's own phase, `-1` = none);
- linear agents, per run and epoch: `dominant_eigenvalue`, `lambda3` (from the stored `eigenvalues` of $P$);
- nonlinear loops (a nonlinear agent or plant), per run and checkpoint: `fixed_point` and `fixed_point_status`
  (Newton's method on the closed-loop map from the origin, :func:`loopdyn.system.fixed_points`),
  `jacobian_eigenvalues`, `jacobian_spectral_radius`, `jacobian_dominant_eigenvalue`, `jacobian_lambda3` — the
  spectrum of $P(\theta)$, the Jacobian of the joint map at that fixed point (the origin where it is the
  equilibrium: then $J(0)$, $\phi'(0)$: tanh 1, relu ½) — and `basin` (the fraction of a fixed test set of
  initial states that the closed loop brings to the target, at :data:`BASIN_CHECKPOINTS` log-spaced checkpoints);
- rank-1 linear agents on the double integrator, per run and epoch: `lambda3_approx`, `modulus_sq_approx`,
  `effective_discrepancy`, `gradient_angle`.

The analysis never rewrites the training arrays: it goes into its own Zarr subgroup, replaced atomically
(:func:`loopdyn.store.write_analysis`); :func:`loopdyn.open_run` merges it. Running it again gives the same
arrays (fixed PRNG keys).

Stage definitions (spec §8 row 5), all in epochs of the run's own phase:

- linear agents: :func:`detect_stages_linear` on the spectra of $P$ — stage 1 ends at the first epoch whose
  dominant pair is complex, stage 2 at the stabilisation epoch ($\rho(P) < 1$ from then on);
- nonlinear agents on the double integrator: :func:`detect_stages_gains` on the recorded effective gains
  $(k_1, k_2)$ — stage 1 ends when the gain path turns away from the $k_2 \approx 0$ axis, stage 2 when the
  gains enter the stable triangle for good; there `stabilisation_epoch` is that of $\rho(J(0))$, at
  checkpoint resolution, and may differ from `stage2_end` (local stability of the origin vs stability of
  the least-squares linear policy);
- nonlinear loops on other plants: :func:`detect_stages_linear` on the spectra of $P(\theta)$ at the fixed point
  (checkpoint resolution): stage 2 ends when $\rho(P(\theta))$ crosses 1 for good, as for linear loops.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..agents import AgentParams
from ..errors import StoreError
from ..plants import Plant
from ..store import StoreLock, open_run, write_analysis
from ..system import (
    FIXED_POINT_STATUS,
    OVERLAP_NAMES,
    activation_slope,
    basin_fractions,
    dominant_modulus_sq_approx,
    effective_spectrum_discrepancy,
    fixed_points,
    jacobian_spectra,
    lambda3_perturbative,
    origin_residuals,
    range_exits,
    spectral_radius,
    spectrum,
)
from ._runs import Run, checkpoint_params, store_runs
from ._stages import NONE, detect_stages_gains, detect_stages_linear, dominant_pair, stabilisation_epoch, third_eigenvalue

VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "stage1_end": (("run",),
        "first epoch of stage 2 (spec §8 row 5); 0 = no stage 1 (run starts on the plateau), -1 = stage 1 never ends"),
    "stage2_end": (("run",),
        "first epoch of stage 3 = the epoch the joint system is stable from (linear: rho(P) < 1; nonlinear: gains in "
        "the stable triangle); -1 = never stabilises, no stage 3"),
    "stabilisation_epoch": (("run",),
        "first epoch with rho < 1 for the rest of the run's phase (rho of P, or of J(0) for nonlinear agents, at "
        "checkpoint resolution); -1 = never"),
    "dominant_eigenvalue": (("run", "epoch"),
        "lambda_1: positive-imaginary member of the dominant pair of P (the pair born at 1, spec §4.3-4.5); the "
        "larger of the two when they are real"),
    "lambda3": (("run", "epoch"), "lambda_3: largest-modulus eigenvalue of P outside the dominant pair (spec §4.4-4.5)"),
    "jacobian_eigenvalues": (("run", "checkpoint", "jacobian_eig"),
        "eigenvalues of P(theta), the Jacobian of the closed-loop map (x, h) -> (x', h') at its Newton fixed point "
        "near the target (fixed_point); J(0) where the origin is the equilibrium (P with m, W scaled by phi'(0); "
        "tanh 1, relu 1/2), decreasing modulus; NaN where no fixed point was found"),
    "jacobian_spectral_radius": (("run", "checkpoint"), "max |eigenvalue| of P(theta) at the fixed point"),
    "jacobian_dominant_eigenvalue": (("run", "checkpoint"),
        "dominant pair member of P(theta) with positive imaginary part (as dominant_eigenvalue)"),
    "jacobian_lambda3": (("run", "checkpoint"), "largest-modulus eigenvalue of P(theta) outside its dominant pair"),
    "fixed_point": (("run", "checkpoint", "jacobian_eig"),
        "the loop's fixed point s* = (x*, h*) (core coordinates) found by Newton's method from the origin; NaN = none"),
    "fixed_point_status": (("run", "checkpoint"),
        "0 = fixed point found; 1 = no Newton convergence, 2 = non-finite step, 3 = left the neighbourhood "
        "(loopdyn.system.FIXED_POINT_STATUS); -1 = not computed (diverged run)"),
    "range_exits": (("run",),
        "fraction of the closed-loop test episodes (task test set, T steps, last checkpoint) whose state leaves the "
        "plant's valid range (pendulum and cart-pole: |angle| <= pi, the angle being unwrapped; arm: its joint "
        "limits); a recorded flag, never an error; absent for plants without a range"),
    "basin": (("run", "checkpoint"),
        "fraction of the fixed basin test set (loopdyn.system.basin_test_set: +-e_i and 8 random unit directions x "
        "0.1, 0.3, 1, 3) whose closed loop (4 T steps, h0 = 0) ends within 0.05 of the target; at "
        "BASIN_CHECKPOINTS log-spaced checkpoints, NaN elsewhere"),
    "lambda3_approx": (("run", "epoch"),
        "perturbative lambda_3 = s_vu + s_vm s_zu / (s_vu^2 - 2 s_vu - s_zm + 1) (spec §4.4)"),
    "modulus_sq_approx": (("run", "epoch"),
        "|lambda_1|^2 ~ c + b lambda_3 + lambda_3^2, b = -s_vu - 2, c = 2 s_vu - s_zm + 1 (spec §4.4)"),
    "effective_discrepancy": (("run", "epoch"),
        "max |root of the effective cubic - stored eigenvalue of P| over the three nonzero eigenvalues (spec §4.2)"),
    "gradient_angle": (("run", "epoch"),
        "angle in degrees between grad L_0 and grad L_inf^T over the four overlaps (spec §4.4); near 180 = conflict"),
}


@dataclass
class Analysis:
    """Arrays to write (`name -> (dims, values)`), their descriptions, and summary numbers."""

    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)

    def full(self, name: str, shape: tuple[int, ...], dtype, dims=None, description=None) -> np.ndarray:
        """The array `name`, created filled (NaN, or -1 for integers) on first use."""
        if name not in self.arrays:
            fill = NONE if np.issubdtype(np.dtype(dtype), np.integer) else np.nan
            dims = dims or VARIABLES[name][0]
            self.arrays[name] = (dims, np.full(shape, fill, dtype=dtype))
            self.descriptions[name] = description or VARIABLES[name][1]
        return self.arrays[name][1]

    def put(self, name: str, values, dims=None, description=None) -> None:
        self.arrays[name] = (dims or VARIABLES[name][0], np.asarray(values))
        self.descriptions[name] = description or VARIABLES[name][1]

    def get(self, name: str) -> np.ndarray:
        return self.arrays[name][1]


def effective_exact(run: Run) -> bool:
    r"""Whether $P_{\rm eff}$ of spec §4.2 is exact for the run: rank-1 linear, no random part, α = 1, double integrator."""
    s = run.spec
    return s.linear and s.rank1_overlaps and not s.random and s.alpha == 1.0 and run.plant.is_double_integrator


def n_eig(run: Run) -> int:
    return run.plant.n_states + run.spec.hidden_dim


def overlaps_of(ds, run: Run, n: int | None = None) -> np.ndarray:
    """The run's four overlaps over its first `n` epochs, `(n, 4)` float64."""
    n = run.epochs if n is None else n
    return np.stack([ds[k].values[run.index, :n] for k in OVERLAP_NAMES], axis=-1).astype(np.float64)


# ------------------------------------------------------------------------------------------ per run
def _linear_spectra(ds, runs, result: Analysis) -> None:
    R, E = ds.sizes["run"], ds.sizes["epoch"]
    for run in runs:
        if not run.spec.linear or "eigenvalues" not in ds:
            continue
        n = run.epochs
        lam = ds.eigenvalues.values[run.index, :n, : n_eig(run)]
        rho = ds.spectral_radius.values[run.index, :n]
        stages = detect_stages_linear(lam)
        result.full("stage1_end", (R,), np.int64)[run.index] = stages.stage1_end
        result.full("stage2_end", (R,), np.int64)[run.index] = stages.stage2_end
        result.full("stabilisation_epoch", (R,), np.int64)[run.index] = stabilisation_epoch(rho)
        result.full("dominant_eigenvalue", (R, E), np.complex128)[run.index, :n] = dominant_pair(lam)[..., 0]
        result.full("lambda3", (R, E), np.complex128)[run.index, :n] = third_eigenvalue(lam)


BASIN_CHECKPOINTS = 12
"""Checkpoints per run at which the analysis measures the basin (log-spaced over the run's checkpoints, the
first and the last included): a basin costs ~64 closed-loop rollouts of 4T steps, a fixed point a few
Newton steps, so the basin is measured more sparsely to keep the analysis within 10 % of the training time
(`benchmarks/bench_fixed_point.py`)."""

BASIN_TOLERANCE = 0.05
r"""A basin test state converges when $\max|x_t| \le$ 0.05 (rad, m, rad/s, m/s) over the last tenth of the
4T steps of its closed-loop trajectory (:func:`loopdyn.system.basin`)."""


def basin_checkpoints(n: int, count: int = BASIN_CHECKPOINTS) -> np.ndarray:
    """Indices into `n` checkpoints at which the basin is measured: `count` log-spaced ones, 0 and n-1 included."""
    if n <= count:
        return np.arange(n)
    return np.unique(np.round(np.geomspace(1, n, count)).astype(int) - 1)


def _range_exits(run: Run, params: AgentParams) -> float:
    """The fraction of the run's closed-loop test episodes (its task's fixed test set, `task.T` steps, noise-free)
    that leave the plant's valid range (:func:`loopdyn.system.range_exits`) with the last of `params`; NaN for a
    task without a fixed test set."""
    import jax

    x0 = run.task.test_set(jax.random.PRNGKey(run.cfg.task.test_seed), np.float64)
    if x0 is None:
        return float("nan")
    last = AgentParams.of({k: (v[-1] if v.ndim == 3 else v) for k, v in params.present().items()})
    return range_exits(run.spec, run.plant, last, run.g, x0, run.task.T, run.task.timing)


def _nonlinear_spectra(ds, runs, result: Analysis) -> None:
    # P describes the delayed loop without exogenous input (spec §4.1); a tracking loop (immediate timing, a
    # reference as input) is analysed by its experiment (eig(W) at acquisition)
    nonlinear = [r for r in runs if not (r.spec.linear and r.plant.linear) and r.task.timing == "delayed"
                 and not getattr(r.task, "n_exo", 0)]
    if not nonlinear:
        return
    R, C = ds.sizes["run"], ds.sizes["checkpoint"]
    ckpts = ds.checkpoint.values
    # J(0) in closed form has k + N eigenvalues even for a reduced agent (k + n_in + rank states): room for both
    width = max(max(n_eig(r), r.plant.n_states + getattr(r.spec, "N", 0)) for r in nonlinear)
    reasons = {}
    for run in nonlinear:
        sel = np.nonzero(ckpts < run.epochs)[0]
        params = checkpoint_params(ds, run, sel)
        # a diverged run's checkpoints are NaN from its divergence on: left out here, NaN in the result
        finite = np.ones(len(sel), bool)
        for v in params.present().values():
            finite &= np.all(np.isfinite(v), axis=(-2, -1)) if v.ndim == 3 else np.all(np.isfinite(v))
        sel = sel[finite]
        params = AgentParams.of({k: (v[finite] if v.ndim == 3 else v) for k, v in params.present().items()})
        if len(sel) == 0:
            continue
        # P(theta): the Jacobian of the closed-loop map at its Newton fixed point near the target (issue #19);
        # J(0) where the origin is the loop's equilibrium
        n = n_eig(run)
        if np.all(origin_residuals(run.spec, run.plant, params, run.g) <= 1e-12):
            # Newton from the origin stops there at once: s* = 0, P = J(0), in closed form (and compiled once)
            s_star, status = np.zeros((len(sel), n)), np.zeros(len(sel), np.int64)
            lam = jacobian_spectra(run.spec, run.plant, params, run.g, per_matrix=True)
        else:
            fp = fixed_points(run.spec, run.plant, params, run.g)
            s_star, status = np.asarray(fp.s, np.float64), np.asarray(fp.status, np.int64)
            lam = spectrum(np.asarray(fp.P, np.float64), per_matrix=True)
        result.full("fixed_point", (R, C, width), np.float64)[run.index, sel, :n] = s_star
        result.full("fixed_point_status", (R, C), np.int64)[run.index, sel] = status
        for code in np.unique(status[status > 0]):
            reasons[int(code)] = reasons.get(int(code), 0) + int(np.sum(status == code))
        rho = spectral_radius(lam)
        result.full("jacobian_eigenvalues", (R, C, width), np.complex128)[run.index, sel, : lam.shape[-1]] = lam
        result.full("jacobian_spectral_radius", (R, C), np.float64)[run.index, sel] = rho
        result.full("jacobian_dominant_eigenvalue", (R, C), np.complex128)[run.index, sel] = dominant_pair(lam)[..., 0]
        result.full("jacobian_lambda3", (R, C), np.complex128)[run.index, sel] = third_eigenvalue(lam)
        at = basin_checkpoints(len(sel))
        sub = AgentParams.of({k: (v[at] if v.ndim == 3 else v) for k, v in params.present().items()})
        frac = basin_fractions(run.spec, run.plant, sub, run.g, T=4 * run.cfg.task.T, tol=BASIN_TOLERANCE)
        result.full("basin", (R, C), np.float64)[run.index, sel[at]] = frac
        if type(run.plant).in_range is not Plant.in_range:
            result.full("range_exits", (R,), np.float64)[run.index] = _range_exits(run, params)
        epochs_of = ckpts[sel]
        i_stab = stabilisation_epoch(rho)
        result.full("stabilisation_epoch", (R,), np.int64)[run.index] = NONE if i_stab == NONE else int(epochs_of[i_stab])
        if run.plant.is_double_integrator:
            K = ds.gains.values[run.index, : run.epochs, 0]
            ok = np.isfinite(K[:, 0])
            stages = detect_stages_gains(K[ok, 0], K[ok, 1]) if ok.sum() > 4 else None
            s1, s2 = (stages.stage1_end, stages.stage2_end) if stages else (NONE, NONE)
        else:
            stages = detect_stages_linear(lam)
            s1, s2 = (NONE if i == NONE else int(epochs_of[i]) for i in (stages.stage1_end, stages.stage2_end))
        result.full("stage1_end", (R,), np.int64)[run.index] = s1
        result.full("stage2_end", (R,), np.int64)[run.index] = s2
    result.numbers["jacobian_slopes"] = {r.spec.activation: activation_slope(r.spec.activation) for r in nonlinear}
    result.numbers["fixed_point_failures"] = {FIXED_POINT_STATUS[c]: k for c, k in sorted(reasons.items())}
    if "range_exits" in result.arrays:
        f = result.get("range_exits")
        result.numbers["range_exits"] = {int(r): round(float(f[r]), 4) for r in np.nonzero(f > 0)[0]}


def _effective_quantities(ds, runs, result: Analysis) -> None:
    from ..theory import gradient_angle

    R, E = ds.sizes["run"], ds.sizes["epoch"]
    eff = [r for r in runs if effective_exact(r) and "sigma_zm" in ds]
    if not eff:
        return
    disc, sigmas = [], np.full((len(eff), E, 4), np.nan)
    for j, run in enumerate(eff):
        n = run.epochs
        sigma = overlaps_of(ds, run)
        sigmas[j, :n] = sigma
        parts = [sigma[:, i] for i in range(4)]
        result.full("lambda3_approx", (R, E), np.float64)[run.index, :n] = lambda3_perturbative(*parts)
        result.full("modulus_sq_approx", (R, E), np.float64)[run.index, :n] = dominant_modulus_sq_approx(*parts)
        d = effective_spectrum_discrepancy(sigma, ds.eigenvalues.values[run.index, :n, : n_eig(run)])
        result.full("effective_discrepancy", (R, E), np.float64)[run.index, :n] = d
        disc.append(np.nanmax(d) if np.any(np.isfinite(d)) else np.nan)
    angles = np.asarray(gradient_angle(np.nan_to_num(sigmas)))  # one compilation for all runs
    for j, run in enumerate(eff):
        result.full("gradient_angle", (R, E), np.float64)[run.index, : run.epochs] = angles[j, : run.epochs]
    result.numbers["effective_discrepancy_max"] = float(np.nanmax(disc))


def _swept(runs) -> list[str]:
    """The dotted keys (seed aside) whose values differ between `runs`: what a sweep varies."""
    keys = dict.fromkeys(k for run in runs for k in run.values if k != "seed")
    return [k for k in keys if len({repr(run.values.get(k)) for run in runs}) > 1]


def _stage_rows(ds, runs, result: Analysis) -> list[dict]:
    rows = []
    swept = _swept(runs)
    for run in runs:
        row = {"run": run.index, "seed": run.seed, "phase": run.phase, "epochs": run.epochs}
        if swept:
            row["swept"] = {k: run.values.get(k) for k in swept}
        for k in ("stage1_end", "stage2_end", "stabilisation_epoch"):
            if k in result.arrays:
                row[k] = int(result.get(k)[run.index])
        if "dominant_eigenvalue" in result.arrays and run.spec.linear:
            lam = ds.eigenvalues.values[run.index, run.epochs - 1, : n_eig(run)]
            row["final_eigenvalues"] = [complex_pair(z) for z in (dominant_pair(lam)[0], third_eigenvalue(lam))]
        rows.append(row)
    return rows


def complex_pair(z) -> list[float]:
    """`[re, im]` of a complex number, rounded to 6 decimals (JSON-ready)."""
    z = complex(z)
    return [round(z.real, 6), round(z.imag, 6)]


Hook = Callable[[object, list[Run], Analysis], None]


PARAMETER_MEMORY = 2**31
"""Bytes of checkpointed parameters that :func:`analyze_store` loads into memory at once (beyond, read per run)."""


def analyze_store(store, *, extra: list[Hook] = (), experiment: str | None = None) -> Analysis:
    r"""Compute the analyses of a store and write them into its analysis group.

    **Arguments:** `store`: path of a complete store written by `loopdyn train`; `extra`: hooks
    `hook(ds, runs, result)` that add an experiment's own analyses (called after the per-run ones);
    `experiment`: its name, recorded.

    **Returns:** the :class:`Analysis` (arrays, descriptions and the summary numbers, which are also stored
    in the analysis group's attribute `loopdyn_analysis`).
    """
    path = Path(store)
    with StoreLock(path, "analyse"):
        ds = open_run(path, analysis=False)
        if not ds.attrs["complete"]:
            raise StoreError(f"{path}: training is incomplete ({ds.attrs['epochs_done']} epochs of the current phase); "
                             f"finish it with 'loopdyn train --resume {path}' before analysing")
        # the arrays are read run by run below: load them once. A lazy read per run costs a dask graph each
        # (~35 ms; most of the analysis time of a 256-run store), and a checkpoint's chunk holds every run's
        # parameters, so reading run by run decompresses each chunk once per run (tanh, 128 runs: 58 s). The
        # checkpointed parameters stay lazy only when they would take more than PARAMETER_MEMORY bytes.
        lazy = [n for n, v in ds.data_vars.items() if "checkpoint" in v.dims]
        if sum(ds[n].nbytes for n in lazy) <= PARAMETER_MEMORY:
            lazy = []
        for name in [n for n in ds.data_vars if n not in lazy]:
            ds[name] = ds[name].load()
        runs = store_runs(ds)
        result = Analysis()
        _linear_spectra(ds, runs, result)
        _nonlinear_spectra(ds, runs, result)
        _effective_quantities(ds, runs, result)
        for hook in extra:
            hook(ds, runs, result)
        result.numbers["stages"] = _stage_rows(ds, runs, result)
        record = {"experiment": experiment, "numbers": result.numbers,
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        write_analysis(path, result.arrays, result.descriptions, record)
    return result


def _fmt_complex(z) -> str:
    if z is None:
        return "-"
    re_, im = z
    return f"{re_:.4f}{im:+.4f}i" if abs(im) > 5e-7 else f"{re_:.4f}"


def summary_lines(numbers: dict) -> list[str]:
    """Lines of the human-readable summary for the per-run numbers of an analysis."""
    rows = [r for r in numbers.get("stages", []) if any(k in r for k in ("stage1_end", "stage2_end", "stabilisation_epoch"))]
    lines = ["stages (epochs of each run's phase; stage 1 = [0, s1), stage 2 = [s1, s2), stage 3 = [s2, end); -1 = none):"] if rows else []
    for r in rows:
        eig = "  final eig: " + ", ".join(_fmt_complex(z) for z in r["final_eigenvalues"]) if "final_eigenvalues" in r else ""
        swept = "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}" for k, v in r.get("swept", {}).items())
        lines.append(f"  run {r['run']:>2} {r['phase']:<17} seed {r['seed']:<4}{swept} s1={r.get('stage1_end', '-'):>4} "
                     f"s2={r.get('stage2_end', '-'):>4} stab={r.get('stabilisation_epoch', '-'):>4}{eig}")
    if "jacobian_slopes" in numbers:
        slopes = ", ".join(f"{k}: {v:g}" for k, v in numbers["jacobian_slopes"].items())
        lines.append(f"nonlinear loops: spectra of P at the Newton fixed point (J(0) at the origin, phi'(0) = {slopes})")
        exits = numbers.get("range_exits") or {}
        if exits:
            lines.append("  runs whose closed-loop test episodes leave the plant's valid range (fraction of episodes): "
                         + ", ".join(f"run {r}: {f:.2f}" for r, f in exits.items()))
        failed = numbers.get("fixed_point_failures") or {}
        if failed:
            lines.append("  no fixed point at " + "; ".join(f"{n} checkpoints: {why}" for why, n in failed.items()))
    if "effective_discrepancy_max" in numbers:
        lines.append(f"effective cubic vs spectrum of P: max discrepancy {numbers['effective_discrepancy_max']:.2e} "
                     "over all runs and epochs")
    return lines
