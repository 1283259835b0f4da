r"""Learning rules: how an epoch's gradient is obtained (`[gradient] kind = ...`), and per-epoch schedules.

A learning rule is a part of the family `gradient` (:class:`GradientRule`; a user adds one in one file, see
`docs/learning-rules.md`). It gets the epoch's trained parameters and settings and returns the training loss,
a gradient, and what it records; the epoch then takes the same clipped optimiser step
(:func:`loopdyn.optim.apply_gradient`) whatever the rule. Shipped:

- :class:`BPTT` (`bptt`, the default): the exact gradient through the known, differentiable plant — the
  training mode's loss differentiated by JAX, the computation of every run before rules existed.
- :class:`Reinforce` (`reinforce`): the plant is a black box. Actions are $u_t = \mu_\theta(h_t) +
  \sigma\varepsilon_t$, $\varepsilon_t \sim \mathcal N(0, I)$; with the per-step costs $c_{t,b}$ of the task
  and their reward-to-go $G_{t,b} = \sum_{t' \ge t} c_{t',b}$, the score-function estimate
  $\hat g = \frac1B\sum_b\sum_t (G_{t,b} - \bar G_{t,-b})\,\nabla_\theta\log\pi_\theta(u_{t,b}\mid h_{t,b})$,
  $\nabla\log\pi = (u - \mu)/\sigma^2\,\nabla\mu$, with the baseline $\bar G_{t,-b}$ the mean reward-to-go of
  the *other* episodes of the batch at step t (leave-one-out: unbiased, unlike the plain batch mean, whose
  estimate is $(1 - 1/B)$ times the gradient). One rollout steps the plant as a black box
  (:class:`BlackBox`: no derivative flows through it), so the backward pass runs through the agent alone. It
  estimates the gradient of the noisy objective
  $J(\theta) = \mathbb E_{x_0,\varepsilon}\,\mathcal L$.
- :class:`Model` (`model`): the agent fits a linear model $\hat x' = \hat A x + \hat B u$, $\hat y = \hat C x$
  of the plant by least squares on the transitions $(x_t, u_t, x_{t+1}, y_{t+1})$ it observed in the last
  `replay` epochs (their sufficient statistics, this epoch's included), refitted every epoch, and
  back-propagates the loss through the model instead of the plant. The state is measured for fitting (the
  task's cost is a function of it anyway); the agent still sees only y. With `model = "network"` the model is a
  small tanh network over the least-squares affine fit, for nonlinear plants (:mod:`loopdyn.training._netmodel`).

A rule records per epoch (store arrays `run, epoch`): `sigma` (its exploration noise), `grad_variance` (the
trace of the covariance of the gradient estimate, from its two half-batch estimates $g_1, g_2$:
$\|g_1 - g_2\|^2/4$, both from the one backward pass of the batch: :func:`per_episode_gradient`) and, for
`model`, `model_error` (relative Frobenius error of $[\hat A\ \hat B;\ \hat C]$ on a linear plant) and
`model_residual` (one-step prediction error, relative, of the model fitted before this epoch on this epoch's
transitions).

Schedules (`[schedule]`, :class:`loopdyn.config.ScheduleConfig`): the episode length $T_e$ (the episodes are
rolled out for `task.T` steps and the loss masks steps $t \ge T_e$, normalised as the task defines its loss
at length $T_e$: :meth:`loopdyn.tasks.Regulation.step_costs`), the control penalty, the learning rate and the
exploration noise, each a function of the epoch, recorded as `T_epoch`, `beta_epoch`, `lr_epoch`, `sigma`.
"""

from __future__ import annotations

import abc
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import combine, make_core
from ..config import NON_NEGATIVE, POSITIVE, InvalidParameter, Part, declare_family, param
from ..plants import Plant
from ..system import Trajectory, gain_moments, rollout
from ._modes import ClosedLoop, LossAux


