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


def _ckpt_block(chunk: int, epochs: int, ckpts: np.ndarray) -> int:
    """Checkpoints per Zarr block, chosen so that no block spans two training chunks."""
    if len(ckpts) > 1:
        step = int(ckpts[1] - ckpts[0])
        regular = np.all(np.diff(ckpts[:-1]) == step) if len(ckpts) > 2 else True
        if regular and chunk % step == 0 and ckpts[-1] - ckpts[-2] in (step, 0) and epochs % chunk == 0:
            return max(chunk // step, 1)
    return 1


def layout(phases, groups, ckpts: np.ndarray):
    """`(coords, variables)` of a store for the trainer's `groups` (see :func:`loopdyn.store._zarr.create`)."""
    layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
    R, E = sum(len(g.runs) for g in groups), layout_cfg.epochs
    K = min(c.record.chunk for c, _ in phases)
    specs = [g.problem.spec for g in groups]
    plant = groups[0].problem.plant
    n_max, r_max = max(s.N for s in specs), max(s.rank for s in specs)
    spectra = [g.problem.spec for g in groups if g.problem.joint_spectra]
    n_eig = max(plant.n_states + s.hidden_dim for s in spectra) if spectra else 0
    task = groups[0].problem.task
    block = _ckpt_block(K, E, ckpts)
    per_run = lambda f: np.concatenate([[f(g, i) for i in range(len(g.runs))] for g in groups])  # noqa: E731
    coords: dict[str, tuple] = {
        "run": (("run",), np.arange(R)),
        "epoch": (("epoch",), np.arange(E)),
        "checkpoint": (("checkpoint",), np.asarray(ckpts)),
        "seed": (("run",), per_run(lambda g, i: int(g.seeds[i]))),
        "group": (("run",), per_run(lambda g, i: g.index)),
        "phase": (("run",), per_run(lambda g, i: g.label)),
        "training_mode": (("run",), per_run(lambda g, i: g.cfg.train.mode)),
    }
    for name in cfg_mod.HYPERPARAMETERS:
        coords[name] = (("run",), per_run(lambda g, i, n=name: g.hyper[n][i]))
    static = dict.fromkeys(k for c, _ in phases for k, _ in c.sweep if k not in cfg_mod.HYPERPARAMETERS.values())
    for dotted in static:
        coords[dotted.split(".")[1]] = (("run",), per_run(lambda g, i, d=dotted: g.values[i].get(d, g.cfg.get(d))))
    if n_eig:
        coords["eig"] = (("eig",), np.arange(n_eig))
    coords.update(task.metric_coords())
    f = np.float64 if layout_cfg.dtype == "float64" else np.float32
    k, m = plant.n_states, plant.n_controls
    variables: dict[str, tuple] = {
        "train_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "test_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "diverged_epoch": (("run",), (R,), np.int64, (R,)),
        "start_epoch": (("run",), (R,), np.int64, (R,)),
    }
    if any(g.problem.records_gains for g in groups):
        variables["gains"] = (("run", "epoch", "control", "state"), (R, E, m, k), f, (R, K, m, k))
    for name, (dims, _) in task.epoch_metrics().items():
        shape = tuple(len(coords[d][1]) for d in dims)
        variables[name] = (("run", "epoch", *dims), (R, E, *shape), f, (R, K, *shape))
    if n_eig:
        variables["eigenvalues"] = (("run", "epoch", "eig"), (R, E, n_eig), np.complex128, (R, K, n_eig))
        variables["spectral_radius"] = (("run", "epoch"), (R, E), np.float64, (R, K))
    if any(s.rank1_overlaps for s in specs):  # visible, then invisible overlaps (spec §7.2)
        for s in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu", "sigma_mu", "sigma_zv", "sigma_mm", "sigma_zz",
                  "sigma_uu", "sigma_vv"):
            variables[s] = (("run", "epoch"), (R, E), np.float64, (R, K))
    spec0 = specs[0]
    columns = {"m": ("in", spec0.n_in), "z": ("out", spec0.n_out), "U": ("rank", r_max), "V": ("rank", r_max),
               "W": ("neuron_in", n_max), "J": ("neuron_in", n_max)}
    for name in sorted({p for s in specs for p in s.parameter_names}):
        if name == "G":  # the overlap representation: the Gram matrix of m, z, U, V (spec §7)
            d = max(s.n_in + s.n_out + 2 * s.rank for s in specs if s.representation == "overlaps")
            variables["G"] = (("run", "checkpoint", "gram_row", "gram_col"), (R, len(ckpts), d, d), f, (R, block, d, d))
            continue
        if name.startswith("extra_"):  # an agent's further parameters (AgentParams.extra): it names their dims
            widths = [s.part.extra_parameters(s)[name[6:]] for s in specs if name in s.parameter_names]
            col, width = widths[0][1], max(w for w, _ in widths)
            trained = any("extra" in s.trainable for s in specs)
        else:
            col, width = columns[name]
            trained = any(name in s.trainable for s in specs)
        if trained:
            variables[name] = (("run", "checkpoint", "neuron", col), (R, len(ckpts), n_max, width), f, (R, block, n_max, width))
        else:
            variables[name] = (("run", "neuron", col), (R, n_max, width), f, (R, n_max, width))
    return coords, variables


