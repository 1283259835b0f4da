"""Host side of training: groups of runs, chunks of epochs, per-epoch summaries, and a sink that records them.

The trainer knows nothing of files: it hands every chunk to a :class:`Sink` (the store implements one,
:class:`loopdyn.store.StoreSink`), and it gets teachers and start parameters from a `sources` callable
supplied from above. Runs whose settings change shapes or control flow (N, rank, T, batch, activation, ...)
are grouped and compiled separately; inside a group the runs are vmapped, and sharded over host devices
when there are several. Each chunk of epochs is one compiled call per group; then the host computes the
chunk's summaries (spectra and overlaps of the joint system, effective gains) and the sink writes and
commits it — while the devices already run the next chunk. A group with fewer runs than devices (one
seed on two cores) evaluates each chunk on a device of its own, when its evaluation is separable from
training (:attr:`Problem.separable_evaluation`): the open-loop student's closed-loop test and probes then
run beside its training instead of after each epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from .. import config as cfg_mod
from ..agents import AgentParams, partition, represent
from ..errors import Interrupted, StoreError
from ..system import agent_joint_matrix, all_overlaps, gains_from_moments, spectral_radius, spectrum
from ._epoch import Problem, build_problem, compile_chunk, device_layout, init_run, make_evaluation, restart_optimizer
from ._state import HyperParams, RunConstants, RunState


@dataclass
class Group:
    """Runs compiled together: one static configuration, vmapped scalars."""

    index: int
    phase: int
    label: str
    cfg: cfg_mod.Config  # the group's configuration (static sweep values applied)
    runs: list[int]  # global run indices in the store
    problem: Problem
    hyper: dict[str, np.ndarray]  # (n_runs,) per hyper-parameter name
    seeds: np.ndarray
    values: list[dict]  # per run: seed and swept values
    start_epochs: np.ndarray | None = None
    chunk_fn: Callable | None = field(default=None, repr=False)
    eval_fn: Callable | None = field(default=None, repr=False)  # a separate evaluation (`eval_device`)
    eval_device: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Sources:
    """What a group starts from besides a fresh initialisation: a `teacher` (`AgentParams` or gain
    matrices, leading run axis), `start` parameters (`AgentParams`, leading run axis) and the source
    epoch of each run's start."""

    teacher: Any = None
    start: AgentParams | None = None
    start_epochs: np.ndarray | None = None


class Sink(Protocol):
    """Where the trainer's results go (implemented by :class:`loopdyn.store.StoreSink`)."""

    def progress(self) -> tuple[int, int]: ...

    def begin_phase(self, phase: int, groups: list[Group], frozen: list[AgentParams]) -> None: ...

    def write_chunk(self, phase: int, start: int, stop: int, groups: list[Group], results: list[dict]) -> None: ...

    def commit(self, phase: int, stop: int, state: dict[str, np.ndarray], complete: bool) -> None: ...

    def load_state(self, phase: int, done: int) -> dict[str, np.ndarray]: ...


def make_groups(phases: list[tuple[cfg_mod.Config, str]]) -> list[Group]:
    """Every phase's ensemble as compiled groups, with global run indices in phase, then group order."""
    groups, offset = [], 0
    for p, (cfg, label) in enumerate(phases):
        for rg in cfg_mod.groups(cfg):
            hyper = {k: np.asarray(v, np.float64) for k, v in rg.hyper.items()}
            runs = list(range(offset, offset + len(rg.runs)))
            offset += len(rg.runs)
            groups.append(Group(len(groups), p, label, rg.cfg, runs, build_problem(rg.cfg), hyper,
                                np.asarray(rg.seeds, np.int64), list(rg.runs)))
    return groups


