r"""The one optimisation loop: a clipped SGD/Adam step, and gradient descent as a `lax.scan` of it.

The trainer's epoch (:func:`loopdyn.training.make_epoch`) takes one :func:`descend` step per epoch; the
theories' surrogate and effective-model training (:mod:`loopdyn.theory`) scan it with
:func:`gradient_descent`. Learning rate and clip threshold live in the optimiser state
(`optax.inject_hyperparams`), so one compiled optimiser serves an ensemble of per-run values.

Clipping conventions (`clip_eps`): 0 is `optax.clip_by_global_norm`,
$g \min(1, c/\|g\|)$; the authors' PyTorch code (`clip_grad_norm_`) scales by
$\min(1, c/(\|g\| + 10^{-6}))$ — pass `clip_eps=1e-6` to reproduce it to round-off.

Overlap representation (`make_optimizer(..., gram_mask=...)`): the single parameter is the Gram matrix
$G = X^\top X$ of vectors $X$, and a step maps it to the Gram matrix of the clipped-SGD step of the vectors,
exactly (:mod:`loopdyn.agents` `gram_step`; Ger & Barak 2026, spec §7).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ..agents import gram_coefficients, gram_gradient_sq_norm, gram_step
from ._parts import OPTIMIZERS, Optimizer


def clip_by_global_norm_eps(max_norm, eps: float) -> optax.GradientTransformation:
    r"""Scale updates by $\min(1, c / (\|g\| + \epsilon))$, $c$ = `max_norm` (the PyTorch convention);
    `max_norm <= 0` turns clipping off."""

    def update(updates, state, params=None):
        norm = optax.tree.norm(updates)
        scale = jnp.where(max_norm > 0, jnp.minimum(max_norm / (norm + eps), 1.0), 1.0)
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def gram_sgd(learning_rate, max_norm, mask, clip_eps: float = 0.0) -> optax.GradientTransformation:
    r"""Clipped SGD of vectors $X$ carried out on their Gram matrix, the single leaf of the parameters.

    Given $F = \partial\mathcal L/\partial G$, the update is $G' - G$ with $G' = (I - \eta s C)^\top G
    (I - \eta s C)$, $C = (F + F^\top)M$, and the clip factor $s$ of the vector gradient's global norm
    $\sqrt{\operatorname{tr}(C^\top G C)}$ in the convention of :func:`make_optimizer` (`max_norm <= 0` = off).

    **Arguments:** `learning_rate`, `max_norm`: as :func:`make_optimizer`; `mask` `(d,)`: 1 for the trained
    columns of $X$; `clip_eps`: as :func:`clip_by_global_norm_eps`.
    """

    def update(grads, state, params=None):
        (F,), tree = jax.tree.flatten(grads)
        (G,) = jax.tree.leaves(params)
        C = gram_coefficients(F, mask)
        norm = jnp.sqrt(gram_gradient_sq_norm(G, C))
        if clip_eps > 0:
            scale = jnp.where(max_norm > 0, jnp.minimum(max_norm / (norm + clip_eps), 1.0), 1.0)
        else:  # optax.clip_by_global_norm: unchanged below the threshold
            scale = jnp.where((max_norm > 0) & (norm >= max_norm), max_norm / norm, 1.0)
        new = gram_step(G, C, learning_rate * scale.astype(G.dtype))
        return jax.tree.unflatten(tree, [new - G]), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _optimizer(optimizer) -> Optimizer:
    """An :class:`Optimizer` from itself or its name (`train.optimizer`)."""
    return optimizer if isinstance(optimizer, Optimizer) else OPTIMIZERS.resolve(optimizer)()


def make_optimizer(name, clip_eps: float = 0.0, gram_mask=None) -> optax.GradientTransformation:
    """Global-norm clipping followed by the optimiser `name` (an :class:`loopdyn.optim.Optimizer` or its name:
    `"sgd"`, `"adam"`, a plugin's or `"package.module:Class"`), with `learning_rate` and `max_norm` injected
    hyper-parameters (per run, traced; `max_norm <= 0` = no clipping).

    With `gram_mask` (`(d,)`, 1 for trained columns) the parameter is a Gram matrix and the step is
    :func:`gram_sgd` (SGD only: Adam's update is not a function of the Gram matrix).

    `opt.init(params)` takes the values given here as defaults; use :func:`init_optimizer` to set a run's.
    """
    opt = _optimizer(name)
    if gram_mask is not None:
        if not opt.overlap_exact:
            raise ValueError(f"optimizer {opt.kind!r} cannot train a Gram matrix: the overlap reduction holds for "
                             f"rotation-invariant updates (SGD) only")
        mask = np.asarray(gram_mask, np.float64)
        return optax.inject_hyperparams(lambda learning_rate, max_norm: gram_sgd(learning_rate, max_norm, mask,
                                                                                 clip_eps))(learning_rate=0.0,
                                                                                            max_norm=0.0)

    def chain(learning_rate, max_norm):
        if clip_eps > 0:
            clip = clip_by_global_norm_eps(max_norm, clip_eps)
        else:
            clip = optax.clip_by_global_norm(jnp.where(max_norm > 0, max_norm, jnp.inf))
        return optax.chain(clip, opt.transform(learning_rate))

    return optax.inject_hyperparams(chain)(learning_rate=0.0, max_norm=0.0)


def init_optimizer(optimizer: optax.GradientTransformation, params, lr, clip):
    """The optimiser state of `params` with this run's learning rate and clip threshold (traced ok)."""
    state = optimizer.init(params)
    hp = dict(state.hyperparams)
    dtype = jnp.result_type(*jax.tree.leaves(params)) if jax.tree.leaves(params) else jnp.float32
    hp["learning_rate"] = jnp.asarray(lr, dtype)
    hp["max_norm"] = jnp.asarray(clip, dtype)
    return state._replace(hyperparams=hp)


class Step(NamedTuple):
    """One :func:`descend` step: new `params` and `opt_state` (unchanged unless `enabled` and `finite`),
    the `loss` and `aux` of the parameters before the step, and whether loss and gradient were `finite`."""

    params: Any
    opt_state: Any
    loss: jax.Array
    aux: Any
    finite: jax.Array


def descend(objective: Callable, params, opt_state, optimizer: optax.GradientTransformation, *args,
            enabled=True) -> Step:
    """One optimiser step on `objective(params, *args) -> (loss, aux)`.

    The step is skipped (parameters and state kept) where `enabled` is false or the loss or a gradient
    is not finite; the caller decides what a non-finite step means (the trainer marks the run diverged).
    """
    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params, *args)
    return apply_gradient(loss, aux, grads, params, opt_state, optimizer, enabled=enabled)


def apply_gradient(loss, aux, grads, params, opt_state, optimizer: optax.GradientTransformation, *,
                   enabled=True) -> Step:
    """The step of :func:`descend` from a gradient computed elsewhere (a learning rule that is not the gradient of
    a differentiable objective, e.g. a score-function estimate, :mod:`loopdyn.training`); same skipping rules."""
    finite = jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    updates, new_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    take = finite & enabled

    def keep(new, old):
        return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)

    return Step(keep(new_params, params), keep(new_state, opt_state), loss, aux, finite)


def gradient_descent(objective: Callable, params, optimizer: optax.GradientTransformation, opt_state, xs=None,
                     *, steps: int | None = None):
    """`steps` :func:`descend` steps in one `lax.scan`; step `i` calls `objective(params, xs[i])` (or
    `objective(params)` without `xs`).

    **Returns:** `(trail, losses)`: the parameters after `0..steps` updates (leading axis `steps + 1`) and
    the loss of each step's starting parameters (leading axis `steps`).
    """

    def body(carry, x):
        p, s = carry
        step = descend(objective, p, s, optimizer, *(() if xs is None else (x,)))
        return (step.params, step.opt_state), (step.params, step.loss)

    _, (trail, losses) = lax.scan(body, (params, opt_state), xs, length=steps)
    trail = jax.tree.map(lambda p0, t: jnp.concatenate([p0[None], t], axis=0), params, trail)
    return trail, losses
