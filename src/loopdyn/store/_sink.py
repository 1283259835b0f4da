"""The training arrays of a store: their layout, and the sink the trainer writes through.

Dims `run` and `epoch` (plus `checkpoint`, `eig`, `neuron`, ...). Runs of several compiled groups (and
phases) share the arrays, padded with NaN where a group is smaller (N, rank, eigenvalue count).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shutil
from pathlib import Path

import numpy as np

from .. import config as cfg_mod
from ..errors import StoreError
from . import _files, _zarr
from ._layout import layout
from ._provenance import git_commit, versions

DEFINITIONS = {
    "gains_definition": "least-squares K with u = K x (code sign convention, stabilising gains negative) over the "
                        "closed-loop trajectories of the training batches of epochs e-w+1..e, w = record.gain_window "
                        "(open-loop runs: the same batches simulated in closed loop), t = 0 dropped, no intercept",
    "eigenvalues_definition": "eigenvalues of the joint matrix P (reduced to span{m, U} for linear low-rank agents "
                              "with g = 0; the other N - n_in - rank eigenvalues of P equal 1 - alpha), sorted by "
                              "decreasing modulus",
    "record_definition": "epoch e holds the parameters after e updates and the losses they produce",
    "gram_definition": "G (overlap representation, spec §7): Gram matrix of the columns of [m z U V], trained exactly "
                       "through the image of the vectors' SGD step; sigma_ab = a.b (the invisible ones: sigma_mu, "
                       "sigma_zv, squared norms sigma_aa)",
    "diverged_definition": "a run diverges at the epoch whose training loss or gradient is not finite or whose loss "
                           "exceeds train.diverge_above; from the next epoch on all its values are NaN",
}


class StoreSink:
    """A store that the trainer writes into (:class:`loopdyn.training.Sink`); holds the store's lock."""

    def __init__(self, path: Path, phases, groups, lock: _files.StoreLock, ckpts=None):
        self.path, self.phases, self.groups, self.lock = Path(path), phases, groups, lock
        layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
        self.ckpts = cfg_mod.checkpoint_epochs(layout_cfg) if ckpts is None else np.asarray(ckpts)
        self._arrays = None
        self._written: list[tuple[int, int, int, int]] = []  # (lo, hi, start, stop) of chunks not yet committed
        self._identity = _files.identity(self.path)

    @contextlib.contextmanager
    def _writing(self, what: str):
        """Write only into the store this sink opened (not into a directory that replaced it after a rename
        or deletion: Zarr would create one), and turn a failing write into one line that says how to
        continue; the last commit stays intact."""
        resume = f"continue it with 'loopdyn train --resume {self.path}'"
        moved = StoreError(f"{self.path}: the store was moved or deleted while it was being trained; training stopped "
                           f"at {what} and nothing is left at this path; if you moved it, continue it with "
                           f"'loopdyn train --resume NEW_PATH'")
        if _files.identity(self.path) != self._identity:
            raise moved
        try:
            yield
        except (OSError, KeyError) as e:
            if self._gone():
                raise moved from e
            if isinstance(e, KeyError) or isinstance(e, FileNotFoundError):  # files that vanished under Zarr
                raise StoreError(f"{self.path}: the store was moved or deleted while it was being trained (its part "
                                 f"{e} vanished at {what}); training stopped. If you moved it, continue it with "
                                 f"'loopdyn train --resume NEW_PATH'; if not, it is damaged — train it again") from e
            raise StoreError(f"{_files.os_error_line(e, self.path)}; training stopped while writing {what} of "
                             f"{self.path} (its last commit is intact), then {resume}") from e
        if self._gone():
            raise moved

    def _gone(self) -> bool:
        """Whether the store left its path; a directory that Zarr's writes made there since (chunk folders,
        no `zarr.json`) is removed."""
        if _files.identity(self.path) == self._identity:
            return False
        if self.path.is_dir() and not (self.path / "zarr.json").exists():
            shutil.rmtree(self.path, ignore_errors=True)
        return True

    @property
    def arrays(self):
        if self._arrays is None:
            self._arrays = _zarr.open_group(self.path, mode="r+")
        return self._arrays

    def progress(self) -> tuple[int, int]:
        p = _files.read_progress(self.path)
        return p["phase"], p["epochs_done"]

    def begin_phase(self, phase: int, groups, frozen) -> None:
        with self._writing(f"the start of phase {phase}"), _zarr._quiet():
            for g, fr in zip(groups, frozen):
                rows = slice(g.runs[0], g.runs[-1] + 1)
                for name, arr in fr.present().items():
                    a = np.asarray(arr)[: len(g.runs)]
                    target = self.arrays[name]
                    if target.ndim == a.ndim + 1:  # trained in another phase: constant over this phase's checkpoints
                        n = int(np.sum(self.ckpts < g.cfg.epochs))
                        target[rows, :n, : a.shape[1], : a.shape[2]] = np.broadcast_to(a[:, None], (a.shape[0], n) + a.shape[1:])
                    else:
                        target[rows, : a.shape[1], : a.shape[2]] = a
                start = g.start_epochs if g.start_epochs is not None else np.full(len(g.runs), -1)
                self.arrays["start_epoch"][rows] = start

    def write_chunk(self, phase: int, start: int, stop: int, groups, results) -> None:
        lo, hi = groups[0].runs[0], groups[-1].runs[-1] + 1
        merged: dict[str, np.ndarray] = {}
        with self._writing(f"epochs {start}..{stop - 1}"), _zarr._quiet():
            arrays = self.arrays
            for g, rec in zip(groups, results):
                rows = slice(g.runs[0] - lo, g.runs[-1] + 1 - lo)
                for name, val in rec.items():
                    if name in ("params", "diverged_epoch"):
                        continue
                    if name not in merged:
                        arr = arrays[name]
                        merged[name] = np.full((hi - lo, stop - start) + arr.shape[2:], arr.fill_value, dtype=arr.dtype)
                    with np.errstate(over="ignore"):  # a diverging run's last loss may exceed float32
                        merged[name][rows, ..., : val.shape[-1] if val.ndim == 3 else None] = val
            for name, val in merged.items():
                arrays[name][lo:hi, start:stop] = val
            arrays["diverged_epoch"][lo:hi] = np.concatenate([rec["diverged_epoch"] for rec in results])
            self._written.append((lo, hi, start, stop))
            sel = np.nonzero((self.ckpts >= start) & (self.ckpts < stop))[0]
            if len(sel):
                for g, rec in zip(groups, results):
                    rows = slice(g.runs[0], g.runs[-1] + 1)
                    for name, val in rec["params"].present().items():
                        v = np.asarray(val)[:, self.ckpts[sel] - start]
                        arrays[name][rows, sel[0]: sel[-1] + 1, : v.shape[2], : v.shape[3]] = v

    def commit(self, phase: int, stop: int, state: dict[str, np.ndarray], complete: bool) -> None:
        with self._writing(f"the commit of epoch {stop}"):
            with _zarr._quiet():
                for lo, hi, start, stop_ in self._written:
                    self.arrays["committed"][lo:hi, start:stop_] = True
            self._written = []
            _files.save_state(self.path, phase, stop, state)
            _files.write_progress(self.path, phase, stop, len(self.phases), complete)
        _files.prune_states(self.path, phase, stop)
        if complete:
            _zarr.consolidate(self.path)

    def load_state(self, phase: int, done: int) -> dict[str, np.ndarray]:
        return _files.load_state(self.path, phase, done)


