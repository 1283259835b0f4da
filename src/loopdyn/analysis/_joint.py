r"""The joint agent-environment matrix $P$ and its spectrum (spec §4.1-4.2).

For a linear agent the joint state $s_t = (x_t, h_t)$ evolves as $s_{t+1} = P s_t$ with

$$P = \begin{pmatrix} A & B z^\top \\ \alpha\, m C A & (1-\alpha) I + \alpha (W + m C B z^\top)\end{pmatrix}$$

(spec §8 row 13: the leak multiplies $m C B z^\top$ too; for the double integrator $CB = 0$).
For a linear low-rank agent with no random part, span{m, U} is invariant; in the coordinates
$h = Q\kappa$, $Q = [m\;U]$, the *reduced* matrix is

$$P_{\rm red} = \begin{pmatrix} A & B z^\top Q \\ \alpha \begin{pmatrix} C A\\ 0\end{pmatrix} &
(1-\alpha) I + \alpha \begin{pmatrix} C B z^\top Q \\ V^\top Q\end{pmatrix}\end{pmatrix},$$

and spec(P) = spec(P_red) ∪ {1 - alpha}^(N - n_in - r). For rank 1 on the double integrator
$P_{\rm red}$ is the 4-D effective matrix $P_{\rm eff}$ of §4.2.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def joint_matrix(A, B, C, m, W, z, alpha=1.0):
    """Full joint matrix, shape `(k + N, k + N)`; `m (N, c)`, `W (N, N)`, `z (N, n_out)`."""
    A, B, C = (jnp.asarray(M, dtype=m.dtype) for M in (A, B, C))
    N = W.shape[0]
    top = jnp.concatenate([A, B @ z.T], axis=1)
    bottom = jnp.concatenate(
        [alpha * m @ C @ A, (1 - alpha) * jnp.eye(N, dtype=m.dtype) + alpha * (W + m @ C @ B @ z.T)], axis=1
    )
    return jnp.concatenate([top, bottom], axis=0)


def reduced_joint_matrix(A, B, C, m, U, V, z, alpha=1.0):
    """Joint matrix on span{m, U} for a linear low-rank agent, shape `(k + c + r, k + c + r)`."""
    A, B, C = (jnp.asarray(M, dtype=m.dtype) for M in (A, B, C))
    Q = jnp.concatenate([m, U], axis=1)
    r, d = U.shape[1], Q.shape[1]
    zq = z.T @ Q
    top = jnp.concatenate([A, B @ zq], axis=1)
    left = alpha * jnp.concatenate([C @ A, jnp.zeros((r, A.shape[1]), m.dtype)], axis=0)
    right = (1 - alpha) * jnp.eye(d, dtype=m.dtype) + alpha * jnp.concatenate([C @ B @ zq, V.T @ Q], axis=0)
    return jnp.concatenate([top, jnp.concatenate([left, right], axis=1)], axis=0)


def overlaps(m, z, U, V):
    r"""Rank-1 overlaps as plain dot products (spec §2.2): $\sigma_{zm}=z^\top m$, $\sigma_{zu}=z^\top u$,
    $\sigma_{vm}=v^\top m$, $\sigma_{vu}=v^\top u$. Vectors may carry a trailing axis of size 1."""
    m, z, u, v = (jnp.reshape(a, a.shape[:-2] + (-1,)) if a.ndim >= 2 and a.shape[-1] == 1 else a for a in (m, z, U, V))
    dot = lambda a, b: jnp.sum(a * b, axis=-1)  # noqa: E731
    return {"sigma_zm": dot(z, m), "sigma_zu": dot(z, u), "sigma_vm": dot(v, m), "sigma_vu": dot(v, u)}


def effective_matrix(sigma_zm, sigma_zu, sigma_vm, sigma_vu):
    r"""$P_{\rm eff}$ of spec §4.2 (double integrator, rank 1, g = 0), batched over leading axes.
    State $(x, v, \kappa_m, \kappa_u)$."""
    szm, szu, svm, svu = jnp.broadcast_arrays(*(jnp.asarray(s) for s in (sigma_zm, sigma_zu, sigma_vm, sigma_vu)))
    one, zero = jnp.ones_like(szm), jnp.zeros_like(szm)
    rows = [
        [one, one, zero, zero],
        [zero, one, szm, szu],
        [one, one, zero, zero],
        [zero, zero, svm, svu],
    ]
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def spectrum(P) -> np.ndarray:
    """Eigenvalues of (batched) matrices, on the host in float64, sorted by decreasing modulus
    (ties: positive imaginary part first)."""
    lam = np.linalg.eigvals(np.asarray(P, dtype=np.float64))
    order = np.lexsort((-lam.imag, -np.round(np.abs(lam), 12)), axis=-1)
    return np.take_along_axis(lam, order, axis=-1)


def spectral_radius(eigenvalues) -> np.ndarray:
    return np.max(np.abs(eigenvalues), axis=-1)