class Settings(NamedTuple):
    """What an epoch's schedule sets: `horizon` (the episode length T_e, or `None` = `task.T`), `sigma` (the
    rule's exploration noise this epoch, or `None` = the rule's own)."""

    horizon: Any = None
    sigma: Any = None


class RuleStep(NamedTuple):
    """What a rule returns for one epoch: the training `loss` (of the episodes run), the gradient `grads`
    (a pytree like the trained parameters), the `aux` the epoch reuses (:class:`LossAux`), the rule's new
    `state` and its per-epoch `records` (name -> scalar)."""

    loss: jax.Array
    grads: Any
    aux: Any
    state: Any
    records: dict


class GradientRule(Part):
    """A learning rule (module docstring): `gradient(problem, trained, consts, key, settings, state)`."""

    exact = False
    """Whether this is the exact gradient of the training mode's loss (BPTT): every mode, task, objective and
    representation, and the trainer's fast path when nothing is recorded beside it."""

    noisy_actions = False
    """Whether the rule explores with action noise `sigma` (its parameter), which a schedule may anneal."""

    records = ()
    """Per-epoch records beside `grad_variance` (and `sigma` for a rule with action noise)."""

    def record_names(self) -> tuple[str, ...]:
        return (("sigma",) if self.noisy_actions else ()) + (("grad_variance",) if self.variance else ()) + self.records

    def init_state(self, problem) -> Any:
        """The rule's state carried from epoch to epoch (e.g. a replay of transitions); `None` if none."""
        return None

    @abc.abstractmethod
    def gradient(self, problem, trained, consts, key, settings: Settings, state) -> RuleStep:
        """The epoch's loss, gradient, records and new state (:class:`RuleStep`)."""

    def check(self, cfg) -> None:
        sched = cfg.schedule
        model_free = not self.exact or self.variance
        if not (model_free or sched.scheduled):
            return  # today's bptt: nothing to check
        task = cfg.task.bind(cfg.plant, getattr(cfg.agent, "alpha", 1.0))
        if model_free:
            what = f"gradient.kind = {self.kind!r}" + (" with variance = true" if self.exact else "")
            if cfg.train.mode != "closed_loop":
                raise InvalidParameter("gradient.kind", f"= {self.kind!r} trains in closed loop only, not train.mode = "
                                       f"{cfg.train.mode!r}; use kind = 'bptt'")
            if not hasattr(task, "step_costs"):
                raise InvalidParameter("gradient.kind", f"= {self.kind!r} needs a task with per-step costs "
                                       f"(regulation); use kind = 'bptt'")
            if getattr(cfg.task, "objective", "sampled") == "expected":
                raise InvalidParameter("task.objective", f"= 'expected' is a closed-form average over initial states, "
                                       f"which {what} cannot express (it samples episodes); use objective = 'sampled'")
            if getattr(cfg.agent, "representation", "vectors") == "overlaps":
                raise InvalidParameter("agent.representation", f"= 'overlaps' steps the Gram matrix, which {what} "
                                       f"cannot express; use representation = 'vectors'")
            if cfg.loss:
                raise InvalidParameter("loss", f"terms ([[loss]]) are not part of the per-step costs {what} uses; "
                                       f"remove them or use kind = 'bptt'")
        if sched.T:
            if cfg.train.mode != "closed_loop" or not hasattr(task, "step_costs"):
                raise InvalidParameter("schedule.T", "needs train.mode = 'closed_loop' and a task with per-step costs "
                                       "(regulation); remove schedule.T")
            if cfg.loss:
                raise InvalidParameter("schedule.T", "cannot cut the [[loss]] terms at T_e; remove them or schedule.T")
            if any(not float(v).is_integer() or not 1 <= v <= task.T for _, v in sched.T):
                raise InvalidParameter("schedule.T", f"= {[list(k) for k in sched.T]} must give integers from 1 to "
                                       f"task.T = {task.T} (the episodes are rolled out for task.T steps)")
        if sched.beta and any(v < 0 for _, v in sched.beta):
            raise InvalidParameter("schedule.beta", "values must be >= 0")
        if sched.lr and any(v <= 0 for _, v in sched.lr):
            raise InvalidParameter("schedule.lr", "values must be > 0")
        if sched.sigma:
            if not self.noisy_actions:
                raise InvalidParameter("schedule.sigma", f"anneals a rule's exploration noise, which gradient.kind = "
                                       f"{self.kind!r} has none of; remove it")
            if any(not (v > 0 and math.isfinite(v)) for _, v in sched.sigma):
                raise InvalidParameter("schedule.sigma", "values must be finite and > 0")
        swept = {k for k, _ in cfg.sweep}
        for name, key in (("beta", "task.beta"), ("lr", "train.lr"), ("T", "task.T"), ("sigma", "gradient.sigma")):
            if getattr(sched, name) and key in swept:
                raise InvalidParameter(f"schedule.{name}", f"replaces {key}, which is also swept; drop one of them")


