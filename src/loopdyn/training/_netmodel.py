r"""The network model of the `model` learning rule (`[gradient] kind = "model"`, `model = "network"`): a small
network fitted to the plant's observed transitions, for nonlinear plants (docs/learning-rules.md).

**The model.** With $z = [x; u]$ standardised on the replay, $\tilde z = (z - \mu_z)/s_z$, and the state
increments scaled per component by their root mean square $s_\Delta$ on the replay,

$$\hat x' = x + s_\Delta \odot \bigl(L\,[\tilde z; 1] + W_2 \tanh(W_1 \tilde z + b_1) + b_2\bigr),$$

a one-hidden-layer tanh network ($W_1$: `hidden` x (k+m)) on top of a linear part $L$. Every epoch, on the
replay buffer (this epoch's transitions included):

1. $\mu_z, s_z, s_\Delta$ are recomputed ($s \ge 10^{-6}$);
2. $L$ is the least-squares fit of the scaled increments $(x' - x)/s_\Delta$ on $[\tilde z; 1]$ (closed form:
   the model is at least the best affine model of the replay, the linear rule's model up to its offset);
3. the network ($W_1, b_1, W_2, b_2$) takes `fit_steps` Adam steps (learning rate `fit_lr`, its moments carried
   from epoch to epoch) on the mean squared residual of that fit, each on `fit_batch` transitions drawn from the
   replay (the whole replay when it is smaller). $W_2 = b_2 = 0$ at the start (the model starts as the affine
   fit), $W_1 \sim \mathcal N(0, 1/(k+m))$, $b_1 \sim U(-1, 1)$, drawn from the run's key at its first epoch.

**The replay** is a ring buffer of `replay` x `keep` transitions $(x, u, x', y')$: each epoch `keep` of its
$T_e B$ transitions, drawn uniformly with replacement (steps $t \ge T_e$ of a curriculum never), replace the
oldest (slot block $e \bmod$ `replay` at epoch e). Beside it the rule keeps, per slot block, the raw moments of
its transitions (:class:`Moments`), from which steps 1-2 and the readout are solved in closed form: a refit
touches the replay only through the `fit_steps` x `fit_batch` transitions its Adam steps draw, and its cost is
bounded whatever `task.batch` and `task.T`.

**What the agent sees through the model.** The plant's `observe` is not known to the learner: it is a linear
readout $\hat y = \hat C \hat x$ fitted by least squares on the replay's $(x', y')$ — exact for every shipped
plant (each observes coordinates of its state), the best linear readout otherwise.

**The gradient** (`path`). `"model"` (the default): BPTT through a rollout of the model itself from the
same initial states and exploration noise (:class:`NetworkPlant`), whose states drift from the observed ones as
the model's errors compound over the episode. `"observed"`: the loss is back-propagated along the epoch's own
transitions $(x_t, u_t, x_{t+1})$ (those the replay drew from), the model entering through its Jacobians there
(:func:`jacobians`, closed form, all $T B$ points at once): the agent is rolled out through the time-varying affine
plant $x' = x_{t+1} + J_{x,t}(x - x_t) + J_{u,t}(u - u_t)$ (:class:`LinearisedPlant`), which at the parameters the
transitions were collected with retraces them exactly — BPTT through the model's linearisation along the
observed trajectory (stochastic value gradients); the model's errors enter through its Jacobians only.

**Records.** `model_residual`: $\sum\|x' - \hat x'\|^2/\sum\|x'\|^2$ of the model fitted *before* the epoch on the
epoch's `keep` transitions added to the replay (NaN at the first epoch). `model_error`: the refitted model's
error against the plant's own noise-free step $F(x, u)$ (`plant.dynamics`, known to the experimenter, not to
the learner) on the same transitions, relative to the step's increment:
$\bigl(\sum\|\hat x' - F(x, u)\|^2 / \sum\|F(x, u) - x\|^2\bigr)^{1/2}$.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..agents import combine, make_core
from ..plants import Plant
from ..system import gain_moments
from ._modes import LossAux
from ._rules import NETWORK_MODEL, RuleStep, _costs, collect_transitions, per_episode_gradient

FLOOR = 1e-6
"""The smallest standardisation scale $s_z$, $s_\\Delta$ (a coordinate that never varies on the replay)."""


class Net(NamedTuple):
    """The network's trained weights (the linear part $L$ is solved, not trained)."""

    W1: jax.Array  # (H, k + m)
    b1: jax.Array  # (H,)
    W2: jax.Array  # (k, H)
    b2: jax.Array  # (k,)


