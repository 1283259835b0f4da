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

from ..agents import gain_core
from ..plants import double_integrator
from ..system import array_namespace, log_sum_sq, rollout

STABLE, UNSTABLE_OSCILLATORY, UNSTABLE_REAL = 2, 1, 0
"""Labels of :func:`stability_region` (the values of the reference code, contours at 0.5 and 1.5)."""


def stability_region(k1, k2):
    r"""Label of the closed loop $A + BK$ of the double integrator, from closed-form boundaries.

    - `2` (stable): $k_1 < 0$, $k_2 < k_1$, $k_2 > k_1/2 - 2$;
    - `1` (unstable, oscillatory): otherwise, if the eigenvalues are complex ($k_2^2 + 4k_1 < 0$),
      which then means $|\lambda| \geq 1$ ($k_2 \geq k_1$);
    - `0` (unstable, real): every other gain, including all $k_1 > 0$.

    **Arguments:** `k1`, `k2`, broadcastable arrays (NumPy or JAX, answered in the same library).

    **Returns:** int32 array of labels.
    """
    xp = array_namespace(k1, k2)
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


def gain_loss_landscape(k1_grid, k2_grid, x0=(1.0, 1.0), T: int = 50):
    r"""$\log(\mathcal L / T)$ of the static policy $u_t = K x_t$ on the double integrator (spec §4.6, Fig 2b).

    $$\mathcal L(k_1, k_2) = \sum_{t=1}^{T} \|x_t\|^2,\qquad x_{t+1} = (A + BK)\,x_t,\quad x_0 = (1, 1).$$

    Vectorised over the whole grid (a renormalised :func:`loopdyn.system.rollout` of the static policy),
    so that strongly unstable gains do not overflow.

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
    K = jnp.stack([K1.ravel(), K2.ravel()], -1)  # one gain per batch element

    def one(gain):
        traj = rollout(gain_core(gain[None]), double_integrator(), x0[None], T + 1, observe="state",
                       timing="immediate", renormalise=True)
        return log_sum_sq(traj, first=1)[0]

    return (jax.vmap(one)(K) - jnp.log(T)).reshape(K1.shape)


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
