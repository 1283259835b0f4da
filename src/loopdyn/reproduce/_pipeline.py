"""Running every paper experiment into one directory, resumably, and writing its report.

`DIR` holds `stores/<name>.zarr` (one store per experiment), `figures/<experiment>/` (PNG and PDF),
`summaries/<experiment>.txt` (the `loopdyn analyze` summary), `reproduce.log` (what ran, when, how long),
`reproduce.json` (the protocol and the steps done) and `index.html`. Each experiment goes through three
steps — train (or resume an incomplete store), analyse, draw — and a step whose result is already in
`DIR` is skipped, so running the same command again after an interruption continues where it stopped.
"""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import config as cfg_mod
from ..errors import ConfigError, Interrupted, LoopdynError, StoreError
from ..analysis import store_statistics
from ..experiments import REGISTRY, Experiment, analyze, figures, get, resume, train
from ..plots import save_figures, training_figure
from ..store import analysis_mtime, check, open_run, raw_dataset, read_analysis, read_progress
from ._page import Section, write_page

MANIFEST = "reproduce.json"
LOG = "reproduce.log"


@dataclass
class Item:
    """One experiment of a reproduce run: its configuration (protocol applied) and where its results go."""

    name: str
    experiment: Experiment
    cfg: cfg_mod.Config
    sets: tuple[str, ...]
    seeds: str | None
    store: Path
    figdir: Path

    @property
    def phases(self):
        return self.experiment.phases(self.cfg)

    @property
    def protocol(self) -> str:
        changes = [*self.sets] + ([f"seeds={self.seeds}"] if self.seeds else [])
        epochs = ", ".join(f"{label} {c.epochs}" for c, label in self.phases)
        return (f"shipped config '{self.experiment.reproduce.config}'" + (" with " + ", ".join(changes) if changes else "")
                + f": {len(self.cfg.seeds)} seed(s); epochs per phase: {epochs}")


def participants(only: list[str] | None = None) -> list[Experiment]:
    """The registered experiments that declare `reproduce`, in their `order` (all, or those named in `only`)."""
    exps = sorted((e for e in REGISTRY.values() if e.reproduce is not None), key=lambda e: (e.reproduce.order, e.name))
    if only:
        known = {e.name for e in exps}
        bad = [n for n in only if n not in known]
        if bad:
            raise ConfigError(f"--only {bad[0]!r} is not an experiment of 'loopdyn reproduce'; choose from {', '.join(sorted(known))}")
        exps = [e for e in exps if e.name in only]
    return exps


def plan(out: str | Path, *, quick: bool = False, only: list[str] | None = None, overrides: tuple[str, ...] = (),
         seeds: str | None = None) -> list[Item]:
    """The experiments of a reproduce run with their configurations, validated before anything runs.

    **Arguments:** `out`: the output directory; `quick`: the shortened protocols (each experiment's
    `reproduce.quick` overrides and seeds); `only`: experiment names; `overrides`, `seeds`: `--set`
    overrides and seeds applied to every experiment after the protocol's (to shrink a run further, e.g. in
    tests).
    """
    out = Path(out)
    items = []
    for exp in participants(only):
        d = exp.reproduce
        sets = tuple(d.quick if quick else d.full) + tuple(overrides)
        s = seeds or (d.quick_seeds if quick else d.full_seeds)
        cfg = cfg_mod.load(d.config, list(sets), s)
        if cfg.experiment != exp.name:
            raise ConfigError(f"{d.config}: runs experiment {cfg.experiment!r}, but is declared by {exp.name!r} for reproduce")
        items.append(Item(exp.name, exp, cfg, sets, s, out / "stores" / f"{cfg.name}.zarr", out / "figures" / exp.name))
    return items


