"""The compiled training step: one epoch of one run, scanned over epochs, vmapped over runs.

An epoch evaluates the training loss of the current parameters on a fresh batch (which also gives the
gain moments of the closed-loop trajectories, pooled over the last `record.gain_window` epochs), the
closed-loop test metric on the task's test episodes (regulation: a fixed batch; tracking: a fresh one)
and the task's further per-epoch records (tracking: the per-frequency probes), and then (unless the run
has diverged, or this is epoch 0 with `skip_first_update`) applies one clipped optimiser step
(:func:`loopdyn.optim.descend`). The record of epoch `e` describes the parameters *after e updates*
(after e-1 with the skip), the ones that produced `train_loss[e]` and `test_loss[e]`.

A run diverges at the epoch whose training loss or gradient is not finite, or whose loss exceeds
`train.diverge_above`; that epoch's update is not applied, and every later record of the run is NaN
(losses, moments, parameters), while the other runs go on.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import AgentSpec, combine, gram_layout, init_params, make_core, partition, represent, spec_from_config
from ..plants import Plant
from ..system import gain_moments, rollout
from ..tasks import concat_episodes
from . import _superpose
from ._modes import MODES, ClosedLoop
from ..optim import apply_gradient, descend, init_optimizer, make_optimizer
from ._rules import BPTT, Settings, schedule_records, schedule_value
from ._state import EpochRecord, HyperParams, RunConstants, RunState

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
RUN_AXIS = "ensemble"
"""Name of the vmapped run axis of a chunk (collectives over the runs of a block, e.g. the superposition check)."""
EPOCH_AXIS = "epochs"
"""Name of the vmapped epoch axis of a separate evaluation (:func:`make_evaluation`)."""
EVALUATION_BATCH = 25
"""Epochs a separate evaluation vmaps together (:func:`make_evaluation`)."""


@dataclass(frozen=True)
class Problem:
    """Everything static about one compiled group of runs.

    `task`: a task of :mod:`loopdyn.tasks` (regulation or tracking). `strategy`: `"auto"` computes the
    losses of a superposable task with a linear agent by superposition of its basis episodes
    (:mod:`loopdyn.training._superpose`; same loss and gradient), `"plain"` rolls every episode out.
    `run_axis`: the name (or names) of the vmapped axes whose runs choose superposition branches together,
    when the epoch runs inside a chunk.
    """

    spec: AgentSpec
    plant: Plant
    task: Any
    mode: Any = field(default_factory=ClosedLoop)
    optimizer: str = "sgd"
    clip_eps: float = 0.0
    skip_first_update: bool = False
    noisy: bool = False
    dtype: Any = jnp.float32
    diverge_above: float = 1e25
    gain_window: int = 1
    strategy: str = "auto"
    run_axis: str | tuple[str, ...] | None = None
    terms: tuple = ()  # further loss terms of the closed-loop training loss (loopdyn.tasks.LossTerm)
    rule: Any = None  # the learning rule (loopdyn.training.GradientRule; None = bptt)
    schedule: Any = None  # per-epoch schedules (loopdyn.config.ScheduleConfig; None = none)

    @property
    def plain_gradient(self) -> bool:
        """Whether an epoch takes the exact gradient of the mode's loss with nothing scheduled or recorded beside
        it: the trainer's path from before learning rules (and its numbers, bit for bit)."""
        rule = self.rule or BPTT()
        return rule.exact and not rule.variance and not (self.schedule is not None and self.schedule.scheduled)

    @property
    def records(self) -> tuple[str, ...]:
        """The per-epoch records of the learning rule and the schedules (store arrays `run, epoch`)."""
        if self.plain_gradient:
            return ()
        return tuple(dict.fromkeys((self.rule or BPTT()).record_names() + schedule_records(self.schedule)))

    @property
    def linear_loop(self) -> bool:
        """Whether plant and agent both declare themselves linear (what every shortcut below needs)."""
        return self.plant.linear and self.spec.linear

    @property
    def compress_batch(self) -> bool:
        """Whether episodes run on the batch's :meth:`~loopdyn.tasks.Regulation.second_moment_batch` (k states)
        instead of the batch: for a linear agent (either representation) on a noise- and clamp-free plant, where
        every loss term, the test metric and the gain moments are quadratic forms of the initial states, so they
        depend on the batch only through its second moment. Exact to round-off; an epoch then costs O(k), not
        O(batch) (linearity: the batch is a superposition of k basis episodes)."""
        return (self.linear_loop and not self.noisy and self.plant.clamp == 0
                and hasattr(self.task, "second_moment_batch") and all(t.quadratic for t in self.terms))

    @functools.cached_property
    def transform(self):
        """The optax transformation (hyper-parameters injected, see :func:`loopdyn.optim.make_optimizer`); in the
        overlap representation the exact step of the Gram matrix (spec §7)."""
        mask = gram_layout(self.spec).mask(self.spec.trainable) if self.spec.representation == "overlaps" else None
        return make_optimizer(self.optimizer, self.clip_eps, gram_mask=mask)

    @property
    def superposed(self) -> bool:
        """Whether losses are computed by superposition of basis episodes (linear agent, no process noise)."""
        return (self.strategy == "auto" and self.task.superposable and self.linear_loop and not self.noisy
                and not self.terms)

    @property
    def runs_per_block(self) -> int | None:
        """How many runs a chunk steps together on a CPU device (`None`: all of the device's runs in one vmap).

        An epoch that rolls a whole batch out at the neurons (a nonlinear agent, or a linear one whose
        losses are neither superposed nor compressed) keeps its T x batch x N activations for the backward
        pass. Vmapped over many runs, these residuals (hundreds of MB per epoch) stream through memory,
        and on CPU an epoch costs 1.4x more per run with 32 runs in a vmap than with 2
        (`benchmarks/bench_train.py`: tanh-closed, 64 runs on 2 cores, 3.51-3.59 -> 2.37-2.51 ms per run-epoch,
        interleaved).
        Such runs go in blocks of 2, looped over; small epochs (superposed, compressed, overlaps) keep
        the whole vmap, which is what makes them fast. Accelerators always take the whole vmap.
        """
        if self.superposed or self.compress_batch:
            return None
        activations = self.task.T * self.task.batch * self.spec.hidden_dim * jnp.dtype(self.dtype).itemsize
        return 2 if activations >= 2**20 else None

    @property
    def separable_evaluation(self) -> bool:
        """Whether the per-epoch evaluation can run apart from training (:func:`make_evaluation`): it then
        depends on the recorded parameters alone. Not where it reuses what the loss simulated (the closed
        loop's basis episodes) or feeds the gain moments (regulation)."""
        reuses_basis = self.superposed and isinstance(self.mode, ClosedLoop)
        return not (reuses_basis or self.records_gains)

    @property
    def joint_spectra(self) -> bool:
        """Whether the trainer records the spectrum of the joint matrix P every epoch: linear agents on
        tasks with the delayed timing that P describes (spec §4.1)."""
        return self.linear_loop and self.task.timing == "delayed"

    @property
    def records_gains(self) -> bool:
        return bool(self.task.gains)

    def evaluate(self, params, hyper: HyperParams, key, test_set, basis=None):
        """`(test metric, metrics)` of `params` in closed loop (noise-free): the task's test episodes
        (fixed `test_set`, or drawn from `key`) and its probes (`metrics`: `task.epoch_metrics()`).
        `basis`: the closed loop's basis episodes when the training loss already rolled them out."""
        if hasattr(self.mode, "test"):  # a mode without plant tests itself (open_loop_target)
            return self.mode.test(self, params, hyper), {}
        task = self.task
        core = make_core(self.spec, params, hyper.g)
        test = task.test_episode(test_set, key, self.dtype)
        if self.compress_batch:
            test = test._replace(x0=task.second_moment_batch(test.x0))
        probe = task.probe_episode(self.dtype)
        episode = test if probe is None else concat_episodes(test, probe)
        n = test.batch
        if self.superposed:
            q = _superpose.closed_loop_sq(self, core, episode, basis)
            metrics = {} if probe is None else task.probe_metrics_of_sq(q[n:])
            return task.loss_scale * jnp.mean(q[:n]), metrics
        traj = rollout(core, self.plant, episode.x0, task.T, exo=episode.exo, timing=task.timing, emit=task.emit)
        metrics = {} if probe is None else task.probe_metrics(jax.tree.map(lambda a: a[:, n:], traj), probe)
        return task.episode_metric(jax.tree.map(lambda a: a[:, :n], traj), test), metrics

    def probe_moments(self, params, hyper: HyperParams, key):
        """Gain moments of closed-loop trajectories (noise-free) for modes whose loss simulates no closed
        loop, from the batch a closed-loop run would train on with the epoch's `key`: runs of one seed in
        different modes are fitted on the same initial states."""
        episode = self.task.sample_episode(jax.random.split(key)[0], self.task.batch, self.dtype)
        traj = rollout(make_core(self.spec, params, hyper.g), self.plant, episode.x0, self.task.T, exo=episode.exo,
                       timing=self.task.timing)
        return gain_moments(traj.x, traj.u)