class NetModel(NamedTuple):
    """A fitted model: the standardisation `mu_z`, `s_z` (k + m,), `s_d` (k,), the linear part `L` (k, k + m + 1)
    and the network `net`."""

    mu_z: jax.Array
    s_z: jax.Array
    s_d: jax.Array
    L: jax.Array
    net: Net


class Replay(NamedTuple):
    """The ring buffer of transitions: `x`, `u`, `x_next`, `y_next` (`(replay * keep, ...)`; epoch e's in the
    slots `(e mod replay) * keep + [0, keep)`) and `w` (1 for a transition, 0 for an empty slot)."""

    x: jax.Array
    u: jax.Array
    x_next: jax.Array
    y_next: jax.Array
    w: jax.Array


class Moments(NamedTuple):
    r"""Raw moments of a block of transitions (float64; stacked `(replay, ...)`, one block per epoch of the
    replay): with $a = [x; u; 1]$ and the increment $d = x' - x$, `aa` $= \sum a a^\top$, `ad` $= \sum a d^\top$,
    `dd` $= \sum d \odot d$, `xx` $= \sum x' x'^\top$, `xy` $= \sum x' y'^\top$ (the count is `aa[-1, -1]`)."""

    aa: jax.Array
    ad: jax.Array
    dd: jax.Array
    xx: jax.Array
    xy: jax.Array


class NetState(NamedTuple):
    """The network rule's state carried from epoch to epoch (stored and resumed like the run's parameters):
    the model fitted so far, the Adam state of its network, the replay, the moments of its blocks and the number
    of epochs seen. (A store written before `moments` existed resumes with them zero: the closed-form parts are
    then fitted on the epochs since the resume until the ring has turned once.)"""

    model: NetModel
    opt: Any
    replay: Replay
    epochs: jax.Array
    moments: Moments


def predict(model: NetModel, x, u):
    """$\\hat x'$ of the module docstring, for `x (..., k)`, `u (..., m)`."""
    z = (jnp.concatenate([x, u], axis=-1) - model.mu_z) / model.s_z
    lin = z @ model.L[:, :-1].T + model.L[:, -1]
    hid = jnp.tanh(z @ model.net.W1.T + model.net.b1) @ model.net.W2.T + model.net.b2
    return x + model.s_d * (lin + hid)


def folded(model: NetModel, k: int):
    r"""`(Ax (k + H, k), Au (k + H, m), c (k + H,), W2s (k, H), c2 (k,))`: the model with its standardisation folded
    into the weights, $\hat x' = x + \mathrm{lin} + \tanh(\mathrm{hid})\,W_{2s}^\top + c_2$ with
    $[\mathrm{lin}; \mathrm{hid}] = A_x x + A_u u + c$ (one product per input for both parts, as a rollout steps it)."""
    first = jnp.concatenate([model.s_d[:, None] * model.L[:, :-1], model.net.W1]) / model.s_z  # (k + H, k + m)
    bias = jnp.concatenate([model.s_d * model.L[:, -1], model.net.b1]) - first @ model.mu_z
    return first[:, :k], first[:, k:], bias, model.s_d[:, None] * model.net.W2, model.s_d * model.net.b2


class NetworkPlant(Plant):
    """The fitted network model as a plant: `dynamics` :func:`predict` (its weights folded once, :func:`folded`),
    `observe` the fitted readout `C_hat`. The increment is computed in the model's dtype (that of its weights,
    the problem's) and added to the state in the rollout's, which may be wider (the reduced rank-1 agent steps in
    float64): a model fitted in float32 is no more accurate in float64, and its hidden layer, the rollout's
    largest cost, runs twice as fast in float32."""

    weights: Any = None
    C_hat: Any = None

    @classmethod
    def of(cls, model: NetModel, C_hat) -> "NetworkPlant":
        return cls(weights=folded(model, C_hat.shape[1]), C_hat=C_hat)

    @property
    def n_states(self):
        return self.C_hat.shape[1]

    @property
    def n_controls(self):
        return self.weights[1].shape[1]

    @property
    def n_observed(self):
        return self.C_hat.shape[0]

    def dynamics(self, x, u):
        Ax, Au, c, W2, c2 = self.weights
        k, dt = x.shape[-1], Ax.dtype
        pre = x.astype(dt) @ Ax.T + u.astype(dt) @ Au.T + c
        return x + (pre[..., :k] + jnp.tanh(pre[..., k:]) @ W2.T + c2).astype(x.dtype)

    def observe(self, x):
        return x @ self.C_hat.T.astype(x.dtype)