# ------------------------------------------------------------------------------------------ bookkeeping
class _Log:
    """`reproduce.log`: one time-stamped line per event, flushed at once (a crash loses nothing)."""

    def __init__(self, path: Path):
        self.fh = open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in str(msg).splitlines() or [""]:
            self.fh.write(f"{stamp}  {line}\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StoreError(f"{out / MANIFEST}: unreadable ({e}); delete it, or choose another --out") from e


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / f"{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)


def _protocol_key(quick: bool, overrides, seeds) -> dict:
    return {"mode": "quick" if quick else "full", "overrides": list(overrides), "seeds": seeds}


def _check_same_protocol(out: Path, manifest: dict | None, key: dict) -> None:
    if manifest is None:
        return
    old = {k: manifest.get(k) for k in key}
    if old != key:
        flag = "--quick " if old["mode"] == "quick" else ""
        raise ConfigError(f"{out}: holds a {old['mode']} reproduce (overrides {old['overrides']}, seeds {old['seeds']}); "
                          f"continue it with 'loopdyn reproduce {flag}--out {out}' with the same options, or choose another --out")


def _check_store_matches(item: Item) -> None:
    """A store already in DIR must have been trained with the planned phases (same protocol)."""
    stored = raw_dataset(item.store).attrs.get("phases")
    planned = json.loads(json.dumps([[label, cfg_mod.to_dict(c)] for c, label in item.phases]))
    if stored != planned:
        raise StoreError(f"{item.store}: was trained with other settings than this reproduce plans; delete it (or the "
                         f"whole --out directory) to train it again")


class _Bars:
    """One progress bar per experiment (epochs of all its phases, ETA), and a status column."""

    def __init__(self, items: list[Item], enabled: bool):
        self.enabled, self.tasks = enabled, {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description:<20}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]:<16}"), TimeElapsedColumn(), TextColumn("ETA"),
                                TimeRemainingColumn())
            for it in items:
                total = sum(c.epochs for c, _ in it.phases)
                self.tasks[it.name] = self.bar.add_task(it.name, total=total, status="waiting", start=False)

    def __enter__(self):
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()

    def update(self, name: str, completed: int | None = None, status: str | None = None) -> None:
        if not self.enabled:
            return
        task = self.tasks[name]
        if self.bar.tasks[task].start_time is None:  # elapsed time and ETA count from the experiment's start
            self.bar.start_task(task)
        kw = {} if completed is None else {"completed": completed}
        if status is not None:
            kw["status"] = status
        self.bar.update(task, **kw)

    def finish(self, name: str, status: str) -> None:
        if self.enabled:
            task = self.tasks[name]
            self.bar.update(task, completed=self.bar.tasks[task].total, status=status)
            self.bar.stop_task(task)


def _epochs_done(item: Item) -> int:
    p = read_progress(item.store)
    if p["complete"]:
        return sum(c.epochs for c, _ in item.phases)
    return sum(c.epochs for c, _ in item.phases[: p["phase"]]) + p["epochs_done"]


def _train_step(item: Item, bars: _Bars, should_stop: Callable[[], bool] | None, dask: dict) -> str:
    """Train (`"trained"`) or continue (`"resumed"`) the item's store, or nothing (`"complete"`): the one place a
    reproduce run trains; `dask` (`workers`, `scheduler`) runs it as units on a Dask cluster."""

    def poll() -> bool:
        bars.update(item.name, completed=_epochs_done(item))
        return bool(should_stop and should_stop())

    if item.store.exists():
        _check_store_matches(item)
        if check(item.store)["complete"]:
            return "complete"
        bars.update(item.name, completed=_epochs_done(item), status="resuming")
        resume(item.store, progress=False, should_stop=poll, **dask)
        return "resumed"
    bars.update(item.name, status="training")
    train(item.cfg, item.store, progress=False, should_stop=poll, **dask)
    return "trained"


def _analysed(store: Path) -> bool:
    try:
        read_analysis(store)
        return True
    except StoreError:
        return False


def _figure_paths(item: Item) -> list[Path]:
    return [item.figdir / f"{name}.png" for name in item.experiment.figure_names]


