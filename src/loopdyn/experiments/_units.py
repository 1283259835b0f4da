"""Sweeps that outgrow one process: an experiment's runs as independent *units*, executed in this process
or on a Dask cluster, each into its own small store, merged into the experiment's store phase by phase.

A unit is `(phase, group, runs lo..hi)`: a block of a compiled group's runs, trained for all the phase's
epochs into `<store>/units/p<phase>-g<group>-<lo>-<hi>.zarr` (an ordinary store: chunked commits, lock,
resume). When every unit of a phase is complete, the merge copies their arrays into the experiment's store
(run rows of their group), commits the phase there, and the next phase's units start (they may read their
teachers and start parameters from it). A vmapped run's numbers do not depend on which other runs share its
ensemble, so the merged store equals the store of an in-process run with the same device layout.

Nothing is lost: `--resume` skips complete units, resumes incomplete ones from their last chunk and merges;
a worker that dies is replaced by its nanny and its unit retried (from the unit's last commit); a unit that
fails twice is reported with its error while the others complete.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import config as cfg_mod
from ..analysis import store_phases
from ..errors import ConfigError, StoreError
from ..errors import Interrupted
from ..store import create_store, merge_runs, open_group, open_sink, raw_dataset, read_progress, write_progress
from ..training import Group, Trainer, make_groups

UNITS_DIR = "units"
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Unit:
    """A block of one compiled group's runs: store run indices `group.runs[lo:hi]`."""

    phase: int
    group: int
    lo: int
    hi: int

    @property
    def name(self) -> str:
        return f"p{self.phase}-g{self.group}-{self.lo}-{self.hi}"


def plan_units(groups: list[Group], workers: int, min_runs: int = 8) -> list[Unit]:
    """Split every group into blocks: about two per worker (for balance), of at least `min_runs` runs
    (so each stays a vmapped ensemble of sensible size)."""
    units = []
    for g in groups:
        n = len(g.runs)
        parts = max(1, min(math.ceil(n / min_runs), 2 * max(workers, 1)))
        size = math.ceil(n / parts)
        units += [Unit(g.phase, g.index, lo, min(lo + size, n)) for lo in range(0, n, size)]
    return units


def _subgroup(group: Group, lo: int, hi: int) -> Group:
    return Group(0, 0, group.label, group.cfg, list(range(hi - lo)), group.problem,
                 {k: v[lo:hi] for k, v in group.hyper.items()}, group.seeds[lo:hi], group.values[lo:hi])


def _phases(path: Path):
    return store_phases(raw_dataset(path), str(path))


def run_unit(store: str, unit: Unit, devices: int | None = None) -> str:
    """Train one unit into its own store (or resume it); returns its path. Runs on a worker."""
    import jax

    from ._sources import sources_for

    path = Path(store)
    phases = _phases(path)
    groups = make_groups(phases)
    group = groups[unit.group]
    sub = _subgroup(group, unit.lo, unit.hi)
    sources = sources_for(path, groups)

    def unit_sources(g):
        src = sources(group)  # the whole group's teachers/starts, sliced to the unit's runs
        cut = (lambda a: None if a is None else jax.tree.map(lambda x: np.asarray(x)[unit.lo:unit.hi], a))
        return type(src)(cut(src.teacher), cut(src.start), None if src.start_epochs is None else src.start_epochs[unit.lo:unit.hi])

    target = path / UNITS_DIR / f"{unit.name}.zarr"
    phase = [phases[unit.phase]]
    ckpts = cfg_mod.checkpoint_epochs(max((c for c, _ in phases), key=lambda c: c.epochs))
    devices = len(jax.devices()) if devices is None else devices
    if target.exists():
        if read_progress(target)["complete"]:
            return str(target)
        sink = open_sink(target, phase, [sub], ckpts=ckpts)
        resume = True
    else:
        sink = create_store(target, phase, [sub], devices=devices, ckpts=ckpts, extra_attrs={"unit_of": str(path)})
        resume = False
    try:
        Trainer(phase, sink, sources=unit_sources, devices=devices, progress=False, where=str(target),
                groups=[sub]).run(resume=resume)
    finally:
        sink.lock.release()
    return str(target)