def chunk_summaries(group: Group, params: AgentParams, frozen: AgentParams) -> dict[str, np.ndarray]:
    """Per-epoch spectra of the joint matrix (linear agents, :attr:`Problem.joint_spectra`) and rank-1
    overlaps (the visible and the invisible ones, spec §7.2), on the host in float64.

    `params`: trained parameters `(run, epoch, ...)`; `frozen`: `(run, ...)`."""
    spec, plant = group.problem.spec, group.problem.plant
    trained = {k: np.asarray(v, np.float64) for k, v in params.present().items()}
    R, E = next(iter(trained.values())).shape[:2]
    full = dict(trained)
    for k, v in frozen.present().items():
        full[k] = np.broadcast_to(np.asarray(v, np.float64)[:, None], (R, E) + np.shape(v)[1:])
    full = AgentParams.of(full)
    out: dict[str, np.ndarray] = {}
    if spec.rank1_overlaps:
        out.update({k: np.asarray(v) for k, v in all_overlaps(full).items()})
    if group.problem.joint_spectra:
        g = np.broadcast_to(group.hyper["g"][:, None], (R, E))
        P = jax.vmap(jax.vmap(lambda p, gg: agent_joint_matrix(spec, plant, p, gg)))(
            jax.tree.map(jnp.asarray, full), jnp.asarray(g))
        lam = spectrum(np.asarray(P))
        out["eigenvalues"] = lam
        out["spectral_radius"] = spectral_radius(lam)
    return out


def _pad(tree, n: int):
    def pad(a):
        a = jnp.asarray(a)
        extra = n - a.shape[0]
        return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)], axis=0)

    return jax.tree.map(pad, tree)


def state_arrays(groups: list[Group], states: list[RunState]) -> dict[str, np.ndarray]:
    """The training state as named arrays, `group<i>:<tree path>` -> array `(run, ...)` (padding dropped)."""
    out = {}
    for g, s in zip(groups, states):
        for path, leaf in jax.tree_util.tree_flatten_with_path(s)[0]:
            out[f"group{g.index}:{jax.tree_util.keystr(path)}"] = np.asarray(leaf)[: len(g.runs)]
    return out


def restore_states(groups: list[Group], templates: list[RunState], arrays: dict[str, np.ndarray], where: str):
    """Fill `templates` from :func:`state_arrays` output by tree path. A leaf the saved state lacks (a
    parameter or optimiser field added since) keeps the template's value; a shape mismatch is an error."""
    restored = []
    for g, s in zip(groups, templates):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(s)
        new = []
        for path, leaf in leaves:
            name = f"group{g.index}:{jax.tree_util.keystr(path)}"
            a = arrays.get(name)
            if a is None:
                new.append(leaf)
                continue
            if a.shape != np.shape(leaf):
                raise StoreError(f"{where}: saved training state {name} has shape {a.shape}, the configuration needs "
                                 f"{np.shape(leaf)}; the store cannot be resumed")
            new.append(jnp.asarray(a, leaf.dtype))
        restored.append(jax.tree_util.tree_unflatten(treedef, new))
    return restored