def jacobians(model: NetModel, x, u):
    r"""`(J_x (..., k, k), J_u (..., k, m))`: the model's Jacobians $\partial\hat x'/\partial x$,
    $\partial\hat x'/\partial u$ at the points `x (..., k)`, `u (..., m)`, in closed form from the folded weights
    (:func:`folded`): $J_x = I + A_x^{\mathrm{lin}} + W_{2s}\,\mathrm{diag}(1 - \tanh^2 \mathrm{hid})\,A_x^{\mathrm{hid}}$,
    and $J_u$ alike without the identity."""
    k = x.shape[-1]
    Ax, Au, c, W2, _ = folded(model, k)  # in the model's dtype, as it steps (NetworkPlant)
    hid = x.astype(Ax.dtype) @ Ax[k:].T + u.astype(Ax.dtype) @ Au[k:].T + c[k:]
    d = 1 - jnp.tanh(hid) ** 2  # (..., H)
    Jx = jnp.eye(k, dtype=Ax.dtype) + Ax[:k] + jnp.einsum("ih,...h,hj->...ij", W2, d, Ax[k:])
    Ju = Au[:k] + jnp.einsum("ih,...h,hj->...ij", W2, d, Au[k:])
    return Jx, Ju


class Point(NamedTuple):
    """A step of the observed trajectory and the model's Jacobians there (batch arrays `(B, ...)`, stacked `(T, B,
    ...)` for a rollout): `x`, `u`, `x_next`, `Jx (B, k, k)`, `Ju (B, k, m)`."""

    x: jax.Array
    u: jax.Array
    x_next: jax.Array
    Jx: jax.Array
    Ju: jax.Array


class LinearisedPlant(Plant):
    r"""The fitted model linearised around each observed transition $(x_t, u_t, x_{t+1})$ of the epoch,
    $x' = x_{t+1} + J_{x,t}(x - x_t) + J_{u,t}(u - u_t)$, a time-varying affine plant: stepped by
    :func:`loopdyn.system.rollout` with the step's :class:`Point` as its `draws` (`process_noise`), it retraces the
    observed trajectory at the parameters it was collected with, and its derivatives are the model's there.
    `observe` is the fitted readout `C_hat`; it has no `dynamics` of its own (a step needs its point)."""

    C_hat: Any = None
    m: int = 1

    @property
    def n_states(self):
        return self.C_hat.shape[1]

    @property
    def n_controls(self):
        return self.m

    @property
    def n_observed(self):
        return self.C_hat.shape[0]

    def dynamics(self, x, u):
        raise TypeError("a linearised plant steps around the points of its trajectory: call step(..., draws=point)")

    def step(self, x, u, key=None, noise=None, draws=None):
        p = draws
        x1 = p.x_next + jnp.einsum("bij,bj->bi", p.Jx, x - p.x) + jnp.einsum("bij,bj->bi", p.Ju, u - p.u)
        return x1, self.observe(x1)

    def observe(self, x):
        return x @ self.C_hat.T.astype(x.dtype)


def _adam(rule):
    return optax.adam(rule.fit_lr)


def init_state(rule, problem) -> NetState:
    """The network rule's state before the first epoch: an empty replay (the weights are drawn at the first epoch)."""
    k, m, c = problem.plant.n_states, problem.plant.n_controls, problem.plant.n_observed
    H, n, dt = rule.hidden, rule.replay * rule.keep, problem.dtype
    net = Net(jnp.zeros((H, k + m), dt), jnp.zeros((H,), dt), jnp.zeros((k, H), dt), jnp.zeros((k,), dt))
    model = NetModel(jnp.zeros((k + m,), dt), jnp.ones((k + m,), dt), jnp.ones((k,), dt),
                     jnp.zeros((k, k + m + 1), dt), net)
    replay = Replay(jnp.zeros((n, k), dt), jnp.zeros((n, m), dt), jnp.zeros((n, k), dt), jnp.zeros((n, c), dt),
                    jnp.zeros((n,), dt))
    a, R, f = k + m + 1, rule.replay, jnp.float64
    moments = Moments(jnp.zeros((R, a, a), f), jnp.zeros((R, a, k), f), jnp.zeros((R, k), f), jnp.zeros((R, k, k), f),
                      jnp.zeros((R, k, c), f))
    return NetState(model, _adam(rule).init(net), replay, jnp.asarray(0, jnp.int32), moments)


