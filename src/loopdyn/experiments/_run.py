"""Running experiments: train (or resume) their phases into one store, analyse it, draw its figures.

These are the functions behind `loopdyn.train`, `loopdyn.resume`, `loopdyn.analyze` and the CLI. Bad
input is refused before anything is written: the configuration, the output path, the teachers and start
stores, and the memory and disk the run will need.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from .. import config as cfg_mod
from ..analysis import analyze_store, summary_lines
from ..analysis import store_phases as read_phases
from ..errors import ConfigError, Interrupted, StoreError
from ..store import (StoreLock, check, create_store, open_run, open_sink, os_error_line, raw_dataset,
                     refuse_if_held)
from ..training import Trainer, make_groups
from ._base import get
from ._sources import sources_for, validate_sources
from ._units import check_scheduler, dask_client, run_units

MEMORY_FRACTION = cfg_mod.MEMORY_FRACTION  # of the machine's physical memory a run may plan to use


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_output(path: Path) -> None:
    """One-line errors for an output path that cannot hold a new store."""
    path = Path(path)
    try:
        name_max = os.pathconf(next(a for a in path.absolute().parents if a.exists()), "PC_NAME_MAX")
    except (OSError, ValueError, StopIteration):
        name_max = 255
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise StoreError(f"{path}: the path component {part[:24]}... is too long ({len(os.fsencode(part))} bytes, the "
                             f"file system allows {name_max}); use a shorter path")
    if path.exists():
        raise StoreError(f"{path}: already exists; choose another --out, delete it, or continue it with --resume {path}")
    parent = path.parent
    for ancestor in [parent, *parent.parents]:
        if (ancestor / "zarr.json").is_file():
            raise StoreError(f"{path}: would be created inside the store {ancestor}; give --out a directory that is not a store")
        if ancestor.exists():
            if not ancestor.is_dir():
                raise StoreError(f"{path}: {ancestor} is a file, not a directory; choose another --out")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise StoreError(f"{path}: cannot write in {ancestor} (permission denied); choose a writable --out")
            return


def check_resources(phases, path: Path) -> None:
    """Refuse (one line, with the numbers and the fix) a run that would not fit in memory or on disk."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = None
    disk_total = 0.0
    for cfg, label in phases:
        res = cfg_mod.estimate_resources(cfg)
        disk_total += res.disk
        if physical and res.memory > MEMORY_FRACTION * physical:
            parts = ", ".join(f"{k} {_gb(v)}" for k, v in res.parts.items())
            fix = ("fewer runs per store (seeds x sweep)" + (", a smaller record.chunk" if cfg.record.chunk > 1 else "")
                   + (", a smaller task.batch or task.T" if res.parts["activations for back-propagation"] > res.memory / 2 else ""))
            raise ConfigError(f"{cfg.source}: phase {label!r} needs about {_gb(res.memory)} of memory ({parts}) for "
                              f"{cfg_mod.n_runs(cfg)} runs; this machine has {_gb(physical)}. Use {fix}")
    existing = next(a for a in [path.parent, *path.parent.parents] if a.exists())
    free = shutil.disk_usage(existing).free
    if disk_total > 0.9 * free:
        cfg = phases[0][0]
        raise ConfigError(f"{cfg.source}: the store would need about {_gb(disk_total)} of disk, {existing} has "
                          f"{_gb(free)} free. Use a sparser record.checkpoint (e.g. 'log'), fewer epochs or fewer runs")


def train(cfg: cfg_mod.Config, store: str | Path | None = None, *, progress: bool = True, stop_after: int | None = None,
          should_stop: Callable[[], bool] | None = None, devices: int | None = None, workers: int | None = None,
          scheduler: str | None = None) -> Path:
    """Train every phase of `cfg`'s experiment into the store `store` (default `results/<name>.zarr`).

    **Arguments:** `cfg`: a :class:`loopdyn.config.Config`; `store`: the store's path; `progress`: show a bar;
    `stop_after`: stop once that many epochs (all phases together) are committed; `should_stop()`: polled
    after each committed chunk (raises :class:`loopdyn.errors.Interrupted`); `devices`: host devices to
    shard groups over (default: all this process has; recorded, and a resume uses the same number);
    `workers`: train the runs as units on a local Dask cluster of that many single-core processes;
    `scheduler`: … on the Dask cluster at that address (see :mod:`loopdyn.experiments._units`).

    **Returns:** the store's path.
    """
    path = Path(store) if store is not None else Path("results") / f"{cfg.name}.zarr"
    if scheduler is not None:
        check_scheduler(scheduler)
    phases = get(cfg.experiment).phases(cfg)
    check_output(path)
    check_resources(phases, path)
    groups = make_groups(phases)
    validate_sources(path, groups)  # a bad teacher or start store fails before anything is written
    if workers is not None or scheduler is not None:
        return _train_units(path, phases, groups, workers, scheduler, progress, should_stop)
    devices = len(jax.devices()) if devices is None else devices
    if should_stop is not None and should_stop():
        raise Interrupted(path, 0, 0)
    sink = create_store(path, phases, groups, devices=devices)
    return _run_trainer(path, phases, groups, sink, devices, progress, stop_after=stop_after, should_stop=should_stop)


