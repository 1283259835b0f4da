r"""Effective feedback gains of a closed loop: $u_t \approx K x_t$ by least squares (spec §4.6).

One estimator for the trainer and for the analyses: the float64 moments $\sum x x^\top$ and $\sum x u^\top$
over the fitted samples (:func:`gain_moments`, accumulated inside compiled code), then a least-squares
solve on the host (:func:`gains_from_moments`, `numpy.linalg.lstsq`: minimum-norm for a singular Gram
matrix). Sign convention of the authors' code (spec §8 row 9): $u = Kx$, stabilising gains are negative.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def gain_moments(xs, us, drop_first: int = 1):
    r"""Float64 moments `(sum x x^T (k, k), sum x u^T (k, m))` over steps `t >= drop_first` and the batch.

    **Arguments:** `xs` `(T, batch, k)` states, `us` `(T, batch, m)` controls (the `x`, `u` of a
    :class:`loopdyn.system.Trajectory`); `drop_first`: leading steps left out (the reference drops
    $t = 0$, where $u_0 = 0$ by construction).
    """
    x = xs[drop_first:].reshape(-1, xs.shape[-1]).astype(jnp.float64)
    u = us[drop_first:].reshape(-1, us.shape[-1]).astype(jnp.float64)
    return x.T @ x, x.T @ u


def gains_from_moments(gram, cross) -> np.ndarray:
    """Least-squares gains `K (..., m, k)` from batched moments `gram (..., k, k)`, `cross (..., k, m)`
    (host, float64). Moments with a non-finite entry (a diverged run) give NaN gains."""
    gram, cross = np.asarray(gram, np.float64), np.asarray(cross, np.float64)
    lead = gram.shape[:-2]
    g2 = gram.reshape((-1,) + gram.shape[-2:])
    c2 = cross.reshape((-1,) + cross.shape[-2:])
    out = np.full((g2.shape[0], c2.shape[-1], g2.shape[-1]), np.nan)
    for i in range(g2.shape[0]):
        if np.all(np.isfinite(g2[i])) and np.all(np.isfinite(c2[i])):
            out[i] = np.linalg.lstsq(g2[i], c2[i], rcond=None)[0].T
    return out.reshape(lead + out.shape[1:])


def effective_gains(xs, us, drop_first: int = 1) -> np.ndarray:
    """`K (m, k)` with `u ~ K x` fitted without intercept over a batch of trajectories (spec §4.6).

    **Arguments:** `xs` `(T, batch, k)`, `us` `(T, batch, m)`; `drop_first` as in :func:`gain_moments`.
    For the double integrator `k1, k2 = K[0, 0], K[0, 1]`.
    """
    xs, us = jnp.asarray(xs), jnp.asarray(us)
    if xs.shape[:-1] != us.shape[:-1]:
        raise ValueError(f"xs {xs.shape} and us {us.shape} must agree on every axis but the last")
    if xs.shape[0] <= drop_first:
        raise ValueError(f"need more than drop_first = {drop_first} time steps, got T = {xs.shape[0]}")
    return gains_from_moments(*gain_moments(xs, us, drop_first))
