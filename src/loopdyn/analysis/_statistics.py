r"""Statistics over seeds of a store's runs, per condition (spec §6), and the per-run metrics they are made
of: :func:`spread` (median and IQR), :func:`zigzag` (the stage-2 zig-zag), :func:`rebound_peak` (the open-loop
student's blow-up), the conditions of a store (:func:`conditions_of`), and :func:`store_statistics` of any
store.

Statistics (:func:`spread`): quantiles by `numpy.percentile` (linear interpolation) over the runs where
the quantity exists — epochs `>= 0` (an event that never happens is `-1` and counted apart, as "reached
k/n"), finite losses (a diverged run is left out and counted). Epochs are those of each condition's own
phase (a continuation's epoch 0 is its start). Losses are each condition's own definitions (its T, β,
dt), so compare them across conditions with care.
"""

from __future__ import annotations

import numpy as np

from ._stages import NONE, detect_stages_gains

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


METRIC_VARIABLES: dict[str, str] = {
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


def fmt_spread(s: dict, fmt: str = "{:.0f}", epochs: bool = False) -> str:
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


def epochs_of(ds, indices) -> int:
    """The epochs of the phase of the runs `indices` (one phase)."""
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
        result.put(name, values, ("run",), METRIC_VARIABLES[name])
    result.put("final_gains", gains_final, ("run", "control", "state"), METRIC_VARIABLES["final_gains"])


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
        rows.append({"condition": label, "runs": len(idx), "epochs": epochs_of(ds, idx), "diverged": diverged,
                     "metrics": metrics})
    return rows


def store_statistics(ds) -> list[dict]:
    """:func:`condition_statistics` of any store (from :func:`loopdyn.open_run`, analysed or not): the stage
    epochs where the analysis has them, and final losses and gains at each run's last epoch."""
    R = ds.sizes["run"]
    arrays = {name: ds[name].values for name in ("stage1_end", "stage2_end", "stabilisation_epoch") if name in ds}
    last = np.zeros(R, int)
    for label, idx in conditions_of(ds, exclude=()):
        last[idx] = min(epochs_of(ds, idx), ds.sizes["epoch"]) - 1  # an incomplete store: its last committed epoch
    rows = np.arange(R)
    arrays["final_train_loss"] = ds.train_loss.values[rows, last]
    arrays["final_test_loss"] = ds.test_loss.values[rows, last]
    if "gains" in ds:  # tasks without effective gains (tracking, the impulse task) record none
        arrays["final_gains"] = ds.gains.values[rows, last]
    return condition_statistics(ds, arrays, exclude=())


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
        cells = [f"{r['condition']}: {fmt_spread(r['metrics'][metric], fmt, epochs)}" for r in rows if metric in r["metrics"]]
        if cells:
            lines.append(f"  {what}: " + "; ".join(cells))
    gains = [g for g in rows[0]["metrics"] if g.startswith("k") and g[1:].isdigit()]
    for g in gains:
        lines.append(f"  final gain {g}: " + "; ".join(f"{r['condition']}: {fmt_spread(r['metrics'][g], '{:.3f}')}"
                                                     for r in rows))
    div = [f"{r['condition']}: {r['diverged']}" for r in rows if r["diverged"]]
    lines.append(f"  runs per condition: {', '.join(str(r['runs']) for r in rows)}; diverged: {', '.join(div) or 'none'}")
    return lines
