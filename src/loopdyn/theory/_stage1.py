r"""Stage 1 theory: the negative-position policy and the asymmetric landscape (spec §4.3, Fig 3d).

Near initialisation $\sigma_{vu} \approx 0$ and $\sigma_{vm}\sigma_{zu} \approx 0$, so the cubic of
spec §4.2 reduces to $\lambda(\lambda^2 - 2\lambda + 1 - \sigma_{zm})$ and the dominant pair is
$\lambda_{1,2} = 1 \pm \sqrt{\sigma_{zm}}$: a real pair (monotone divergence) for $\sigma_{zm} > 0$, a
complex pair of modulus $\sqrt{1 + |\sigma_{zm}|}$ (oscillatory divergence) for $\sigma_{zm} < 0$.
Replacing the state norm by the dominant growth $\|x_t\|^2 \sim r^t$, $r = |\lambda_1|^2$, gives the
geometric-sum loss, steep ($\propto \sqrt{\sigma}$ in the exponent) for $\sigma > 0$ and shallow
(linear) for $\sigma < 0$ — the asymmetry that drives $\sigma_{zm}$ slightly negative.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import AgentSpec, init_params, make_core
from ..plants import double_integrator
from ..system import array_namespace, log_sum_sq, rollout


def stage1_eigenvalues(sigma):
    r"""$\lambda_{1,2} = 1 \pm \sqrt{\sigma_{zm}}$ with the complex square root (spec §4.3).

    **Arguments:** `sigma`: $\sigma_{zm}$, any shape `S` (NumPy or JAX, answered in the same library).

    **Returns:** complex array `S + (2,)`: $(1 + \sqrt\sigma, 1 - \sqrt\sigma)$.
    """
    xp = array_namespace(sigma)
    root = xp.sqrt(xp.asarray(sigma) + 0j)
    return xp.stack([1 + root, 1 - root], axis=-1)


def _growth_rate(xp, sigma):
    r"""$r = |1 + \sqrt{\sigma}|^2$: $(1+\sqrt\sigma)^2$ for $\sigma \ge 0$, $1 - \sigma$ below."""
    return xp.where(sigma >= 0, (1 + xp.sqrt(xp.maximum(sigma, 0))) ** 2, 1 - sigma)


def geometric_sum_loss(sigma, T_prime: int = 101, *, log: bool = False):
    r"""Stage-1 theory loss (spec §4.3):

    $$\mathcal L_{\rm th}(\sigma_{zm}) = \tfrac12 \sum_{t=0}^{T'-1} r^t = \tfrac12\,\frac{1 - r^{T'}}{1 - r},
    \qquad r = |1 + \sqrt{\sigma_{zm}}|^2,\quad T' = 101 .$$

    Evaluated in log space ($r \ge 1$ for every real $\sigma$), so `log=True` is finite far beyond
    the float range of $\mathcal L$ itself; the limit $r \to 1$ gives $T'/2$.

    It is an estimate of :func:`simulated_stage1_loss`, not an identity: even where the stage-1
    reduction is exact ($\sigma_{vu} = \sigma_{vm}\sigma_{zu} = 0$) the simulated loss grows like
    $r^{T}$ but with a different prefactor, because $\|x_t\|^2$ follows $|\lambda_1|^{2t}$ only up to
    a bounded factor (mode mixing, oscillating for $\sigma < 0$) and the sum starts from
    $\|x_0\|^2 = 2$, $x_1 = (0, -1)$. For example, at $\sigma_{zm} = -1$ (the plant block is then
    $\sqrt2$ times a rotation) the 100-step simulated loss is exactly $1 + \mathcal L_{\rm th}$ with
    $T' = 99$. Near $\sigma = 0$ the simulation grows
    polynomially ($\|x_t\| \propto t$) while the formula stays at $T'/2$, so the two differ most there.

    **Arguments:** `sigma`: $\sigma_{zm}$, any shape (NumPy or JAX); `T_prime`: number of terms;
    `log`: return $\log \mathcal L_{\rm th}$ (what Fig 3d plots).

    **Returns:** array of the shape of `sigma`.
    """
    xp = array_namespace(sigma)
    sigma = xp.asarray(sigma, dtype=float) if xp is np else sigma.astype(jnp.result_type(sigma.dtype, float))
    a = xp.log(_growth_rate(xp, sigma))  # log r >= 0
    safe = xp.where(a > 0, a, 1.0)
    # log((r^T' - 1) / (r - 1)) with log(expm1(x)) = x + log(-expm1(-x)) for x > 0
    log_expm1 = lambda x: x + xp.log(-xp.expm1(-x))  # noqa: E731
    log_sum = xp.where(a > 0, log_expm1(T_prime * safe) - log_expm1(safe), np.log(T_prime))
    out = np.log(0.5) + log_sum
    return out if log else xp.exp(out)


def simulated_stage1_loss(sigma, *, key, N: int = 100, steps: int = 100, log: bool = False):
    r"""Loss of fresh rank-1 networks with $\sigma_{zm} = \sigma$ (spec §4.3, Fig 3d solid line).

    For every $\sigma$ a new network is drawn (`init_params(AgentSpec(N, rank=1, init="lowrank"),
    k, over=sigma)`, spec §2.2: random $m, u, v$, and $z$ set so that $z^\top m = \sigma$ exactly), and

    $$\mathcal L_{\rm sim} = \sum_{t=0}^{\rm steps-1} \tfrac12\,(x_t^2 + v_t^2),\qquad
    (x_0, v_0) = (1, -1),\ h_0 = 0,$$

    is a renormalised :func:`loopdyn.system.rollout` of the network (its reduced core, span{m, u}), so that
    strongly divergent networks stay finite in log space. Vmapped over
    $\sigma$; float64 when JAX's 64-bit mode is on (importing `loopdyn` turns it on).

    **Arguments:** `sigma`: grid of $\sigma_{zm}$, any shape; `key`: PRNG key, split into one key per
    grid point; `N`: network size; `steps`: episode length; `log`: return $\log \mathcal L_{\rm sim}$.

    **Returns:** JAX array of the shape of `sigma`.
    """
    sig = jnp.asarray(sigma)
    sig = sig.astype(jnp.result_type(sig.dtype, float))
    flat = sig.reshape(-1)
    out = _stage1_log_losses(flat, jax.random.split(key, flat.shape[0]), N=N, steps=steps).reshape(sig.shape)
    return out if log else jnp.exp(out)


@partial(jax.jit, static_argnames=("N", "steps"))
def _stage1_log_losses(sigma, keys, *, N: int, steps: int):
    spec = AgentSpec(N=N, rank=1, init="lowrank")
    x0 = jnp.array([[1.0, -1.0]], sigma.dtype)

    def one(s, k):
        p = init_params(spec, k, over=s, dtype=sigma.dtype)
        traj = rollout(make_core(spec, p), double_integrator(), x0, steps, renormalise=True)
        return np.log(0.5) + log_sum_sq(traj)[0]

    return jax.vmap(one)(sigma, keys)
