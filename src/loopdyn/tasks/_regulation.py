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

Like every task, it hands the trainer episodes (:class:`Episode`: here initial states only) and turns
trajectories into losses; the trainer's modes use only that interface (`sample_episode`, `test_set`,
`test_episode`, `probe_episode`, `episode_loss`, `episode_metric`, `imitation_loss`, `timing`, `gains`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._episode import Episode

TEST_LOSS_LABELS = {
    "mean_xv": "closed-loop test loss mean_{t,b} ||x_t||^2",
    "sum_t": "closed-loop test loss sum_t mean_b ||x_t||^2",
}
TRAIN_LOSS_LABELS = {
    "mean": "train loss mean_{t,i,b} x^2 + beta mean_b sum_t u^2",
    "sum": "train loss dt sum_t [mean_{b,i} x^2 + reg sum_b u^2]",
}


@dataclass(frozen=True)
class Regulation:
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

    def sample_x0(self, key, batch: int, dtype=jnp.float32):
        return jax.random.uniform(key, (batch, self.n_states), dtype, -self.x0_range, self.x0_range)

    def train_loss(self, xs, us, beta):
        """`xs`: `(T, batch, k)` states x_0..x_{T-1}; `us`: `(T, batch, m)` controls."""
        if self.loss == "mean":
            return jnp.mean(xs**2) + beta * jnp.sum(us**2) / xs.shape[1]
        return self.dt * (jnp.sum(jnp.mean(xs**2, axis=(1, 2))) + beta * jnp.sum(us**2))

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
        return TRAIN_LOSS_LABELS[self.loss]

    @property
    def test_loss_definition(self) -> str:
        return TEST_LOSS_LABELS[self.test_loss]

    def sample_episode(self, key, batch: int, dtype=jnp.float32) -> Episode:
        return Episode(self.sample_x0(key, batch, dtype))

    def test_set(self, key, dtype=jnp.float32):
        """The fixed test initial states, drawn once from `key`."""
        return self.sample_x0(key, self.test_batch, dtype)

    def test_episode(self, test_set, key, dtype=jnp.float32) -> Episode:
        """The test episodes of an epoch: always the fixed test set (`key` unused)."""
        return Episode(test_set)

    def probe_episode(self, dtype=jnp.float32):
        return None

    def basis_episode(self, dtype=jnp.float32):
        return None

    def episode_loss(self, traj, episode: Episode, beta):
        return self.train_loss(traj.x, traj.u, beta)

    def episode_metric(self, traj, episode: Episode):
        return self.test_metric(traj.x)

    def imitation_loss(self, u_student, u_teacher):
        """`dt sum_t mean_{b,j} (u_student - u_teacher)^2` over arrays `(T, batch, n_out)` (spec §3.3)."""
        return self.dt * jnp.sum(jnp.mean((u_student - u_teacher) ** 2, axis=tuple(range(1, u_student.ndim))))

    def probe_metrics(self, traj, probe: Episode) -> dict:
        return {}

    def epoch_metrics(self) -> dict:
        return {}

    def metric_coords(self) -> dict:
        return {}


def regulation_from_config(task_cfg, plant) -> Regulation:
    return Regulation(plant.n_states, task_cfg.T, task_cfg.batch, task_cfg.x0_range, task_cfg.loss,
                      task_cfg.test_batch, task_cfg.test_loss, plant.dt)
