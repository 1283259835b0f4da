r"""Stage 3 theory: training the 4-D effective model directly (spec §4.5, §6.5, Fig 5d).

The overlaps $\sigma = (\sigma_{zm}, \sigma_{zu}, \sigma_{vm}, \sigma_{vu})$ of the full model at
`ep_of_stab` (or a chosen epoch) seed the effective system $s_{t+1} = P_{\rm eff}(\sigma)\, s_t$,
$s = (x, v, \kappa_m, \kappa_u)$, $\kappa_0 = 0$, with control $u_t = \sigma_{zm}\kappa_{m,t} +
\sigma_{zu}\kappa_{u,t}$, and the four numbers are trained by clipped SGD on the `mean` loss of
:class:`loopdyn.tasks.Regulation` (spec §3.1):

$$\mathcal L = \operatorname{mean}_{t<T,\,i,\,b}\,(x^{(i)}_{t,b})^2
+ \beta\,\operatorname{mean}_b\sum_{t<T} u_{t,b}^2 .$$

This is plain gradient descent on the overlaps (identity metric), as the authors' effective model;
the exact overlap dynamics induced by gradient descent on $z, u, v$ differ (spec §7.4).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import effective_core
from ..optim import gradient_descent, init_optimizer, make_optimizer
from ..plants import double_integrator
from ..system import effective_matrix, rollout, spectrum
from ..tasks import Regulation


class EffectiveTraining(NamedTuple):
    """Result of :func:`train_effective_model`; a leading `beta` axis when several β were given.

    - `loss` `(..., epochs)`: training loss of epoch `e`, computed with `sigma[e]` before its update;
    - `sigma` `(..., epochs + 1, 4)`: overlaps after `e` updates (`sigma[0]` = start, `sigma[-1]` = final);
    - `eigenvalues` complex `(..., 4)`: spectrum of the final $P_{\rm eff}$, decreasing modulus.
    """

    loss: np.ndarray
    sigma: np.ndarray
    eigenvalues: np.ndarray


def effective_episode_loss(sigma, x0, beta, T: int):
    r"""The `mean` training loss of one episode batch of the effective model: a :func:`loopdyn.system.rollout`
    of :func:`loopdyn.agents.effective_core` on the double integrator (exactly $s_{t+1} = P_{\rm eff} s_t$).

    **Arguments:** `sigma` `(4,)`; `x0` `(batch, 2)` initial plant states ($\kappa_0 = 0$);
    `beta`: control penalty; `T`: steps in the loss ($x_0 \dots x_{T-1}$).
    """
    traj = rollout(effective_core(sigma), double_integrator(), x0, T)
    return Regulation(n_states=2, T=T, batch=x0.shape[0], loss="mean").train_loss(traj.x, traj.u, beta)


def train_effective_model(sigma_start, *, key=None, epochs: int = 1000, lr: float = 0.01, clip: float = 1.0,
                          batch: int = 100, T: int = 50, beta=0.0, x0_range: float = 2.0,
                          epoch_keys=None) -> EffectiveTraining:
    r"""Clipped SGD directly on the four overlaps of $P_{\rm eff}$ (spec §4.5).

    Every epoch draws a fresh batch $x_0 \sim U(-a, a)^2$ (`Regulation.sample_x0` with the epoch's key
    from `jax.random.split(key, epochs)`), evaluates the loss, clips the gradient to global norm
    `clip` (0 = off) and takes one SGD step (:func:`loopdyn.optim.gradient_descent`, the trainer's
    optimisation step); a sequence of β is vmapped over with the same initial states for every β.

    **Arguments:** `sigma_start` `(4,)` ordered $(\sigma_{zm}, \sigma_{zu}, \sigma_{vm}, \sigma_{vu})$;
    `key`: PRNG key; `epochs`, `lr`, `clip`, `batch`, `T`: as spec §3.1; `beta`: a number or a
    sequence of numbers; `x0_range`: $a$; `epoch_keys`: instead of `key`, the PRNG key of every epoch
    `(epochs, 2)`, passed to `Regulation.sample_x0` as is — give the keys a full-model run drew its
    batches with, and both models see the same initial states epoch by epoch.

    **Returns:** :class:`EffectiveTraining`.
    """
    s0 = jnp.asarray(sigma_start)
    s0 = s0.astype(jnp.result_type(s0.dtype, float))
    if s0.shape != (4,):
        raise ValueError(f"sigma_start must have shape (4,), got {s0.shape}")
    betas, keys = betas_and_epoch_keys(beta, key, epoch_keys, epochs, s0.dtype)
    loss, sigma = _train(s0, keys, betas, jnp.asarray(lr, s0.dtype), jnp.asarray(clip, s0.dtype),
                         jnp.asarray(x0_range, s0.dtype), batch=batch, T=T)
    sigma = np.asarray(sigma)
    final = sigma[..., -1, :]
    lam = spectrum(effective_matrix(*(final[..., i] for i in range(4))))
    return EffectiveTraining(np.asarray(loss), sigma, lam)


def betas_and_epoch_keys(beta, key, epoch_keys, epochs: int, dtype):
    """`(betas, keys)` of an effective- or overlap-model training: `beta` a number or a 1-D sequence, and the
    PRNG key of every epoch, from exactly one of `key` (split) and `epoch_keys` (as given)."""
    betas = jnp.asarray(beta, dtype)
    if betas.ndim > 1:
        raise ValueError(f"beta must be a number or a 1-D sequence, got shape {betas.shape}")
    if (key is None) == (epoch_keys is None):
        raise ValueError("give exactly one of key and epoch_keys")
    keys = jax.random.split(key, epochs) if epoch_keys is None else jnp.asarray(epoch_keys)
    if keys.shape[0] != epochs:
        raise ValueError(f"epoch_keys has {keys.shape[0]} keys for {epochs} epochs")
    return betas, keys


@partial(jax.jit, static_argnames=("batch", "T"))
def _train(s0, keys, betas, lr, clip, x0_range, *, batch: int, T: int):
    task = Regulation(n_states=2, T=T, batch=batch, x0_range=x0_range, loss="mean")
    opt = make_optimizer("sgd")

    def run(b):
        def objective(s, k):
            return effective_episode_loss(s, task.sample_x0(k, batch, s.dtype), b, T), None

        trail, loss = gradient_descent(objective, s0, opt, init_optimizer(opt, s0, lr, clip), keys)
        return loss, trail

    return jax.vmap(run)(betas) if betas.ndim else run(betas)