class Trainer:
    """Train the phases of an experiment into a sink. Use :func:`loopdyn.train` for the common case.

    A phase is `(config, label)`; its runs carry the label (the store's `phase` coordinate). Phases run
    one after the other (a later phase may read an earlier one's results through `sources`); inside a
    phase all groups advance chunk by chunk. Progress is `(phase, epochs_done)`.

    **Arguments:** `phases`; `sink`; `sources(group) -> Sources` (default: fresh runs only); `devices`:
    host devices to shard each group over (default all; resuming must use the store's number);
    `progress`: show a progress bar; `where`: the store's path, for messages; `groups`: the phases'
    groups if already built (:func:`make_groups`).
    """

    def __init__(self, phases: list[tuple[cfg_mod.Config, str]], sink: Sink, *,
                 sources: Callable[[Group], Sources] | None = None, devices: int | None = None,
                 progress: bool = True, where: str = "<store>", groups: list[Group] | None = None):
        self.phases, self.sink, self.where = phases, sink, where
        self.sources = sources or (lambda group: Sources())
        self.devices = len(jax.devices()) if devices is None else devices
        self.progress = progress
        self.groups = make_groups(phases) if groups is None else groups

    def _init(self, groups: list[Group]) -> tuple[list[RunState], list[RunConstants]]:
        states, consts = [], []
        for g in groups:
            dtype = g.problem.dtype
            hyper = HyperParams(**{k: jnp.asarray(v, dtype) for k, v in g.hyper.items()})
            s, c = jax.vmap(lambda seed, h, g=g: init_run(g.problem, seed, h))(jnp.asarray(g.seeds), hyper)
            src = self.sources(g)
            if src.teacher is not None:
                c = c._replace(teacher=jax.tree.map(lambda a: jnp.asarray(a, dtype), src.teacher))
            if src.start is not None:
                start = represent(g.problem.spec, jax.tree.map(lambda a: jnp.asarray(a, dtype), src.start))
                trained, frozen = partition(start, g.problem.spec.trained_names)
                s = s._replace(params=trained)
                s = jax.vmap(lambda st, h, g=g: restart_optimizer(g.problem, st, h))(s, hyper)
                c = c._replace(frozen=frozen)
                g.start_epochs = np.asarray(src.start_epochs)
            states.append(s)
            consts.append(c)
        return states, consts

    def run(self, *, resume: bool = False, stop_after: int | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
        """Train every phase from the sink's progress (`resume`) or from scratch. `stop_after`: stop once
        that many epochs of all phases together are committed (to test interruption); `should_stop()`:
        polled after every committed chunk, raises :class:`loopdyn.errors.Interrupted` when true."""
        first_phase, done = self.sink.progress() if resume else (0, 0)
        if first_phase < len(self.phases) and done >= self.phases[first_phase][0].epochs:
            first_phase, done = first_phase + 1, 0
        budget = np.inf if stop_after is None else stop_after - sum(c.epochs for c, _ in self.phases[:first_phase])
        for p in range(first_phase, len(self.phases)):
            cfg, label = self.phases[p]
            E, K = cfg.epochs, cfg.record.chunk
            groups = [g for g in self.groups if g.phase == p]
            states, consts = self._init(groups)
            if done > 0:
                states = restore_states(groups, states, self.sink.load_state(p, done), self.where)
            else:
                self.sink.begin_phase(p, groups, [c.frozen for c in consts])
            dev_states, dev_consts, eval_consts = [], [], []
            for g, s, c in zip(groups, states, consts):
                mesh, n = device_layout(len(g.runs), self.devices)
                s, c = _pad(s, n), _pad(c, n)
                if mesh is not None:
                    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("run"))
                    s, c = jax.device_put((s, c), sharding)
                dev_states.append(s)
                dev_consts.append(c)
                if g.chunk_fn is None:
                    test_key = jax.random.PRNGKey(g.cfg.task.test_seed)
                    test_x0 = g.problem.task.test_set(test_key, g.problem.dtype)
                    if g.problem.separable_evaluation and n < self.devices:  # a device of its own
                        g.eval_fn, g.eval_device = make_evaluation(g.problem, test_x0), jax.devices()[n]
                    g.chunk_fn = compile_chunk(g.problem, test_x0, mesh, evaluate=g.eval_fn is None)
                eval_consts.append(None if g.eval_fn is None else jax.device_put(c, g.eval_device))

            def launch(start, stop):
                """Dispatch a chunk of every group (asynchronous): its records, separate evaluations, states."""
                epochs = jnp.arange(start, stop, dtype=jnp.int32)
                launched = []
                for gi, g in enumerate(groups):
                    dev_states[gi], rec = g.chunk_fn(dev_states[gi], dev_consts[gi], epochs)
                    evaluation = None
                    if g.eval_fn is not None:
                        evaluation = g.eval_fn(jax.device_put(rec.params, g.eval_device), eval_consts[gi],
                                               jax.device_put(epochs, g.eval_device))
                    launched.append((rec, evaluation, dev_states[gi]))
                return launched

            def finish(start, stop, launched):
                """Wait for a launched chunk, summarise, write and commit it."""
                results = []
                for gi, (g, (rec, evaluation, state)) in enumerate(zip(groups, launched)):
                    rec = jax.tree.map(lambda a, n=len(g.runs): np.asarray(a)[:n], rec)
                    if evaluation is not None:
                        test, metrics = jax.tree.map(lambda a, n=len(g.runs): np.asarray(a)[:n], evaluation)
                        rec = rec._replace(test_loss=test, metrics=metrics)
                    frozen = jax.tree.map(lambda a, n=len(g.runs): np.asarray(a)[:n], consts[gi].frozen)
                    out = {"train_loss": rec.train_loss, "test_loss": rec.test_loss, "params": rec.params,
                           "diverged_epoch": np.asarray(state.diverged)[: len(g.runs)],
                           **rec.metrics, **rec.extra, **chunk_summaries(g, rec.params, frozen)}
                    if g.problem.records_gains:
                        out["gains"] = gains_from_moments(rec.gram, rec.cross)
                    results.append(out)
                self.sink.write_chunk(p, start, stop, groups, results)
                complete = p == len(self.phases) - 1 and stop == E
                self.sink.commit(p, stop, state_arrays(groups, [state for _, _, state in launched]), complete)
                return complete

            name = f"{cfg.name} [{label}]" if label != cfg.name else cfg.name
            target = E if budget >= E else max(int(budget), done)
            with _Progress(E, done, name, enabled=self.progress) as bar:
                # the next chunk is dispatched before the last one is written: devices and host overlap
                pending = None
                for start in range(done, target + K, K):
                    nxt = (start, min(start + K, E)) if start < target else None
                    if nxt is not None:
                        first = start == done
                        if first:  # the first call of each group's chunk traces and compiles it (synchronously)
                            bar.compiling(len(groups))
                        nxt = nxt + (launch(*nxt),)
                        if first:
                            bar.compiled()
                    if pending is not None:
                        complete = finish(*pending)
                        bar.advance(pending[1] - pending[0])
                        if should_stop is not None and should_stop() and not complete:
                            raise Interrupted(self.where, p, pending[1])
                    pending = nxt
            if target < E:
                return
            budget -= E
            done = 0


