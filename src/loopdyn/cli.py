"""The `loopdyn` command line: train, inspect, check, analyse and plot experiments.

Errors in the input or a store print one line (`loopdyn: error: ...`) and exit with code 2 (`--debug`
shows the cause). Ctrl-C during training finishes the chunk in progress, commits it, and exits with code
130 and the command that resumes; a second Ctrl-C stops at once (the store keeps its last commit).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _host_devices() -> int:
    """Host devices to expose to XLA: every core, and at least as many as a store being resumed was
    trained with (so that the resumed run is identical to an uninterrupted one)."""
    n = os.cpu_count() or 1
    argv = sys.argv[1:]
    if "--resume" in argv and argv.index("--resume") + 1 < len(argv):
        meta = os.path.join(argv[argv.index("--resume") + 1], "zarr.json")
        try:
            with open(meta) as fh:
                n = max(n, int(json.load(fh)["attributes"]["host_devices"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # the resume itself reports what is wrong with the store
    return n


# XLA runs one vmapped computation on a single CPU core; exposing every core as a device lets the trainer
# shard an ensemble across them. Must happen before JAX initialises its backend.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_host_devices()}").strip()

import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402

from .errors import Interrupted, LoopdynError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learning dynamics of RNNs trained in closed loop (Ger & Barak, NeurIPS 2025).")
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"loopdyn {__version__}")
        raise typer.Exit()


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="On an error, also print its cause (a traceback)."),
             version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print loopdyn's version and exit.")):
    _state["debug"] = debug


def _fail(e: Exception) -> None:
    if _state["debug"]:
        traceback.print_exception(e)
    if isinstance(e, OSError):  # what no layer turned into a sentence: the file, the cause, the fix
        from .store import os_error_line

        e = os_error_line(e)
    typer.echo(f"loopdyn: error: {e}", err=True)
    raise typer.Exit(2)


def _exit_now(signum=None, frame=None):
    """Leave at once with code 130: no interpreter teardown while XLA's threads may still be running."""
    sys.stderr.write("\nloopdyn: interrupted; a store being trained keeps its last committed chunk "
                     "(continue it with 'loopdyn train --resume STORE')\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(130)


class _StopAfterChunk:
    """SIGINT handler for training: the first Ctrl-C asks the trainer to stop after the current chunk is
    committed, the second stops at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            _exit_now()
        self.requested = True
        sys.stderr.write("\nloopdyn: stopping after the current chunk is saved (Ctrl-C again to stop at once)\n")
        sys.stderr.flush()

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self)
        self._watch_from_c()
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._wakeup[0])
            os.close(self._wakeup[1])  # the watcher reads end-of-file and ends

    def _watch_from_c(self):
        """Python runs a signal handler only between bytecodes, so during a long call into XLA (compiling
        an epoch takes seconds) the second Ctrl-C would wait for it. The C-level handler also writes each
        signal's number to a wakeup pipe; a thread that reads it leaves at the second SIGINT at once."""
        import threading

        self._wakeup = None
        try:
            r, w = os.pipe()
            os.set_blocking(w, False)
            previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):  # not the main thread (e.g. called from a test harness)
            return
        self._wakeup = (previous, w)

        def watch():
            count = 0
            with os.fdopen(r, "rb", buffering=0) as fh:
                while data := fh.read(64):
                    count += data.count(bytes([signal.SIGINT]))
                    if count >= 2:
                        _exit_now()

        threading.Thread(target=watch, name="loopdyn-second-ctrl-c", daemon=True).start()


