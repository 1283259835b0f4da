"""Host side of training: groups, chunks, progress, store writes and resume.

Runs whose settings change shapes or control flow (N, rank, T, batch, activation, ...) are
grouped and compiled separately; inside a group the runs are vmapped (and sharded over the
host's devices when there are several). Each chunk of epochs is one compiled call per group,
then one write per store array, then the state and the progress marker (see `store`).
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _config
from .._config import VMAPPED, Config, ConfigError
from ..agents import AgentSpec, spec_from_config
from ..analysis._joint import joint_matrix, overlaps, reduced_joint_matrix, spectral_radius, spectrum
from ..plants import plant_from_config
from ..store import _zarr as zs
from ..tasks import regulation_from_config
from ..tasks._regulation import TEST_LOSS_LABELS, TRAIN_LOSS_LABELS
from ._core import HP_NAMES, ClosedLoop, Problem, init_run, make_chunk
from ._modes import OPEN_LOOP_MODES
from ._teacher import load_start, load_teacher, validate_sources

HP_KEYS = dict(zip(HP_NAMES, ("train.lr", "train.clip", "task.beta", "agent.over", "agent.g", "plant.noise")))
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


@dataclass
class Group:
    """Runs compiled together: one static configuration, vmapped scalars."""

    index: int
    cfg: Config  # the group's configuration (static sweep values applied)
    runs: list[int]  # global run indices
    problem: Problem
    hp: dict[str, np.ndarray]  # (n_runs,) per scalar
    seeds: np.ndarray
    start_epochs: np.ndarray | None = None  # epoch of the source run a continuation starts from
    phase: int = 0
    label: str = "closed_loop"
    chunk_fn: Callable | None = None


def _static_key(cfg: Config, run: dict[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in run.items() if k not in VMAPPED and k != "seed"))


def build_problem(cfg: Config) -> Problem:
    """The static problem of a configuration without sweep."""
    plant = plant_from_config(cfg.plant)
    task = regulation_from_config(cfg.task, plant)
    random = cfg.agent.rank > 0 and (cfg.agent.g > 0 or any(k == "agent.g" for k, _ in cfg.sweep))
    spec = spec_from_config(cfg, plant.n_observed, plant.n_controls, random)
    noisy = cfg.plant.noise > 0 or any(k == "plant.noise" for k, _ in cfg.sweep)
    mode = ClosedLoop() if cfg.train.mode == "closed_loop" else OPEN_LOOP_MODES[cfg.train.mode]
    return Problem(spec, plant, task, cfg.train.optimizer, cfg.train.skip_first_update, noisy, DTYPES[cfg.dtype], mode)


def make_groups(cfg: Config, offset: int = 0, phase: int = 0, label: str | None = None
                ) -> tuple[list[dict], list[Group]]:
    """Expand the ensemble into runs (group-major order, global indices from `offset`) and groups."""
    runs = cfg.runs()
    order: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        order.setdefault(_static_key(cfg, run), []).append(i)
    ordered_runs, groups = [], []
    for gi, (key, idx) in enumerate(order.items()):
        gcfg = _config._replace(cfg, dict(key)) if key else cfg
        start = offset + len(ordered_runs)
        ordered_runs.extend(runs[i] for i in idx)
        hp = {name: np.array([runs[i].get(HP_KEYS[name], gcfg.get(HP_KEYS[name])) for i in idx], dtype=np.float64)
              for name in HP_NAMES}
        groups.append(Group(gi, gcfg, list(range(start, start + len(idx))), build_problem(gcfg), hp,
                            np.array([runs[i]["seed"] for i in idx], dtype=np.int64), phase=phase,
                            label=label or cfg.train.mode))
    return ordered_runs, groups


def checkpoint_epochs(cfg: Config) -> np.ndarray:
    """Epochs whose parameters are stored (spec: every epoch for N <= 100 by default)."""
    E, ck = cfg.epochs, cfg.record.checkpoint
    n_max = max([cfg.agent.N] + [v for k, vals in cfg.sweep if k == "agent.N" for v in vals])
    if ck == "auto":
        ck = "every" if n_max <= 100 else "log"
    if ck == "every":
        return np.arange(E)
    if ck == "log":
        pts = np.unique(np.round(np.logspace(0, np.log10(max(E - 1, 1)), cfg.record.n_log)).astype(int))
        return np.unique(np.concatenate([[0], pts, [E - 1]]))
    k = int(ck.split(":")[1])
    return np.unique(np.concatenate([np.arange(0, E, k), [E - 1]]))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("loopdyn", "jax", "jaxlib", "optax", "numpy", "scipy", "xarray", "zarr"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


# ---------------------------------------------------------------------------- layout
def _layout(cfg: Config, runs: list[dict], groups: list[Group], ckpts: np.ndarray):
    R, E, K = len(runs), cfg.epochs, cfg.record.chunk
    specs = [g.problem.spec for g in groups]
    plant = groups[0].problem.plant
    n_max = max(s.N for s in specs)
    r_max = max(s.rank for s in specs)
    linear = any(s.linear for s in specs)
    n_eig = max(plant.n_states + s.hidden_dim for s in specs) if linear else 0
    rank1 = any(s.rank1_overlaps for s in specs)
    block = _ckpt_block(cfg, ckpts)

    coords: dict[str, tuple] = {
        "run": (("run",), np.arange(R)),
        "epoch": (("epoch",), np.arange(E)),
        "seed": (("run",), np.array([r["seed"] for r in runs])),
        "group": (("run",), np.concatenate([[g.index] * len(g.runs) for g in groups])),
        "checkpoint": (("checkpoint",), ckpts),
    }
    for name in HP_NAMES:
        coords[name] = (("run",), np.concatenate([g.hp[name] for g in groups]))
    if n_eig:
        coords["eig"] = (("eig",), np.arange(n_eig))

    f = np.float64 if cfg.dtype == "float64" else np.float32
    variables: dict[str, tuple] = {
        "train_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "test_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "diverged_epoch": (("run",), (R,), np.int64, (R,)),
        "start_epoch": (("run",), (R,), np.int64, (R,)),
        "gains": (("run", "epoch", "control", "state"), (R, E, plant.n_controls, plant.n_states), f,
                  (R, K, plant.n_controls, plant.n_states)),
    }
    if n_eig:
        variables["eigenvalues"] = (("run", "epoch", "eig"), (R, E, n_eig), np.complex128, (R, K, n_eig))
        variables["spectral_radius"] = (("run", "epoch"), (R, E), np.float64, (R, K))
    if rank1:
        for s in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu"):
            variables[s] = (("run", "epoch"), (R, E), np.float64, (R, K))
    spec0 = specs[0]
    shapes = {"m": ("in", spec0.n_in), "z": ("out", spec0.n_out), "U": ("rank", r_max), "V": ("rank", r_max),
              "W": ("neuron_in", n_max), "J": ("neuron_in", n_max)}
    names = sorted({k for g in groups for k in _param_names(g.problem.spec)})
    for name in names:
        col, width = shapes[name]
        if any(name in s.trainable for s in specs):
            variables[name] = (("run", "checkpoint", "neuron", col), (R, len(ckpts), n_max, width), f,
                               (R, block, n_max, width))
        else:
            variables[name] = (("run", "neuron", col), (R, n_max, width), f, (R, n_max, width))
    return coords, variables


def _param_names(spec: AgentSpec) -> list[str]:
    names = ["m", "z"] + (["U", "V"] if spec.rank else ["W"])
    return names + (["J"] if spec.random else [])


def _ckpt_block(cfg: Config, ckpts: np.ndarray) -> int:
    """Checkpoints per Zarr block, chosen so that no block spans two training chunks."""
    K = cfg.record.chunk
    if len(ckpts) > 1:
        step = int(ckpts[1] - ckpts[0])
        regular = np.all(np.diff(ckpts[:-1]) == step) if len(ckpts) > 2 else True
        if regular and K % step == 0 and ckpts[-1] - ckpts[-2] in (step, 0) and cfg.epochs % K == 0:
            return max(K // step, 1)
    return 1


# ---------------------------------------------------------------------------- host analysis of a chunk
def gains_from_moments(gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Least-squares gains `K (..., m, k)` with `u ~ K x` from `sum x x^T (..., k, k)` and
    `sum x u^T (..., k, m)` (the normal equations, float64; pseudo-inverse for a singular Gram)."""
    gram, cross = np.asarray(gram, np.float64), np.asarray(cross, np.float64)
    finite = np.all(np.isfinite(gram), axis=(-2, -1)) & np.all(np.isfinite(cross), axis=(-2, -1))
    safe = np.where(finite[..., None, None], gram, np.eye(gram.shape[-1]))
    K = np.swapaxes(np.linalg.pinv(safe, hermitian=True) @ np.where(finite[..., None, None], cross, 0.0), -1, -2)
    return np.where(finite[..., None, None], K, np.nan)


