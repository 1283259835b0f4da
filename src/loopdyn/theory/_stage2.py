r"""Stage 2 theory: short-term vs long-term objectives and the zig-zag (spec §4.4, Fig 4d).

The four visible overlaps are treated as free parameters $\sigma = (\sigma_{zm}, \sigma_{zu},
\sigma_{vm}, \sigma_{vu})$ (stacked along a last axis of size 4 in that order, as
:data:`loopdyn.system.OVERLAP_NAMES`). Two objectives compete:

- the short-term loss $\mathcal L_0 = \|[P_{\rm eff}^3]_{1:2,1:2}\|_F^2 = \sum_{x_0 \in \{e_1, e_2\}} \|x_3\|^2$
  (called $\mathcal L_2$ in the paper summary), a myopic three-step regulation cost;
- the long-term loss $\mathcal L_\infty^T = (|\lambda_1|^2)^T$, the growth of the dominant mode over
  $T$ steps, with $|\lambda_1|^2 \approx c + b\lambda_3 + \lambda_3^2$ from the perturbative $\lambda_3$.

Their gradients point in nearly opposite directions; gradient descent on the full loss alternates
between them, which is the zig-zag of the dominant eigenvalue in stage 2. The surrogate
$\alpha\mathcal L_\infty^T + (1-\alpha)\mathcal L_0$ plays the role of the episode length: small α
moves $\lambda_1$ up along $\operatorname{Re}\lambda \approx 1$, large α down towards the real axis.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..optim import gradient_descent, init_optimizer, make_optimizer
from ..system import characteristic_cubic, cubic_roots, dominant_modulus_sq_approx, effective_matrix, unstack_overlaps


def _as_sigma(sigma):
    sigma = jnp.asarray(sigma)
    return sigma.astype(jnp.result_type(sigma.dtype, float))


def short_term_loss(sigma):
    r"""$\mathcal L_0(\sigma) = \|[P_{\rm eff}^3]_{1:2,1:2}\|_F^2$ (spec §4.4).

    Equal to the closed form $(\sigma_{zm}+1)^2 + (\sigma_{zm}+3)^2 + (\sigma_{vm}\sigma_{zu}+2\sigma_{zm})^2
    + (\sigma_{vm}\sigma_{zu}+3\sigma_{zm}+1)^2$.

    **Arguments:** `sigma` `(..., 4)`. **Returns:** `(...)`.
    """
    P = effective_matrix(*unstack_overlaps(_as_sigma(sigma)))
    P3 = P @ P @ P
    return jnp.sum(P3[..., :2, :2] ** 2, axis=(-2, -1))


def long_term_loss(sigma, T: int):
    r"""$\mathcal L_\infty^T = (|\lambda_1|^2)^T$ with the perturbative $|\lambda_1|^2$ (spec §4.4).

    **Arguments:** `sigma` `(..., 4)`; `T`: horizon exponent. **Returns:** `(...)`.
    """
    return dominant_modulus_sq_approx(*unstack_overlaps(_as_sigma(sigma))) ** T


def surrogate_loss(sigma, alpha, T: int):
    r"""$\mathcal L_{\rm sur} = \alpha\,\mathcal L_\infty^T + (1-\alpha)\,\mathcal L_0$ (spec §4.4)."""
    return alpha * long_term_loss(sigma, T) + (1 - alpha) * short_term_loss(sigma)


class SurrogatePath(NamedTuple):
    """Result of :func:`optimise_surrogate`; the leading axis follows `alpha`.

    - `alpha` `(n_alpha,)`;
    - `sigma` `(n_alpha, steps + 1, 4)`: overlaps after `s` updates at index `s`;
    - `loss` `(n_alpha, steps + 1)`: surrogate loss at those overlaps;
    - `dominant` complex `(n_alpha, steps + 1)`: dominant root of the cubic (largest modulus,
      positive imaginary part first) — the `np.roots(coeffs)[0]` the reference plots.
    """

    alpha: np.ndarray
    sigma: np.ndarray
    loss: np.ndarray
    dominant: np.ndarray


def optimise_surrogate(sigma_start, alphas, *, T: int = 10, steps: int = 240, lr: float = 1e-3,
                       clip: float = 1.0) -> SurrogatePath:
    r"""Gradient descent on the surrogate loss for several α at once (spec §4.4, Fig 4d).

    SGD with learning rate `lr` after clipping the gradient to global norm `clip` (0 = no clipping),
    (:func:`loopdyn.optim.gradient_descent`, the trainer's optimisation step); vmapped over α. The figure version starts from the epoch-10 overlaps of the full
    model with $T = 10$, α ∈ {0, 0.48, 0.52, 0.55, 1}, 240 steps (the reference stops α = 0.48 at
    300 and α = 0.55 at 190 steps: slice the result); the notebook version has $T = 20$, 200 steps.

    **Arguments:** `sigma_start` `(4,)`; `alphas`: sequence of α; `T`, `steps`, `lr`, `clip` as above.

    **Returns:** :class:`SurrogatePath`.
    """
    s0 = _as_sigma(sigma_start)
    if s0.shape != (4,):
        raise ValueError(f"sigma_start must have shape (4,), got {s0.shape}")
    alpha = jnp.atleast_1d(jnp.asarray(alphas, s0.dtype))
    sigma, loss = _surrogate_paths(s0, alpha, jnp.asarray(lr, s0.dtype), jnp.asarray(clip, s0.dtype), T=T, steps=steps)
    sigma = np.asarray(sigma)
    roots = cubic_roots(characteristic_cubic(*(sigma[..., i] for i in range(4))))
    return SurrogatePath(np.asarray(alpha), sigma, np.asarray(loss), roots[..., 0])


@partial(jax.jit, static_argnames=("T", "steps"))
def _surrogate_paths(s0, alpha, lr, clip, *, T: int, steps: int):
    opt = make_optimizer("sgd")

    def path(a):
        trail, _ = gradient_descent(lambda s: (surrogate_loss(s, a, T), None), s0, opt, init_optimizer(opt, s0, lr, clip),
                                    steps=steps)
        return trail, surrogate_loss(trail, a, T)

    return jax.vmap(path)(alpha)


@jax.jit
@jax.vmap
def _angle(sigma):
    g0 = jax.grad(short_term_loss)(sigma)
    g_inf = jax.grad(lambda s: dominant_modulus_sq_approx(*unstack_overlaps(s)))(sigma)
    cos = g0 @ g_inf / (jnp.linalg.norm(g0) * jnp.linalg.norm(g_inf))
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


def gradient_angle(sigma):
    r"""Angle in degrees between $\nabla_\sigma\mathcal L_0$ and $\nabla_\sigma\mathcal L_\infty^T$ (spec §4.4).

    $\nabla\mathcal L_\infty^T = T(|\lambda_1|^2)^{T-1}\nabla|\lambda_1|^2$ is a positive multiple of
    $\nabla|\lambda_1|^2$, so the angle does not depend on $T$. Angles near 180° mean the short- and
    long-term objectives conflict: the zig-zag of stage 2.

    **Arguments:** `sigma` `(..., 4)`, e.g. the overlaps of every epoch of a run.

    **Returns:** `(...)`, in $[0, 180]$.
    """
    sigma = _as_sigma(sigma)
    return _angle(sigma.reshape(-1, 4)).reshape(sigma.shape[:-1])