def _run_trainer(path, phases, groups, sink, devices, progress, **run) -> Path:
    """Train into `sink` (holding the store's lock, released at the end)."""
    try:
        Trainer(phases, sink, sources=sources_for(path, groups), devices=devices, progress=progress, where=str(path),
                groups=groups).run(**run)
    finally:
        sink.lock.release()
    return path


def unit_memory(phases, workers: int | None) -> float:
    """Estimated memory of one unit on a worker: its phase's ensemble estimate shared over the workers
    (a unit holds about half a worker's share of a group's runs)."""
    if not workers:
        return 0.0
    return max(cfg_mod.estimate_resources(cfg).memory for cfg, _ in phases) / workers


def _train_units(path, phases, groups, workers, scheduler, progress, should_stop) -> Path:
    with dask_client(workers, scheduler, unit_memory(phases, workers)) as client:  # an unreachable scheduler fails before anything is written
        if should_stop is not None and should_stop():
            raise Interrupted(path, 0, 0)
        n = len(client.scheduler_info()["workers"])
        sink = create_store(path, phases, groups, devices=1, extra_attrs={"execution": "units", "unit_workers": n})
        try:
            run_units(path, client, progress=progress, should_stop=should_stop)
        finally:
            sink.lock.release()
    return path


def store_phases(path: Path) -> list[tuple[cfg_mod.Config, str]]:
    try:
        return read_phases(raw_dataset(path), str(path))
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"{path}: the stored configuration is unreadable ({type(e).__name__}: {e}); the store cannot "
                         f"be resumed") from e


def resume(path: str | Path, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
           workers: int | None = None, scheduler: str | None = None) -> Path:
    """Check a store and continue it from its last committed chunk (a complete store is left as it is).

    Results equal those of an uninterrupted run when the process has the store's number of host devices
    (`attrs["host_devices"]`; the CLI arranges this, in Python set `XLA_FLAGS` before JAX starts). A store
    trained as units continues unit by unit, on the Dask cluster of `workers`/`scheduler` or in this process.
    """
    path = Path(path)
    refuse_if_held(path, "resume")  # before the check: a store being trained is not damaged, it is busy
    info = check(path)
    if info["complete"]:
        return path
    if raw_dataset(path).attrs.get("execution") == "units":
        with dask_client(workers, scheduler, unit_memory(store_phases(path), workers)) as client, StoreLock(path, "resume"):
            return run_units(path, client, progress=progress, should_stop=should_stop)
    if workers is not None or scheduler is not None:
        raise ConfigError(f"{path}: was trained in one process; resume it without --workers/--scheduler")
    phases = store_phases(path)
    ds = raw_dataset(path)
    devices = int(ds.attrs.get("host_devices", 1))
    if len(jax.devices()) < devices:
        raise StoreError(f"{path}: was trained over {devices} host devices and this process has {len(jax.devices())}; "
                         f"resume it with 'loopdyn train --resume {path}', or set "
                         f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} before JAX starts")
    groups = make_groups(phases)
    return _run_trainer(path, phases, groups, open_sink(path, phases, groups), devices, progress, resume=True,
                        should_stop=should_stop)


