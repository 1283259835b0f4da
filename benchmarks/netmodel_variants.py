"""Variants of the network model on the inverted pendulum (docs/learning-rules.md), each the `model-network`
condition of `learning-rules-pendulum` alone with one `gradient` parameter changed, same seeds: by default its two
gradient paths, `path = "model"` (BPTT through a rollout of the fitted model) against `path = "observed"` (through
the model's linearisation along the observed transitions); `--vary hidden=32,8` compares the widths of its hidden
layer.

Trains one store per (value, activation) with `loopdyn train` (one process each; an existing store is reused), then
prints per activation the final test loss (median [IQR] over seeds), the model error of the last 50 epochs, and
the paired comparison per seed of each value against the first (Wilcoxon signed-rank).

    python benchmarks/netmodel_variants.py [--vary path=model,observed] [--seeds 0..63] [--epochs 1000]
        [--agents linear,tanh] [--out results/netmodel-variants]
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
    ap.add_argument("--vary", default="path=model,observed", help="a gradient parameter and its values, the first "
                                                                  "the reference: NAME=V1,V2,...")
    ap.add_argument("--out", default="results/netmodel-variants")
    args = ap.parse_args()
    import numpy as np
    import xarray as xr
    from scipy.stats import wilcoxon

    name, values = args.vary.split("=", 1)
    values = values.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "netmodel-variants.toml").write_text(condition_config())
    for act in args.agents.split(","):
        final = {}
        for v in values:
            value = v if v.lstrip("-").replace(".", "", 1).isdigit() else f'"{v}"'  # a TOML value
            tag = f"netmodel-{name}-{v}-{act}"
            store = out / f"{tag}.zarr"
            if not store.exists():
                subprocess.run([sys.executable, "-m", "loopdyn_cli", "train", str(out / "netmodel-variants.toml"),
                                "--seeds", args.seeds, "--set", f"epochs={args.epochs}", "--set", f'name="{tag}"',
                                "--set", f"gradient.{name}={value}", "--set",
                                f'agent.activation="{act}"', "--out", str(out), "--quiet"], check=True)
            ds = xr.open_zarr(store)
            final[v] = tl = ds.test_loss.values[:, -1]
            q = np.percentile(tl, [25, 50, 75])
            print(f"{act:6s} {name} = {v:8s} final test loss {q[1]:.4g} [{q[0]:.4g}, {q[2]:.4g}] over {len(tl)} "
                  f"seeds; model_error (last 50 epochs, median) {np.nanmedian(ds.model_error.values[:, -50:]):.3g}",
                  flush=True)
        ref = final[values[0]]
        for v in values[1:]:
            x = final[v]
            print(f"{act:6s} {name} = {v} vs {values[0]}, per seed: lower in {np.sum(x < ref)}/{len(x)}, median ratio "
                  f"{np.median(x / ref):.3f}, Wilcoxon p = {wilcoxon(x, ref).pvalue:.2g}", flush=True)


if __name__ == "__main__":
    main()