def _chunk_summaries(group: Group, params: dict[str, np.ndarray], frozen: dict[str, np.ndarray]) -> dict:
    """Per-epoch spectra and overlaps from the recorded parameters, on the host in float64."""
    spec, plant = group.problem.spec, group.problem.plant
    full = {k: np.asarray(v, np.float64) for k, v in params.items()}
    R, K = next(iter(full.values())).shape[:2]
    for k, v in frozen.items():
        full[k] = np.broadcast_to(np.asarray(v, np.float64)[:, None], (R, K) + v.shape[1:])
    out: dict[str, np.ndarray] = {}
    if spec.rank1_overlaps:
        ov = overlaps(full["m"], full["z"], full["U"], full["V"])
        out.update({k: np.asarray(v) for k, v in ov.items()})
    if spec.linear:
        if spec.reduced:
            fn = lambda p: reduced_joint_matrix(plant.A, plant.B, plant.C, p["m"], p["U"], p["V"], p["z"], spec.alpha)  # noqa: E731
            P = jax.vmap(jax.vmap(fn))(full)
        else:
            g = np.broadcast_to(group.hp["g"][:, None], (R, K))

            def fn(p, gg):
                W = p["W"] if spec.rank == 0 else p["U"] @ p["V"].T + (gg * p["J"] if "J" in p else 0.0)
                return joint_matrix(plant.A, plant.B, plant.C, p["m"], W, p["z"], spec.alpha)

            P = jax.vmap(jax.vmap(fn))(full, g)
        lam = spectrum(np.asarray(P))
        out["eigenvalues"] = lam
        out["spectral_radius"] = spectral_radius(lam)
    return out