def extend(path: str | Path, epochs: int, *, progress: bool = True, should_stop: Callable[[], bool] | None = None) -> Path:
    """Continue a complete store to `epochs` epochs (`loopdyn train --resume STORE --epochs N`); the result
    equals a store trained to `epochs` at once (same configuration, seeds and host devices).

    The store is rebuilt beside itself with the longer epoch axis, its committed epochs, checkpoints and
    training state copied, swapped into place, and trained on from its last epoch; its analysis is dropped
    (run `loopdyn analyze` again). One phase, trained in one process, checkpoints `every` or `every:K`
    (`log` spaces them by the total epochs), and a length that is a multiple of `record.chunk`. A process
    killed while it copies leaves `<store>.extending-<pid>` beside the intact store (delete it); killed between
    the two renames, the old store is at `<store>.before-extending-<pid>`."""
    from ..store import copy_prefix, load_state, save_state, write_progress

    path = Path(path)
    refuse_if_held(path, "extend")
    info = check(path)
    ds = raw_dataset(path)
    phases = store_phases(path)
    (cfg, label), E = phases[0], int(ds.attrs.get("epochs", 0))
    if not info["complete"]:
        raise ConfigError(f"{path}: training is incomplete; finish it with 'loopdyn train --resume {path}' first, then "
                          f"extend it with --epochs")
    if epochs == E:
        return path
    if epochs < E:
        raise ConfigError(f"--epochs {epochs}: the store already holds {E} epochs; give more than {E}")
    if len(phases) > 1 or ds.attrs.get("execution") == "units":
        raise ConfigError(f"{path}: only a store of one phase trained in one process can be extended; train the "
                          f"experiment again with 'loopdyn train --set epochs={epochs}'")
    if E % cfg.record.chunk:
        raise ConfigError(f"{path}: its {E} epochs are not a multiple of record.chunk = {cfg.record.chunk}; train it "
                          f"again with 'loopdyn train --set epochs={epochs}'")
    new_cfg = dataclasses.replace(cfg, epochs=int(epochs))
    old_ck, new_ck = np.asarray(ds.checkpoint.values), cfg_mod.checkpoint_epochs(new_cfg)
    kept = new_ck[new_ck < E]
    if not np.isin(kept, old_ck).all():
        raise ConfigError(f"{path}: record.checkpoint = {cfg.record.checkpoint!r} places checkpoints by the total "
                          f"epochs, so a longer run stores others; extend only stores with checkpoints 'every' or "
                          f"'every:K', or train again with 'loopdyn train --set epochs={epochs}'")
    devices = int(ds.attrs.get("host_devices", 1))
    if len(jax.devices()) < devices:
        raise StoreError(f"{path}: was trained over {devices} host devices and this process has {len(jax.devices())}; "
                         f"extend it with 'loopdyn train --resume {path} --epochs {epochs}'")
    new_phases = [(new_cfg, label)]
    groups = make_groups(new_phases)
    staging = path.with_name(f"{path.name}.extending-{os.getpid()}")
    backup = path.with_name(f"{path.name}.before-extending-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    with StoreLock(path, "extend"):
        sink = create_store(staging, new_phases, groups, devices=devices, ckpts=new_ck,
                            extra_attrs={"extended_from": E})
        try:
            copy_prefix(path, staging, E, [int(np.searchsorted(old_ck, c)) for c in kept])
            save_state(staging, 0, E, load_state(path, 0, E))
            write_progress(staging, 0, E, 1, False)
        except BaseException:
            sink.lock.release()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.rename(path, backup)
        os.rename(staging, path)
    shutil.rmtree(backup, ignore_errors=True)
    sink.path = sink.lock.path = path
    return _run_trainer(path, new_phases, groups, sink, devices, progress, resume=True, should_stop=should_stop)


def view(path: str | Path, out: str | Path | None = None, *, hue: str | None = None) -> Path:
    """Write the interactive page of a store (:func:`loopdyn.plots.view_page`) to `out` (default:
    `<store>-view.html` beside the store); returns its path. The store is only read."""
    from ..plots import view_page

    path = Path(path)
    out = Path(out) if out is not None else path.with_name(f"{path.name.removesuffix('.zarr')}-view.html")
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; give the path of the HTML file to write")
    check(path, analysis=False)
    return view_page(open_run(path, analysis=False), out, title=path.name, hue=hue)


def experiment_of(ds) -> str:
    return str(ds.attrs.get("experiment") or ds.attrs["config"].get("experiment", "ensemble"))


def analyze(path: str | Path) -> str:
    """Check a complete store, write its analyses (those of every run and of its experiment) into its
    analysis group, and return the summary text (:mod:`loopdyn.analysis`)."""
    path = Path(path)
    refuse_if_held(path, "analyse")
    check(path, analysis=False)  # the analysis is what this replaces
    name = experiment_of(raw_dataset(path))
    exp = get(name)
    result = analyze_store(path, extra=[exp.analyse], experiment=name)
    return "\n".join([f"analysis of {path}", *summary_lines(result.numbers), *exp.summary_lines(result.numbers)])


def figures(name: str, path: str | Path, outdir: str | Path | None = None, *, hue: str | None = None) -> list[Path]:
    """Draw experiment `name`'s figures (or `training`, the overview of any store, its runs coloured by the
    per-run coordinate `hue`: default the first swept key) from a store as PNG and PDF."""
    from ..plots import save_figures, training_figure

    path = Path(path)
    outdir = Path(outdir) if outdir is not None else path.parent / "figures"
    check(path)
    ds = open_run(path)
    if name == "training":
        figs = {f"{path.stem}-training": training_figure(ds, hue=hue)}
    else:
        if hue is not None:
            raise ConfigError(f"--hue {hue}: only 'loopdyn figures training' colours by a key")
        exp = get(name)
        stored = experiment_of(ds)
        if stored != name:
            raise StoreError(f"{path}: a store of the {stored!r} experiment, not of {name!r}; draw its own figures with "
                             f"'loopdyn figures {stored} {path}' (or 'training')")
        figs = exp.figures(ds)
    return _save_all_or_nothing(save_figures, figs, outdir)


def _save_all_or_nothing(save, figs, outdir: Path) -> list[Path]:
    """Save the figures; when a write fails, remove what this call wrote (and `outdir` if it made it) and
    raise one line."""
    made = [a for a in [outdir, *outdir.parents] if not a.exists()]
    before = set(outdir.iterdir()) if outdir.is_dir() else set()
    try:
        return save(figs, outdir)
    except OSError as e:
        if outdir.is_dir():
            for f in set(outdir.iterdir()) - before:
                f.unlink(missing_ok=True)
        for d in made:  # innermost first
            with contextlib.suppress(OSError):
                d.rmdir()
        raise StoreError(f"{os_error_line(e, outdir)}; no figure was written to {outdir}") from e