def _finite_positive(v) -> bool:
    return math.isfinite(v) and v > 0


def per_episode_gradient(f, trained, variance: bool):
    r"""`(value, grads, variance)`: the batch mean $\frac1B\sum_b f_b(\theta)$  of per-episode values
    `f(trained, sel) -> (n,)` (those of the episodes `sel`, an index array `(n,)`; of the whole batch for
    `sel = None`), and, with `variance`, the trace of its covariance estimated from the gradients $g_1, g_2$ of
    two halves of the batch, $\|g_1 - g_2\|^2/4$ (NaN without).

    One backward pass either way: with `variance` each half is rolled out with its own copy of the parameters
    (vmapped over (copy, half), :func:`_halves`), and the gradient of the weighted sum with respect to the two
    stacked copies is the two halves' parts of the batch gradient, whose sum is the gradient."""
    out = jax.eval_shape(f, trained, None)
    B, dtype = out.shape[0], out.dtype
    if not variance:
        value, g = jax.value_and_grad(lambda tr: jnp.mean(f(tr, None)))(trained)
        return value, g, jnp.asarray(jnp.nan, dtype)
    idx, w, _ = _halves(B)
    w = jnp.asarray(w, dtype)
    value, gs = jax.value_and_grad(lambda p: jnp.sum(w * jax.vmap(f)(p, jnp.asarray(idx))))(_copies(trained))
    return (value, *_from_copies(gs, B))


def _halves(B: int):
    """The batch of `B` episodes laid out as two halves of `n = ceil(B/2)`: `(idx, w, back)`, numpy. `idx (2, n)`
    the episodes of each half (for odd B, the last episode is in both halves), `w (2, n)` each entry's weight in
    the batch mean (1/B; 1/(2B) for the shared episode, whose parts then cancel in $g_1 - g_2$), `back (B,)` the
    position of episode b in `idx.ravel()`."""
    h = B // 2
    first, second = np.arange(h), np.arange(h, 2 * h)
    if B % 2:
        first, second = np.append(first, 2 * h), np.append(second, 2 * h)
    idx = np.stack([first, second])
    w = np.full(idx.shape, 1.0 / B)
    if B % 2:
        w[:, -1] = 0.5 / B
    return idx, w, np.unique(idx.ravel(), return_index=True)[1]


def _copies(trained):
    """Two copies of the trained parameters, stacked on a leading axis (one per half of the batch)."""
    return jax.tree.map(lambda a: jnp.stack([a, a]), trained)


