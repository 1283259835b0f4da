"""The network model's two gradient paths on the inverted pendulum (docs/learning-rules.md): `path = "model"` (BPTT
through a rollout of the fitted model, the default) against `path = "observed"` (through the model's linearisation
along the observed transitions), the `model-network` condition of `learning-rules-pendulum` alone, same seeds.

Trains one store per (path, activation) with `loopdyn train` (one process each), then prints per activation the
final test loss (median [IQR] over seeds), the model error of the last 50 epochs, and the paired comparison per
seed (Wilcoxon signed-rank).

    python benchmarks/netmodel_paths.py [--seeds 0..63] [--epochs 1000] [--out results/netmodel-paths]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CONFIG = """name = "netmodel-paths"
description = "learning-rules-pendulum's model-network condition alone (rank-1 RNN N = 100, inverted pendulum)"
epochs = 1000
seeds = "0..63"
dtype = "float32"

[plant]
kind = "inverted_pendulum"
observed = "angle"

[task]
T = 50
batch = 100
x0_range = 0.5
loss = "mean"
beta = 0.0
test_batch = 100
test_loss = "mean_xv"

[agent]
N = 100
rank = 1
activation = "linear"
g = 0.0
init = "lowrank"
trainable = ["z", "U", "V"]

[train]
mode = "closed_loop"
optimizer = "sgd"
lr = 0.01
clip = 1.0

[record]
chunk = 50
checkpoint = "log"
n_log = 60

[gradient]
kind = "model"
model = "network"
sigma = 0.1
replay = 10
variance = true
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0..63")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--agents", default="linear,tanh")
    ap.add_argument("--out", default="results/netmodel-paths")
    args = ap.parse_args()
    import numpy as np
    import xarray as xr
    from scipy.stats import wilcoxon

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "netmodel-paths.toml").write_text(CONFIG)
    for act in args.agents.split(","):
        final = {}
        for path in ("model", "observed"):
            name = f"netmodel-{path}-{act}"
            store = out / f"{name}.zarr"
            if not store.exists():
                subprocess.run([sys.executable, "-m", "loopdyn_cli", "train", str(out / "netmodel-paths.toml"),
                                "--seeds", args.seeds, "--set", f"epochs={args.epochs}", "--set", f'name="{name}"',
                                "--set", f'gradient.path="{path}"', "--set", f'agent.activation="{act}"', "--out",
                                str(out), "--quiet"], check=True)
            ds = xr.open_zarr(store)
            final[path] = tl = ds.test_loss.values[:, -1]
            q = np.percentile(tl, [25, 50, 75])
            print(f"{act:6s} path {path:8s} final test loss {q[1]:.4g} [{q[0]:.4g}, {q[2]:.4g}] over {len(tl)} seeds; "
                  f"model_error (last 50 epochs, median) {np.nanmedian(ds.model_error.values[:, -50:]):.3g}", flush=True)
        x, y = final["observed"], final["model"]
        print(f"{act:6s} observed vs model, per seed: lower in {np.sum(x < y)}/{len(x)}, median ratio "
              f"{np.median(x / y):.3f}, Wilcoxon p = {wilcoxon(x, y).pvalue:.2g}", flush=True)


if __name__ == "__main__":
    main()