def _figures_done(item: Item) -> bool:
    analysed = analysis_mtime(item.store)
    paths = _figure_paths(item)
    return bool(paths) and all(p.exists() and (analysed is None or p.stat().st_mtime >= analysed) for p in paths)


def reproduce(out: str | Path, *, quick: bool = False, only: list[str] | None = None, overrides: tuple[str, ...] = (),
              seeds: str | None = None, progress: bool = True, should_stop: Callable[[], bool] | None = None,
              workers: int | None = None, scheduler: str | None = None) -> Path:
    """Train, analyse and draw every paper experiment into `out` and write `out/index.html`.

    **Arguments:** `out`: the output directory (created; an existing one is continued: incomplete stores
    resume, finished steps are skipped); `quick`: the shortened protocols (fewer seeds and epochs, named on
    the page); `only`, `overrides`, `seeds`: see :func:`plan`; `progress`: one bar per experiment;
    `should_stop()`: polled after each committed chunk of training (raises :class:`loopdyn.errors.Interrupted`);
    `workers`, `scheduler`: train each experiment's runs as units on a local Dask cluster of that many processes
    or on the cluster at that address (see :func:`loopdyn.train`).

    An experiment that fails is reported (page, log) and the others still run; then a
    :class:`loopdyn.errors.LoopdynError` names the failures. **Returns:** the path of `index.html`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a directory; choose another --out")
    items = plan(out, quick=quick, only=only, overrides=overrides, seeds=seeds)
    key = _protocol_key(quick, overrides, seeds)
    manifest = _read_manifest(out) if out.exists() else None
    _check_same_protocol(out, manifest, key)
    for it in items:
        if it.store.exists():
            _check_store_matches(it)
    out.mkdir(parents=True, exist_ok=True)
    manifest = manifest or {**key, "experiments": {}}
    log = _Log(out / LOG)
    dask = {k: v for k, v in (("workers", workers), ("scheduler", scheduler)) if v is not None}
    log(f"reproduce {'--quick ' if quick else ''}--out {out}: {', '.join(it.name for it in items)}")
    t_all = time.perf_counter()
    failures = []
    try:
        with _Bars(items, progress) as bars:
            for it in items:
                entry = manifest["experiments"].setdefault(it.name, {})
                entry.update(store=str(it.store.relative_to(out)), protocol=it.protocol, config=it.experiment.reproduce.config)
                entry.pop("error", None)
                try:
                    _run_item(it, entry, bars, log, out, should_stop, dask)
                except Interrupted as e:
                    log(f"{it.name}: interrupted at epoch {e.epoch} of phase {e.phase}; run the same command again to continue")
                    _write_manifest(out, manifest)
                    raise
                except Exception as e:  # one experiment's failure must not lose the others' results
                    entry["error"] = f"{type(e).__name__}: {e}"
                    failures.append(it.name)
                    log(f"{it.name}: FAILED: {entry['error']}")
                    log(traceback.format_exc())
                    bars.update(it.name, status="FAILED (log)")
                _write_manifest(out, manifest)
        manifest["wall_s"] = manifest.get("wall_s", 0.0) + time.perf_counter() - t_all
        _write_manifest(out, manifest)
        index = write_reproduce_page(out, manifest)
        log(f"report: {index} (this invocation {time.perf_counter() - t_all:.1f} s)")
    finally:
        log.close()
    if failures:
        raise LoopdynError(f"{len(failures)} experiment(s) failed: {', '.join(failures)}; see {out / LOG} (the report "
                           f"{out / 'index.html'} has the others)")
    return out / "index.html"


def _run_item(it: Item, entry: dict, bars: _Bars, log: _Log, out: Path, should_stop, dask: dict) -> None:
    timings = entry.setdefault("timings", {})
    t0 = time.perf_counter()
    log(f"{it.name}: {it.protocol}; store {it.store}")
    done = _train_step(it, bars, should_stop, dask)
    if done == "complete":
        log(f"{it.name}: store complete, training skipped")
    else:
        timings["train"] = timings.get("train", 0.0) + time.perf_counter() - t0
        log(f"{it.name}: {done} in {time.perf_counter() - t0:.1f} s")
    bars.update(it.name, completed=_epochs_done(it))
    summary = out / "summaries" / f"{it.name}.txt"
    if not _analysed(it.store) or not summary.exists():
        bars.update(it.name, status="analysing")
        t0 = time.perf_counter()
        text = analyze(it.store)
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(text + "\n")
        timings["analyse"] = time.perf_counter() - t0
        log(f"{it.name}: analysed in {timings['analyse']:.1f} s")
        log(text)
    else:
        log(f"{it.name}: analysis present, skipped")
    if not _figures_done(it):
        bars.update(it.name, status="figures")
        t0 = time.perf_counter()
        paths = figures(it.name, it.store, it.figdir)
        timings["figures"] = time.perf_counter() - t0
        log(f"{it.name}: {len(paths)} figure files in {timings['figures']:.1f} s")
    else:
        log(f"{it.name}: figures present, skipped")
    entry["figures"] = [str(p.relative_to(out)) for p in _figure_paths(it)]
    entry["done"] = True
    total = sum(timings.values())
    bars.finish(it.name, f"done {total:.0f} s")


# ------------------------------------------------------------------------------------------ pages
def _provenance(ds) -> dict:
    versions = ds.attrs.get("versions", {})
    if isinstance(versions, str):
        versions = json.loads(versions)
    return {"git_commit": ds.attrs.get("git_commit"), "created": ds.attrs.get("created"),
            "host_devices": ds.attrs.get("host_devices"), "versions": versions}


def _figure_entries(exp: Experiment | None, ds, page_dir: Path, figdir: Path, names: list[str]) -> list[dict]:
    claims = exp.reproduce.claims if exp is not None and exp.reproduce is not None else {}
    measured = {}
    if exp is not None:
        try:
            measured = exp.captions(ds)
        except Exception as e:  # a caption must not hide the figure
            measured = {n: f"(numbers unavailable: {type(e).__name__}: {e})" for n in names}
    out = []
    for name in names:
        png, pdf = figdir / f"{name}.png", figdir / f"{name}.pdf"
        if not png.exists():
            continue
        out.append({"name": name, "png": png.relative_to(page_dir).as_posix(),
                    "pdf": pdf.relative_to(page_dir).as_posix() if pdf.exists() else "",
                    "claim": claims.get(name, ""), "measured": measured.get(name, "")})
    return out


def store_section(store: Path, page_dir: Path, figdir: Path, *, title: str | None = None, names: list[str] | None = None,
                  timings: dict | None = None, protocol: str = "", summary: str = "") -> Section:
    """The page section of one store: figures (already drawn into `figdir`), captions, statistics, tables,
    configuration and provenance."""
    ds = open_run(store)
    name = str(ds.attrs.get("experiment") or ds.attrs["config"].get("experiment", "ensemble"))
    exp = REGISTRY.get(name)
    names = names if names is not None else list(exp.figure_names if exp else [])
    rel = Path(os.path.relpath(Path(store).resolve(), Path(page_dir).resolve())).as_posix()
    for where in (str(store), str(Path(store).resolve())):  # the summary names the store as analysed
        summary = summary.replace(where, rel)
    sec = Section(title or name, name, description=str(ds.attrs["config"].get("description", "")), store=rel,
                  phases=ds.attrs.get("phases", []), provenance=_provenance(ds), timings=timings or {},
                  protocol=protocol, summary=summary)
    sec.figures = _figure_entries(exp, ds, page_dir, figdir, names)
    sec.stats = store_statistics(ds)
    if not ds.attrs.get("complete", True):
        sec.notes.append(f"Incomplete store: {ds.attrs['epochs_done']} epochs of phase {ds.attrs.get('phase_done')} "
                         f"committed; continue it with 'loopdyn train --resume {rel}' (from this page's folder).")
    if "analysis" not in ds.attrs:
        sec.notes.append(f"Not analysed: run 'loopdyn analyze {rel}' (from this page's folder) for stage boundaries and "
                         f"the experiment's figures.")
    elif exp is not None:
        try:
            sec.tables = exp.tables(ds)
        except Exception as e:
            sec.notes.append(f"tables unavailable: {type(e).__name__}: {e}")
    return sec


def _machine() -> str:
    model = "unknown CPU"
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_reproduce_page(out: Path, manifest: dict) -> Path:
    """`out/index.html` for every experiment recorded in the manifest, in reproduce order."""
    order = {e.name: (e.reproduce.order, e.name) for e in participants()}
    sections = []
    for name in sorted(manifest["experiments"], key=lambda n: order.get(n, (1e9, n))):
        entry = manifest["experiments"][name]
        store = out / entry["store"]
        summary_file = out / "summaries" / f"{name}.txt"
        try:
            sec = store_section(store, out, out / "figures" / name, title=name, timings=entry.get("timings"),
                                protocol=entry.get("protocol", ""),
                                summary=summary_file.read_text() if summary_file.exists() else "")
        except LoopdynError as e:
            sec = Section(name, name, notes=[f"store unavailable: {e}"])
        if entry.get("error"):
            sec.error = entry["error"] + f" (details in {LOG})"
        sections.append(sec)
    mode = manifest["mode"]
    wall = manifest.get("wall_s")
    intro = [f"Every paper experiment of loopdyn, trained, analysed and drawn by 'loopdyn reproduce"
             f"{' --quick' if mode == 'quick' else ''}' (Ger & Barak, NeurIPS 2025; spec = docs/paper-spec.md). "
             f"Each figure's caption states the paper's claim and the numbers measured here.",
             ("Quick mode: shortened protocols (fewer seeds and epochs, per experiment below); the numbers check "
              "the pipeline, not the paper." if mode == "quick" else "Full protocols: the shipped configurations."),
             f"Machine: {_machine()}." + (f" Total wall time of the runs into this directory: {wall:.0f} s." if wall else "")]
    links = f"<p>Log: <a href='{LOG}'>{LOG}</a>; protocol and steps: <a href='{MANIFEST}'>{MANIFEST}</a>.</p>"
    if manifest.get("overrides") or manifest.get("seeds"):
        intro.append(f"Extra overrides for every experiment: {manifest.get('overrides')}, seeds {manifest.get('seeds')}.")
    return write_page(out / "index.html", "loopdyn: the experiments of Ger & Barak (2025), reproduced", sections, intro,
                      extra_html=links)


def report(stores: list[str | Path], out: str | Path) -> Path:
    """`loopdyn report STORE... --out DIR`: the figures of each store (its experiment's, or the training overview
    when those need an analysis the store lacks) into `DIR/figures/<store>/` and the page `DIR/index.html`.
    Stores are only read."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a directory; choose another --out")
    paths = [Path(s) for s in stores]
    for p in paths:
        check(p)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    used: set[str] = set()
    for p in paths:
        stem = p.name.removesuffix(".zarr")
        while stem in used:
            stem += "_"
        used.add(stem)
        figdir = out / "figures" / stem
        ds = open_run(p)
        name = str(ds.attrs.get("experiment") or ds.attrs["config"].get("experiment", "ensemble"))
        note = None
        try:
            figs = get(name).figures(ds)
        except StoreError as e:
            figs, note = {f"{stem}-training": training_figure(ds)}, f"Experiment figures not drawn ({e}); training overview instead."
        save_figures(figs, figdir)
        sec = store_section(p, out, figdir, title=stem, names=list(figs))
        if note:
            sec.notes.insert(0, note)
        sections.append(sec)
    intro = [f"Stores: {', '.join(Path(os.path.relpath(p.resolve(), out.resolve())).as_posix() for p in paths)} "
             f"(relative to this page). Machine: {_machine()}."]
    return write_page(out / "index.html", "loopdyn report", sections, intro)