def build_problem(cfg) -> Problem:
    """The static problem of a configuration without sweep (a group's configuration)."""
    plant = cfg.plant
    task = cfg.task.bind(plant, getattr(cfg.agent, "alpha", 1.0))
    spec = spec_from_config(cfg, plant.n_observed + task.n_exo, plant.n_controls)
    return Problem(spec, plant, task, MODES[cfg.train.mode], cfg.train.optimizer, cfg.train.clip_eps,
                   cfg.train.skip_first_update, plant.noise > 0, DTYPES[cfg.dtype], cfg.train.diverge_above,
                   cfg.record.gain_window, terms=tuple(cfg.loss), rule=cfg.gradient, schedule=cfg.schedule)


def init_run(problem: Problem, seed, hyper: HyperParams) -> tuple[RunState, RunConstants]:
    """`(state, constants)` of one fresh run; `seed` an integer (traced ok), `hyper` its scalars.

    The initial weights depend only on the seed and the agent, never on the training mode or representation.
    """
    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    params = init_params(problem.spec, k_init, g=hyper.g, over=hyper.over, dtype=problem.dtype)
    # the overlap representation starts from the inner products of this N-dimensional initialisation
    trained, frozen = partition(represent(problem.spec, params), problem.spec.trained_names)
    opt = init_optimizer(problem.transform, trained, hyper.lr, hyper.clip)
    k, m, w = problem.plant.n_states, problem.plant.n_controls, problem.gain_window - 1
    moments = (jnp.zeros((w, k, k), jnp.float64), jnp.zeros((w, k, m), jnp.float64)) if problem.records_gains else None
    rule = None if problem.plain_gradient else (problem.rule or BPTT()).init_state(problem)
    return RunState(trained, opt, jnp.asarray(-1, jnp.int32), moments, rule), RunConstants(frozen, hyper, k_train)


