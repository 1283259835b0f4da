r"""The paper's ablations as experiments with statistics over seeds (Ger & Barak 2025; spec §6).

The paper shows single runs. Each experiment here trains one protocol under several *conditions* — one
training phase per condition, so the store's `phase` coordinate is the condition's label — over many
seeds (64 in the shipped configs), and reports per condition the median and interquartile range (IQR)
over seeds of: the end of stage 1, the end of stage 2 (= stabilisation, spec §8 row 5), the stabilisation
epoch $\rho < 1$ for good, the final training and test losses and the final effective gains $(k_1, k_2)$
(spec §4.6, $u = k_1 x + k_2 v$, stabilising gains negative), plus the experiment's own numbers:

- `ablation-T` (spec §6.2, Fig 4e): every seed's epoch-`start_epoch` model (phase `base`, T = 50) trained
  on with each episode length T; the dominant eigenvalue $\lambda_1$ moves up the imaginary axis for short
  T and down for long T (`imag_change`).
- `ablation-optimizer` (spec §6.3): SGD vs Adam from the same initial weights; the stage-2 zig-zag
  (`zigzag_imag`, `zigzag_k1`, `zigzag_k2`, :func:`zigzag`).
- `ablation-activation` (spec §6.1): the rank-1 network with $\phi$ linear vs tanh, all else equal; stage
  boundaries from the spectra of P (linear) or the gains (tanh), and for both from the gains
  (`gain_stage1_end`, `gain_stage2_end`) so that the two can be compared with one detector.
- `ablation-time` (spec §6.4): the discrete model against the leaky RNN on the continuous-time
  double integrator with dt = dt/τ = `dt`, episodes of the same duration (T/dt steps).
- `ablation-beta` (spec §6.5, Fig 5d): control penalties β, from scratch.
- `closed-vs-open-seeds` (spec §6.6, Figs 1c, 2): the closed-vs-open experiment over seeds; the open-loop
  student's peak closed-loop test loss and its epoch (`peak_test_loss`, `peak_epoch`).

Statistics (:func:`spread`): quantiles by `numpy.percentile` (linear interpolation) over the runs where
the quantity exists — epochs `>= 0` (an event that never happens is `-1` and counted apart, as "reached
k/n"), finite losses (a diverged run is left out and counted). Epochs are those of each condition's own
phase (a continuation's epoch 0 is its start). Losses are each condition's own definitions (its T, β,
dt), so compare them across conditions with care.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .. import config as cfg_mod
from ..analysis import NONE, detect_stages_gains, stability_boundaries
from ..errors import ConfigError, StoreError
from ..plots import CLOSED_BLUE, OPEN_RED, label_panels, unit_circle
from ..store import read_analysis
from ._base import Experiment, Reproduce, register
from .closed_vs_open import ClosedVsOpen
from .stages import closed_loop_trajectory

BASE = "base"  # label of the phase an ablation's conditions continue from (not a condition)
METRICS: dict[str, str] = {
    "stage1_end": "end of stage 1 (epoch; 0 = no stage 1)",
    "stage2_end": "end of stage 2 = stable from (epoch)",
    "stabilisation_epoch": "rho < 1 from (epoch; P, or J(0) at checkpoints)",
    "final_train_loss": "final training loss",
    "final_test_loss": "final closed-loop test loss",
}
"""The metrics every condition reports (name -> short description); gains `k1`, `k2`, ... are added."""

SHORT: dict[str, str] = {
    "gain_stage1_end": "end of stage 1 from the gains (epoch)",
    "gain_stage2_end": "end of stage 2 from the gains (epoch)",
    "zigzag_imag": "stage-2 zig-zag of Im lambda_1 (sign-change fraction)",
    "zigzag_k1": "stage-2 zig-zag of k1 (sign-change fraction)",
    "zigzag_k2": "stage-2 zig-zag of k2 (sign-change fraction)",
    "imag_change": "change of Im lambda_1 until stable (or the end)",
    "peak_test_loss": "peak closed-loop test loss",
    "peak_epoch": "epoch of the peak test loss",
    "peak_rise": "rise of the test loss at its peak over its running minimum",
}

VARIABLES: dict[str, str] = {
    "final_train_loss": "training loss at the last epoch of the run's phase (NaN: diverged)",
    "final_test_loss": "closed-loop test loss at the last epoch of the run's phase (NaN: diverged)",
    "final_gains": "effective gains K (u = K x) at the last epoch of the run's phase (spec §4.6)",
    "gain_stage1_end": "end of stage 1 from the gain path (detect_stages_gains); NaN: not the double integrator",
    "gain_stage2_end": "end of stage 2 from the gain path (gains in the stable triangle for good); -1 never",
    "zigzag_imag": "fraction of sign changes of the epoch-to-epoch increments of Im lambda_1 (P, or J(0) at "
                   "per-epoch checkpoints) during stage 2 (zigzag); NaN: stage 2 shorter than 4 epochs",
    "zigzag_k1": "fraction of sign changes of the increments of k1 during stage 2",
    "zigzag_k2": "fraction of sign changes of the increments of k2 during stage 2",
    "imag_change": "Im lambda_1 at the end of stage 2 (or the last epoch) minus at epoch 0 of the phase",
    "peak_test_loss": "closed-loop test loss at the peak: the epoch where it stands highest above its running "
                      "minimum (the largest rebound after it first improved)",
    "peak_epoch": "epoch of peak_test_loss",
    "peak_rise": "peak_test_loss / the smallest test loss before the peak (1 = never rises again)",
}


# ------------------------------------------------------------------------------------------ statistics
def spread(values, *, epochs: bool = False) -> dict:
    """Median and interquartile range of `values` over the runs where the quantity exists.

    **Arguments:** `values`: one number per run; `epochs`: the values are epochs, `-1` = the event never
    happened (those runs are counted in `n - n_valid`).

    **Returns:** `{"n", "n_valid", "median", "q25", "q75"}`: `n` the finite values, `n_valid` those used
    (all finite ones; for epochs those `>= 0`), quantiles by `numpy.percentile` (linear interpolation),
    `None` when no value is valid.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    v = x[x >= 0] if epochs else x
    out = {"n": int(x.size), "n_valid": int(v.size), "median": None, "q25": None, "q75": None}
    if v.size:
        q25, med, q75 = np.percentile(v, [25, 50, 75])
        out.update(median=float(med), q25=float(q25), q75=float(q75))
    return out


