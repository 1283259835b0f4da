"""How exactly the overlap representation (spec §7) reproduces the vectors it stands for.

Trains the shipped `linear-rank1` protocol (SGD 0.01, global-norm clip 1, T = 50, batch 100) in float64 for
both representations from the same seeds (hence the same initial vectors and batches), at N = 100 and at
N = 10 000, and prints, per stored quantity, the maximum over runs and epochs of |overlaps - vectors| / scale
(scale: the largest |value| of that quantity in the vectors run), with the wall time of each training.

    .venv/bin/python benchmarks/overlap_equivalence.py [--epochs 1000] [--seeds 0..3] [--N 100 10000]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time

import numpy as np

import loopdyn

NAMES = ("train_loss", "test_loss", "sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu", "sigma_mu", "sigma_zv",
         "sigma_mm", "sigma_zz", "sigma_uu", "sigma_vv", "spectral_radius", "gains")


def _cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
                platform.processor())


def compare(N: int, epochs: int, seeds: str) -> None:
    ds = {}
    for rep in ("vectors", "overlaps"):
        cfg = loopdyn.load_config("linear-rank1", [f"epochs={epochs}", f"agent.N={N}", "dtype='float64'",
                                                   f"agent.representation='{rep}'", f"record.chunk={min(epochs, 500)}"],
                                  seeds)
        out = tempfile.mkdtemp()
        t0 = time.perf_counter()
        path = loopdyn.train(cfg, f"{out}/{rep}.zarr", progress=False)
        wall = time.perf_counter() - t0
        ds[rep] = loopdyn.open_run(path)
        print(f"N = {N}: {rep:<8} {ds[rep].sizes['run']} runs x {epochs} epochs in {wall:.1f} s")
    worst = 0.0
    for name in NAMES:
        a, b = ds["vectors"][name].values, ds["overlaps"][name].values
        scale = np.nanmax(np.abs(a))
        dev = float(np.nanmax(np.abs(b - a)) / scale)
        worst = max(worst, dev)
        print(f"  {name:<16} max |overlaps - vectors| / max|vectors| = {dev:.2e}")
    print(f"  worst: {worst:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--seeds", default="0..3")
    ap.add_argument("--N", nargs="+", type=int, default=[100, 10000])
    args = ap.parse_args()
    print(f"machine: {_cpu()}; loopdyn {loopdyn.__version__}")
    for N in args.N:
        compare(N, args.epochs, args.seeds)


if __name__ == "__main__":
    main()