def _first_net(key, H: int, k: int, m: int, dtype) -> Net:
    k1, k2 = jax.random.split(key)
    return Net(jax.random.normal(k1, (H, k + m), dtype) / jnp.sqrt(k + m),
               jax.random.uniform(k2, (H,), dtype, -1.0, 1.0), jnp.zeros((k, H), dtype), jnp.zeros((k,), dtype))


def draw_transitions(key, x, u, x_next, y_next, horizon, keep: int) -> tuple[jax.Array, ...]:
    """`keep` of the transitions `x (T, B, k)`, ... (`(x, u, x_next, y_next)`, each `(keep, ...)`), drawn uniformly
    (with replacement) from the steps `t < horizon` (all steps when `horizon` is `None`) of the batch."""
    T, B = x.shape[0], x.shape[1]
    k_t, k_b = jax.random.split(key)
    n_t = T if horizon is None else jnp.clip(horizon, 1, T)
    t = jnp.minimum(jnp.floor(jax.random.uniform(k_t, (keep,)) * n_t).astype(jnp.int32), T - 1)
    b = jax.random.randint(k_b, (keep,), 0, B)
    return tuple(a[t, b] for a in (x, u, x_next, y_next))


def block_moments(x, u, x_next, y_next) -> Moments:
    """:class:`Moments` of the transitions `x (n, k)`, `u (n, m)`, `x_next (n, k)`, `y_next (n, c)`."""
    f = jnp.float64
    x, u, xn, yn = (v.astype(f) for v in (x, u, x_next, y_next))
    a = jnp.concatenate([x, u, jnp.ones_like(x[:, :1])], axis=-1)
    d = xn - x
    return Moments(a.T @ a, a.T @ d, jnp.sum(d * d, axis=0), xn.T @ xn, xn.T @ yn)


def add_transitions(state: NetState, new: tuple[jax.Array, ...]) -> tuple[Replay, Moments]:
    """The replay and its moments with the transitions `new` (:func:`draw_transitions`) in the slot block of the
    state's epoch (`epochs mod replay`: the oldest), in place."""
    blocks = state.moments.aa.shape[0]
    keep = new[0].shape[0]
    slot = state.epochs % blocks
    rows = list(new) + [jnp.ones((keep,), state.replay.w.dtype)]
    replay = Replay(*(jax.lax.dynamic_update_slice_in_dim(old, a.astype(old.dtype), slot * keep, axis=0)
                      for old, a in zip(state.replay, rows)))
    moments = Moments(*(jax.lax.dynamic_update_index_in_dim(old, a, slot, axis=0)
                        for old, a in zip(state.moments, block_moments(*new))))
    return replay, moments


def _least_squares(G, R, ridge: float):
    lam = ridge * jnp.trace(G) / G.shape[0] + 1e-300
    return jnp.linalg.solve(G + lam * jnp.eye(G.shape[0], dtype=G.dtype), R)


def affine_fit(moments: Moments, ridge: float):
    r"""`(mu_z, s_z, s_d, L, C)` (float64) of the replay whose blocks have the raw `moments` (stacked): the
    standardisation, the least-squares affine part $L$ of the scaled increments on $[\tilde z; 1]$ and the readout
    $\hat C$ (module docstring, steps 1-2), from the moments alone: with $\tilde a = S a$,
    $S = \begin{pmatrix}\mathrm{diag}(1/s_z) & -\mu_z/s_z \\ 0 & 1\end{pmatrix}$, the normal equations are
    $S (\sum a a^\top) S^\top L^\top = S (\sum a d^\top)\,\mathrm{diag}(1/s_\Delta)$."""
    tot = jax.tree.map(lambda a: jnp.sum(a, axis=0), moments)
    n = jnp.maximum(tot.aa[-1, -1], 1.0)
    mu = tot.aa[:-1, -1] / n
    s_z = jnp.maximum(jnp.sqrt(jnp.maximum(jnp.diagonal(tot.aa)[:-1] / n - mu**2, 0.0)), FLOOR)
    s_d = jnp.maximum(jnp.sqrt(tot.dd / n), FLOOR)
    S = jnp.diag(jnp.append(1 / s_z, 1.0)).at[:-1, -1].set(-mu / s_z)
    L = _least_squares(S @ tot.aa @ S.T, S @ tot.ad / s_d, ridge).T  # (k, k + m + 1)
    C = _least_squares(tot.xx, tot.xy, ridge).T
    return mu, s_z, s_d, L, C


