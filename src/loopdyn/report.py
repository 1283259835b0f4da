"""Run tables, the demo and its report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .analysis._stages import stabilisation_epoch
from .store import open_run

SHOWN_HP = ("lr", "beta", "clip", "over", "g", "noise")


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def run_table(store) -> tuple[list[dict], dict]:
    """One dict per run of a store: seed, swept and scalar hyper-parameters, final losses,
    stabilisation epoch and final dominant eigenvalues; plus metadata (loss definitions)."""
    ds = open_run(store)
    cfg = ds.attrs["config"]
    run_coords = ds.attrs.get("run_coords", "[]")
    swept = [c for c in (json.loads(run_coords) if isinstance(run_coords, str) else run_coords)
             if c not in ("seed", "group", "mode", *SHOWN_HP)]
    rows = []
    has_eig = "spectral_radius" in ds
    phase_epochs = {label: d["epochs"] for label, d in ds.attrs.get("phases", [])}
    for i in range(ds.sizes["run"]):
        run = ds.isel(run=i)
        if "mode" in ds.variables:  # continuation phases may be shorter than the store
            run = run.isel(epoch=slice(0, phase_epochs.get(str(run["mode"].values), ds.sizes["epoch"])))
        row = {"run": i, "seed": int(run.seed)}
        for name in dict.fromkeys([*swept, *SHOWN_HP]):
            if name in run.coords or name in run:
                v = run[name].values.item()
                row[name] = _num(v) if isinstance(v, float) else v
        if "mode" in ds.variables:
            row["mode"] = str(run["mode"].values)
        tl, te = run.train_loss.values, run.test_loss.values
        row["final_train_loss"] = _num(tl[-1])
        row["final_test_loss"] = _num(te[-1])
        div = int(run.diverged_epoch)
        row["diverged_epoch"] = None if div < 0 else div
        for name in ("stage1_end", "stage2_end"):
            if name in run:  # written by `loopdyn analyze`
                v = int(run[name])
                row[name] = None if v < 0 else v
        if has_eig:
            s = int(stabilisation_epoch(run.spectral_radius.values))
            row["stabilisation_epoch"] = None if s < 0 else s
            lam = run.eigenvalues.values[-1]
            lam = lam[np.isfinite(lam)]
            row["final_spectral_radius"] = _num(run.spectral_radius.values[-1])
            row["final_dominant_eigenvalues"] = [complex(round(z.real, 4), round(z.imag, 4)) for z in lam[:3]]
        rows.append(row)
    meta = {
        "name": cfg["name"],
        "epochs": int(ds.attrs["epochs_done"]),
        "epochs_total": cfg["epochs"],
        "train_loss": ds.attrs.get("train_loss_definition"),
        "test_loss": ds.attrs.get("test_loss_definition"),
        "stabilisation_epoch": "first epoch after which rho(P) < 1 for the rest of the run",
        "stages": "stage1_end / stage2_end from 'loopdyn analyze' (stage1_end = 0: the run starts on the plateau; '-': never stabilises)",
    }
    return rows, meta


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, complex):
        return f"{v.real:.3f}{v.imag:+.3f}j"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return " ".join(_fmt(x) for x in v)
    return str(v)


def format_table(rows: list[dict], meta: dict) -> str:
    """A plain-text table with the definitions of every column in the footer."""
    if not rows:
        return "(no runs)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = {"final_train_loss": "train", "final_test_loss": "test", "stabilisation_epoch": "stab_epoch",
            "final_spectral_radius": "rho(P)", "final_dominant_eigenvalues": "dominant eigenvalues",
            "diverged_epoch": "diverged"}
    table = [[head.get(c, c) for c in cols]] + [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[j]) for row in table) for j in range(len(cols))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"{meta['name']}: {meta['epochs']}/{meta['epochs_total']} epochs; values at the last epoch.")
    lines.append(f"train = {meta['train_loss']}; test = {meta['test_loss']}.")
    if any("stabilisation_epoch" in r for r in rows):
        lines.append(f"stab_epoch = {meta['stabilisation_epoch']} ('-' = never); eigenvalues of the joint matrix P.")
    if any("stage1_end" in r for r in rows):
        lines.append(f"{meta['stages']}.")
    return "\n".join(lines)


def plot_training(ds, path: Path) -> None:
    """Loss curves and spectral radius per run, stabilisation epochs marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_eig = "spectral_radius" in ds
    fig, axes = plt.subplots(1, 3 if has_eig else 2, figsize=(15 if has_eig else 10, 4), constrained_layout=True)
    epochs = ds.epoch.values + 1
    stab = stabilisation_epoch(ds.spectral_radius.values) if has_eig else None
    colors = plt.cm.viridis(np.linspace(0, 0.9, ds.sizes["run"]))
    for i in range(ds.sizes["run"]):
        label = f"seed {int(ds.seed[i])}"
        axes[0].loglog(epochs, ds.train_loss.values[i], color=colors[i], lw=1, label=label)
        axes[1].loglog(epochs, ds.test_loss.values[i], color=colors[i], lw=1)
        if has_eig:
            axes[2].semilogx(epochs, ds.spectral_radius.values[i], color=colors[i], lw=1)
            if stab[i] >= 0:
                for ax, y in ((axes[1], ds.test_loss.values[i][stab[i]]), (axes[2], ds.spectral_radius.values[i][stab[i]])):
                    ax.plot(stab[i] + 1, y, "o", color=colors[i], mec="k", ms=6)
    axes[0].set(xlabel="epoch + 1", ylabel="train loss", title=ds.attrs.get("train_loss_definition", ""))
    axes[1].set(xlabel="epoch + 1", ylabel="closed-loop test loss", title=ds.attrs.get("test_loss_definition", ""))
    if has_eig:
        axes[2].axhline(1.0, color="k", ls="--", lw=0.8)
        axes[2].set(xlabel="epoch + 1", ylabel=r"spectral radius $\rho(P)$", title="joint matrix; dots = stabilisation epoch")
    axes[0].legend(fontsize=7)
    for ax in axes:
        ax.title.set_fontsize(8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo(out: Path, *, epochs: int = 1000, seeds: str = "0..7") -> Path:
    """Train `linear-rank1` on several seeds, print the run table, write a figure and a report."""
    import shutil
    import time

    from . import _config
    from .training import _runner

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config.load("linear-rank1", [f"epochs={epochs}"], seeds)
    store = out / "linear-rank1.zarr"
    if store.exists():
        shutil.rmtree(store)
    t0 = time.perf_counter()
    _runner.train(cfg, store)
    elapsed = time.perf_counter() - t0
    rows, meta = run_table(store)
    table = format_table(rows, meta)
    print(table)
    ds = open_run(store)
    png = out / "linear-rank1.png"
    plot_training(ds, png)
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
