r"""The open-loop impulse-response task of Ger & Barak 2026 (spec §7.1), and tasks by configuration.

A network without plant receives an impulse $x_0 = 1/dt$ at $t = 0$ (0 afterwards) and its output
$y_t = z^\top h_{t+1}$ (the updated state, "immediate" timing of :func:`loopdyn.system.rollout`) should follow
the target $y^*(t) = e^{-c t}$, $t = n\,dt$, $n = 0..T-1$; the loss is $\mathcal L = dt \sum_n (y_n - y^*_n)^2$,
optionally with Gaussian noise of std `noise` added to the target at every step, drawn afresh each epoch
(the follow-up's noisy phase of its memory experiment).
Time is in units of the neurons' time constant $\tau$, so $dt$ is the agent's leak $\alpha = dt/\tau$. With
the follow-up's $dt = 0.05$, $t_{\max} = 20$: $T = 400$, $\alpha = 0.05$, $c = 0.2$.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._regulation import TEST_LOSS_LABELS, TRAIN_LOSS_LABELS, regulation_from_config


@dataclass(frozen=True)
class ImpulseTarget:
    """Follow $e^{-c t}$ after a unit-area impulse (module docstring). `n_states` is the configured plant's
    (the task has no plant state; see :meth:`sample_x0`)."""

    n_states: int
    T: int = 400
    dt: float = 0.05
    decay: float = 0.2
    noise: float = 0.0
    batch: int = 1
    timing: str = "immediate"

    def inputs(self, n_in: int = 1, dtype=jnp.float32):
        """`(T, 1, n_in)`: the impulse $1/dt$ at step 0 on every input."""
        return jnp.zeros((self.T, 1, n_in), dtype).at[0].set(1.0 / self.dt)

    def target(self, dtype=jnp.float32):
        """`(T,)`: $e^{-c\\, n\\, dt}$."""
        return jnp.exp(-self.decay * self.dt * jnp.arange(self.T, dtype=dtype))

    def train_loss(self, ys, key=None):
        """$dt \\sum_n (y_n - y^*_n)^2$ of outputs `ys` `(T, 1, n_out)` (every output follows the target); with a
        PRNG `key` and `noise > 0` the target carries fresh noise."""
        target = self.target(ys.dtype)
        if key is not None and self.noise > 0:
            target = target + self.noise * jax.random.normal(key, target.shape, ys.dtype)
        return self.dt * jnp.sum((ys - target[:, None, None]) ** 2)

    def sample_x0(self, key, batch: int, dtype=jnp.float32):
        """Zero plant states: the task starts from no state (the trainer asks for a test batch of any task)."""
        return jnp.zeros((batch, self.n_states), dtype)


def task_from_config(task_cfg, plant, alpha: float = 1.0):
    """The task of a `[task]` table: :class:`loopdyn.tasks.Regulation` or :class:`ImpulseTarget` (dt = `alpha`)."""
    if task_cfg.kind == "impulse":
        return ImpulseTarget(plant.n_states, task_cfg.T, float(alpha), task_cfg.decay, task_cfg.target_noise)
    return regulation_from_config(task_cfg, plant)


def loss_labels(task_cfg) -> tuple[str, str]:
    """`(train, test)` definitions of the losses a store of this task records."""
    if task_cfg.kind == "impulse":
        label = f"impulse-response loss dt sum_t (y_t - exp(-{task_cfg.decay:g} t))^2, dt = agent.alpha"
        noisy = f", target noise std {task_cfg.target_noise:g}" if task_cfg.target_noise > 0 else ""
        return label + noisy, label + " (noise-free)"
    train = TRAIN_LOSS_LABELS[task_cfg.loss]
    if task_cfg.objective == "expected":
        dist = "U(-a, a)" if task_cfg.x0_distribution == "uniform" else "N(0, a^2)"
        train += f", its expectation over x0 ~ {dist} per coordinate in closed form"
    return train, TEST_LOSS_LABELS[task_cfg.test_loss]