def merge_phase(path: Path, phases, groups: list[Group], units: list[Unit], phase: int) -> None:
    """Copy every unit of `phase` into the experiment's store and commit the phase there."""
    E = phases[phase][0].epochs
    mine = [u for u in units if u.phase == phase]
    for unit in mine:  # never commit a phase over a unit that did not finish
        store = path / UNITS_DIR / f"{unit.name}.zarr"
        if not (store / "zarr.json").is_file() or not read_progress(store)["complete"]:
            raise StoreError(f"{path}: unit {unit.name} of phase {phases[phase][1]!r} has not finished; the phase is not "
                             f"merged — continue with 'loopdyn train --resume {path}'")
    for unit in mine:
        merge_runs(path / UNITS_DIR / f"{unit.name}.zarr", path, groups[unit.group].runs[unit.lo: unit.hi], E)
    write_progress(path, phase, E, len(phases), complete=phase == len(phases) - 1)


WORKER_MEMORY = 0.6e9
"""Bytes a worker process takes before its unit's own arrays (Python, JAX, loopdyn, Dask; measured
0.3-0.5 GB resident on the 2-core machine)."""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_workers(workers: int, unit_memory: float = 0.0) -> None:
    """Refuse (one line, with the numbers) a local cluster that the machine cannot hold: one core per
    single-threaded worker, and memory for each worker's process and its unit."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give a positive number of worker processes")
    cores = usable_cores()
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = None
    per_worker = WORKER_MEMORY + unit_memory
    by_memory = int(cfg_mod.MEMORY_FRACTION * physical // per_worker) if physical else workers
    limit = max(1, min(cores, by_memory))
    if workers > limit:
        mem = f"{physical / 1e9:.1f} GB of memory ({per_worker / 1e9:.2f} GB per worker)" if physical else "unknown memory"
        raise ConfigError(f"--workers {workers}: this machine has {cores} cores (one single-threaded worker each) and "
                          f"{mem}, room for at most {limit} worker{'s' if limit > 1 else ''}; use --workers {limit}, or --scheduler with a "
                          f"larger cluster")


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None, unit_memory: float = 0.0):
    """`with dask_client(workers, scheduler) as client:` a Dask client of a `LocalCluster` of `workers`
    single-threaded processes (each one host device, sharing a compilation cache: :data:`COMPILE_CACHE_ENV`), or
    of the scheduler at `scheduler`; `None` when neither is given (units then run in this process). One-line errors when it cannot be had: at once where
    nothing listens at the address, else within CONNECT_TIMEOUT_S (5 s);
    or when the machine cannot hold `workers` processes of `unit_memory` bytes each (:func:`check_workers`)."""
    if workers is None and scheduler is None:
        yield None
        return
    if scheduler is None:
        check_workers(workers, unit_memory)
    cache = None
    if scheduler is None and COMPILE_CACHE_ENV not in os.environ:
        cache = tempfile.mkdtemp(prefix="loopdyn-xla-cache-")
    client, cluster = _connect(workers, scheduler, cache)
    quiet = _QuietDistributed()
    try:
        yield client
    finally:
        with quiet:  # a lost scheduler is reported in one line, not in Dask's reconnection logs
            client.close()
            if cluster is not None:
                cluster.close()
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


COMPILE_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
"""JAX's persistent compilation cache, shared by the workers of a local cluster: a unit whose program another unit
compiled loads it instead of compiling (the same executable: the same numbers). Unless the environment already
sets the variable (to a directory; empty: no cache), `--workers` gives its workers a temporary one, removed with the
cluster (`docs/scaling.md`)."""


def _connect(workers: int | None, scheduler: str | None, cache: str | None = None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("--workers/--scheduler need dask.distributed; pip install 'dask[distributed]'") from e
    if scheduler is not None:
        unreachable = _UNREACHABLE.format(scheduler=scheduler, timeout=CONNECT_TIMEOUT_S, why="{}")
        check_scheduler(scheduler)
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), None
        except (OSError, TimeoutError) as e:
            raise ConfigError(unreachable.format(type(e).__name__)) from e
    if workers is None or workers < 1:
        raise ConfigError(f"--workers {workers}: give a positive number of worker processes")
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=1", "OMP_NUM_THREADS": "1"}
    if cache is not None:
        env[COMPILE_CACHE_ENV] = cache
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=50, env=env)
    return Client(cluster), cluster


class _QuietDistributed:
    """Dask's loggers above CRITICAL while it reports reconnection attempts and closes (ours says it in one
    line); `__init__` already silences them for the life of the client."""

    NAMES = ("distributed", "distributed.client", "distributed.batched", "distributed.core", "distributed.comm",
             "tornado", "asyncio")

    def __init__(self):
        import logging

        self.loggers = [logging.getLogger(n) for n in self.NAMES]
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.CRITICAL + 1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


_UNREACHABLE = ("--scheduler {scheduler}: no Dask scheduler answered within {timeout} s ({why}); start one "
                "(dask scheduler) or check the address")


def check_scheduler(address: str) -> None:
    """Refuse at once an address where nothing listens (Dask would retry until its timeout); called before
    anything else is prepared."""
    message = _UNREACHABLE.format(scheduler=address, timeout=CONNECT_TIMEOUT_S, why="{}")
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"--scheduler {address}: not an address; give tcp://HOST:PORT") from None
    if parts.scheme not in ("tcp", "tls") or not host or port is None:
        raise ConfigError(f"--scheduler {address}: not an address; give tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(message.format(e.strerror or type(e).__name__)) from None


def run_units(path: Path, client=None, *, progress: bool = True,
              should_stop: Callable[[], bool] | None = None) -> Path:
    """Train (or continue) an experiment's store unit by unit; see the module docstring.

    The caller holds the experiment store's lock; `client`: a Dask client (:func:`connect`), or `None` to
    run the units in this process, one after the other."""
    phases = _phases(path)
    groups = make_groups(phases)
    n_workers = len(client.scheduler_info()["workers"]) if client is not None else 1
    units = plan_units(groups, int(open_group(path, mode="r").attrs.get("unit_workers", n_workers)))
    first = read_progress(path)
    start_phase = first["phase"] + 1 if first["epochs_done"] >= phases[first["phase"]][0].epochs else first["phase"]
    if first["epochs_done"] == 0 and not first["complete"]:
        start_phase = 0
    for p in range(start_phase, len(phases)):
        todo = [u for u in units if u.phase == p]
        failed = _execute(client, str(path), todo, progress, f"{phases[p][0].name} [{phases[p][1]}]", should_stop)
        if failed is None:
            raise Interrupted(path, p, None)
        if failed:
            lines = "; ".join(f"unit {u.name}: {type(e).__name__}: {e}" for u, e in failed)
            raise StoreError(f"{path}: {len(failed)} of {len(todo)} units of phase {phases[p][1]!r} failed twice "
                             f"({lines}); fix the cause and continue with 'loopdyn train --resume {path}'")
        merge_phase(path, phases, groups, units, p)
    shutil.rmtree(path / UNITS_DIR, ignore_errors=True)
    return path


def _execute(client, store: str, units: list[Unit], progress: bool, title: str,
             should_stop: Callable[[], bool] | None) -> list[tuple[Unit, Exception]] | None:
    """Run `units`; returns those that failed (after one retry), or `None` when stopped on request (the
    finished units and the unfinished ones' committed chunks are kept)."""
    stop = should_stop or (lambda: False)
    from rich.progress import Progress

    failed = []
    bar = Progress(transient=False) if progress else None
    if bar:
        bar.start()
        from rich.markup import escape

        task = bar.add_task(escape(f"{title} units"), total=len(units))  # "[label]" is text, not markup
    try:
        if client is None:
            for u in units:
                if stop():
                    return None
                try:
                    run_unit(store, u, 1)  # one host device, as on a worker: the same numbers
                except StoreError:
                    raise
                except Exception as e:
                    try:
                        run_unit(store, u, 1)  # once more, as a cluster would
                    except Exception:
                        failed.append((u, e))
                if bar:
                    bar.advance(task)
            return failed
        from dask.distributed import as_completed

        futures = {client.submit(run_unit, store, u, 1, retries=1, pure=False, key=f"loopdyn-{u.name}-{time.time_ns()}"): u
                   for u in units}
        pending, finished, lost = as_completed(futures), 0, []
        while finished < len(futures):
            batch = pending.next_batch(block=False)
            if not batch:
                time.sleep(0.2)
            for fut in batch:
                finished += 1
                if fut.status == "error":
                    failed.append((futures[fut], fut.exception()))
                elif fut.status != "finished":  # cancelled or lost: the scheduler went away
                    lost.append(futures[fut])
                if bar:
                    bar.advance(task)
            if lost or client.status in ("closing", "closed"):
                done = sum(f.status == "finished" for f in futures)
                raise StoreError(f"{store}: lost the Dask scheduler {getattr(client.scheduler, 'address', '')} "
                                 f"during {title} ({done} of {len(futures)} units finished; they and the others' committed "
                                 f"chunks are kept); start a scheduler and workers, then continue with 'loopdyn train "
                                 f"--resume {store} --scheduler ADDRESS'")
            if stop():
                client.cancel(list(futures))
                return None
        return failed
    finally:
        if bar:
            bar.stop()

