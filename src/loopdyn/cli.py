"""The `loopdyn` command line: train, inspect, analyse and plot experiments."""

from __future__ import annotations

import os

# XLA runs one vmapped computation on a single CPU core; exposing every core as a device lets
# the trainer shard an ensemble across them. Must happen before JAX initialises its backend.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count() or 1}").strip()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402

from ._config import ConfigError  # noqa: E402
from .store import StoreError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learning dynamics of RNNs trained in closed loop (Ger & Barak, NeurIPS 2025).")
figures_app = typer.Typer(no_args_is_help=True, help="Draw the paper's figures from a store.")
app.add_typer(figures_app, name="figures")


def _fail(e: Exception) -> None:
    typer.echo(f"loopdyn: error: {e}", err=True)
    raise typer.Exit(2)


@app.command()
def train(
    config: Optional[str] = typer.Argument(None, help="Config file (.toml) or shipped name, e.g. linear-rank1."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.lr=0.003 (repeatable)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds, e.g. 0..7 or 0,3,5."),
    out: Path = typer.Option(Path("results"), "--out", help="Directory for the store <name>.zarr."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted store."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Train an ensemble and record its learning trajectory to a Zarr store."""
    from . import _config
    from .experiments import run_experiment

    try:
        if resume is not None:
            if config is not None or set_ or seeds:
                raise ConfigError("--resume takes the configuration stored in the store; drop CONFIG, --set and --seeds")
            path = run_experiment(None, resume=resume, progress=not quiet)
        else:
            if config is None:
                raise ConfigError("give a CONFIG (file or shipped name: " + ", ".join(_config.shipped()) + ") or --resume STORE")
            cfg = _config.load(config, set_, seeds)
            path = run_experiment(cfg, out=out, progress=not quiet)
    except (ConfigError, StoreError) as e:
        _fail(e)
    typer.echo(f"store: {path}")


@app.command()
def info(store: Path = typer.Argument(..., help="A store written by 'loopdyn train'."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """One row per run: seed, hyper-parameters, final losses, stabilisation epoch, dominant eigenvalues."""
    from .report import run_table, format_table

    try:
        rows, meta = run_table(store)
    except (StoreError, ConfigError) as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps({"store": str(store), **meta, "runs": rows}, indent=1, default=str))
    else:
        typer.echo(format_table(rows, meta))


@app.command()
def demo(out: Path = typer.Option(Path("results/demo"), "--out", help="Output directory."),
         epochs: int = typer.Option(1000, "--epochs", help="Epochs per run."),
         seeds: str = typer.Option("0..7", "--seeds", help="Seeds to train.")):
    """Train 8 seeds of linear-rank1, print the run table, write the store, a figure and a report."""
    from .report import demo as run_demo

    try:
        run_demo(out, epochs=epochs, seeds=seeds)
    except (ConfigError, StoreError) as e:
        _fail(e)


@app.command()
def analyze(store: Path = typer.Argument(..., help="A store written by 'loopdyn train'.")):
    """Add the analyses of the joint system to a store: spectra (Jacobian at the origin for nonlinear
    agents), effective-system check, stages, stage-2 quantities, and the experiment's theory runs."""
    from .analysis._store import analyze_store

    try:
        summary = analyze_store(store)
    except (StoreError, ConfigError) as e:
        _fail(e)
    typer.echo(summary)


@figures_app.command("training")
def figures_training(store: Path = typer.Argument(...), out: Optional[Path] = typer.Option(None, "--out")):
    """Loss curves and spectral radius per run (PNG)."""
    from .report import plot_training
    from .store import open_run

    try:
        ds = open_run(store)
    except StoreError as e:
        _fail(e)
    target = (out or store.parent) / f"{store.stem}-training.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    plot_training(ds, target)
    typer.echo(f"figure: {target}")


def _draw(draw, store: Path, out: Optional[Path]) -> None:
    try:
        paths = draw(store, out or store.parent / "figures")
    except (StoreError, ConfigError) as e:
        _fail(e)
    for p in paths:
        typer.echo(f"figure: {p}")


@figures_app.command("closed-vs-open")
def figures_closed_vs_open(store: Path = typer.Argument(...), out: Optional[Path] = typer.Option(None, "--out")):
    """Fig 1c and Fig 2 (PNG and PDF) from a closed-vs-open store."""
    from .plots._closed_vs_open import draw

    _draw(draw, store, out)


@figures_app.command("stages")
def figures_stages(store: Path = typer.Argument(...), out: Optional[Path] = typer.Option(None, "--out")):
    """Figs 3, 4 and 5 (PNG and PDF) from a stages store (run 'loopdyn analyze' first)."""
    from .plots._stages import draw

    _draw(draw, store, out)


@app.command()
def configs():
    """List the shipped configurations."""
    from . import _config

    for name in _config.shipped():
        typer.echo(name)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("loopdyn: interrupted; continue with 'loopdyn train --resume STORE'", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