def zigzag(path) -> float:
    r"""Zig-zag of a path over epochs: the fraction of consecutive increments that change sign.

    With $d_e = p_{e+1} - p_e$ (exact zeros dropped), the fraction of $e$ with
    $\operatorname{sign} d_{e+1} \neq \operatorname{sign} d_e$: 0 for a monotone path, 1 for a pure
    period-2 oscillation, about 1/2 for a random walk. The stage-2 zig-zag of spec §4.4 (Fig 4c: the
    imaginary part of $\lambda_1$ alternating between two bands) is a value near 1.

    **Arguments:** `path`: values per epoch (NaN ends it). **Returns:** the fraction, NaN for fewer than
    three non-zero increments.
    """
    p = np.asarray(path, dtype=np.float64)
    bad = ~np.isfinite(p)
    if bad.any():
        p = p[: int(np.argmax(bad))]
    d = np.diff(p)
    s = np.sign(d[d != 0])
    if s.size < 3:
        return float("nan")
    return float(np.mean(s[1:] != s[:-1]))


def _fmt_spread(s: dict, fmt: str = "{:.0f}", epochs: bool = False) -> str:
    if s["median"] is None:
        return "never" if epochs and s["n"] else "-"
    body = f"{fmt.format(s['median'])} [{fmt.format(s['q25'])}, {fmt.format(s['q75'])}]"
    if s["n_valid"] < s["n"]:
        body += f" ({s['n_valid']}/{s['n']})"
    return body


def rebound_peak(loss) -> tuple[int, float, float] | None:
    """`(epoch, loss, rise)` of the largest rebound of a loss curve: the epoch where the loss stands highest
    above its running minimum (spec §6.6: the open-loop student's closed-loop test loss first falls, then
    blows up), its value there and the factor over the running minimum; `None` without a finite value.
    A monotonically falling curve gives its first epoch and rise 1."""
    y = np.asarray(loss, dtype=np.float64)
    ok = np.isfinite(y)
    if not ok.any():
        return None
    y = y[: int(np.argmin(ok)) if not ok.all() else y.size]  # a diverged run: up to its divergence
    if y.size == 0:
        return None
    rise = y / np.minimum.accumulate(y)
    e = int(np.argmax(rise))
    return e, float(y[e]), float(rise[e])


def gain_names(m: int, k: int) -> list[str]:
    """`k1, k2, ...` for one control, `k11, k12, ...` (control, state) for several."""
    return [f"k{j + 1}" for j in range(k)] if m == 1 else [f"k{i + 1}{j + 1}" for i in range(m) for j in range(k)]


# ------------------------------------------------------------------------------------------ per-run metrics
def _value(v) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:g}" if isinstance(v, float) else str(v)


def conditions_of(ds, exclude: tuple[str, ...] = (BASE,)) -> list[tuple[str, list[int]]]:
    """The conditions of a store, in phase order: `(label, run indices)` per phase and, inside a phase, per
    value of every run coordinate (swept key) that varies within it. Labels: the phase's label, then
    `key=value` of the varying keys (the phase's label is left out when it is the only phase, e.g. a sweep)."""
    phases = [str(p) for p in ds["phase"].values]
    order = [label for label, _ in ds.attrs["phases"] if label not in exclude]
    skip = {"seed", "group", "phase", "training_mode"}
    values = {c: [_value(v) for v in ds[c].values] for c in ds.attrs.get("run_coords", []) if c not in skip and c in ds.coords}
    out: dict[str, list[int]] = {}
    for label in order:
        idx = [i for i, p in enumerate(phases) if p == label]
        varying = [c for c, vals in values.items() if len({vals[i] for i in idx}) > 1]
        for i in idx:
            parts = [f"{c}={values[c][i]}" for c in varying]
            key = " ".join(([label] if len(order) > 1 or not parts else []) + parts)
            out.setdefault(key, []).append(i)
    return list(out.items())


def _epochs_of(ds, indices) -> int:
    phase = str(ds["phase"].values[indices[0]])
    return next(int(d["epochs"]) for label, d in ds.attrs["phases"] if label == phase)


def _stage_window(result, i: int, n: int) -> tuple[int, int] | None:
    s1, s2 = int(result.get("stage1_end")[i]), int(result.get("stage2_end")[i])
    if s1 == NONE:
        return None
    return s1, (n if s2 == NONE else s2)


def run_metrics(ds, runs, result) -> None:
    """The per-run numbers of every ablation (:data:`VARIABLES`), added to `result`'s arrays."""
    R = ds.sizes["run"]
    m, k = ds.sizes["control"], ds.sizes["state"]
    arrays = {name: np.full(R, np.nan) for name in
              ("final_train_loss", "final_test_loss", "gain_stage1_end", "gain_stage2_end", "zigzag_imag", "zigzag_k1",
               "zigzag_k2", "imag_change")}
    gains_final = np.full((R, m, k), np.nan)
    ckpts = ds.checkpoint.values
    train, test, all_gains = ds.train_loss.values, ds.test_loss.values, ds.gains.values
    for run in runs:
        i, n = run.index, run.epochs
        last = n - 1
        arrays["final_train_loss"][i], arrays["final_test_loss"][i] = train[i, last], test[i, last]
        gains = np.asarray(all_gains[i, :n], np.float64)
        gains_final[i] = gains[last]
        if run.plant.is_double_integrator and np.isfinite(gains[:, 0, :2]).sum() > 10:
            ok = np.isfinite(gains[:, 0, 0])
            st = detect_stages_gains(gains[ok, 0, 0], gains[ok, 0, 1])
            arrays["gain_stage1_end"][i], arrays["gain_stage2_end"][i] = int(st.stage1_end), int(st.stage2_end)
        dom = _dominant_path(result, run, ckpts)
        window = _stage_window(result, i, n) if "stage1_end" in result.arrays else None
        if window is not None:
            lo, hi = window
            if dom is not None:
                arrays["zigzag_imag"][i] = zigzag(dom[lo:hi].imag)
            arrays["zigzag_k1"][i] = zigzag(gains[lo:hi, 0, 0])
            arrays["zigzag_k2"][i] = zigzag(gains[lo:hi, 0, min(1, k - 1)])
        if dom is not None and np.isfinite(dom[0]):
            s2 = int(result.get("stage2_end")[i]) if "stage2_end" in result.arrays else NONE
            end = dom[: (s2 + 1 if s2 != NONE else n)]
            end = end[np.isfinite(end)]
            arrays["imag_change"][i] = end[-1].imag - dom[0].imag
    for name, values in arrays.items():
        result.put(name, values, ("run",), VARIABLES[name])
    result.put("final_gains", gains_final, ("run", "control", "state"), VARIABLES["final_gains"])