def refit(rule, state: NetState, replay: Replay, moments: Moments, key) -> tuple[NetModel, Any, jax.Array]:
    """`(model, adam state, C_hat)` refitted on `replay` with the raw `moments` of its blocks (module docstring),
    from the state's network (drawn anew at the first epoch)."""
    mu, s_z, s_d, L, C = affine_fit(moments, rule.ridge)
    dtype = replay.x.dtype
    mu, s_z, s_d, L = (a.astype(dtype) for a in (mu, s_z, s_d, L))
    k_init, k_fit = jax.random.split(key)
    k, m = replay.x.shape[-1], replay.u.shape[-1]
    net0 = jax.tree.map(lambda a, b: jnp.where(state.epochs == 0, a, b),
                        _first_net(k_init, rule.hidden, k, m, dtype), state.model.net)
    adam = _adam(rule)
    n, batch = replay.w.shape[0], rule.fit_batch

    def loss(net, idx):
        x, u, xn, w = (replay.x, replay.u, replay.x_next, replay.w) if idx is None else (
            replay.x[idx], replay.u[idx], replay.x_next[idx], replay.w[idx])
        zs = (jnp.concatenate([x, u], axis=-1) - mu) / s_z
        target = (xn - x) / s_d - zs @ L[:, :-1].T - L[:, -1]  # the residual of the affine fit, scaled
        out = jnp.tanh(zs @ net.W1.T + net.b1) @ net.W2.T + net.b2
        return jnp.sum(w[:, None] * (out - target) ** 2) / jnp.maximum(jnp.sum(w), 1.0)

    idx_all = None if batch >= n else jax.random.randint(k_fit, (rule.fit_steps, batch), 0, n)

    def step(carry, idx):
        net, opt = carry
        g = jax.grad(loss)(net, idx)
        upd, opt = adam.update(g, opt, net)
        return (optax.apply_updates(net, upd), opt), None

    (net, opt), _ = jax.lax.scan(step, (net0, state.opt), idx_all, length=rule.fit_steps)
    return NetModel(mu, s_z, s_d, L, net), opt, C.astype(dtype)


def network_gradient(rule, problem, trained, consts, key, settings, state: NetState):
    """The `model` rule's :class:`loopdyn.training.RuleStep` with the network model (module docstring)."""
    task, hp, plant = problem.task, consts.hyper, problem.plant
    episode, sigma, xi, total, traj, mask = collect_transitions(rule, problem, trained, consts, key, settings)
    k_add, k_fit = jax.random.split(jax.random.fold_in(key, 3))
    new = tuple(a.astype(state.replay.x.dtype) for a in draw_transitions(  # as the replay holds them
        k_add, traj.x, traj.u, traj.x_next, plant.observe(traj.x_next), settings.horizon, rule.keep))
    replay, ring = add_transitions(state, new)
    model, opt, C = refit(rule, state, replay, ring, k_fit)
    if rule.path == "observed":
        fitted, points = LinearisedPlant(C_hat=C, m=traj.u.shape[-1]), Point(traj.x, traj.u, traj.x_next,
                                                                              *jacobians(model, traj.x, traj.u))
    else:
        fitted, points = NetworkPlant.of(model, C), None

    def f(tr, sel=None):
        core = make_core(problem.spec, combine(tr, consts.frozen), hp.g)
        return _costs(problem, core, fitted, episode, hp, settings.horizon, None, xi, sel=sel, draws=points)[0]

    _, grads, var = per_episode_gradient(f, trained, rule.variance)
    # the records, on the epoch's transitions just added to the replay (`keep` of them, drawn within T_e)
    x, u, x_next, _ = new
    before, after = (NetworkPlant.of(mo, C).dynamics(x, u) for mo in (state.model, model))
    residual = jnp.sum((x_next - before) ** 2) / jnp.sum(x_next**2)
    residual = jnp.where(state.epochs > 0, residual, jnp.nan)
    true = plant.dynamics(x, u)
    err = jnp.sqrt(jnp.sum((after - true) ** 2) / jnp.sum((true - x) ** 2))
    records = {"model_error": err.astype(problem.dtype), "model_residual": residual.astype(problem.dtype)}
    if rule.noisy_actions:
        records["sigma"] = jnp.asarray(sigma, problem.dtype)
    if rule.variance:
        records["grad_variance"] = var
    new_state = NetState(model, opt, replay, state.epochs + 1, ring)
    moments = gain_moments(traj.x, traj.u if xi is None else traj.u - xi) if task.gains else None
    return RuleStep(jnp.mean(total), grads, LossAux(moments=moments), new_state, records)


NETWORK_MODEL.update(init_state=init_state, gradient=network_gradient)