def restart_optimizer(problem: Problem, state: RunState, hyper: HyperParams) -> RunState:
    """A fresh optimiser state for `state.params` (a continuation starts its optimiser anew)."""
    return state._replace(opt=init_optimizer(problem.transform, state.params, hyper.lr, hyper.clip))


def make_epoch(problem: Problem, test_x0, evaluate: bool = True) -> Callable:
    """`epoch(state, consts, e) -> (state, EpochRecord)` for a single run; `test_x0`: the task's fixed test
    set (`task.test_set`; `None` for tracking). `evaluate=False` (a :attr:`Problem.separable_evaluation`)
    records a NaN test metric and no metrics: :func:`make_evaluation` computes them from the record."""

    def epoch(state: RunState, consts: RunConstants, e):
        key = jax.random.fold_in(consts.key, e)

        def objective(trained):
            return problem.mode.loss(problem, combine(trained, consts.frozen), consts, key)

        alive = state.diverged < 0
        enabled = alive & (e > 0) if problem.skip_first_update else alive
        extra, rule_state = {}, state.rule
        if problem.plain_gradient:
            step = descend(objective, state.params, state.opt, problem.transform, enabled=enabled)
        else:
            consts, opt, settings, extra = _scheduled(problem, consts, state.opt, e)
            out = (problem.rule or BPTT()).gradient(problem, state.params, consts, key, settings, state.rule)
            step = apply_gradient(out.loss, out.aux, out.grads, state.params, opt, problem.transform, enabled=enabled)
            extra, rule_state = {**extra, **out.records}, out.state
        bad = ~step.finite | (step.loss > problem.diverge_above)
        accept = ~bad

        def keep(new, old):
            return jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, old)

        params = combine(state.params, consts.frozen)
        aux = step.aux
        if evaluate:
            test, metrics = problem.evaluate(params, consts.hyper, jax.random.fold_in(key, 1), test_x0, aux.basis)
        else:
            test, metrics = jnp.asarray(jnp.nan, problem.dtype), {}
        if problem.records_gains:
            gram, cross = aux.moments if aux.moments is not None else problem.probe_moments(params, consts.hyper, key)
            # the gain window: this epoch's moments plus those of the previous w - 1 epochs (fewer at the start)
            g_hist, c_hist = state.moments
            new_moments = (jnp.concatenate([g_hist, gram[None]])[1:], jnp.concatenate([c_hist, cross[None]])[1:])
            moments = (gram + g_hist.sum(0), cross + c_hist.sum(0))
        else:
            moments, new_moments = (None, None), state.moments
        new_state = RunState(keep(step.params, state.params), keep(step.opt_state, state.opt),
                             jnp.where(alive & bad, e, state.diverged).astype(jnp.int32), new_moments,
                             rule_state if rule_state is None else keep(rule_state, state.rule))

        def alive_or_nan(a):
            return jnp.where(alive, a, jnp.asarray(jnp.nan, a.dtype))

        gram, cross = jax.tree.map(alive_or_nan, moments)
        record = EpochRecord(alive_or_nan(step.loss), alive_or_nan(test), gram, cross,
                             jax.tree.map(alive_or_nan, state.params), jax.tree.map(alive_or_nan, metrics),
                             {k: alive_or_nan(jnp.asarray(v, problem.dtype)) for k, v in extra.items()})
        return new_state, record

    return epoch