def _from_copies(gs, B: int):
    r"""`(grads, variance)` from the gradients `(2, ...)` with respect to the two copies, $G_j = \frac1B\sum_{b \in
    j} \nabla f_b$ (:func:`_halves`): the gradient $G_0 + G_1$ and $\|g_1 - g_2\|^2/4$ with the half-batch means
    $g_1 - g_2 = \frac{B}{\lfloor B/2 \rfloor}(G_0 - G_1)$."""
    scale = (B / (B // 2)) ** 2 / 4
    g = jax.tree.map(lambda a: a[0] + a[1], gs)
    return g, scale * sum(jnp.sum((a[0] - a[1]) ** 2) for a in jax.tree.leaves(gs))


def _episode(problem, key):
    """The epoch's training episodes and process-noise key (those of :class:`ClosedLoop`: same initial states)."""
    k_x, k_w = jax.random.split(key)
    return problem.task.train_episode(k_x, problem.dtype), (k_w if problem.noisy else None)


def _process_draws(key_w, T: int, B: int, k: int, dtype):
    """The standard-normal process-noise draws `(T, B, k)` that :func:`loopdyn.system.rollout` makes from `key_w`
    for a batch of B (so that a half of the batch keeps its episodes' noise)."""
    return jax.vmap(lambda kt: jax.random.normal(kt, (B, k), dtype))(jax.random.split(key_w, T))


def _rollout(problem, core, plant, episode, hp, key_w=None, xi=None, emit=("x", "u"), sel=None, draws=None):
    """The trajectory of `core` driving `plant` on the episodes `sel` (index array; `None`: all) of the batch,
    with their exploration noise `xi (T, B, m)` and process noise (from `key_w`, drawn for the whole batch).
    `draws`: instead of process noise, per-step inputs `(T, B, ...)` (a pytree) handed to `plant.step` as its
    `draws` (e.g. the points a linearised plant steps around: :mod:`loopdyn.training._netmodel`)."""
    task = problem.task
    x0, exo, noise = episode.x0, episode.exo, {"key": key_w}
    if draws is not None:
        noise = {"process_noise": draws if sel is None else jax.tree.map(lambda a: a[:, sel], draws)}
    if sel is not None:
        x0, exo = x0[sel], (None if exo is None else exo[:, sel])
        xi = None if xi is None else xi[:, sel]
        if key_w is not None:
            draws = _process_draws(key_w, task.T, episode.x0.shape[0], episode.x0.shape[1], episode.x0.dtype)
            noise = {"process_noise": draws[:, sel]}
    return rollout(core, plant, x0, task.T, exo=exo, timing=task.timing, noise=hp.noise,
                   emit=tuple(dict.fromkeys(("x", "u") + tuple(emit))), action_noise=xi, **noise)


def _costs(problem, core, plant, episode, hp, horizon, key_w=None, xi=None, emit=("x", "u"), sel=None, draws=None):
    """`(per-episode costs (n,), per-step costs (T, n), trajectory)` of `core` driving `plant` on the episodes
    `sel` of the batch (:func:`_rollout`; the costs are those of the batch of B)."""
    traj = _rollout(problem, core, plant, episode, hp, key_w, xi, emit, sel, draws)
    c = problem.task.step_costs(traj, hp.beta, stands_for=episode.x0.shape[0], horizon=horizon)
    return jnp.sum(c, axis=0), c, traj


class BPTT(GradientRule):
    """Back-propagation through time through the known plant (today's gradient, the default)."""

    variance: bool = param(False, doc="record grad_variance (half-batch estimates, from one backward pass; a "
                                      "plain rollout of the batch instead of its compression)")

    exact = True

    def gradient(self, problem, trained, consts, key, settings, state):
        if not self.variance:
            def objective(tr):
                params = combine(tr, consts.frozen)
                if settings.horizon is None:
                    return problem.mode.loss(problem, params, consts, key)
                return problem.mode.loss(problem, params, consts, key, horizon=settings.horizon)

            (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(trained)
            return RuleStep(loss, grads, aux, state, {})
        hp = consts.hyper
        episode, k_w = _episode(problem, key)

        def f(tr, sel=None):
            core = make_core(problem.spec, combine(tr, consts.frozen), hp.g)
            return _costs(problem, core, problem.plant, episode, hp, settings.horizon, k_w, sel=sel)[0]

        loss, grads, var = per_episode_gradient(f, trained, True)
        return RuleStep(loss, grads, LossAux(), state, {"grad_variance": var})


class Reinforce(GradientRule):
    """The score-function (REINFORCE) gradient with Gaussian exploration and a leave-one-out baseline."""

    sigma: float = param(0.1, doc="exploration noise: u_t = policy + sigma eps_t, eps_t ~ N(0, I)",
                         check=("finite and > 0", _finite_positive))
    variance: bool = param(True, doc="record grad_variance (two half-batch estimates, from the one backward "
                                     "pass through the agent)")

    noisy_actions = True

    def gradient(self, problem, trained, consts, key, settings, state):
        task, hp = problem.task, consts.hyper
        sigma = self.sigma if settings.sigma is None else settings.sigma
        episode, k_w = _episode(problem, key)
        B, m = episode.x0.shape[0], problem.spec.n_out
        xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (task.T, B, m), problem.dtype)
        plant = BlackBox(dt=problem.plant.dt, noise=problem.plant.noise, clamp=problem.plant.clamp,
                         inner=problem.plant)

        def actions(tr, sel=None):
            """The actions applied in one rollout through the black box (`(T, n, m)`, whose means depend on the
            parameters through the agent alone) and the states visited."""
            core = make_core(problem.spec, combine(tr, consts.frozen), hp.g)
            traj = _rollout(problem, core, plant, episode, hp, k_w, xi, sel=sel)
            return traj.u, traj.x

        if self.variance:  # each half of the batch with its own copy of the parameters (per_episode_gradient)
            idx, w, back = _halves(B)
            u, vjp, x = jax.vjp(lambda p: jax.vmap(actions)(p, jnp.asarray(idx)), _copies(trained), has_aux=True)
            u, x = (jnp.moveaxis(a, 0, 1).reshape((task.T, -1, a.shape[-1]))[:, back] for a in (u, x))
        else:
            u, vjp, x = jax.vjp(actions, trained, has_aux=True)
        c = task.step_costs(Trajectory(x=x, u=u), hp.beta, horizon=settings.horizon)
        # reward-to-go (here: cost-to-go) from step t, G = triu(1) c: a (T, T) product, cheaper than a cumsum on CPU
        G = jnp.matmul(jnp.triu(jnp.ones((task.T, task.T), c.dtype)), c, precision=jax.lax.Precision.HIGHEST)
        baseline = (jnp.sum(G, axis=1, keepdims=True) - G) / (B - 1)  # the mean of the other episodes
        # the surrogate sum_t (G - baseline) log pi(u | h): its derivative in the mean action is (u - mu) / sigma^2
        score = ((G - baseline)[..., None] * xi / sigma**2).astype(u.dtype)
        if self.variance:
            (gs,) = vjp(jnp.moveaxis(score[:, idx] * jnp.asarray(w, u.dtype)[None, :, :, None], 1, 0))
            grads, var = _from_copies(gs, B)
        else:
            (grads,) = vjp(score / B)
        moments = gain_moments(x, u - xi) if task.gains else None  # of the mean actions
        records = {"sigma": jnp.asarray(sigma, problem.dtype)}
        if self.variance:
            records["grad_variance"] = var
        return RuleStep(jnp.mean(jnp.sum(c, axis=0)), grads, LossAux(moments=moments), state, records)

    def check(self, cfg) -> None:
        super().check(cfg)
        if getattr(cfg.task, "batch", 2) < 2:
            raise InvalidParameter("task.batch", "must be >= 2 for gradient.kind = 'reinforce' (its baseline is the "
                                   "mean of the other episodes)")


class BlackBox(Plant):
    """A plant stepped as it is, through which no derivative flows (REINFORCE's view of it): its next state and
    observation are constants for the parameters, which then reach an episode only through the agent."""

    inner: Any = None

    @property
    def n_states(self):
        return self.inner.n_states

    @property
    def n_controls(self):
        return self.inner.n_controls

    @property
    def n_observed(self):
        return self.inner.n_observed

    def dynamics(self, x, u):
        return self.inner.dynamics(jax.lax.stop_gradient(x), jax.lax.stop_gradient(u))

    def observe(self, x):
        return self.inner.observe(jax.lax.stop_gradient(x))


class FittedPlant(Plant):
    r"""A linear model of a plant, $x' = \hat A x + \hat B u$, $y = \hat C x$ (arrays, traced ok)."""

    A_hat: Any = None
    B_hat: Any = None
    C_hat: Any = None

    @property
    def n_states(self):
        return self.A_hat.shape[0]

    @property
    def n_controls(self):
        return self.B_hat.shape[1]

    @property
    def n_observed(self):
        return self.C_hat.shape[0]

    def dynamics(self, x, u):
        return x @ self.A_hat.T.astype(x.dtype) + u @ self.B_hat.T.astype(x.dtype)

    def observe(self, x):
        return x @ self.C_hat.T.astype(x.dtype)


class Statistics(NamedTuple):
    """Sufficient statistics of least squares over transitions, float64: `zz = sum z z^T` (z = [x; u]),
    `zx = sum z x'^T`, `xx = sum x' x'^T`, `xy = sum x' y'^T`, `n` the number of transitions."""

    zz: jax.Array
    zx: jax.Array
    xx: jax.Array
    xy: jax.Array
    n: jax.Array


def transition_statistics(x, u, x_next, y_next, weight=None) -> Statistics:
    """:class:`Statistics` of transitions `x (..., k)`, `u (..., m)`, `x_next (..., k)`, `y_next (..., c)`;
    `weight (...)`: 1 for a transition that counts, 0 for one that does not (steps beyond T_e)."""
    f = jnp.float64
    z = jnp.concatenate([x, u], axis=-1).astype(f)
    xn, yn = x_next.astype(f), y_next.astype(f)
    w = jnp.ones(z.shape[:-1], f) if weight is None else weight.astype(f)
    z, xn, yn = (a.reshape(-1, a.shape[-1]) for a in (z, xn, yn))
    w = w.reshape(-1)
    return Statistics((z * w[:, None]).T @ z, (z * w[:, None]).T @ xn, (xn * w[:, None]).T @ xn,
                      (xn * w[:, None]).T @ yn, jnp.sum(w))


def fit_linear_model(stats: Statistics, ridge: float = 1e-12):
    r"""`(A, B, C)` minimising $\sum\|x' - A x - B u\|^2$ and $\sum\|y' - C x'\|^2$ (least squares, with a ridge of
    `ridge` times the mean eigenvalue of each Gram matrix, which keeps the solve defined on degenerate data)."""
    k = stats.zx.shape[1]

    def solve(G, R):
        lam = ridge * jnp.trace(G) / G.shape[0] + 1e-300
        return jnp.linalg.solve(G + lam * jnp.eye(G.shape[0], dtype=G.dtype), R)

    theta = solve(stats.zz, stats.zx)  # (k + m, k): x'^T = z^T theta
    C = solve(stats.xx, stats.xy).T
    return theta[:k].T, theta[k:].T, C


NETWORK_MODEL: dict = {}
"""The network model's `init_state` and `gradient` (`model = "network"`), filled in by
:mod:`loopdyn.training._netmodel` when the package is imported (it imports this module, not the reverse)."""


def collect_transitions(rule, problem, trained, consts, key, settings: Settings):
    """A model rule's data of an epoch: `(episode, sigma, xi, costs, traj, mask)` — the epoch's episodes
    rolled out through the plant by the agent held fixed, exploring with the rule's action noise `xi`
    `(T, B, m)` of scale `sigma` (`None` without), their per-episode costs `(B,)`, the trajectory with
    `x_next`, and `mask (T, B)`: True for the steps within the epoch's T_e (`None` without a curriculum)."""
    task, hp = problem.task, consts.hyper
    episode, k_w = _episode(problem, key)
    B, m = episode.x0.shape[0], problem.spec.n_out
    sigma = rule.sigma if settings.sigma is None else settings.sigma
    xi = None
    if rule.noisy_actions:
        xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (task.T, B, m), problem.dtype)
    fixed = jax.lax.stop_gradient(combine(trained, consts.frozen))
    total, _, traj = _costs(problem, make_core(problem.spec, fixed, hp.g), problem.plant, episode, hp,
                            settings.horizon, k_w, xi, emit=("x_next",))
    mask = None if settings.horizon is None else jnp.broadcast_to(
        (jnp.arange(task.T) < settings.horizon)[:, None], (task.T, B))
    return episode, sigma, xi, total, traj, mask


class Model(GradientRule):
    """Back-propagation through a model of the plant refitted every epoch: linear by least squares, or a network
    (`model = "network"`, :mod:`loopdyn.training._netmodel`)."""

    replay: int = param(10, doc="the model is fitted on the transitions of the last `replay` epochs (this one "
                                "included)", check=POSITIVE)
    sigma: float = param(0.0, doc="exploration noise on the actions while collecting transitions (0 = none)",
                         check=NON_NEGATIVE)
    ridge: float = param(1e-12, doc="ridge of the least squares, relative to the mean eigenvalue of the data's Gram "
                                   "matrix", check=NON_NEGATIVE)
    variance: bool = param(True, doc="record grad_variance (two half-batch estimates)")
    model: str = param("linear", doc="the model: 'linear' (least squares) or 'network' (a tanh network on top of "
                                     "the least-squares affine fit, for nonlinear plants: training/_netmodel.py)",
                       choices=("linear", "network"))
    hidden: int = param(32, doc="network model: width of its tanh hidden layer", check=POSITIVE)
    fit_steps: int = param(20, doc="network model: Adam steps on the replay per epoch", check=POSITIVE)
    fit_lr: float = param(0.01, doc="network model: Adam learning rate of its fit",
                          check=("finite and > 0", _finite_positive))
    fit_batch: int = param(256, doc="network model: transitions drawn from the replay per Adam step (all when "
                                    "the replay is smaller)", check=POSITIVE)
    keep: int = param(500, doc="network model: transitions of each epoch kept in its replay (drawn uniformly; "
                               "the replay holds replay x keep)", check=POSITIVE)
    path: str = param("model", doc="network model: the path the loss is back-propagated along: 'model' (a rollout "
                                   "of the model from the same initial states) or 'observed' (the epoch's own "
                                   "transitions, stepped by the model's linearisation around each of them)",
                      choices=("model", "observed"))

    records = ("model_error", "model_residual")

    @property
    def noisy_actions(self):
        return self.sigma > 0

    def init_state(self, problem):
        if self.model == "network":
            return NETWORK_MODEL["init_state"](self, problem)
        k, m, c = problem.plant.n_states, problem.plant.n_controls, problem.plant.n_observed
        w = self.replay - 1
        z = lambda *s: jnp.zeros((w,) + s, jnp.float64)  # noqa: E731
        return Statistics(z(k + m, k + m), z(k + m, k), z(k, k), z(k, c), z())

    def gradient(self, problem, trained, consts, key, settings, state):
        if self.model == "network":
            return NETWORK_MODEL["gradient"](self, problem, trained, consts, key, settings, state)
        task, hp, plant = problem.task, consts.hyper, problem.plant
        episode, sigma, xi, total, traj, weight = collect_transitions(self, problem, trained, consts, key, settings)
        now = transition_statistics(traj.x, traj.u, traj.x_next, plant.observe(traj.x_next), weight)
        before = jax.tree.map(lambda a: jnp.sum(a, axis=0), state)
        A0, B0, _ = fit_linear_model(before, self.ridge)
        total_stats = jax.tree.map(lambda a, b: a + b, before, now)
        A, Bm, C = fit_linear_model(total_stats, self.ridge)
        model = FittedPlant(A_hat=A, B_hat=Bm, C_hat=C)

        def f(tr, sel=None):
            core = make_core(problem.spec, combine(tr, consts.frozen), hp.g)
            return _costs(problem, core, model, episode, hp, settings.horizon, None, xi, sel=sel)[0]

        _, grads, var = per_episode_gradient(f, trained, self.variance)
        # one-step error of the model fitted before this epoch, on this epoch's transitions (NaN at the start)
        pred = traj.x @ A0.T.astype(traj.x.dtype) + traj.u @ B0.T.astype(traj.x.dtype)
        w = 1.0 if weight is None else weight[..., None]
        residual = jnp.sum(w * (traj.x_next - pred) ** 2) / jnp.sum(w * traj.x_next**2)
        residual = jnp.where(before.n > 0, residual, jnp.nan)
        if plant.linear:
            At, Bt, Ct = (np.asarray(M, np.float64) for M in plant.matrices())
            err = jnp.sqrt(jnp.sum((A - At) ** 2) + jnp.sum((Bm - Bt) ** 2) + jnp.sum((C - Ct) ** 2))
            err = err / np.sqrt(np.sum(At**2) + np.sum(Bt**2) + np.sum(Ct**2))
        else:
            err = jnp.asarray(jnp.nan, jnp.float64)
        records = {"model_error": err.astype(problem.dtype), "model_residual": residual.astype(problem.dtype)}
        if self.noisy_actions:
            records["sigma"] = jnp.asarray(sigma, problem.dtype)
        if self.variance:
            records["grad_variance"] = var
        new_state = jax.tree.map(lambda h, a: jnp.concatenate([h, a[None]])[1:], state, now)
        moments = gain_moments(traj.x, traj.u if xi is None else traj.u - xi) if task.gains else None
        return RuleStep(jnp.mean(total), grads, LossAux(moments=moments), new_state, records)

    def check(self, cfg) -> None:
        super().check(cfg)
        k, m = cfg.plant.n_states, cfg.plant.n_controls
        task = cfg.task.bind(cfg.plant, getattr(cfg.agent, "alpha", 1.0))
        first = min((int(v) for _, v in cfg.schedule.T), default=task.T)
        if self.replay * task.batch * first < k + m:
            raise InvalidParameter("gradient.replay", f"= {self.replay} gives {self.replay * task.batch * first} "
                                   f"transitions (replay x task.batch x T), fewer than the k + m = {k + m} a linear "
                                   f"model needs; raise replay or task.batch")


RULES = declare_family("gradient", GradientRule, "loopdyn.gradients", default="bptt")
"""The learning-rule family: `[gradient] kind = ...` (:mod:`loopdyn.config._parts`)."""
for _name, _cls in (("bptt", BPTT), ("reinforce", Reinforce), ("model", Model)):
    if _name not in RULES.names():
        RULES.register(_name, _cls)


def schedule_value(knots, ramp: str, e):
    """The value of a schedule at epoch `e` (traced ok): knots `((epoch, value), ...)`; `ramp`: `"ramp"` (linear
    between knots) or `"steps"`."""
    ep = jnp.asarray([k[0] for k in knots], jnp.float64)
    val = jnp.asarray([k[1] for k in knots], jnp.float64)
    e = jnp.asarray(e, jnp.float64)
    if ramp == "ramp":
        return jnp.interp(e, ep, val)
    return val[jnp.maximum(jnp.sum(ep <= e) - 1, 0)]


def schedule_records(schedule) -> tuple[str, ...]:
    """The store's per-epoch records of a schedule."""
    names = {"T": "T_epoch", "beta": "beta_epoch", "lr": "lr_epoch", "sigma": "sigma"}
    return tuple(names[k] for k in schedule.scheduled) if schedule is not None else ()