def _dominant_path(result, run, ckpts) -> np.ndarray | None:
    """$\\lambda_1$ per epoch of the run's phase: from P (linear), or from J(0) when every epoch is a checkpoint."""
    n = run.epochs
    if run.spec.linear and "dominant_eigenvalue" in result.arrays:
        return result.get("dominant_eigenvalue")[run.index, :n]
    if "jacobian_dominant_eigenvalue" in result.arrays and len(ckpts) >= n and np.array_equal(ckpts[:n], np.arange(n)):
        return result.get("jacobian_dominant_eigenvalue")[run.index, :n]
    return None


def condition_statistics(ds, arrays: dict[str, np.ndarray], extra: tuple[str, ...] = (),
                         exclude: tuple[str, ...] = (BASE,)) -> list[dict]:
    """Per condition (:func:`conditions_of`, phases in `exclude` left out): runs, epochs, diverged runs, and
    :func:`spread` of :data:`METRICS`, of the final gains and of the `extra` per-run values in `arrays`
    (`name -> (run,)`, `final_gains` `(run, control, state)`); names ending in `_end`/`_epoch` are epochs."""
    rows = []
    for label, idx in conditions_of(ds, exclude):
        metrics = {}
        for name in (*METRICS, *extra):
            if name in arrays:
                metrics[name] = spread(np.asarray(arrays[name])[idx], epochs=name.endswith(("_end", "_epoch")))
        if "final_gains" in arrays:
            m, k = ds.sizes["control"], ds.sizes["state"]
            gains = np.asarray(arrays["final_gains"])[idx].reshape(len(idx), m * k)
            for j, gname in enumerate(gain_names(m, k)):
                metrics[gname] = spread(gains[:, j])
        diverged = int(np.sum(ds.diverged_epoch.values[idx] >= 0))
        rows.append({"condition": label, "runs": len(idx), "epochs": _epochs_of(ds, idx), "diverged": diverged,
                     "metrics": metrics})
    return rows


def store_statistics(ds) -> list[dict]:
    """:func:`condition_statistics` of any store (from :func:`loopdyn.open_run`, analysed or not): the stage
    epochs where the analysis has them, and final losses and gains at each run's last epoch."""
    R = ds.sizes["run"]
    arrays = {name: ds[name].values for name in ("stage1_end", "stage2_end", "stabilisation_epoch") if name in ds}
    last = np.zeros(R, int)
    for label, idx in conditions_of(ds, exclude=()):
        last[idx] = min(_epochs_of(ds, idx), ds.sizes["epoch"]) - 1  # an incomplete store: its last committed epoch
    rows = np.arange(R)
    arrays["final_train_loss"] = ds.train_loss.values[rows, last]
    arrays["final_test_loss"] = ds.test_loss.values[rows, last]
    if "gains" in ds:  # tasks without effective gains (tracking, the impulse task) record none
        arrays["final_gains"] = ds.gains.values[rows, last]
    return condition_statistics(ds, arrays, exclude=())


# ------------------------------------------------------------------------------------------ the base class
class Ablation(Experiment):
    """One phase per condition, statistics over seeds per condition, one figure.

    Subclasses give `conditions(cfg) -> [(label, {dotted key: value})]`, optionally a first phase
    `base(cfg)` labelled `"base"` that the conditions continue from (not a condition), `extra_metrics`
    (names of :data:`VARIABLES` shown beside the common ones), and `n_panels` panels of their own
    (`panels`).
    """

    extra_metrics: tuple[str, ...] = ()
    figure_names = ()
    n_panels = 0

    def conditions(self, cfg) -> list[tuple[str, dict]]:
        raise NotImplementedError

    def base(self, cfg) -> tuple[cfg_mod.Config, str] | None:
        return None

    def palette(self, n: int):
        """One colour per condition."""
        return condition_colors(n)

    def validate(self, cfg) -> None:
        s = cfg.source
        if cfg.teacher.store or cfg.start.store or cfg.train.mode != "closed_loop":
            raise ConfigError(f"{s}: the {self.name} experiment trains closed_loop and sets [teacher] and [start] itself; "
                              f"remove them")
        labels = [label for label, _ in self.conditions(cfg)]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{s}: the {self.name} experiment's conditions {labels} repeat a value")

    def phases(self, cfg):
        first = self.base(cfg)
        sweep = dict(cfg.sweep) or None
        return ([first] if first else []) + [(self.variant(cfg, values, sweep=sweep), label)
                                              for label, values in self.conditions(cfg)]

    def analyse(self, ds, runs, result) -> None:
        run_metrics(ds, runs, result)
        self.more_metrics(ds, runs, result)
        arrays = {name: values for name, (_, values) in result.arrays.items() if name in (*METRICS, *self.extra_metrics,
                                                                                              "final_gains")}
        result.numbers["conditions"] = condition_statistics(ds, arrays, self.extra_metrics)
        result.numbers["metric_descriptions"] = {**METRICS, **{k: SHORT[k] for k in self.extra_metrics}}

    def more_metrics(self, ds, runs, result) -> None:
        """Per-run arrays of the experiment's own (added to `result`)."""

    def summary_lines(self, numbers: dict) -> list[str]:
        return statistics_lines(self.name, numbers)

    def figures(self, ds) -> dict:
        numbers = _numbers(ds)
        return {self.figure_names[0]: self.figure(in_memory(ds), numbers)}

    def panels(self, ds, axes, numbers) -> None:
        """Draw the experiment's own `n_panels` panels into `axes` (default: none)."""

    def figure(self, ds, numbers) -> Figure:
        """Two rows: the experiment's panels, test loss (median and IQR per condition), final gains; then
        one strip per statistic (every run a dot, the median and IQR as a bar, the numbers written out)."""
        rows = numbers["conditions"]
        extra = list(self.extra_metrics[:3])
        top = self.n_panels + 2
        bottom = 4 + len(extra)
        width = max(3.2, 0.72 * len(rows))  # per panel: the strips' tick labels need room per condition
        fig = Figure(figsize=(width * max(top, bottom), 7.2), layout="constrained")
        sub_top, sub_bottom = fig.subfigures(2, 1)
        axes_top = list(sub_top.subplots(1, top))
        axes_bottom = list(sub_bottom.subplots(1, bottom))
        self.panels(ds, axes_top[: self.n_panels], numbers)
        colors = self.palette(len(rows))
        loss_bands_panel(ds, axes_top[self.n_panels], rows, colors)
        gains_panel(ds, axes_top[self.n_panels + 1], rows, colors)
        for ax, name in zip(axes_bottom, ("stage1_end", "stage2_end", "final_test_loss", "final_train_loss", *extra)):
            strip_panel(ds, ax, rows, name, colors, numbers["metric_descriptions"].get(name, name))
        label_panels([*axes_top, *axes_bottom], "abcdefghijkl")
        n = max(r["runs"] for r in rows)
        fig.suptitle(f"{self.description} — {n} seeds per condition; dots: runs, bars: median and IQR", fontsize=9)
        return fig


