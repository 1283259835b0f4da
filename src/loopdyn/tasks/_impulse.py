r"""The open-loop impulse-response task of Ger & Barak 2026 (spec §7.1).

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

from ..config import NON_NEGATIVE, POSITIVE, param
from ._base import Task
from ._episode import Episode, WithoutProbes


@dataclass(frozen=True)
class ImpulseTarget(WithoutProbes):
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

    # ---------------------------------------------------------------- the task interface of the trainer
    # Only the `open_loop_target` mode trains on this task; it rolls the network out on `inputs` and scores it
    # with `train_loss`. The episode methods keep the interface whole (a zero plant state, no reference).
    n_exo = 0
    superposable = False
    gains = False  # no plant in the loop: no effective feedback gains
    emit = ("u",)
    imitation_loss_definition = "not defined (no teacher)"

    @property
    def train_loss_definition(self) -> str:
        label = f"impulse-response loss dt sum_t (y_t - exp(-{self.decay:g} t))^2, dt = agent.alpha"
        return label + (f", target noise std {self.noise:g}" if self.noise > 0 else "")

    @property
    def test_loss_definition(self) -> str:
        return f"impulse-response loss dt sum_t (y_t - exp(-{self.decay:g} t))^2, dt = agent.alpha (noise-free)"

    def sample_episode(self, key, batch: int, dtype=jnp.float32) -> Episode:
        return Episode(self.sample_x0(key, batch, dtype))

    def train_episode(self, key, dtype=jnp.float32) -> Episode:
        return self.sample_episode(key, self.batch, dtype)

    def test_set(self, key, dtype=jnp.float32):
        return self.sample_x0(key, 1, dtype)

    def test_episode(self, test_set, key, dtype=jnp.float32) -> Episode:
        return Episode(test_set)


class ImpulseTask(Task):
    """The open-loop impulse response (module docstring): `[task] kind = "impulse"`, trained with
    `train.mode = "open_loop_target"`; its time step is the agent's leak."""

    T: int = param(400, doc="steps of the response (t_max = T agent.alpha, in units of tau)", check=POSITIVE)
    decay: float = param(0.2, doc="target exp(-decay t), t in units of tau (dt = agent.alpha)", check=NON_NEGATIVE)
    target_noise: float = param(0.0, doc="std of Gaussian noise added to the target at every step, fresh each epoch",
                                check=NON_NEGATIVE)

    modes = ("open_loop_target",)

    def bind(self, plant, agent_alpha: float = 1.0) -> ImpulseTarget:
        return ImpulseTarget(plant.n_states, self.T, float(agent_alpha), self.decay, self.target_noise)
