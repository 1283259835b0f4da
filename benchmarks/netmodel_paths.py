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

SHIPPED = "learning-rules-pendulum"


def condition_config() -> str:
    """The shipped config's `model-network` condition as a plain ensemble: its tables without the experiment, with
    the [gradient] table the experiment builds for that condition (from its [learning_rules] table)."""
    import tomllib
    from importlib import resources

    text = (resources.files("loopdyn.configs") / f"{SHIPPED}.toml").read_text()
    rules = tomllib.loads(text)["learning_rules"]
    body = "\n".join(ln for ln in text.split("[learning_rules]")[0].splitlines() if not ln.startswith("experiment ="))
    return (f'{body}\n[gradient]\nkind = "model"\nmodel = "{rules["model"]}"\nsigma = {rules["model_sigma"]}\n'
            f'replay = {rules["model_replay"]}\nvariance = true\n')



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
    (out / "netmodel-paths.toml").write_text(condition_config())
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