# ---------------------------------------------------------------------------- training
def _device_layout(n_runs: int):
    """`(mesh, padded run count)`: the runs are split over the host's devices when there are
    several (padded to a multiple of the device count), else `(None, n_runs)`."""
    devices = jax.devices()
    if len(devices) < 2 or n_runs < len(devices):
        return None, n_runs
    mesh = jax.sharding.Mesh(np.array(devices), ("run",))
    return mesh, int(math.ceil(n_runs / len(devices)) * len(devices))


def compile_chunk(problem: Problem, test_x0, mesh=None):
    """The jitted chunk function of a group. With a mesh, each device runs its own block of runs
    through `shard_map`: runs are independent, so the program has no cross-device communication."""
    chunk = make_chunk(problem, test_x0)
    if mesh is not None:
        spec = jax.sharding.PartitionSpec("run")
        chunk = jax.shard_map(chunk, mesh=mesh, in_specs=(spec, spec, jax.sharding.PartitionSpec()),
                              out_specs=(spec, spec), check_vma=False)
    return jax.jit(chunk, donate_argnums=(0,))


def _pad(tree, n: int):
    def pad(a):
        a = jnp.asarray(a)
        extra = n - a.shape[0]
        return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)], axis=0)

    return jax.tree.map(pad, tree)


