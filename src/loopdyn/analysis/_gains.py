r"""Effective feedback gains $(k_1, k_2)$, the stability map of the double integrator, and LQR (spec §4.6).

Sign convention of the code (spec §8 row 9): $u = K x = k_1 x^{(1)} + k_2 x^{(2)}$ and the closed loop
is $x_{t+1} = (A + BK) x_t$, so stabilising gains are **negative**. For the double integrator

$$A + BK = \begin{pmatrix}1 & 1\\ k_1 & 1 + k_2\end{pmatrix},\qquad
\chi(\lambda) = \lambda^2 - (2 + k_2)\lambda + (1 + k_2 - k_1).$$

By the Jury criterion, all $|\lambda| < 1$ iff $\chi(1) = -k_1 > 0$, $\chi(-1) = 4 + 2k_2 - k_1 > 0$ and
$|1 + k_2 - k_1| < 1$, i.e. iff $k_1 < 0$, $k_2 < k_1$ and $k_2 > k_1/2 - 2$ (the remaining edge
$k_2 > k_1 - 2$ is then implied). The roots are complex iff $k_2^2 + 4k_1 < 0$, and a complex pair has
$|\lambda|^2 = 1 + k_2 - k_1$.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax import lax
from jax.scipy.linalg import solve_triangular

from ._effective import _namespace

STABLE, UNSTABLE_OSCILLATORY, UNSTABLE_REAL = 2, 1, 0
"""Labels of :func:`stability_region` (the values of the reference code, contours at 0.5 and 1.5)."""


@partial(jax.jit, static_argnames="drop_first")
def effective_gains(xs, us, drop_first: int = 1):
    r"""Least-squares static gain of a closed-loop controller (spec §4.6, `nonlin[3]`).

    Fits $u_t \approx K x_t$ **without intercept** over all times $t \geq$ `drop_first` and all batch
    elements (the reference drops $t = 0$, where $u_0 = 0$ by construction). Solved by a QR
    decomposition of the stacked states, so it stays accurate when the trajectories span several
    orders of magnitude. Pure JAX: works under `jit` and `vmap`.

    **Arguments:**
    - `xs`: states, shape `(..., T, batch, k)`, as returned by `loopdyn.training._rollout.closed_loop`.
    - `us`: controls, shape `(..., T, batch, m)`.
    - `drop_first`: number of leading time steps left out of the fit.

    **Returns:** `K`, shape `(..., m, k)`. For the double integrator `k1, k2 = K[..., 0, 0], K[..., 0, 1]`.
    """
    xs, us = jnp.asarray(xs), jnp.asarray(us)
    if xs.shape[:-1] != us.shape[:-1]:
        raise ValueError(f"xs {xs.shape} and us {us.shape} must agree on every axis but the last")
    if xs.shape[-3] <= drop_first:
        raise ValueError(f"need more than drop_first = {drop_first} time steps, got T = {xs.shape[-3]}")
    X = xs[..., drop_first:, :, :]
    Y = us[..., drop_first:, :, :]
    X = X.reshape(X.shape[:-3] + (-1, X.shape[-1]))
    Y = Y.reshape(Y.shape[:-3] + (-1, Y.shape[-1]))
    q, r = jnp.linalg.qr(X)
    coef = solve_triangular(r, jnp.swapaxes(q, -1, -2) @ Y, lower=False)  # (..., k, m)
    return jnp.swapaxes(coef, -1, -2)


def stability_region(k1, k2):
    r"""Label of the closed loop $A + BK$ of the double integrator, from closed-form boundaries.

    - `2` (stable): $k_1 < 0$, $k_2 < k_1$, $k_2 > k_1/2 - 2$;
    - `1` (unstable, oscillatory): otherwise, if the eigenvalues are complex ($k_2^2 + 4k_1 < 0$),
      which then means $|\lambda| \geq 1$ ($k_2 \geq k_1$);
    - `0` (unstable, real): every other gain, including all $k_1 > 0$.

    **Arguments:** `k1`, `k2`, broadcastable arrays (NumPy or JAX, answered in the same library).

    **Returns:** int32 array of labels.
    """
    xp = _namespace(k1, k2)
    k1, k2 = xp.asarray(k1), xp.asarray(k2)
    stable = (k1 < 0) & (k2 < k1) & (k2 > k1 / 2 - 2)
    complex_pair = k2**2 + 4 * k1 < 0
    return xp.where(stable, STABLE, xp.where(complex_pair, UNSTABLE_OSCILLATORY, UNSTABLE_REAL)).astype(xp.int32)


def stability_boundaries(k1_range) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r"""Curves of the stability map in the $(k_1, k_2)$ plane, for plotting (spec §4.6).

    **Arguments:** `k1_range`: 1-D array of $k_1$ values (e.g. `np.linspace(-1.2, 0.6, 400)`).

    **Returns:** a dict of `(k1, k2)` NumPy array pairs, each restricted to the given range:
    - `"real_unit"`: $k_1 = 0$, $-2 \le k_2 \le 0$ — an eigenvalue at $+1$ (edge of the stable triangle);
    - `"complex_unit"`: $k_2 = k_1$, $-4 \le k_1 \le 0$ — a complex pair on the unit circle;
    - `"real_minus_unit"`: $k_2 = k_1/2 - 2$, $-4 \le k_1 \le 0$ — an eigenvalue at $-1$;
    - `"diagonal"`: $k_2 = k_1$ over the whole range (the line the reference figure draws);
    - `"discriminant_upper"`, `"discriminant_lower"`: $k_2 = \pm 2\sqrt{-k_1}$, $k_1 \le 0$ — the
      parabola $k_1 = -k_2^2/4$ separating real from complex eigenvalues.

    The stable region is the triangle with vertices $(0, 0)$, $(0, -2)$, $(-4, -4)$.
    """
    k1 = np.asarray(k1_range, dtype=np.float64)
    lo, hi = float(k1.min()), float(k1.max())
    edge = k1[(k1 >= -4) & (k1 <= 0)]
    neg = k1[k1 <= 0]
    out = {
        "complex_unit": (edge, edge.copy()),
        "real_minus_unit": (edge, edge / 2 - 2),
        "diagonal": (k1, k1.copy()),
        "discriminant_upper": (neg, 2 * np.sqrt(-neg)),
        "discriminant_lower": (neg, -2 * np.sqrt(-neg)),
    }
    if lo <= 0 <= hi:
        k2 = np.linspace(-2.0, 0.0, max(2, k1.size))
        out["real_unit"] = (np.zeros_like(k2), k2)
    else:
        out["real_unit"] = (np.empty(0), np.empty(0))
    return out


def _log_sum_sq_norms(M, s0, n_obs: int, first: int, last: int):
    r"""$\log \sum_{t=\text{first}}^{\text{last}} \|(M^t s_0)_{1:n_{\rm obs}}\|^2$ without overflow.

    The state is renormalised every step and its log-scale carried separately, so divergent
    closed loops (spectral radius up to ~$e^{80/T}$ and beyond) give finite logs even in float32.
    `M` `(..., d, d)` and `s0` `(..., d)` broadcast over leading axes.
    """
    M = jnp.asarray(M)
    s0 = jnp.broadcast_to(jnp.asarray(s0, M.dtype), M.shape[:-1])
    norm0 = jnp.linalg.norm(s0, axis=-1)
    safe0 = jnp.where(norm0 > 0, norm0, 1.0)
    neg_inf = jnp.full(M.shape[:-2], -jnp.inf, M.dtype)

    def step(carry, t):
        s, log_scale, acc = carry
        term = 2 * log_scale + jnp.log(jnp.sum(s[..., :n_obs] ** 2, axis=-1))
        acc = jnp.where(t >= first, jnp.logaddexp(acc, term), acc)
        s_next = jnp.einsum("...ij,...j->...i", M, s)
        n = jnp.linalg.norm(s_next, axis=-1)
        safe = jnp.where(n > 0, n, 1.0)
        return (s_next / safe[..., None], log_scale + jnp.log(n), acc), None

    init = (s0 / safe0[..., None], jnp.log(norm0), neg_inf)
    (_, _, acc), _ = lax.scan(step, init, jnp.arange(last + 1))
    return acc


def gain_loss_landscape(k1_grid, k2_grid, x0=(1.0, 1.0), T: int = 50):
    r"""$\log(\mathcal L / T)$ of the static policy $u_t = K x_t$ on the double integrator (spec §4.6, Fig 2b).

    $$\mathcal L(k_1, k_2) = \sum_{t=1}^{T} \|x_t\|^2,\qquad x_{t+1} = (A + BK)\,x_t,\quad x_0 = (1, 1).$$

    Vectorised over the whole grid (one `lax.scan` over time); computed in log space so that
    strongly unstable gains do not overflow.

    **Arguments:** `k1_grid` `(n1,)`, `k2_grid` `(n2,)`: 1-D grids; `x0`: initial state; `T`: horizon.

    **Returns:** array `(n2, n1)` — rows follow $k_2$, columns $k_1$, ready for
    `plt.contourf(k1_grid, k2_grid, Z)`.
    """
    k1, k2 = jnp.asarray(k1_grid), jnp.asarray(k2_grid)
    dtype = jnp.result_type(k1.dtype, k2.dtype, float)
    return _landscape(k1.astype(dtype), k2.astype(dtype), jnp.asarray(x0, dtype), T=T)


@partial(jax.jit, static_argnames="T")
def _landscape(k1, k2, x0, *, T: int):
    K1, K2 = jnp.meshgrid(k1, k2)
    one = jnp.ones_like(K1)
    M = jnp.stack([jnp.stack([one, one], -1), jnp.stack([K1, 1 + K2], -1)], -2)
    return _log_sum_sq_norms(M, x0, 2, 1, T) - jnp.log(T)


def lqr_gain(A, B, Q, R):
    r"""Infinite-horizon discrete LQR gain in the code convention $u = Kx$ (spec §4.6).

    Solves the discrete algebraic Riccati equation for $P$ (`scipy.linalg.solve_discrete_are`) and
    returns $K = -(R + B^\top P B)^{-1} B^\top P A$, which minimises
    $\sum_t x_t^\top Q x_t + u_t^\top R u_t$. For the double integrator with $Q = I$, $R \to 0$:
    $K = -(1/\varphi, \varphi) = (-0.618, -1.618)$, closed-loop eigenvalues $\{(3-\sqrt5)/2, 0\}$.

    **Arguments:** `A (k, k)`, `B (k, m)`, `Q (k, k)`, `R (m, m)` or a scalar when `m = 1`.

    **Returns:** `(K, eigenvalues)`: `K (m, k)` and the eigenvalues of $A + BK$ sorted by decreasing modulus.
    """
    A, B, Q = (np.atleast_2d(np.asarray(M, dtype=np.float64)) for M in (A, B, Q))
    R = np.atleast_2d(np.asarray(R, dtype=np.float64))
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    lam = np.linalg.eigvals(A + B @ K)
    return K, lam[np.argsort(-np.abs(lam), kind="stable")]