def _scheduled(problem: Problem, consts: RunConstants, opt, e):
    """`(consts, opt, settings, records)` of epoch `e` under the schedules (:class:`loopdyn.config.ScheduleConfig`):
    beta in the hyper-parameters, the learning rate in the optimiser state, the episode length and noise in the
    rule's settings; the records name each scheduled value."""
    sched, records, horizon, sigma = problem.schedule, {}, None, None
    if sched is None or not sched.scheduled:
        return consts, opt, Settings(), records
    hyper = consts.hyper
    if sched.beta:
        beta = schedule_value(sched.beta, sched.beta_ramp, e).astype(hyper.beta.dtype)
        hyper, records["beta_epoch"] = hyper._replace(beta=beta), beta
    if sched.lr:
        lr = schedule_value(sched.lr, sched.lr_ramp, e)
        hp = dict(opt.hyperparams)
        hp["learning_rate"] = lr.astype(hp["learning_rate"].dtype)
        opt, records["lr_epoch"] = opt._replace(hyperparams=hp), lr
    if sched.T:
        horizon = jnp.floor(schedule_value(sched.T, sched.T_ramp, e)).astype(jnp.int32)
        records["T_epoch"] = horizon
    if sched.sigma:
        sigma = schedule_value(sched.sigma, sched.sigma_ramp, e).astype(problem.dtype)
        records["sigma"] = sigma
    return consts._replace(hyper=hyper), opt, Settings(horizon, sigma), records


def make_evaluation(problem: Problem, test_x0, batch: int = EVALUATION_BATCH) -> Callable:
    """`evaluate(params, consts, epochs) -> (test (run, epoch), metrics)`: the evaluation an epoch records,
    of the recorded trained parameters `params` `(run, epoch, ...)` (NaN once a run diverged) — the same
    numbers from the same keys, for a :attr:`Problem.separable_evaluation` computed apart from training.

    It runs `batch` epochs of a run at a time as one vmap (the epochs' superposition branch chosen
    together), so that a device it has to itself evaluates a chunk while another trains the next one
    (:class:`loopdyn.training.Trainer`, a group with fewer runs than devices)."""
    pb = dataclasses.replace(problem, run_axis=(RUN_AXIS, EPOCH_AXIS))

    def one(trained, consts, e):
        alive = functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(trained)])
        trained = jax.tree.map(lambda a: jnp.where(alive, a, jnp.zeros_like(a)), trained)  # stays finite
        key = jax.random.fold_in(jax.random.fold_in(consts.key, e), 1)  # as the epoch's
        test, metrics = pb.evaluate(combine(trained, consts.frozen), consts.hyper, key, test_x0)
        return jax.tree.map(lambda a: jnp.where(alive, a, jnp.asarray(jnp.nan, a.dtype)), (test, metrics))

    def one_run(trained, consts, epochs):
        E = epochs.shape[0]
        b = min(batch, E)
        n = -(-E // b)

        def split(a):  # (E, ...) -> (n, b, ...), the last epoch repeated to fill
            a = jnp.concatenate([a, jnp.repeat(a[-1:], n * b - E, axis=0)])
            return a.reshape((n, b) + a.shape[1:])

        batched = jax.vmap(one, in_axes=(0, None, 0), axis_name=EPOCH_AXIS)
        out = jax.lax.map(lambda te: batched(te[0], consts, te[1]), jax.tree.map(split, (trained, epochs)))
        return jax.tree.map(lambda a: a.reshape((n * b,) + a.shape[2:])[:E], out)

    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, None), axis_name=RUN_AXIS))