@app.command()
def train(
    config: Optional[str] = typer.Argument(None, help="Config file (.toml) or shipped name, e.g. linear-rank1."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.lr=0.003 (repeatable)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds, e.g. 0..7 or 0,3,5."),
    out: Path = typer.Option(Path("results"), "--out", help="Directory for the store <name>.zarr."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted store."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="With --resume: continue a complete store to N epochs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Train on a local Dask cluster of N single-core worker processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Train on the Dask cluster at this address (tcp://HOST:PORT)."),
):
    """Train an experiment (all its phases) and record its learning trajectory to a Zarr store."""
    from . import config as cfg_mod
    from . import experiments

    try:
        with _StopAfterChunk() as stop:
            if resume is not None:
                if config is not None or set_ or seeds:
                    raise cfg_mod.ConfigError("--resume takes the configuration stored in the store; drop CONFIG, --set and --seeds")
                if epochs is not None:
                    if workers is not None or scheduler is not None:
                        raise cfg_mod.ConfigError("--epochs extends a store in this process; drop --workers/--scheduler")
                    path = experiments.extend(resume, epochs, progress=not quiet, should_stop=lambda: stop.requested)
                else:
                    path = experiments.resume(resume, progress=not quiet, should_stop=lambda: stop.requested,
                                              workers=workers, scheduler=scheduler)
            else:
                if epochs is not None:
                    raise cfg_mod.ConfigError("--epochs extends a store: give it with --resume STORE (for a new run, "
                                              "--set epochs=N)")
                if config is None:
                    raise cfg_mod.ConfigError("give a CONFIG (file or shipped name: " + ", ".join(cfg_mod.shipped()) + ") or --resume STORE")
                cfg = cfg_mod.load(config, set_, seeds)
                if out.exists() and not out.is_dir():
                    raise cfg_mod.ConfigError(f"--out {out}: is a file, not a directory; choose another --out")
                path = experiments.train(cfg, out / f"{cfg.name}.zarr", progress=not quiet,
                                         should_stop=lambda: stop.requested, workers=workers, scheduler=scheduler)
    except Interrupted as e:
        typer.echo(f"loopdyn: {e}", err=True)
        raise typer.Exit(130)
    except (LoopdynError, OSError) as e:
        _fail(e)
    typer.echo(f"store: {path}")


@app.command()
def info(store: Path = typer.Argument(..., help="A store written by 'loopdyn train'."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON (numbers as numbers, eigenvalues as [re, im]).")):
    """One row per run: seed, phase, hyper-parameters, final losses, stabilisation epoch, stages, eigenvalues."""
    from .report import format_table, run_table

    try:
        rows, meta = run_table(store)
    except (LoopdynError, OSError) as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps({"store": str(store), **meta, "runs": rows}, indent=1))
    else:
        typer.echo(format_table(rows, meta))


@app.command()
def check(store: Path = typer.Argument(..., help="A store written by 'loopdyn train'.")):
    """Verify a store: metadata, every committed chunk present and decodable, resume state, analysis."""
    from .store import check as check_store

    try:
        res = check_store(store)
    except (LoopdynError, OSError) as e:
        _fail(e)
    state = "complete" if res["complete"] else f"phase {res['phase']}, {res['epochs_done']} epochs committed"
    if res.get("holder"):
        state += f"; being trained now by {res['holder']}"
    typer.echo(f"{store}: ok ({res['arrays']} arrays, {res['chunks']} chunks checked; {state})")


@app.command()
def demo(out: Path = typer.Option(Path("results/demo"), "--out", help="Output directory."),
         epochs: int = typer.Option(1000, "--epochs", help="Epochs per run."),
         seeds: str = typer.Option("0..7", "--seeds", help="Seeds to train.")):
    """Train 8 seeds of linear-rank1, print the run table, write the store, a figure and a report."""
    from .report import demo as run_demo

    try:
        run_demo(out, epochs=epochs, seeds=seeds)
    except (LoopdynError, OSError) as e:
        _fail(e)


@app.command()
def analyze(store: Path = typer.Argument(..., help="A complete store written by 'loopdyn train'.")):
    """Write the analyses of the joint system into the store's analysis group (spectra, stages, the
    effective system, and the experiment's own theory runs), and print a summary."""
    from .experiments import analyze as run_analysis

    try:
        summary = run_analysis(store)
    except (LoopdynError, OSError) as e:
        _fail(e)
    typer.echo(summary)


@app.command()
def figures(name: str = typer.Argument(..., help="An experiment (closed-vs-open, stages, ...) or 'training'."),
            store: Path = typer.Argument(..., help="A store of that experiment."),
            out: Optional[Path] = typer.Option(None, "--out", help="Directory for the figures (default: figures/ beside the store)."),
            hue: Optional[str] = typer.Option(None, "--hue", help="'training': colour the runs by this per-run key (lr, seed, ...; default: the first swept key).")):
    """Draw an experiment's figures (PNG and PDF) from its store; 'training' draws the overview of any store."""
    from .experiments import figures as draw

    try:
        paths = draw(name, store, out, hue=hue)
    except (LoopdynError, OSError) as e:
        _fail(e)
    for p in paths:
        typer.echo(f"figure: {p}")


@app.command()
def view(store: Path = typer.Argument(..., help="A store written by 'loopdyn train'."),
         out: Optional[Path] = typer.Option(None, "--out", help="The HTML file (default: <store>-view.html beside the store)."),
         hue: Optional[str] = typer.Option(None, "--hue", help="Colour the runs by this per-run key (default: the first swept key).")):
    """Write one self-contained interactive HTML page of a store (no server, nothing fetched): loss curves and
    rho(P) per run with hover, the eigenvalues of P with a slider over epochs."""
    from .experiments import view as write_view

    try:
        page = write_view(store, out, hue=hue)
    except (LoopdynError, OSError) as e:
        _fail(e)
    typer.echo(f"page: {page}")


@app.command()
def reproduce(
    quick: bool = typer.Option(False, "--quick", help="Shortened protocols: fewer seeds and epochs (under 3 minutes on 2 cores)."),
    out: Path = typer.Option(Path("results/reproduce"), "--out", help="Output directory; an existing one is continued."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated experiments to run (default: all)."),
    set_: list[str] = typer.Option([], "--set", hidden=True, help="Override applied to every experiment (to shrink runs in tests)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", hidden=True, help="Seeds of every experiment (tests)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Train on a local Dask cluster of N worker processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Train on the Dask cluster at tcp://HOST:PORT."),
):
    """Train, analyse and draw every paper experiment (closed vs open, stages, the ablations, ...) into DIR
    and write DIR/index.html: figures captioned with the paper's claims and the measured numbers, stage
    boundaries over seeds, configs, versions and commit. Run it again to continue after an interruption."""
    from .reproduce import reproduce as run_reproduce

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    again = (f"loopdyn reproduce {'--quick ' if quick else ''}" + (f"--workers {workers} " if workers else "")
             + (f"--scheduler {scheduler} " if scheduler else "") + f"--out {out}")
    try:
        with _StopAfterChunk() as stop:
            index = run_reproduce(out, quick=quick, only=names, overrides=tuple(set_), seeds=seeds, progress=not quiet,
                                  should_stop=lambda: stop.requested, workers=workers, scheduler=scheduler)
    except Interrupted as e:
        typer.echo(f"loopdyn: interrupted ({e.path} at epoch {e.epoch}); continue with: {again}", err=True)
        raise typer.Exit(130)
    except (LoopdynError, OSError) as e:
        _fail(e)
    typer.echo(f"report: {index}")


@app.command()
def report(stores: list[Path] = typer.Argument(..., help="Stores written by 'loopdyn train' (analysed ones get their experiment's figures)."),
           out: Path = typer.Option(Path("results/report"), "--out", help="Directory for index.html and the figures.")):
    """Write an HTML report (DIR/index.html) of any stores: figures, stage boundaries over seeds, configs,
    versions and commit. The stores are only read."""
    from .reproduce import report as write_report

    try:
        index = write_report(stores, out)
    except (LoopdynError, OSError) as e:
        _fail(e)
    typer.echo(f"report: {index}")


@app.command()
def configs():
    """List the shipped configurations: the experiment each runs and its description."""
    import tomllib
    from importlib import resources

    for res in sorted(resources.files("loopdyn.configs").iterdir(), key=lambda r: r.name.removesuffix(".toml")):
        if res.name.endswith(".toml"):  # read as TOML only: listing them needs neither JAX nor the parts
            tables = tomllib.loads(res.read_text("utf-8"))
            typer.echo(f"{res.name[:-5]:<21} {tables.get('experiment', 'ensemble'):<21} {tables.get('description', '')}")


@app.command()
def keys(table: Optional[str] = typer.Argument(None, help="A table: top, train, teacher, start, record, sweep, plant, "
                                                          "task, agent, loss (every kind) or plant.KIND, or an "
                                                          "experiment's table (stages, ...); default: all.")):
    """Every key a config may hold: its type, default, allowed values and what it means."""
    from . import config as cfg_mod

    try:
        tables = cfg_mod.find_tables(table) if table else cfg_mod.config_tables()
    except (LoopdynError, OSError) as e:
        _fail(e)
    for t in tables:
        typer.echo(f"{t.title}  {t.doc}")
        for k in t.keys:
            choices = f"; choices: {k.choices}" if k.choices else ""
            typer.echo(f"  {k.name:<20} {k.type:<22} = {k.default:<12} {k.doc}{choices}")
        typer.echo("")


@app.command()
def experiments():
    """List the experiments (the values of a config's `experiment` key) and their figures."""
    from .experiments import REGISTRY

    for name, exp in sorted(REGISTRY.items()):
        typer.echo(f"{name:<16} {exp.description}; figures: {', '.join(exp.figure_names) or '-'}")


def main() -> None:
    """The console script (installed as `loopdyn`); Ctrl-C outside training leaves at once, code 130."""
    if sys.platform != "win32":
        signal.signal(signal.SIGINT, _exit_now)
    app()


if __name__ == "__main__":
    main()
