r"""Regulation to the origin.

Two training-loss conventions of the reference code, selected by name (spec §3.1, §3.2, §8 row 1):

- `mean` (linear theory model): $\mathcal L = \operatorname{mean}_{t<T,\,i,\,b} (x^{(i)}_{t,b})^2
  + \beta\,\operatorname{mean}_b \sum_{t<T} \|u_{t,b}\|^2$;
- `sum` (full RNN): $\mathcal L = dt\sum_{t<T}\big[\operatorname{mean}_{b,i}(x^{(i)}_{t,b})^2
  + \beta \sum_{b} \|u_{t,b}\|^2\big]$ (the control term is summed over the batch).

Closed-loop test metrics (spec §8 row 10), on a fixed batch of initial states:

- `mean_xv`: $\operatorname{mean}_{t,b}\|x_{t,b}\|^2$ (Figs 3-5, linear experiments);
- `sum_t`: $\sum_{t<T}\operatorname{mean}_b\|x_{t,b}\|^2$ (Figs 1c, 2, nonlinear experiment).

Both include $x_0$ and exclude $x_T$.

Initial states are i.i.d. per coordinate, $U(-a, a)$ or $\mathcal N(0, a^2)$ (`x0_distribution`), with second
moment $\Sigma_0 = \sigma_0^2 I$, $\sigma_0^2 = a^2/3$ or $a^2$. With `objective = "expected"` the training loss
is its expectation over $x_0$ in closed form (for a linear, noise-free loop): every term is a quadratic form
$q(x_0)$, and $\mathbb E\, q(x_0) = \operatorname{tr}(Q\Sigma_0) = \sigma_0^2 \sum_j q(e_j)$, i.e. the
sums $\sum_t \operatorname{tr}(E P^t \Sigma_0 P^{t\top} E^\top)$ of the joint matrix. The episode batch is then the
$k$ states $\sqrt{k}\,\sigma_0 e_j$ (:meth:`Regulation.population_x0`), whose batch mean of $q$ is that
expectation; the control term of `sum`, summed over the batch, is rescaled from $k$ to `batch` states.

Like every task, it hands the trainer episodes (:class:`Episode`: here initial states only) and turns
trajectories into losses; the trainer's modes use only that interface (`train_episode`, `sample_episode`,
`test_set`, `test_episode`, `probe_episode`, `episode_loss`, `episode_metric`, `imitation_loss`, `timing`, `gains`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..config import NON_NEGATIVE, POSITIVE, InvalidParameter, param
from ._base import Task
from ._episode import Episode, WithoutProbes

TEST_LOSS_LABELS = {
    "mean_xv": "closed-loop test loss mean_{t,b} ||x_t||^2",
    "sum_t": "closed-loop test loss sum_t mean_b ||x_t||^2",
}
TRAIN_LOSS_LABELS = {
    "mean": "train loss mean_{t,i,b} x^2 + beta mean_b sum_t u^2",
    "sum": "train loss dt sum_t [mean_{b,i} x^2 + reg sum_b u^2]",
}


def squared_norm(a):
    """The squared norm over the last axis. A short axis (a plant's few states or controls) is summed term by term,
    which XLA fuses with the arithmetic around it: on CPU a reduction over a minor axis of 2 costs ~6x more."""
    if a.shape[-1] > 8:
        return jnp.sum(a**2, axis=-1)
    return sum(a[..., i] ** 2 for i in range(a.shape[-1]))


@dataclass(frozen=True)
class Regulation(WithoutProbes):
    """Drive the plant state to 0 from `x0 ~ U(-a, a)` per coordinate within `T` steps."""

    n_states: int
    T: int = 50
    batch: int = 100
    x0_range: float = 2.0
    loss: str = "mean"
    test_batch: int = 100
    test_loss: str = "mean_xv"
    dt: float = 1.0
    timing: str = "delayed"  # the agent is not called at t = 0 (u_0 = 0), see loopdyn.system.rollout
    objective: str = "sampled"
    x0_distribution: str = "uniform"

    def sample_x0(self, key, batch: int, dtype=jnp.float32):
        if self.x0_distribution == "gaussian":
            return self.x0_range * jax.random.normal(key, (batch, self.n_states), dtype)
        return jax.random.uniform(key, (batch, self.n_states), dtype, -self.x0_range, self.x0_range)

    @property
    def x0_variance(self) -> float:
        r"""$\sigma_0^2$: the variance of each initial-state coordinate ($\Sigma_0 = \sigma_0^2 I$)."""
        return self.x0_range**2 if self.x0_distribution == "gaussian" else self.x0_range**2 / 3

    def population_x0(self, dtype=jnp.float32):
        r"""The `(k, k)` batch $\sqrt{k}\,\sigma_0 I$ whose batch mean of any quadratic form is its expectation."""
        return jnp.sqrt(self.n_states * self.x0_variance) * jnp.eye(self.n_states, dtype=dtype)

    def train_x0(self, key, dtype=jnp.float32):
        """The initial states of a training episode: `batch` fresh samples, or :meth:`population_x0` for the
        expected objective."""
        if self.objective == "expected":
            return self.population_x0(dtype)
        return self.sample_x0(key, self.batch, dtype)

    def second_moment_batch(self, x0):
        r"""$k$ states with the second moment of the batch `x0` `(B, k)`: the rows of $R$, $R^\top R = \frac{k}{B}
        x_0^\top x_0$ (Cholesky). In a linear, noise- and clamp-free loop every loss term is a quadratic form of
        $x_0$, so the batch mean over these $k$ states equals that over the $B$ states (to round-off), at $k/B$ of
        the cost."""
        k, B = self.n_states, x0.shape[0]
        return jnp.linalg.cholesky((k / B) * (x0.T @ x0)).T

    def train_loss(self, xs, us, beta, stands_for: int | None = None):
        """`xs`: `(T, batch, k)` states x_0..x_{T-1}; `us`: `(T, batch, m)` controls. `stands_for`: the number of
        states the batch stands for (the quadrature or second-moment states of `batch` states), which the
        control term of `sum`, summed over the batch, is rescaled to; default the batch itself."""
        if self.loss == "mean":
            return jnp.mean(xs**2) + beta * jnp.sum(us**2) / xs.shape[1]
        control = jnp.sum(us**2)
        if stands_for is not None:
            control = control * (stands_for / xs.shape[1])
        return self.dt * (jnp.sum(jnp.mean(xs**2, axis=(1, 2))) + beta * control)

    def test_metric(self, xs):
        total = jnp.sum(xs**2) / xs.shape[1]
        return total / xs.shape[0] if self.test_loss == "mean_xv" else total

    # ---------------------------------------------------------------- the task interface of the trainer
    n_exo = 0  # no exogenous input: the agent sees the plant's observation only
    superposable = False  # episodes differ in x0 only, not a superposition of basis episodes
    gains = True  # effective gains u ~ K x are defined (spec §4.6)
    emit = ("x", "u")  # what episode_loss and episode_metric read from a trajectory
    imitation_loss_definition = "dt sum_t mean_{b,j} (u_student - u_teacher)^2"

    @property
    def train_loss_definition(self) -> str:
        label = TRAIN_LOSS_LABELS[self.loss]
        if self.objective == "expected":
            dist = "U(-a, a)" if self.x0_distribution == "uniform" else "N(0, a^2)"
            label += f", its expectation over x0 ~ {dist} per coordinate in closed form"
        return label

    @property
    def test_loss_definition(self) -> str:
        return TEST_LOSS_LABELS[self.test_loss]

    def sample_episode(self, key, batch: int, dtype=jnp.float32) -> Episode:
        return Episode(self.sample_x0(key, batch, dtype))

    def train_episode(self, key, dtype=jnp.float32) -> Episode:
        """The episodes of a training epoch (:meth:`train_x0`)."""
        return Episode(self.train_x0(key, dtype))

    def test_set(self, key, dtype=jnp.float32):
        """The fixed test initial states, drawn once from `key`."""
        return self.sample_x0(key, self.test_batch, dtype)

    def test_episode(self, test_set, key, dtype=jnp.float32) -> Episode:
        """The test episodes of an epoch: always the fixed test set (`key` unused)."""
        return Episode(test_set)

    def episode_loss(self, traj, episode: Episode, beta, horizon=None):
        """The training loss of a training epoch's episodes, which stand for `batch` states; with `horizon`
        (an integer `T_e <= T`, traced ok: a curriculum over the episode length) the loss of the episodes
        cut at `T_e` steps, as this task defines it at length `T_e` (:meth:`step_costs`)."""
        if horizon is None:
            return self.train_loss(traj.x, traj.u, beta, stands_for=self.batch)
        return jnp.mean(jnp.sum(self.step_costs(traj, beta, stands_for=self.batch, horizon=horizon), axis=0))

    def step_costs(self, traj, beta, stands_for: int | None = None, horizon=None):
        r"""The cost $c_{t,b}$ of step `t` of episode `b`, `(T, batch)`, whose batch mean summed over `t` is the
        training loss (:meth:`train_loss`): `mean`: $c_{t,b} = \|x_{t,b}\|^2/(T k) + eta\|u_{t,b}\|^2$; `sum`:
        $c_{t,b} = dt\,(\|x_{t,b}\|^2/k + eta B \|u_{t,b}\|^2)$, $B$ = `stands_for` (default the batch).
        `horizon` $T_e$: steps $t \ge T_e$ cost 0 and `mean` divides by $T_e$ instead of $T$ — the loss of
        episodes of length $T_e$ (what a learning rule's reward-to-go and a curriculum over T use)."""
        xs, us = traj.x, traj.u
        T, b, k = xs.shape
        n = T if horizon is None else jnp.asarray(horizon, xs.dtype)
        x2, u2 = squared_norm(xs), squared_norm(us)
        if self.loss == "mean":
            c = x2 / (n * k) + beta * u2
        else:
            c = self.dt * (x2 / k + beta * (b if stands_for is None else stands_for) * u2)
        if horizon is not None:
            c = jnp.where(jnp.arange(T)[:, None] < horizon, c, 0.0)
        return c

    def episode_metric(self, traj, episode: Episode):
        return self.test_metric(traj.x)

    def imitation_loss(self, u_student, u_teacher):
        """`dt sum_t mean_{b,j} (u_student - u_teacher)^2` over arrays `(T, batch, n_out)` (spec §3.3)."""
        return self.dt * jnp.sum(jnp.mean((u_student - u_teacher) ** 2, axis=tuple(range(1, u_student.ndim))))


class RegulationTask(Task):
    """Regulation to the origin (module docstring): `[task] kind = "regulation"`."""

    T: int = param(50, doc="episode length (steps in the loss)", check=POSITIVE)
    batch: int = param(100, doc="initial states per epoch", check=POSITIVE)
    x0_range: float = param(2.0, doc="initial states are U(-a, a) (or N(0, a^2)) per state coordinate, a = x0_range",
                            check=POSITIVE)
    loss: str = param("mean", doc="loss convention: 'mean' (mean_{t,i,b} x^2 + beta mean_b sum_t u^2, the linear "
                                  "theory model) or 'sum' (dt sum_t [mean_{b,i} x^2 + beta sum_b u^2], the full RNN)",
                      choices=("mean", "sum"))
    beta: float = param(0.0, doc="control penalty (beta for 'mean', reg_U for 'sum')", check=NON_NEGATIVE)
    test_batch: int = param(100, doc="fixed test initial states", check=POSITIVE)
    test_loss: str = param("mean_xv", doc="closed-loop test metric: 'mean_xv' = mean_{t,b} ||x_t||^2, 'sum_t' = "
                                          "sum_t mean_b ||x_t||^2", choices=("mean_xv", "sum_t"))
    test_seed: int = param(12345, doc="seed of the fixed test set", check=NON_NEGATIVE)
    objective: str = param("sampled", doc="training loss: on a fresh sampled batch ('sampled') or its expectation "
                                          "over the initial states in closed form ('expected', linear noise-free loops)",
                           choices=("sampled", "expected"))
    x0_distribution: str = param("uniform", doc="initial states U(-a, a) ('uniform') or N(0, a^2) ('gaussian') per "
                                                "coordinate, a = x0_range", choices=("uniform", "gaussian"))

    def bind(self, plant, agent_alpha: float = 1.0) -> Regulation:
        return Regulation(plant.n_states, self.T, self.batch, self.x0_range, self.loss, self.test_batch,
                          self.test_loss, plant.dt, objective=self.objective, x0_distribution=self.x0_distribution)

    def check(self, cfg) -> None:
        super().check(cfg)
        if self.objective == "expected":
            p, a = cfg.plant, cfg.agent
            if not (p.linear and a.linear) or cfg.get("plant.noise", 0.0) > 0 or cfg.get("plant.clamp", 0.0) > 0:
                raise InvalidParameter("task.objective", "= 'expected' has a closed form for linear, noise- and "
                                       "clamp-free loops only (a linear plant and agent, plant.noise = 0, plant.clamp = "
                                       "0); use objective = 'sampled'")
            if cfg.train.mode == "open_loop_noise":
                raise InvalidParameter("task.objective", "= 'expected' averages over initial states, which mode "
                                       "'open_loop_noise' has none of; use objective = 'sampled'")