def make_chunk(problem: Problem, test_x0, block: int | None = None, evaluate: bool = True) -> Callable:
    """`chunk(states, consts, epochs) -> (states, records)`: scan over `epochs` (an int array), vmapped
    over the leading run axis of `states` and `consts` (named :data:`RUN_AXIS`); records have shape
    `(run, epoch, ...)`.

    `block`: step the runs in blocks of (at most) this many, one block after the other (`lax.map`), each
    block a vmap over its runs (:attr:`Problem.runs_per_block`); the block is then the run axis of the
    epoch's collectives. A block size that does not divide the run count is lowered to one that does.
    `evaluate`: as in :func:`make_epoch`.
    """
    epoch = make_epoch(dataclasses.replace(problem, run_axis=RUN_AXIS), test_x0, evaluate)

    def one_run(state, consts, epochs):
        consts = problem.mode.prepare(problem, consts)
        return jax.lax.scan(lambda s, e: epoch(s, consts, e), state, epochs)

    vmapped = jax.vmap(one_run, in_axes=(0, 0, None), axis_name=RUN_AXIS)
    if block is None:
        return vmapped

    def blocked(states, consts, epochs):
        n = jax.tree.leaves(states)[0].shape[0]
        b = max(d for d in range(1, min(block, n) + 1) if n % d == 0)
        if b == n:
            return vmapped(states, consts, epochs)
        split = functools.partial(jax.tree.map, lambda a: a.reshape((n // b, b) + a.shape[1:]))
        out = jax.lax.map(lambda sc: vmapped(*sc, epochs), split((states, consts)))
        return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

    return blocked


def compile_chunk(problem: Problem, test_x0, mesh=None, evaluate: bool = True):
    """The jitted chunk function of a group. With a mesh, each device runs its own block of runs
    through `shard_map`: runs are independent, so the program has no cross-device communication.
    On CPU devices, runs with large epochs go in blocks (:attr:`Problem.runs_per_block`). `evaluate`: as
    in :func:`make_epoch`. The input states are not donated: the trainer commits a chunk's states while
    the next chunk runs."""
    platform = (mesh.devices.flat[0] if mesh is not None else jax.devices()[0]).platform
    chunk = make_chunk(problem, test_x0, problem.runs_per_block if platform == "cpu" else None, evaluate)
    if mesh is not None:
        spec = jax.sharding.PartitionSpec("run")
        chunk = jax.shard_map(chunk, mesh=mesh, in_specs=(spec, spec, jax.sharding.PartitionSpec()),
                              out_specs=(spec, spec), check_vma=False)
    return jax.jit(chunk)


def device_layout(n_runs: int, devices: int | None = None):
    """`(mesh, padded run count)`: the runs are split over `devices` host devices (default: all) when
    there are several (padded to a multiple of the device count), else `(None, n_runs)`."""
    available = jax.devices()
    n = len(available) if devices is None else devices
    if n > len(available):
        raise RuntimeError(f"{n} devices requested, {len(available)} available")
    if n < 2 or n_runs < n:
        return None, n_runs
    mesh = jax.sharding.Mesh(np.array(available[:n]), ("run",))
    return mesh, int(-(-n_runs // n) * n)