def derived_layout(path: Path, group) -> dict[str, dict]:
    """The layout (`name -> {dims, shape, dtype, chunks}`) that :func:`create_store` gives the phases stored
    in `group`'s attributes and its checkpoint epochs: for stores that do not record theirs."""
    from ..training import make_groups

    try:
        attrs = _zarr._decode_attrs(dict(group.attrs))
        source = str(attrs.get("config_source", path))
        phases = [(cfg_mod.from_dict(d, source=source, phase=i > 0), label) for i, (label, d) in enumerate(attrs["phases"])]
        with _zarr._quiet():
            ckpts = np.asarray(group["checkpoint"][...])
    except Exception as e:
        raise StoreError(f"{path}: the stored configuration is unreadable ({type(e).__name__}); the store cannot be "
                         f"verified — train it again") from e
    coords, variables = layout(phases, make_groups(phases), ckpts)
    out = {}
    for name, (dims, values) in coords.items():
        values = np.asarray(values)
        out[name] = {"dims": list(dims), "shape": list(values.shape),
                     "dtype": "StringDType()" if values.dtype.kind == "U" else str(values.dtype),
                     "chunks": list(values.shape)}
    for name, (dims, shape, dtype, chunks) in variables.items():
        out[name] = {"dims": list(dims), "shape": list(shape), "dtype": str(np.dtype(dtype)), "chunks": list(chunks)}
    return out


class StoreSink:
    """A store that the trainer writes into (:class:`loopdyn.training.Sink`); holds the store's lock."""

    def __init__(self, path: Path, phases, groups, lock: _files.StoreLock, ckpts=None):
        self.path, self.phases, self.groups, self.lock = Path(path), phases, groups, lock
        layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
        self.ckpts = cfg_mod.checkpoint_epochs(layout_cfg) if ckpts is None else np.asarray(ckpts)
        self._arrays = None
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
            sel = np.nonzero((self.ckpts >= start) & (self.ckpts < stop))[0]
            if len(sel):
                for g, rec in zip(groups, results):
                    rows = slice(g.runs[0], g.runs[-1] + 1)
                    for name, val in rec["params"].present().items():
                        v = np.asarray(val)[:, self.ckpts[sel] - start]
                        arrays[name][rows, sel[0]: sel[-1] + 1, : v.shape[2], : v.shape[3]] = v

    def commit(self, phase: int, stop: int, state: dict[str, np.ndarray], complete: bool) -> None:
        with self._writing(f"the commit of epoch {stop}"):
            _files.save_state(self.path, phase, stop, state)
            _files.write_progress(self.path, phase, stop, len(self.phases), complete)
        _files.prune_states(self.path, phase, stop)

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
        _zarr.create(tmp, attrs, coords, variables)
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
    """The sink of an existing store, to resume it; takes the store's lock."""
    lock = _files.StoreLock(path, "resume").acquire()
    return StoreSink(path, phases, groups, lock, ckpts)