PARAMETERS = ("m", "z", "U", "V", "W", "J")


def in_memory(ds):
    """`ds` with every array but the parameter checkpoints loaded (figures index the arrays run by run; a
    lazily opened store would read each array from disk again at every index)."""
    for name in [*ds.data_vars, *ds.coords]:
        if name not in PARAMETERS:
            ds[name].load()
    return ds


def _numbers(ds) -> dict:
    try:
        numbers = read_analysis(ds)["numbers"]
    except StoreError:
        numbers = {}
    if "conditions" not in numbers:
        raise StoreError("the ablation figures need the store's analysis; run 'loopdyn analyze STORE' first")
    return numbers


def statistics_lines(name: str, numbers: dict) -> list[str]:
    """The per-condition table of an ablation's analysis summary: median [IQR] (k/n when not all runs count)."""
    rows = numbers.get("conditions", [])
    if not rows:
        return []
    descr = numbers.get("metric_descriptions", METRICS)
    lines = [f"{name}: median [interquartile range] over seeds per condition; (k/n): runs where the value exists "
             f"(epochs: the event happened; losses: not diverged)"]
    for metric, what in descr.items():
        epochs = metric.endswith(("_end", "_epoch"))
        fmt = "{:.0f}" if epochs else "{:.4g}"
        cells = [f"{r['condition']}: {_fmt_spread(r['metrics'][metric], fmt, epochs)}" for r in rows if metric in r["metrics"]]
        if cells:
            lines.append(f"  {what}: " + "; ".join(cells))
    gains = [g for g in rows[0]["metrics"] if g.startswith("k") and g[1:].isdigit()]
    for g in gains:
        lines.append(f"  final gain {g}: " + "; ".join(f"{r['condition']}: {_fmt_spread(r['metrics'][g], '{:.3f}')}"
                                                     for r in rows))
    div = [f"{r['condition']}: {r['diverged']}" for r in rows if r["diverged"]]
    lines.append(f"  runs per condition: {', '.join(str(r['runs']) for r in rows)}; diverged: {', '.join(div) or 'none'}")
    return lines


# ------------------------------------------------------------------------------------------ panels
def condition_colors(n: int):
    return colormaps["viridis"](np.linspace(0.0, 0.85, max(n, 1)))


def _runs_of(ds, label: str) -> list[int]:
    return dict(conditions_of(ds))[label]


def _phase_epochs(ds, label: str) -> int:
    return _epochs_of(ds, _runs_of(ds, label))


def loss_bands_panel(ds, ax, rows, colors, var: str = "test_loss") -> None:
    """Median (line) and IQR (band) over seeds of a loss per epoch, one colour per condition, log-log."""
    for row, color in zip(rows, colors):
        label = row["condition"]
        n = _phase_epochs(ds, label)
        y = np.asarray(ds[var].values[_runs_of(ds, label), :n], np.float64)
        with _no_nan_warning():
            q25, med, q75 = np.nanpercentile(y, [25, 50, 75], axis=0)
        x = np.arange(n) + 1.0
        ax.fill_between(x, q25, q75, color=color, alpha=0.25, lw=0)
        ax.loglog(x, med, color=color, lw=1.3, label=label)
    what = "closed-loop test loss" if var == "test_loss" else "training loss"
    ax.set(xlabel="epoch + 1 (of the condition's phase)", ylabel=f"{what} (median, IQR)")
    ax.legend(fontsize=6)


@contextlib.contextmanager
def _no_nan_warning():
    """Quantiles over epochs where every run is NaN (all diverged) are NaN: no warning for the plot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def gains_panel(ds, ax, rows, colors) -> None:
    """Final effective gains of every run, $(k_1, k_2)$, one colour per condition, medians as crosses;
    on the double integrator the edges of the stable triangle ($k_1 = 0$, $k_2 = k_1$)."""
    g = ds.final_gains.values[:, 0]
    for row, color in zip(rows, colors):
        idx = _runs_of(ds, row["condition"])
        ax.scatter(g[idx, 0], g[idx, 1], s=8, color=color, alpha=0.6, lw=0, label=row["condition"])
        med = [row["metrics"].get(k, {}).get("median") for k in ("k1", "k2")]
        if None not in med:
            ax.plot(*med, "X", ms=9, color=color, mec="k", mew=0.8, zorder=5)
    finite = g[np.isfinite(g[:, 0]) & np.isfinite(g[:, 1])]
    if len(finite):
        lo = min(finite[:, 0].min(), finite[:, 1].min(), 0.0)
        k1 = np.linspace(lo * 1.1, 0, 100)
        b = stability_boundaries(k1)
        ax.plot(*b["complex_unit"], color="k", lw=0.6, ls="--")
        ax.axvline(0, color="k", lw=0.6, ls="--")
    ax.set(xlabel=r"final $k_1$", ylabel=r"final $k_2$", title="final gains; crosses: medians")
    ax.legend(fontsize=6)


def _tick(label: str, s: dict | None, epochs: bool) -> str:
    """A strip's tick label: the condition, then median, [IQR] and (k/n) on lines of their own."""
    if not s or s["median"] is None:
        return f"{label}\n{'never' if epochs and s and s['n'] else '-'}"
    fmt = (lambda v: f"{v:.0f}") if epochs else (lambda v: f"{v:.3g}")
    text = f"{label}\n{fmt(s['median'])}\n[{fmt(s['q25'])}, {fmt(s['q75'])}]"
    return text + (f"\n({s['n_valid']}/{s['n']})" if s["n_valid"] < s["n"] else "")


