"""Run tables (`loopdyn info`), and the demo with its report."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import xarray as xr

from .analysis import stabilisation_epoch
from .store import check, open_run

SHOWN_HYPER = ("lr", "beta", "clip", "over", "g", "noise")


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def run_table(store) -> tuple[list[dict], dict]:
    """One dict per run of a store (numbers as numbers, eigenvalues as `[re, im]`): seed, phase, swept and
    scalar hyper-parameters, final losses, divergence, stabilisation epoch, stages (after `loopdyn analyze`),
    final dominant eigenvalues; plus metadata (loss definitions, epochs)."""
    check(store)
    ds = open_run(store)
    cfg = ds.attrs["config"]
    swept = [c for c in ds.attrs.get("run_coords", []) if c not in ("seed", "group", "phase", "training_mode", *SHOWN_HYPER)]
    phase_epochs = {label: d["epochs"] for label, d in ds.attrs.get("phases", [])}
    # Read once what the table shows (per-epoch scalars, per-run numbers), and of the eigenvalues only each
    # run's last epoch: indexing the lazy store run by run costs more than reading it.
    small = ds[[v for v in ("train_loss", "test_loss", "diverged_epoch", "stage1_end", "stage2_end",
                            "acquisition_epoch", "eig_match_epoch", "spectral_radius") if v in ds]].load()
    phases = [str(p) for p in small["phase"].values]
    ends = np.array([min(phase_epochs.get(p, ds.sizes["epoch"]), ds.sizes["epoch"]) for p in phases])
    if "eigenvalues" in ds:
        last_eigs = ds.eigenvalues.isel(run=xr.DataArray(np.arange(len(ends)), dims="row"),
                                        epoch=xr.DataArray(ends - 1, dims="row")).values
    rows = []
    for i in range(ds.sizes["run"]):
        run = small.isel(run=i, epoch=slice(0, ends[i]))
        row = {"run": i, "seed": int(run.seed), "phase": phases[i], "training_mode": str(run["training_mode"].values)}
        for name in dict.fromkeys([*swept, *SHOWN_HYPER]):
            if name in run.coords or name in run:
                v = run[name].values.item()
                row[name] = _num(v) if isinstance(v, float) else v
        row["final_train_loss"] = _num(run.train_loss.values[-1])
        row["final_test_loss"] = _num(run.test_loss.values[-1])
        div = int(run.diverged_epoch)
        row["diverged_epoch"] = None if div < 0 else div
        for name in ("stage1_end", "stage2_end"):
            if name in run:  # written by `loopdyn analyze`
                v = int(run[name])
                row[name] = None if v < 0 else v
        if "acquisition_epoch" in run:  # the tracking experiment's analysis
            row["acquisition_epochs"] = [None if int(v) < 0 else int(v) for v in run["acquisition_epoch"].values]
        if "eig_match_epoch" in run:
            row["eig_match_epochs"] = [None if int(v) < 0 else int(v) for v in run["eig_match_epoch"].values]
        if "spectral_radius" in ds:
            s = int(stabilisation_epoch(run.spectral_radius.values))
            row["stabilisation_epoch"] = None if s < 0 else s
            lam = last_eigs[i]
            lam = lam[np.isfinite(lam)]
            row["final_spectral_radius"] = _num(run.spectral_radius.values[-1])
            row["final_dominant_eigenvalues"] = [[round(float(z.real), 4), round(float(z.imag), 4)] for z in lam[:3]]
        rows.append(row)
    meta = {
        "name": cfg["name"],
        "experiment": ds.attrs.get("experiment", "ensemble"),
        "epochs": int(ds.attrs["epochs_done"]),
        "epochs_total": int(ds.attrs.get("epochs", cfg["epochs"])),
        "complete": bool(ds.attrs["complete"]),
        "train_loss": ds.attrs.get("train_loss_definition"),
        "test_loss": ds.attrs.get("test_loss_definition"),
        "stabilisation_epoch": "first epoch after which rho(P) < 1 for the rest of the run",
        "stages": "stage1_end / stage2_end from 'loopdyn analyze' (stage1_end = 0: the run starts on the plateau; "
                  "'-': never stabilises)",
        "acquisition": "acquisition_epochs: per frequency (increasing), the first epoch whose trailing-mean probe loss "
                       "is below its threshold, from 'loopdyn analyze' ('-': never)",
    }
    return rows, meta


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and v and isinstance(v[0], list):
        return " ".join(f"{re:.3f}{im:+.3f}j" for re, im in v)
    if isinstance(v, list):
        return "/".join(_fmt(x) for x in v)
    return str(v)


def format_table(rows: list[dict], meta: dict) -> str:
    """A plain-text table with the definitions of every column in the footer."""
    if not rows:
        return "(no runs)"
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if c != "training_mode" or
            len({r["training_mode"] for r in rows}) > 1]
    head = {"final_train_loss": "train", "final_test_loss": "test", "stabilisation_epoch": "stab_epoch",
            "final_spectral_radius": "rho(P)", "final_dominant_eigenvalues": "dominant eigenvalues",
            "diverged_epoch": "diverged"}
    table = [[head.get(c, c) for c in cols]] + [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[j]) for row in table) for j in range(len(cols))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    state = "complete" if meta["complete"] else "incomplete"
    lines.append(f"{meta['name']} ({meta['experiment']}, {state}): {meta['epochs']}/{meta['epochs_total']} epochs; "
                 f"values at each run's last epoch.")
    lines.append(f"train = {meta['train_loss']}; test = {meta['test_loss']}.")
    if any("stabilisation_epoch" in r for r in rows):
        lines.append(f"stab_epoch = {meta['stabilisation_epoch']} ('-' = never); eigenvalues of the joint matrix P.")
    if any("stage1_end" in r for r in rows):
        lines.append(f"{meta['stages']}.")
    if any("acquisition_epochs" in r for r in rows):
        lines.append(f"{meta['acquisition']}.")
    return "\n".join(lines)


def demo(out: Path, *, epochs: int = 1000, seeds: str = "0..7", progress: bool = True) -> Path:
    """Train `linear-rank1` on several seeds, print the run table, write a figure and a report."""
    from . import config as cfg_mod  # here, not above: `loopdyn info` (run_table) starts without JAX
    from .experiments import figures, train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg_mod.load("linear-rank1", [f"epochs={epochs}"], seeds)
    store = out / "linear-rank1.zarr"
    if store.exists():
        shutil.rmtree(store)
    t0 = time.perf_counter()
    train(cfg, store, progress=progress)
    elapsed = time.perf_counter() - t0
    rows, meta = run_table(store)
    table = format_table(rows, meta)
    print(table)
    png = next(p for p in figures("training", store, out) if p.suffix == ".png")
    n_stab = sum(r.get("stabilisation_epoch") is not None for r in rows)
    report = out / "report.md"
    report.write_text(
        f"# loopdyn demo: {cfg.name}\n\n{cfg.description}.\n\n"
        f"{len(rows)} runs x {epochs} epochs trained in {elapsed:.1f} s (compile included); "
        f"{n_stab}/{len(rows)} runs stabilised (rho(P) < 1 to the end).\n\n"
        f"Store: `{store}` (open with `loopdyn.open_run`).\n\n![training]({png.name})\n\n```\n{table}\n```\n"
    )
    print(f"\nstore: {store}\nfigure: {png}\nreport: {report}")
    return report