class Trainer:
    """Train the phases of an experiment into one store. Use :func:`train` for the common case.

    A phase is `(config, label)`; its runs get the `mode` label. Phases run one after the other
    (a later phase may read an earlier one's results, e.g. its teacher); inside a phase all groups
    advance chunk by chunk. Progress is `(phase, epochs_done)`.
    """

    def __init__(self, phases: list[tuple[Config, str]], path: Path, *, extra_attrs: dict | None = None):
        self.phases, self.path = phases, Path(path)
        self.cfg = phases[0][0]
        self.layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
        self.runs, self.groups = [], []
        for p, (cfg, label) in enumerate(phases):
            runs, groups = make_groups(cfg, offset=len(self.runs), phase=p, label=label)
            for g in groups:
                g.index = len(self.groups)
                self.groups.append(g)
            self.runs.extend(runs)
        self.ckpts = checkpoint_epochs(self.layout_cfg)
        self.extra_attrs = extra_attrs or {}

    # -- state handling
    def _init_states(self, groups):
        states, consts = [], []
        for g in groups:
            dtype = g.problem.dtype
            hp = {k: jnp.asarray(v, dtype) for k, v in g.hp.items()}
            s, c = jax.vmap(lambda seed, h, g=g: init_run(g.problem, seed, h))(jnp.asarray(g.seeds), hp)
            if g.cfg.train.mode != "closed_loop":
                c = {**c, "teacher": {k: jnp.asarray(v, dtype) for k, v in load_teacher(g, self).items()}}
            if g.cfg.start.store:
                start = load_start(g, self)
                g.start_epochs = start.pop("_epoch")
                s = {**s, "params": {k: jnp.asarray(start[k], dtype) for k in s["params"]}}
                c = {**c, "frozen": {k: jnp.asarray(start[k], dtype) for k in c["frozen"]}}
            states.append(s)
            consts.append(c)
        return states, consts

    def _state_arrays(self, groups, states) -> dict[str, np.ndarray]:
        out = {}
        for g, s in zip(groups, states):
            for i, leaf in enumerate(jax.tree.leaves(s)):
                out[f"g{g.index}_{i}"] = np.asarray(leaf)[: len(g.runs)]
        return out

    def _restore(self, groups, states, arrays):
        restored = []
        for g, s in zip(groups, states):
            leaves, treedef = jax.tree.flatten(s)
            new = []
            for i, leaf in enumerate(leaves):
                a = arrays.get(f"g{g.index}_{i}")
                if a is None or a.shape != leaf.shape:
                    raise zs.StoreError(f"{self.path}: saved training state does not match the configuration; the store cannot be resumed")
                new.append(jnp.asarray(a, leaf.dtype))
            restored.append(jax.tree.unflatten(treedef, new))
        return restored

    # -- store
    def create_store(self) -> None:
        coords, variables = _layout(self.layout_cfg, self.runs, self.groups, self.ckpts)
        coords["mode"] = (("run",), np.array([g.label for g in self.groups for _ in g.runs]))
        static = dict.fromkeys(k for c, _ in self.phases for k, _ in c.sweep if k not in VMAPPED)
        for dotted in static:
            coords[dotted.split(".")[1]] = (("run",), np.array([self.runs[r].get(dotted, g.cfg.get(dotted))
                                                                for g in self.groups for r in g.runs]))
        attrs = {
            "config": json.dumps(self.cfg.to_dict()),
            "phases": json.dumps([[label, cfg.to_dict()] for cfg, label in self.phases]),
            "config_source": self.cfg.source,
            "versions": json.dumps(_versions()),
            "git_commit": _git_commit(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "train_loss_definition": TRAIN_LOSS_LABELS[self.cfg.task.loss],
            "imitation_loss_definition": "open-loop runs: dt sum_t mean_{b,j} (u_student - u_teacher)^2",
            "test_loss_definition": TEST_LOSS_LABELS[self.cfg.task.test_loss],
            "gains_definition": "least-squares K with u = K x (code sign convention, stabilising gains negative) "
                                "over the closed-loop test trajectories, t = 0 dropped, no intercept",
            "eigenvalues_definition": "eigenvalues of the joint matrix P (reduced to span{m, U} for linear low-rank "
                                      "agents with g = 0; the other N - n_in - rank eigenvalues of P equal 1 - alpha), "
                                      "sorted by decreasing modulus",
            "record_definition": "epoch e holds the parameters after e updates and the losses they produce",
            "run_coords": json.dumps([k for k, (dims, _) in coords.items() if dims == ("run",) and k != "run"]),
            **self.extra_attrs,
        }
        zs.create(self.path, attrs, coords, variables)

    def run(self, *, resume: bool = False, progress: bool = True, stop_after: int | None = None) -> Path:
        """Train every phase (or until `stop_after` epochs of all phases together, to test
        interruption) and return the store path."""
        K = self.cfg.record.chunk
        first_phase, done = zs.read_progress(self.path) if resume else (0, 0)
        if not resume:
            validate_sources(self)  # a bad teacher or start store fails before anything is written
            self.create_store()
        if done >= self.phases[first_phase][0].epochs:  # a phase that completed exactly at the marker
            first_phase, done = first_phase + 1, 0
        arrays = zs.open_group(self.path)
        budget = math.inf if stop_after is None else stop_after - sum(c.epochs for c, _ in self.phases[:first_phase])
        for p in range(first_phase, len(self.phases)):
            E = self.phases[p][0].epochs
            groups = [g for g in self.groups if g.phase == p]
            states, consts = self._init_states(groups)
            if done > 0:
                states = self._restore(groups, states, zs.load_state(self.path, p, done))
            else:
                self._write_frozen(arrays, groups, consts)
                for g in groups:
                    if g.start_epochs is not None:
                        arrays["start_epoch"][g.runs[0]: g.runs[-1] + 1] = g.start_epochs
            dev_states, dev_consts = [], []
            for g, s, c in zip(groups, states, consts):
                mesh, n = _device_layout(len(g.runs))
                s, c = _pad(s, n), _pad(c, n)
                if mesh is not None:
                    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("run"))
                    s, c = jax.device_put((s, c), sharding)
                dev_states.append(s)
                dev_consts.append(c)
                if g.chunk_fn is None:
                    test_key = jax.random.PRNGKey(g.cfg.task.test_seed)
                    test_x0 = g.problem.task.sample_x0(test_key, g.cfg.task.test_batch, g.problem.dtype)
                    g.chunk_fn = compile_chunk(g.problem, test_x0, mesh)
            name = self.cfg.name + (f" [{groups[0].label}]" if len(self.phases) > 1 else "")
            target = E if budget >= E else max(int(budget), done)
            with _Progress(E, done, name, enabled=progress) as bar:
                for start in range(done, target, K):
                    stop = min(start + K, E)
                    epochs = jnp.arange(start, stop, dtype=jnp.int32)
                    results = []
                    for gi, g in enumerate(groups):
                        dev_states[gi], rec = g.chunk_fn(dev_states[gi], dev_consts[gi], epochs)
                        results.append(jax.tree.map(lambda a, n=len(g.runs): np.asarray(a)[:n], rec))
                    self._write_chunk(arrays, groups, start, stop, results, consts, dev_states)
                    zs.save_state(self.path, p, stop, self._state_arrays(groups, dev_states))
                    zs.write_progress(self.path, p, stop, len(self.phases),
                                      complete=(p == len(self.phases) - 1 and stop == E))
                    zs.prune_states(self.path, p, stop)
                    bar.advance(stop - start)
            if target < E:
                break
            budget -= E
            done = 0
        return self.path

    def _write_frozen(self, arrays, groups, consts) -> None:
        for g, c in zip(groups, consts):
            for name, arr in c["frozen"].items():
                a = np.asarray(arr)
                arrays[name][g.runs[0]: g.runs[-1] + 1, : a.shape[1], : a.shape[2]] = a

    def _write_chunk(self, arrays, groups, start, stop, results, consts, dev_states) -> None:
        lo, hi = groups[0].runs[0], groups[-1].runs[-1] + 1
        merged: dict[str, np.ndarray] = {}
        for g, rec, c in zip(groups, results, consts):
            rows = slice(g.runs[0] - lo, g.runs[-1] + 1 - lo)
            frozen = {k: np.asarray(v)[: len(g.runs)] for k, v in c["frozen"].items()}
            summaries = _chunk_summaries(g, rec["params"], frozen)
            gains = gains_from_moments(rec["gram"], rec["cross"])
            gains[~np.isfinite(rec["test_loss"])] = np.nan  # diverged: losses are NaN from then on
            items = [("train_loss", rec["train_loss"]), ("test_loss", rec["test_loss"]), ("gains", gains),
                     *summaries.items()]
            for name, val in items:
                if name not in merged:
                    arr = arrays[name]
                    merged[name] = np.full((hi - lo, stop - start) + arr.shape[2:], arr.fill_value, dtype=arr.dtype)
                merged[name][rows, ..., : val.shape[-1] if val.ndim == 3 else None] = val
        for name, val in merged.items():
            arrays[name][lo:hi, start:stop] = val
        diverged = np.concatenate([np.asarray(s["diverged"])[: len(g.runs)] for g, s in zip(groups, dev_states)])
        arrays["diverged_epoch"][lo:hi] = diverged

        sel = np.nonzero((self.ckpts >= start) & (self.ckpts < stop))[0]
        if len(sel):
            for g, rec in zip(groups, results):
                rows = slice(g.runs[0], g.runs[-1] + 1)
                for name, val in rec["params"].items():
                    v = np.asarray(val)[:, self.ckpts[sel] - start]
                    arrays[name][rows, sel[0]: sel[-1] + 1, : v.shape[2], : v.shape[3]] = v


