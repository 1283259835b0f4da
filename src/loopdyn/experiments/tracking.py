r"""The tracking experiment (Ger & Barak 2025, Fig 6; spec §1.3, §3.4, §4.7).

A leaky linear RNN learns in closed loop to move the 2-D point mass along a sum of sinusoids (phase
`closed`); then an open-loop student (phase `open`) starts from the same initial weights and imitates the
final closed-loop network on the inputs (positions and references) of the episodes the teacher drives.
Every epoch records the training loss, the closed-loop test loss on fresh references, and the closed-loop
loss of each frequency's probe (`probe_loss`).

Analysis (`loopdyn analyze`), per run:

- `acquisition_epoch (run, frequency)`: the first epoch at which the trailing `acquisition_window`-epoch
  mean of the probe loss is below `acquisition_fraction` $\times\,a_j^2/2$ (:func:`loopdyn.analysis.acquisition_epochs`;
  with the defaults, below 1.0 for $a_j = 2.31$, the authors' rule);
- `interference_rise (run, frequency, later_frequency)`: the largest rise of an acquired frequency's probe
  loss within `interference_window` epochs of a later acquisition (:func:`loopdyn.analysis.interference`);
- `eig_W (run, checkpoint, eig_W)`: eig(W) at every checkpoint (spec §8 row 14: the imaginary parts are those of
  eig(−I + W), in rad/s for τ = 1 s); `acquisition_eigenvalue (run, frequency)`: at the checkpoint nearest
  each acquisition, the eigenvalue whose imaginary part is closest to $\omega_j = 2\pi f_j$;
  `eig_match_epoch (run, frequency)`: the first checkpoint, from the acquisition's on, with an eigenvalue
  whose imaginary part is within `eig_tolerance` (relative) of $\omega_j$ — how long after its acquisition
  the network's oscillator is tuned to the frequency (for 0.1 Hz it first appears too slow and drifts up).

Fig 6 (`loopdyn figures tracking STORE`): a tracking example; closed vs open closed-loop test loss (log-log)
with the acquisition epochs; the probes at the acquisition epochs; eig(W) at those epochs with a line at
each ω; the interference episode of the first two frequencies; acquisition times normalised by the
closed phase's length against the human data $[2.5, 4, 6, 9.5]/20$ (spec §8 row 21).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..analysis import acquisition_epochs, checkpoint_params, complex_pair, interference, store_config
from ..config import param
from ..errors import ConfigError, StoreError
from ..plots import figure_6
from ..store import read_analysis
from ._base import Experiment, Reproduce, register

PHASES = ("closed", "open")
HUMAN_ACQUISITION = np.array([2.5, 4.0, 6.0, 9.5]) / 20.0
OPEN_UNIT = ("in (0, 1)", lambda v: 0 < v < 1)
AT_LEAST_1 = (">= 1", lambda v: v >= 1)


def _distinct_parameters(names: tuple[str, ...]) -> bool:
    return len(names) > 0 and len(set(names)) == len(names) and all(p in ("m", "W", "z") for p in names)
"""Normalised acquisition times of the four frequencies in the human data of Fig 6f (spec §8 row 21)."""

VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "acquisition_threshold": (("frequency",),
        "probe-loss threshold of acquisition: tracking.acquisition_fraction * a_j^2 / 2"),
    "acquisition_epoch": (("run", "frequency"),
        "first epoch (of the run's phase) at which the trailing tracking.acquisition_window-epoch mean of the "
        "frequency's probe loss is below acquisition_threshold; -1 = never"),
    "acquisition_time": (("run", "frequency"), "acquisition_epoch / epochs of the run's phase (NaN = never)"),
    "acquisition_checkpoint": (("run", "frequency"), "checkpoint epoch nearest acquisition_epoch (-1 = none)"),
    "acquisition_eigenvalue": (("run", "frequency"),
        "eigenvalue of W at acquisition_checkpoint whose imaginary part is closest to omega_j = 2 pi f_j"),
    "acquisition_eig_error": (("run", "frequency"),
        "|Im acquisition_eigenvalue - omega_j| / omega_j"),
    "eig_match_epoch": (("run", "frequency"),
        "first checkpoint from acquisition_checkpoint on with an eigenvalue of W whose imaginary part is within "
        "tracking.eig_tolerance * omega_j of omega_j; -1 = never"),
    "interference_rise": (("run", "frequency", "later_frequency"),
        "largest rise of the probe loss of `frequency` above its value at the start of the window "
        "[max(a_later - w, a_freq), a_later + w] around the acquisition a_later of `later_frequency` "
        "(w = tracking.interference_window); NaN unless `frequency` is acquired first"),
    "interference_epoch": (("run", "frequency", "later_frequency"), "epoch of that largest value (-1 = none)"),
    "interference_baseline": (("run", "frequency", "later_frequency"), "the probe loss it rises from"),
    "acquisition_epoch_phase_avg": (("run", "frequency"),
        "acquisition_epoch detected on the phase-averaged probe loss (probe_loss_phase_avg) instead of the "
        "single-phase probe; -1 = never"),
    "acquisition_eig_error_phase_avg": (("run", "frequency"),
        "|Im lambda - omega_j| / omega_j of the eigenvalue of W nearest omega_j at the checkpoint nearest "
        "acquisition_epoch_phase_avg"),
    "eig_W": (("run", "checkpoint", "eig_W"),
        "eigenvalues of W at every checkpoint, by decreasing imaginary part (NaN where the checkpoint is beyond "
        "the run's phase)"),
}


def _put(result, name, values) -> None:
    result.put(name, values, *VARIABLES[name])


def _full(result, name, shape, dtype):
    return result.full(name, shape, dtype, *VARIABLES[name])


@dataclass(frozen=True)
class TrackingTable:
    """The table `[tracking]`."""

    open_epochs: int = param(10000, doc="epochs of the open-loop student (phase `open`); 0 = no open phase",
                             check=(">= 0 (0 = no open phase)", lambda v: v >= 0))
    open_trainable: tuple[str, ...] = param(("m", "W", "z"), doc="the parameters the open-loop student trains",
                                            check=("distinct parameters among m, W, z", _distinct_parameters))
    acquisition_fraction: float = param(0.375, doc="a frequency is acquired when its probe loss falls below this "
                                        "fraction of a^2/2", check=OPEN_UNIT)
    acquisition_window: int = param(20, doc="epochs the probe loss must stay below the threshold", check=AT_LEAST_1)
    interference_window: int = param(100, doc="epochs after an acquisition searched for interference",
                                     check=AT_LEAST_1)
    eig_tolerance: float = param(0.1, doc="an eigenvalue of W matches a frequency when |Im λ − ω|/ω is below this",
                                 check=OPEN_UNIT)


@register
class TrackingExperiment(Experiment):
    name = "tracking"
    description = ("multi-frequency tracking with the 2-D point mass: closed loop, then the open-loop student of "
                   "the final closed-loop network from the same initial weights (Fig 6)")
    table = TrackingTable
    figure_names = ("fig_6",)
    reproduce = Reproduce(
        "tracking", quick=("epochs=1000", "tracking.open_epochs=150"), quick_seeds="0", order=30,
        claims={"fig_6": "Fig 6 / spec §4.7, §5: a leaky linear RNN that moves a 2-D point mass to track a sum of "
                         "sinusoids (x: 0.1, 0.3 Hz; y: 0.2, 0.4 Hz) acquires the frequencies one at a time, low to "
                         "high, as humans do (normalised acquisition times ≈ 2.5, 4, 6, 9.5 / 20): the closed-loop "
                         "test loss falls as a staircase; at each acquisition a complex pair of eig(W) appears at the "
                         "new ω = 2πf; learning a new frequency briefly disturbs the ones already acquired; the "
                         "open-loop student of the final network first gets worse in closed loop (its test loss rises "
                         "above its initial value) before it converges."})

    def captions(self, ds) -> dict:
        t = read_analysis(ds)["numbers"].get("tracking")
        if not t:
            return {}
        closed = [r for r in t["runs"] if r["phase"] == "closed"]
        opened = [r for r in t["runs"] if r["phase"] == "open"]
        hz = ", ".join(f"{f:g}" for f in t["frequencies"])
        parts = [f"{len(closed)} closed-loop run(s), frequencies {hz} Hz:"]
        for r in closed:
            acq = ", ".join("never" if e < 0 else str(e) for e in r["acquisition_epochs"])
            err = ", ".join("-" if e is None else f"{100 * e:.0f}%" for e in r["eig_rel_error"])
            parts.append(f"seed {r['seed']}: acquired at epochs [{acq}] of {r['epochs']} "
                         f"({'low to high' if r['order_low_to_high'] else 'NOT low to high'}); eig(W) nearest ω at "
                         f"acquisition off by [{err}];")
            first = [x for x in r["interference"] if x["frequency"] == 0 and x["later"] == 1]
            if first:
                parts.append(f"ω1's probe loss rises by {100 * first[0]['relative']:+.1f}% while ω2 is acquired;")
        for r in opened:
            if "test_loss" in r:
                tl = r["test_loss"]
                parts.append(f"open-loop student seed {r['seed']}: closed-loop test loss {tl['initial']:.3g} at epoch 0, "
                             f"peak {tl['peak']:.3g} at epoch {tl['peak_epoch']} "
                             f"({'above' if tl['peak'] > tl['initial'] else 'not above'} its initial value), final "
                             f"{tl['final']:.3g} after {r['epochs']} epochs;")
        return {"fig_6": " ".join(parts).rstrip(";") + "."}

    def tables(self, ds) -> list[dict]:
        t = read_analysis(ds)["numbers"].get("tracking")
        closed = [r for r in (t or {}).get("runs", []) if r["phase"] == "closed"]
        if not closed:
            return []
        rows = []
        for j, f in enumerate(t["frequencies"]):
            a = np.array([r["acquisition_epochs"][j] for r in closed], float)
            got = a[a >= 0]
            q = np.percentile(got, [25, 50, 75]) if got.size else [np.nan] * 3
            err = np.array([np.nan if r["eig_rel_error"][j] is None else r["eig_rel_error"][j] for r in closed])
            rows.append([f"{f:g} Hz", f"{got.size}/{len(closed)}", f"{q[1]:.0f}", f"{q[0]:.0f}–{q[2]:.0f}",
                         f"{t['human'][j]:.3f}", "-" if np.all(np.isnan(err)) else f"{100 * np.nanmedian(err):.1f}%"])
        return [{"title": "Tracking: acquisition epoch per frequency over seeds (closed loop)",
                 "columns": ["frequency", "acquired", "median epoch", "IQR", "human (normalised)",
                             "median |Im λ − ω|/ω at acquisition"], "rows": rows}]

    def validate(self, cfg) -> None:
        s = cfg.source
        if cfg.task.kind != "tracking":
            raise ConfigError(f"{s}: the tracking experiment needs task.kind = 'tracking'; start from the shipped "
                              f"'tracking' config")
        if cfg.agent.rank != 0 or cfg.agent.activation != "linear":
            raise ConfigError(f"{s}: the tracking experiment needs the full-rank linear RNN (agent.rank = 0, "
                              f"activation = 'linear'), whose eig(W) its analysis follows")
        self.require_closed_first(cfg, "its open phase is the teacher-driven student")

    def phases(self, cfg):
        t = cfg.table
        out = [(cfg, "closed")]
        if t["open_epochs"]:
            open_cfg = self.variant(cfg, {"train.mode": "open_loop_teacher", "teacher.store": "self",
                                          "agent.trainable": list(t["open_trainable"])},
                                    sweep=dict(cfg.sweep), epochs=t["open_epochs"])
            out.append((open_cfg, "open"))
        return out

    def analyse(self, ds, runs, result) -> None:
        if "probe_loss" not in ds:
            return
        settings = store_config(ds).table
        task = runs[0].task
        amps = np.array([c[2] for c in task.components])
        thresholds = settings["acquisition_fraction"] * amps**2 / 2
        _put(result, "acquisition_threshold", thresholds)
        R, K = ds.sizes["run"], task.n_components
        ckpts = ds.checkpoint.values
        N = max(r.spec.N for r in runs)
        acq = _full(result, "acquisition_epoch", (R, K), np.int64)
        rows = []
        for run in runs:
            probe = np.asarray(ds.probe_loss.values[run.index, : run.epochs, :K], np.float64)
            a = acquisition_epochs(probe, thresholds, int(settings["acquisition_window"]))
            acq[run.index] = a
            _full(result, "acquisition_time", (R, K), np.float64)[run.index] = np.where(a >= 0, a / run.epochs, np.nan)
            inter = interference(probe, a, int(settings["interference_window"]))
            _full(result, "interference_rise", (R, K, K), np.float64)[run.index] = inter.rise
            _full(result, "interference_epoch", (R, K, K), np.int64)[run.index] = inter.epoch
            _full(result, "interference_baseline", (R, K, K), np.float64)[run.index] = inter.baseline
            sel = np.nonzero(ckpts < run.epochs)[0]
            lam = _eig_w(checkpoint_params(ds, run, sel).W)
            _full(result, "eig_W", (R, len(ckpts), N), np.complex128)[run.index, sel, : lam.shape[-1]] = lam
            at_ckpt = _full(result, "acquisition_checkpoint", (R, K), np.int64)
            at_eig = _full(result, "acquisition_eigenvalue", (R, K), np.complex128)
            at_err = _full(result, "acquisition_eig_error", (R, K), np.float64)
            match = _full(result, "eig_match_epoch", (R, K), np.int64)
            if "probe_loss_phase_avg" in ds:  # the phase-independent acquisition (issue #19)
                avg = np.asarray(ds.probe_loss_phase_avg.values[run.index, : run.epochs, :K], np.float64)
                a2 = acquisition_epochs(avg, thresholds, int(settings["acquisition_window"]))
                _full(result, "acquisition_epoch_phase_avg", (R, K), np.int64)[run.index] = a2
                err2 = _full(result, "acquisition_eig_error_phase_avg", (R, K), np.float64)
                for j in range(K):
                    if a2[j] >= 0 and len(sel):
                        c = int(np.argmin(np.abs(ckpts[sel] - a2[j])))
                        z = closest_eigenvalue(lam[c], task.omegas[j])
                        err2[run.index, j] = abs(z.imag - task.omegas[j]) / task.omegas[j]
            for j in range(K):
                if a[j] < 0 or not len(sel):
                    continue
                c = int(np.argmin(np.abs(ckpts[sel] - a[j])))
                z = closest_eigenvalue(lam[c], task.omegas[j])
                at_ckpt[run.index, j], at_eig[run.index, j] = int(ckpts[sel[c]]), z
                at_err[run.index, j] = abs(z.imag - task.omegas[j]) / task.omegas[j]
                within = eig_within(lam[c:], task.omegas[j], float(settings["eig_tolerance"]))
                match[run.index, j] = int(ckpts[sel[c + np.argmax(within)]]) if within.any() else -1
            rows.append(_run_numbers(ds, run, result, task))
        result.numbers["tracking"] = {
            "frequencies": task.frequencies.tolist(), "omegas": task.omegas.round(4).tolist(),
            "thresholds": thresholds.round(4).tolist(), "human": HUMAN_ACQUISITION.tolist(),
            "acquisition_window": int(settings["acquisition_window"]),
            "eig_tolerance": float(settings["eig_tolerance"]),
            "interference_window": int(settings["interference_window"]), "runs": rows}

    def summary_lines(self, numbers: dict) -> list[str]:
        return _summary_lines(numbers)

    def figures(self, ds) -> dict:
        analysis = ds.attrs.get("analysis")
        if analysis is None or "tracking" not in analysis.get("numbers", {}):
            raise StoreError("the tracking figures need the store's analysis; run 'loopdyn analyze STORE' first")
        return {"fig_6": figure_6(ds)}


# ------------------------------------------------------------------------------------------ analysis
def _eig_w(W) -> np.ndarray:
    """eig(W) of a stack `(n, N, N)`, by decreasing imaginary part; NaN for a non-finite matrix."""
    W = np.asarray(W, np.float64)
    lam = np.full(W.shape[:2], complex(np.nan, np.nan))
    for i, w in enumerate(W):
        if np.all(np.isfinite(w)):  # one LAPACK call per matrix: numpy's threaded batch is ~5x slower at N = 100
            z = scipy.linalg.eigvals(w, check_finite=False)
            lam[i] = z[np.argsort(-z.imag, kind="stable")]
    return lam


def eig_within(eigenvalues, omega: float, tolerance: float) -> np.ndarray:
    """Per row of `eigenvalues (n, N)`: whether an eigenvalue's imaginary part is within `tolerance * omega`
    of `omega`."""
    lam = np.asarray(eigenvalues)
    with np.errstate(invalid="ignore"):
        return np.any(np.abs(lam.imag - omega) <= tolerance * omega, axis=-1)


def closest_eigenvalue(eigenvalues, omega: float) -> complex:
    """The eigenvalue (upper half plane) whose imaginary part is closest to `omega` (NaN if none)."""
    lam = np.asarray(eigenvalues)
    lam = lam[np.isfinite(lam) & (lam.imag >= 0)]
    if not lam.size:
        return complex(np.nan, np.nan)
    return complex(lam[np.argmin(np.abs(lam.imag - omega))])


def _run_numbers(ds, run, result, task) -> dict:
    i = run.index
    a = result.get("acquisition_epoch")[i]
    acquired = a[a >= 0]
    row = {"run": i, "seed": run.seed, "phase": run.phase, "epochs": run.epochs,
           "acquisition_epochs": a.tolist(),
           "acquisition_times": [None if e < 0 else round(e / run.epochs, 4) for e in a],
           "acquired": int(len(acquired)),
           "order_low_to_high": _low_to_high(a),
           "eigenvalues_at_acquisition": [None if not np.isfinite(z) else complex_pair(z)
                                          for z in result.get("acquisition_eigenvalue")[i]],
           "eig_rel_error": [None if not np.isfinite(e) else round(float(e), 4)
                             for e in result.get("acquisition_eig_error")[i]],
           "eig_match_epochs": result.get("eig_match_epoch")[i].tolist(),
           **({"acquisition_epochs_phase_avg": result.get("acquisition_epoch_phase_avg")[i].tolist(),
               "eig_rel_error_phase_avg": [None if not np.isfinite(e) else round(float(e), 4)
                                           for e in result.get("acquisition_eig_error_phase_avg")[i]]}
              if "acquisition_epoch_phase_avg" in result.arrays else {}),
           "final_train_loss": float(ds.train_loss.values[i, run.epochs - 1]),
           "final_test_loss": float(ds.test_loss.values[i, run.epochs - 1])}
    rise = result.get("interference_rise")[i]
    base = result.get("interference_baseline")[i]
    row["interference"] = [{"frequency": j, "later": k, "rise": round(float(rise[j, k]), 5),
                            "relative": round(float(rise[j, k] / base[j, k]), 4),
                            "epoch": int(result.get("interference_epoch")[i][j, k])}
                           for j in range(rise.shape[0]) for k in range(rise.shape[1]) if np.isfinite(rise[j, k])]
    test = np.asarray(ds.test_loss.values[i, : run.epochs], np.float64)
    if np.any(np.isfinite(test)):
        p = int(np.nanargmax(test))
        row["test_loss"] = {"initial": float(test[0]), "peak": float(test[p]), "peak_epoch": p,
                            "final": float(test[-1]), "min": float(np.nanmin(test)),
                            "min_epoch": int(np.nanargmin(test))}
    return row


def _low_to_high(acquisitions) -> bool:
    """Whether the acquired frequencies are the lowest ones, acquired in increasing order (components are
    numbered by increasing frequency); true for none acquired."""
    a = np.asarray(acquisitions)
    n = int(np.sum(a >= 0))
    return bool(np.all(a[:n] >= 0) and np.all(np.diff(a[:n]) > 0))


def _fmt_eig(z) -> str:
    return "-" if z is None else f"{z[0]:+.3f}{z[1]:+.3f}i"


def _summary_lines(numbers: dict) -> list[str]:
    t = numbers.get("tracking")
    if not t:
        return []
    omegas = ", ".join(f"{w:.3f}" for w in t["omegas"])
    lines = [f"tracking: acquisition = first epoch whose trailing {t['acquisition_window']}-epoch mean probe loss is below "
             f"{', '.join(f'{x:.3g}' for x in t['thresholds'])} (omega = {omegas} rad/s); -1 = never"]
    for r in t["runs"]:
        acq = ", ".join(str(e) for e in r["acquisition_epochs"])
        times = ", ".join("-" if x is None else f"{x:.3f}" for x in r["acquisition_times"])
        lines.append(f"  run {r['run']:>2} {r['phase']:<6} seed {r['seed']:<4} acquisitions [{acq}] (/{r['epochs']}: "
                     f"{times}; human {', '.join(f'{h:.3f}' for h in t['human'])}); {r['acquired']} acquired, "
                     f"{'low to high' if r['order_low_to_high'] else 'NOT low to high'}")
        eig = ", ".join(f"{_fmt_eig(z)} ({'-' if e is None else f'{100 * e:.1f}%'})"
                        for z, e in zip(r["eigenvalues_at_acquisition"], r["eig_rel_error"]))
        lines.append(f"         eig(W) nearest omega_j at acquisition: {eig}")
        if "acquisition_epochs_phase_avg" in r:
            err = ", ".join("-" if e is None else f"{100 * e:.1f}%" for e in r["eig_rel_error_phase_avg"])
            acq = ", ".join(str(e) for e in r["acquisition_epochs_phase_avg"])
            lines.append(f"         phase-averaged probe: acquisitions [{acq}], |Im lambda - omega_j|/omega_j there [{err}]")
        if "eig_match_epochs" in r:
            match = ", ".join(str(e) for e in r["eig_match_epochs"])
            lines.append(f"         first checkpoint from acquisition with eig(W) within {100 * t.get('eig_tolerance', 0.1):.0f}% "
                         f"of omega_j: [{match}]")
        if r["interference"]:
            inter = ", ".join(f"w{x['frequency'] + 1} at w{x['later'] + 1}: {x['rise']:+.4f} ({100 * x['relative']:+.1f}%, "
                              f"epoch {x['epoch']})" for x in r["interference"])
            lines.append(f"         interference (largest probe-loss rise): {inter}")
        if "test_loss" in r:
            s = r["test_loss"]
            lines.append(f"         closed-loop test loss: initial {s['initial']:.3f}, peak {s['peak']:.3f} at epoch "
                         f"{s['peak_epoch']}, min {s['min']:.3f} at {s['min_epoch']}, final {s['final']:.3f}")
    closed = [r for r in t["runs"] if r["phase"] == "closed" and "eig_rel_error_phase_avg" in r]
    if closed:
        def med(key):
            e = np.array([[np.nan if x is None else x for x in r[key]] for r in closed], float)
            return ", ".join("-" if np.all(np.isnan(c)) else f"{100 * np.nanmedian(c):.1f}%" for c in e.T)
        lines.append(f"  eig(W) error at acquisition, median over {len(closed)} closed run(s) per frequency: single-phase "
                     f"probe [{med('eig_rel_error')}], phase-averaged probe [{med('eig_rel_error_phase_avg')}]")
    return lines


@dataclass(frozen=True)
class ArmTrackingTable(TrackingTable):
    """The table `[arm_tracking]`: that of `[tracking]`, with no open-loop student by default."""

    open_epochs: int = param(0, doc="epochs of the open-loop student (phase `open`); 0 = no open phase",
                             check=(">= 0 (0 = no open phase)", lambda v: v >= 0))


@register
class ArmTracking(TrackingExperiment):
    """Fig 6's task on a nonlinear effector (issue #19): the two-link arm's hand tracks the four-frequency
    reference (the tracking task's `effector`), leaky linear and tanh RNNs; the same analysis (acquisition per
    frequency on the single-phase and the phase-averaged probe, order, interference, eig(W) at acquisition)."""

    name = "arm-tracking"
    description = "multi-frequency tracking with the two-link arm's hand: leaky linear and tanh RNNs, closed loop"
    table = ArmTrackingTable
    reproduce = Reproduce(
        "arm-tracking", quick=("epochs=200", "task.batch=20", "record.chunk=100"), quick_seeds="0", order=31,
        claims={"fig_6": "Issue #19: with the two-link arm's hand as the effector, are the four frequencies acquired one "
                         "at a time, low to high, as with the point mass, with a pair of eig(W) at each ω at "
                         "acquisition?"})

    def validate(self, cfg) -> None:
        s = cfg.source
        if not hasattr(cfg.plant, "effector"):
            raise ConfigError(f"{s}: the arm-tracking experiment needs a plant with an effector (plant.kind = "
                              f"'two_link_arm'); got {cfg.plant.kind!r}")
        if cfg.agent.rank != 0:
            raise ConfigError(f"{s}: the arm-tracking experiment needs a full-rank RNN (agent.rank = 0), whose eig(W) its "
                              f"analysis follows")
        if cfg.train.mode != "closed_loop" or cfg.teacher.store or cfg.start.store:
            raise ConfigError(f"{s}: the arm-tracking experiment trains closed_loop from a fresh start; set train.mode = "
                              f"'closed_loop' and remove [teacher] and [start]")