class _Progress:
    """A rich progress bar with epochs/s and ETA (silent when disabled)."""

    def __init__(self, total: int, done: int, name: str, enabled: bool = True):
        self.enabled, self.total, self.done, self.name = enabled, total, done, name

    def __enter__(self):
        if self.enabled:
            from rich.markup import escape
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._label = escape(self.name)  # "name [phase]": the phase is text, not a rich markup tag
            self._t0 = time.perf_counter()
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("epochs"), TextColumn("{task.fields[rate]}"), TextColumn("ETA"),
                                 TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self.total, completed=self.done, rate="")
        return self

    def compiling(self, n_groups: int) -> None:
        """Say that the phase's programs are being compiled (seconds, before the first epoch)."""
        if self.enabled:
            self._compile_t0 = time.perf_counter()
            what = f"{n_groups} groups" if n_groups > 1 else "the epoch loop"
            self._bar.update(self._task, description=f"{self._label}: compiling {what} ...")

    def compiled(self) -> None:
        if self.enabled:
            dt = time.perf_counter() - self._compile_t0
            self._bar.console.print(f"{self._label}: compiled in {dt:.1f} s")
            self._bar.update(self._task, description=self._label)

    def advance(self, n: int) -> None:
        if self.enabled:
            self.done += n
            rate = self._bar.tasks[0].speed
            self._bar.update(self._task, advance=n, rate=f"{rate:.0f} epochs/s" if rate else "")

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.stop()