class _Progress:
    """A rich progress bar with epochs/s and ETA (silent when disabled)."""

    def __init__(self, total: int, done: int, name: str, enabled: bool = True):
        self.enabled, self.total, self.done, self.name = enabled, total, done, name

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._t0 = time.perf_counter()
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("epochs"), TextColumn("{task.fields[rate]}"), TextColumn("ETA"),
                                 TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total, completed=self.done, rate="")
        return self

    def advance(self, n: int) -> None:
        if self.enabled:
            self.done += n
            rate = self._bar.tasks[0].speed
            self._bar.update(self._task, advance=n, rate=f"{rate:.0f} epochs/s" if rate else "")

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.stop()


def train(cfg: Config, out: str | Path | None = None, *, progress: bool = True, extra_attrs: dict | None = None,
          stop_after: int | None = None, phases: list[tuple[Config, str]] | None = None) -> Path:
    """Train the ensemble of `cfg` (or the `phases` of an experiment) into `out`
    (default `results/<name>.zarr`); returns the path."""
    path = Path(out) if out is not None else Path("results") / f"{cfg.name}.zarr"
    if path.exists():
        raise ConfigError(f"{path}: already exists; choose another --out, delete it, or continue it with --resume {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(phases or [(cfg, cfg.train.mode)], path, extra_attrs=extra_attrs)
    return trainer.run(progress=progress, stop_after=stop_after)


def resume(path: str | Path, *, progress: bool = True) -> Path:
    """Continue an interrupted store from its last complete chunk."""
    path = Path(path)
    group = zs.open_group(path)
    source = str(group.attrs.get("config_source", path))
    phases = [(_config.from_dict(d, source=source), label) for label, d in json.loads(group.attrs["phases"])]
    trainer = Trainer(phases, path)
    if zs.is_complete(path):
        return path
    return trainer.run(resume=True, progress=progress)