def create_store(path: Path, phases, groups, *, devices: int, ckpts=None, extra_attrs: dict | None = None) -> StoreSink:
    """Create the store of an experiment atomically (built in a temporary directory, renamed into place)
    and return its sink, holding the store's lock. `ckpts`: the checkpoint epochs (default: the schedule of
    the longest phase's `record.checkpoint`)."""
    path = Path(path)
    if path.exists():
        raise StoreError(f"{path}: already exists; choose another --out, delete it, or continue it with --resume {path}")
    for stale in _files.stale_creations(path):
        shutil.rmtree(stale, ignore_errors=True)
    cfg = phases[0][0]
    layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
    ckpts = cfg_mod.checkpoint_epochs(layout_cfg) if ckpts is None else np.asarray(ckpts)
    coords, variables = layout(phases, groups, ckpts)
    key_docs = {}
    for c, _ in phases:
        for dotted, _ in c.sweep:
            doc = _key_doc(c, dotted)
            key_docs[dotted.split(".")[-1]] = f"{dotted}: {doc}" if doc else dotted
    task = groups[0].problem.task
    attrs = {
        "config": json.dumps(cfg_mod.to_dict(cfg)),
        "phases": json.dumps([[label, cfg_mod.to_dict(c)] for c, label in phases]),
        "experiment": cfg.experiment,
        "config_source": cfg.source,
        "versions": json.dumps(versions()),
        "git_commit": git_commit(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "epochs": int(layout_cfg.epochs),
        "host_devices": int(devices),
        "train_loss_definition": task.train_loss_definition,
        "test_loss_definition": task.test_loss_definition,
        **DEFINITIONS,
        "imitation_loss_definition": f"open-loop runs: {task.imitation_loss_definition}",
        **{f"{name}_definition": text for name, (_, text) in task.epoch_metrics().items()},
        "run_coords": json.dumps([k for k, (dims, _) in coords.items() if dims == ("run",) and k != "run"]),
        "variables": json.dumps(sorted([*coords, *variables])),
        **(extra_attrs or {}),
    }
    tmp = _files.creation_dir(path)
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _zarr.create(tmp, attrs, coords, variables, key_docs)
        lock = _files.StoreLock(tmp, "train").acquire()
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"{path}: cannot create the store ({e.strerror}); "
                         f"{_files.FIXES.get(e.errno, 'choose a writable --out')}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _files.finish_creation(tmp, path)
    except BaseException:
        lock.release()
        raise
    lock.path = path
    return StoreSink(path, phases, groups, lock, ckpts)


def open_sink(path: Path, phases, groups, ckpts=None) -> StoreSink:
    """The sink of an existing store, to resume it; takes the store's lock (and rewrites a store of an older
    format as the current one)."""
    lock = _files.StoreLock(path, "resume").acquire()
    try:
        _zarr.upgrade(path)
    except BaseException:
        lock.release()
        raise
    return StoreSink(path, phases, groups, lock, ckpts)


def _key_doc(cfg, dotted: str) -> str:
    """The schema's `doc` of a configuration key (`"train.lr"` -> "learning rate"), or ""."""
    import dataclasses

    obj = cfg
    *tables, key = dotted.split(".")
    try:
        for t in tables:
            obj = getattr(obj, t)
        field = next(f for f in dataclasses.fields(obj) if f.name == key)
        return str(field.metadata.get("doc", ""))
    except (AttributeError, StopIteration, TypeError):
        return ""