def strip_panel(ds, ax, rows, name: str, colors, title: str) -> None:
    """Every run's value (jittered dot) per condition, median and IQR as a bar; the tick labels give the
    median, [IQR] and, when some runs have no value (never reached, diverged), (k/n)."""
    epochs = name.endswith(("_end", "_epoch"))
    rng = np.random.default_rng(0)
    ticks = []
    for j, (row, color) in enumerate(zip(rows, colors)):
        v = np.asarray(ds[name].values[_runs_of(ds, row["condition"])], np.float64)
        v = v[np.isfinite(v)]
        v = v[v >= 0] if epochs else v
        ax.scatter(j + rng.uniform(-0.18, 0.18, v.size), v, s=7, color=color, alpha=0.55, lw=0)
        s = row["metrics"].get(name)
        if s and s["median"] is not None:
            ax.errorbar(j + 0.3, s["median"], yerr=[[s["median"] - s["q25"]], [s["q75"] - s["median"]]], fmt="o",
                        color="k", ms=4, capsize=3, lw=1)
        ticks.append(_tick(row["condition"], s, epochs))
    if name.endswith("loss"):
        ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), ticks, fontsize=5.5)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(title, fontsize=7)


def _first_run(ds, label: str) -> int:
    return _runs_of(ds, label)[0]


# ------------------------------------------------------------------------------------------ the experiments
LINEAR_NOTE = "rank-1 linear RNN, N = 100, g = 0, m fixed on the double integrator; SGD 0.01, clip 1, batch 100"


@register
class EpisodeLength(Ablation):
    name = "ablation-T"
    description = "episode length T, continued from each seed's epoch-10 model (spec §6.2, Fig 4e)"
    defaults = {"T_values": [10, 20, 50, 100, 120], "start_epoch": 10}
    figure_names = ("ablation_T",)
    extra_metrics = ("imag_change",)
    n_panels = 2
    reproduce = Reproduce(
        "ablation-T", quick=("epochs=100", "ablation_T.T_values=[10, 50, 120]"), quick_seeds="0..3", order=30,
        claims={"ablation_T": "Fig 4e / spec §6.2: the episode length sets the trade-off between myopic improvement "
                              "and long-term stability: from the same stage-2 model, short T moves the dominant "
                              "eigenvalue up the imaginary axis (more oscillatory, it stays unstable), long T moves it "
                              "down toward the real axis."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        t = cfg.table
        if any((not isinstance(v, int)) or v <= 0 for v in t["T_values"]):
            raise ConfigError(f"{cfg.source}: ablation_T.T_values = {t['T_values']!r} must be positive integers")
        if t["start_epoch"] < 0:
            raise ConfigError(f"{cfg.source}: ablation_T.start_epoch = {t['start_epoch']} must be >= 0")

    def base(self, cfg):
        e = int(cfg.table["start_epoch"])
        return self.variant(cfg, {}, sweep=dict(cfg.sweep) or None, epochs=e + 1), BASE

    def conditions(self, cfg):
        e = str(cfg.table["start_epoch"])
        return [(f"T={T}", {"task.T": int(T), "start.store": "self", "start.epoch": e}) for T in cfg.table["T_values"]]

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = condition_colors(len(rows))
        ax = axes[0]
        seed = int(ds.seed.values[_first_run(ds, rows[0]["condition"])])
        pts = []
        for row, color in zip(rows, colors):
            i = next(i for i in _runs_of(ds, row["condition"]) if int(ds.seed.values[i]) == seed)
            n = _phase_epochs(ds, row["condition"])
            s2 = int(ds.stage2_end.values[i])
            d = ds.dominant_eigenvalue.values[i, : (s2 + 1 if s2 >= 0 else n)]
            d = d[np.isfinite(d)]
            ax.plot(d.real, d.imag, color=color, lw=0.9, label=row["condition"])
            ax.plot(d.real[-1], d.imag[-1], "o", color=color, mec="k", ms=4)
            pts.append(d)
        start = pts[0][0]
        ax.plot(start.real, start.imag, "o", color=OPEN_RED, ms=6, zorder=5)
        unit_circle(ax)
        allp = np.concatenate(pts)
        ax.set(xlim=(allp.real.min() - 0.005, max(allp.real.max(), 1.0) + 0.005),
               ylim=(max(allp.imag.min() - 0.02, 0), allp.imag.max() * 1.12 + 1e-3), xlabel=r"Re $\lambda_1$",
               ylabel=r"Im $\lambda_1$", title=f"seed {seed}: $\\lambda_1$ until stable")
        ax.legend(fontsize=6)
        ax = axes[1]
        for row, color in zip(rows, colors):
            idx = _runs_of(ds, row["condition"])
            n = _phase_epochs(ds, row["condition"])
            im = ds.dominant_eigenvalue.values[idx, :n].imag
            delta = im - im[:, :1]
            s2 = ds.stage2_end.values[idx]
            unstable = np.arange(n)[None, :] <= np.where(s2 >= 0, s2, n)[:, None]
            delta = np.where(unstable, delta, np.nan)  # stage 3 moves the pair for other reasons
            alive = unstable.sum(0) >= max(len(idx) // 4, 1)
            with _no_nan_warning():
                q25, med, q75 = np.nanpercentile(delta[:, alive], [25, 50, 75], axis=0)
            x = np.arange(n)[alive]
            ax.fill_between(x, q25, q75, color=color, alpha=0.2, lw=0)
            ax.plot(x, med, color=color, lw=1.2, label=row["condition"])
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="epoch of the continuation", ylabel=r"Im $\lambda_1$ - Im $\lambda_1$(start)",
               title=r"change of Im $\lambda_1$ until stable (median, IQR; while >= 1/4 of the seeds are unstable)")

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = _numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            ic = m["imag_change"]
            runs = _runs_of(ds, r["condition"])
            up = int(np.sum(ds.imag_change.values[runs] > 0))
            parts.append(f"{r['condition']}: Im λ1 change {_fmt_spread(ic, '{:+.3f}')}, up in {up}/{len(runs)} seeds; "
                         f"stable from {_fmt_spread(m['stage2_end'], epochs=True)}")
        meds = [r["metrics"]["imag_change"]["median"] for r in rows]
        order = "decreases monotonically with T" if all(a is not None and b is not None and a >= b for a, b in
                                                         zip(meds, meds[1:])) else "is not monotone in T"
        return {"ablation_T": "Continuations of " + str(_phase_epochs(ds, rows[0]["condition"])) + " epochs: " + "; ".join(parts) + f". The median change of Im λ1 {order}."}


@register
class Optimizer(Ablation):
    name = "ablation-optimizer"
    description = "SGD vs Adam from the same initial weights, the stage-2 zig-zag (spec §6.3)"
    defaults = {"optimizers": ["sgd", "adam"], "lrs": [0.01, 0.001]}
    figure_names = ("ablation_optimizer",)
    extra_metrics = ("zigzag_imag", "zigzag_k1")
    n_panels = 1
    reproduce = Reproduce(
        "ablation-optimizer", quick=("epochs=150",), quick_seeds="0..3", order=31,
        claims={"ablation_optimizer": "Spec §6.3 (summary of the paper): with Adam the stage-2 zig-zag is mitigated — "
                                      "adaptive per-parameter scaling reduces the conflict between the short-term and "
                                      "long-term gradient directions."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        t = cfg.table
        if len(t["optimizers"]) != len(t["lrs"]):
            raise ConfigError(f"{cfg.source}: ablation_optimizer.optimizers and .lrs must have the same length "
                              f"({len(t['optimizers'])} vs {len(t['lrs'])})")
        bad = [o for o in t["optimizers"] if o not in ("sgd", "adam")]
        if bad:
            raise ConfigError(f"{cfg.source}: ablation_optimizer.optimizers contains {bad[0]!r}; choose sgd or adam")
        if any(lr <= 0 for lr in t["lrs"]):
            raise ConfigError(f"{cfg.source}: ablation_optimizer.lrs = {t['lrs']!r} must be > 0")

    def conditions(self, cfg):
        return [(f"{o} {lr:g}", {"train.optimizer": o, "train.lr": float(lr)})
                for o, lr in zip(cfg.table["optimizers"], cfg.table["lrs"])]

    def panels(self, ds, axes, numbers) -> None:
        """Im λ1 through stage 2 of one seed per optimiser (period-2 zig-zag visible as a band)."""
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = _first_run(ds, row["condition"])
            n = _phase_epochs(ds, row["condition"])
            s1, s2 = int(ds.stage1_end.values[i]), int(ds.stage2_end.values[i])
            lo, hi = max(s1, 0), (n if s2 < 0 else s2)
            d = ds.dominant_eigenvalue.values[i, lo:hi] if "dominant_eigenvalue" in ds else np.array([])
            ax.plot(np.arange(lo, hi), d.imag, color=color, lw=0.8, marker="o", ms=1.5,
                    label=f"{row['condition']}, zig-zag {zigzag(d.imag):.2f}")
        ax.set(xlabel="epoch (stage 2)", ylabel=r"Im $\lambda_1$",
               title=f"seed {int(ds.seed.values[0])}: " + r"Im $\lambda_1$ through stage 2")
        ax.legend(fontsize=6)

    def captions(self, ds) -> dict:
        from scipy.stats import mannwhitneyu

        ds = in_memory(ds)

        rows = _numbers(ds)["conditions"]
        parts = [f"{r['condition']}: zig-zag of Im λ1 {_fmt_spread(r['metrics']['zigzag_imag'], '{:.2f}')}, of k1 "
                 f"{_fmt_spread(r['metrics']['zigzag_k1'], '{:.2f}')}; stage 2 ends at "
                 f"{_fmt_spread(r['metrics']['stage2_end'], epochs=True)}" for r in rows]
        text = "Zig-zag = the fraction of sign changes of the per-epoch increments during stage 2 (1 = pure " \
               "period-2 zig-zag, 0.5 = random walk, 0 = monotone): " + "; ".join(parts) + "."
        if len(rows) == 2:
            a, b = (ds.zigzag_imag.values[_runs_of(ds, r["condition"])] for r in rows)
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) > 1 and len(b) > 1:
                p = mannwhitneyu(a, b).pvalue
                text += f" Mann-Whitney U test of the Im λ1 zig-zag, {rows[0]['condition']} vs {rows[1]['condition']}: p = {p:.2g}."
        return {"ablation_optimizer": text}


@register
class Activation(Ablation):
    name = "ablation-activation"
    description = "rank-1 network with phi linear vs tanh, all else equal: the three stages (spec §6.1)"
    defaults = {"activations": ["linear", "tanh"]}
    figure_names = ("ablation_activation",)
    extra_metrics = ("gain_stage1_end", "gain_stage2_end")
    n_panels = 1
    reproduce = Reproduce(
        "ablation-activation", quick=("epochs=150",), quick_seeds="0..3", order=32,
        claims={"ablation_activation": "Spec §6.1 (summary of the paper): nonlinear RNNs show qualitatively the same "
                                       "three stages as the linear network (reference runs: linear stage 1 ends at "
                                       "epoch 8 and stage 2 at 129; tanh 12 and 110)."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        bad = [a for a in cfg.table["activations"] if a not in ("linear", "tanh", "relu")]
        if bad:
            raise ConfigError(f"{cfg.source}: ablation_activation.activations contains {bad[0]!r}; choose linear, tanh, relu")

    def conditions(self, cfg):
        return [(a, {"agent.activation": a}) for a in cfg.table["activations"]]

    def panels(self, ds, axes, numbers) -> None:
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = _first_run(ds, row["condition"])
            n = _phase_epochs(ds, row["condition"])
            g = ds.gains.values[i, :n, 0]
            ax.plot(g[:, 0], g[:, 1], color=color, lw=0.9, label=row["condition"])
            for e, mark in ((ds.gain_stage1_end.values[i], "silver"), (ds.gain_stage2_end.values[i], "gold")):
                if np.isfinite(e) and 0 < e < n:
                    ax.plot(g[int(e), 0], g[int(e), 1], "o", color=mark, mec="k", ms=6, zorder=5)
        lo = min(float(np.nanmin(ds.gains.values[:, :, 0, :2])), -1e-3)
        k1 = np.linspace(lo, 0, 100)
        ax.plot(*stability_boundaries(k1)["complex_unit"], color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel=r"$k_1$", ylabel=r"$k_2$", title=f"seed {int(ds.seed.values[0])}: gain paths (silver: end of "
               "stage 1, gold: stable)")
        ax.legend(fontsize=6)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = _numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            idx = _runs_of(ds, r["condition"])
            s1, s2 = ds.stage1_end.values[idx], ds.stage2_end.values[idx]
            three = int(np.sum((s1 > 0) & (s2 > s1)))
            parts.append(f"{r['condition']}: stage 1 ends {_fmt_spread(m['stage1_end'], epochs=True)}, stage 2 "
                         f"{_fmt_spread(m['stage2_end'], epochs=True)}; from the gains {_fmt_spread(m['gain_stage1_end'], epochs=True)} "
                         f"and {_fmt_spread(m['gain_stage2_end'], epochs=True)}; all three stages in {three}/{len(idx)} "
                         f"seeds, stable at the end in {int(np.sum(s2 >= 0))}/{len(idx)}; final test loss "
                         f"{_fmt_spread(m['final_test_loss'], '{:.3g}')}")
        return {"ablation_activation": "Stage boundaries from P for linear and from the gains for tanh runs, and "
                                       "from the gains for both: " + "; ".join(parts) + "."}


@register
class TimeStep(Ablation):
    name = "ablation-time"
    description = "discrete time vs a leaky RNN on the continuous-time double integrator, dt = 0.1 (spec §6.4)"
    defaults = {"dt": 0.1}
    figure_names = ("ablation_time",)
    n_panels = 1
    reproduce = Reproduce(
        "ablation-time", quick=("epochs=150",), quick_seeds="0..3", order=33,
        claims={"ablation_time": "Spec §6.4 (summary of the paper): the findings carry over to continuous-time "
                                 "(leaky) models, simulated here with dt = 0.1 for plant and RNN and episodes of the "
                                 "same duration (T = 500 steps)."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        dt = cfg.table["dt"]
        if not 0 < dt <= 1:
            raise ConfigError(f"{cfg.source}: ablation_time.dt = {dt} must lie in (0, 1]")
        if cfg.plant.kind != "double_integrator" or cfg.agent.alpha != 1.0:
            raise ConfigError(f"{cfg.source}: the ablation-time experiment starts from the discrete double integrator "
                              f"and alpha = 1 (its continuous condition sets plant.dt and agent.alpha = dt)")

    def conditions(self, cfg):
        dt = float(cfg.table["dt"])
        steps = max(int(round(cfg.task.T / dt)), 1)
        return [("discrete", {}),
                (f"dt={dt:g}", {"plant.kind": "integrator", "plant.order": 2, "plant.dt": dt, "plant.n_controls": 1,
                                "plant.n_observed": 1, "agent.alpha": dt, "task.T": steps})]

    def panels(self, ds, axes, numbers) -> None:
        """Position under the final controller of one seed per condition, against physical time t dt."""
        ax = axes[0]
        rows = numbers["conditions"]
        for row, color in zip(rows, condition_colors(len(rows))):
            i = _first_run(ds, row["condition"])
            phase = dict(ds.attrs["phases"])[str(ds["phase"].values[i])]
            dt, T = float(phase["plant"]["dt"]), int(phase["task"]["T"])
            n = int(phase["epochs"])
            xs = closed_loop_trajectory(ds, i, n - 1, T)
            ax.plot(np.arange(T) * dt, xs[:, 0], color=color, lw=1.1, label=f"{row['condition']} (T = {T})")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set(xlabel="time t dt", ylabel="position x", title=f"seed {int(ds.seed.values[0])}: final controllers from (1, -1)")
        ax.legend(fontsize=6)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = _numbers(ds)["conditions"]
        parts = []
        for r in rows:
            m = r["metrics"]
            idx = _runs_of(ds, r["condition"])
            s1, s2 = ds.stage1_end.values[idx], ds.stage2_end.values[idx]
            parts.append(f"{r['condition']}: stage 1 ends {_fmt_spread(m['stage1_end'], epochs=True)} (a stage 1 in "
                         f"{int(np.sum(s1 > 0))}/{len(idx)} seeds), stable from {_fmt_spread(m['stage2_end'], epochs=True)}, "
                         f"final test loss {_fmt_spread(m['final_test_loss'], '{:.3g}')}, gains k1 "
                         f"{_fmt_spread(m['k1'], '{:.3f}')}, k2 {_fmt_spread(m['k2'], '{:.3f}')}; stable at the end in "
                         f"{int(np.sum(s2 >= 0))}/{len(idx)}")
        return {"ablation_time": "Epochs; the continuous plant's gains act through B = dt e2: "
                                 + "; ".join(parts) + "."}


@register
class ControlPenalty(Ablation):
    name = "ablation-beta"
    description = "control penalty beta, from scratch (spec §6.5, Fig 5d)"
    defaults = {"beta_values": [0.0, 0.5, 2.0, 5.0]}
    figure_names = ("ablation_beta",)
    n_panels = 2
    reproduce = Reproduce(
        "ablation-beta", quick=("epochs=150",), quick_seeds="0..3", order=34,
        claims={"ablation_beta": "Fig 5d / spec §6.5: a control penalty beta slows stage 3 and ends at a higher "
                                 "loss (reference run, continued from its stabilisation epoch: final training loss "
                                 "≈ 0.25, 1.2, 2.2, 3.5 for beta = 0, 0.5, 2, 5)."})

    def validate(self, cfg) -> None:
        super().validate(cfg)
        if any(b < 0 for b in cfg.table["beta_values"]):
            raise ConfigError(f"{cfg.source}: ablation_beta.beta_values = {cfg.table['beta_values']!r} must be >= 0")

    def conditions(self, cfg):
        return [(f"beta={b:g}", {"task.beta": float(b)}) for b in cfg.table["beta_values"]]

    def phases(self, cfg):
        """One phase, beta swept: beta is vmapped, so all conditions share one compiled ensemble."""
        sweep = {**dict(cfg.sweep), "task.beta": [float(b) for b in cfg.table["beta_values"]]}
        return [(self.variant(cfg, {}, sweep=sweep), "closed")]

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = condition_colors(len(rows))
        loss_bands_panel(ds, axes[0], rows, colors, var="train_loss")
        axes[0].set_title(r"training loss (incl. $\beta\sum_t u_t^2$)", fontsize=7)
        ax = axes[1]
        for row, color in zip(rows, colors):
            i = _first_run(ds, row["condition"])
            n = _phase_epochs(ds, row["condition"])
            xs = closed_loop_trajectory(ds, i, n - 1, 50)
            ax.plot(np.arange(50), xs[:, 0], color=color, lw=1.1, label=row["condition"])
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set(xlabel="time step t", ylabel="position x", title=f"seed {int(ds.seed.values[0])}: final controllers from (1, -1)")
        ax.legend(fontsize=6)

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = _numbers(ds)["conditions"]
        parts = [f"{r['condition']}: final training loss {_fmt_spread(r['metrics']['final_train_loss'], '{:.3g}')}, "
                 f"gains k1 {_fmt_spread(r['metrics']['k1'], '{:.3f}')}, k2 {_fmt_spread(r['metrics']['k2'], '{:.3f}')}, "
                 f"stable from {_fmt_spread(r['metrics']['stage2_end'], epochs=True)}" for r in rows]
        meds = [r["metrics"]["final_train_loss"]["median"] for r in rows]
        mono = all(a is not None and b is not None and a < b for a, b in zip(meds, meds[1:]))
        return {"ablation_beta": "Trained from scratch: " + "; ".join(parts) +
                f". The median final loss {'increases' if mono else 'does not increase monotonically'} with beta."}


@register
class ClosedVsOpenSeeds(Ablation):
    name = "closed-vs-open-seeds"
    description = "closed vs open loop over seeds: the open-loop student's peak closed-loop test loss (spec §6.6)"
    defaults = {"open_mode": "open_loop_noise"}
    figure_names = ("closed_vs_open_seeds",)
    extra_metrics = ("peak_test_loss", "peak_epoch", "peak_rise")
    n_panels = 2
    reproduce = Reproduce(
        "closed-vs-open-seeds", quick=("epochs=100",), quick_seeds="0..1", order=35,
        claims={"closed_vs_open_seeds": "Figs 1c, 2 / spec §6.6: the open-loop student's training loss falls "
                                        "monotonically while its closed-loop test loss first improves, then blows up "
                                        "(reference tanh run: peak 5.1e5 at epoch 221) before closed and open runs "
                                        "converge to the same solution (test loss ≈ 6.3, gains ≈ (-0.36, -1.0))."})

    def validate(self, cfg) -> None:
        ClosedVsOpen.validate(self, cfg)

    def phases(self, cfg):
        return ClosedVsOpen.phases(self, cfg)

    def palette(self, n: int):
        return [CLOSED_BLUE, OPEN_RED, *condition_colors(n)][:n]

    def more_metrics(self, ds, runs, result) -> None:
        R = ds.sizes["run"]
        out = {name: np.full(R, np.nan) for name in ("peak_test_loss", "peak_epoch", "peak_rise")}
        test = ds.test_loss.values
        for run in runs:
            y = np.asarray(test[run.index, : run.epochs], np.float64)
            peak = rebound_peak(y)
            if peak is not None:
                out["peak_epoch"][run.index], out["peak_test_loss"][run.index], out["peak_rise"][run.index] = peak
        for name, values in out.items():
            result.put(name, values, ("run",), VARIABLES[name])

    def panels(self, ds, axes, numbers) -> None:
        rows = numbers["conditions"]
        colors = self.palette(len(rows))
        ax = axes[0]
        for row, color in zip(rows, colors):
            idx = _runs_of(ds, row["condition"])
            n = _phase_epochs(ds, row["condition"])
            for i in idx:
                ax.loglog(np.arange(n) + 1.0, ds.test_loss.values[i, :n], color=color, lw=0.4, alpha=0.35)
        ax.set(xlabel="epoch + 1", ylabel="closed-loop test loss", title="every seed: closed (blue), open (red)")
        ax = axes[1]
        open_rows = [r for r in rows if r["condition"] != "closed"]
        for row in open_rows:
            idx = _runs_of(ds, row["condition"])
            ax.scatter(ds.peak_epoch.values[idx], ds.peak_test_loss.values[idx], s=10, color=OPEN_RED, alpha=0.7, lw=0)
            pe, pl = row["metrics"]["peak_epoch"], row["metrics"]["peak_test_loss"]
            if pe["median"] is not None:
                ax.errorbar(pe["median"], pl["median"], xerr=[[pe["median"] - pe["q25"]], [pe["q75"] - pe["median"]]],
                            yerr=[[pl["median"] - pl["q25"]], [pl["q75"] - pl["median"]]], fmt="X", color="k", ms=7,
                            capsize=3)
        ax.set_yscale("log")
        ax.set(xlabel="epoch of the peak", ylabel="peak closed-loop test loss",
               title="open-loop students: peak test loss and its epoch (cross: medians, IQR)")

    def captions(self, ds) -> dict:
        ds = in_memory(ds)
        rows = {r["condition"]: r for r in _numbers(ds)["conditions"]}
        c, o = rows.get("closed"), rows.get("open")
        if c is None or o is None:
            return {}
        ci, oi = _runs_of(ds, "closed"), _runs_of(ds, "open")
        blow = int(np.sum(ds.peak_rise.values[oi] > 10))
        fc, fo = ds.final_test_loss.values[ci], ds.final_test_loss.values[oi]
        gc, go = ds.final_gains.values[ci, 0], ds.final_gains.values[oi, 0]
        dist = np.linalg.norm(gc - go, axis=-1)
        with _no_nan_warning():
            text = (f"Over {len(oi)} seeds: the open run's closed-loop test loss peaks at "
                    f"{_fmt_spread(o['metrics']['peak_test_loss'], '{:.3g}')} at epoch "
                    f"{_fmt_spread(o['metrics']['peak_epoch'], epochs=True)}, "
                    f"{_fmt_spread(o['metrics']['peak_rise'], '{:.3g}')} times its minimum before the peak (closed runs: "
                    f"{_fmt_spread(c['metrics']['peak_rise'], '{:.3g}')}); it blows up (> 10x) in {blow}/{len(oi)} seeds. "
                    f"Final test loss closed {_fmt_spread(c['metrics']['final_test_loss'], '{:.3g}')}, open "
                    f"{_fmt_spread(o['metrics']['final_test_loss'], '{:.3g}')} (open/closed per seed: median "
                    f"{np.nanmedian(fo / fc):.3g}); final gains closed k1 {_fmt_spread(c['metrics']['k1'], '{:.3f}')}, k2 "
                    f"{_fmt_spread(c['metrics']['k2'], '{:.3f}')}, open k1 {_fmt_spread(o['metrics']['k1'], '{:.3f}')}, "
                    f"k2 {_fmt_spread(o['metrics']['k2'], '{:.3f}')}; distance open vs closed per seed: median "
                    f"{np.nanmedian(dist):.3g}.")
        return {"closed_vs_open_seeds": text}
