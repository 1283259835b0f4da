r"""The joint agent-environment matrix $P$, its reduced forms and spectrum (Ger & Barak 2025; spec §4.1-4.2).

For a linear agent the joint state $s_t = (x_t, h_t)$ of a closed loop (delayed timing, see
:func:`loopdyn.system.rollout`) evolves as $s_{t+1} = P s_t$ with

$$P = \begin{pmatrix} A & B z^\top \\ \alpha\, m C A & (1-\alpha) I + \alpha (W + m C B z^\top)\end{pmatrix}$$

(spec §8 row 13: the leak multiplies $m C B z^\top$ too; for the double integrator $CB = 0$).
For a linear low-rank agent with no random part, span{m, U} is invariant; in the coordinates $\kappa$ of an
orthonormal basis $Q$ of it ($h = Q\kappa$, $[m\;U] = QR$, $q_m = Q^\top m$, $q_U = Q^\top U$) the
*reduced* matrix is

$$P_{\rm red} = \begin{pmatrix} A & B z^\top Q \\ \alpha\, q_m C A &
(1-\alpha) I + \alpha (q_m C B z^\top Q + q_U V^\top Q)\end{pmatrix},$$

and spec(P) = spec(P_red) ∪ {1 - alpha}^(N - n_in - r). For rank 1 on the double integrator $P_{\rm red}$ is
similar to the 4-D effective matrix $P_{\rm eff}$ of §4.2 (:func:`effective_matrix`). An agent in the
overlap representation (a Gram matrix) gets the same matrix in the coordinates on $[m\;U]$
(:func:`overlap_joint_matrix`), similar to $P_{\rm red}$ through $R$.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import RANK1_INDEX, AgentParams, connectivity, gram_layout, gram_readout, make_core, reduced_basis
from ._rollout import rollout

OVERLAP_NAMES = ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu")
"""Order of the four visible overlaps whenever they are stacked along a last axis of size 4."""

INVISIBLE_NAMES = ("sigma_mu", "sigma_zv", "sigma_mm", "sigma_zz", "sigma_uu", "sigma_vv")
"""The loss-invisible overlaps of a rank-1 agent (Ger & Barak 2026, spec §7.2): $m^\top u$, $z^\top v$ and the
squared norms; together with :data:`OVERLAP_NAMES` they are the ten entries of the Gram matrix."""


def array_namespace(*arrays):
    """`jax.numpy` if any argument is a JAX array (or tracer), else `numpy`: functions that accept both
    answer in the library they were given."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


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
    """Joint matrix on span{m, U} in orthonormal coordinates (module docstring), `(k + c + r, k + c + r)`."""
    A, B, C = (jnp.asarray(M, dtype=m.dtype) for M in (A, B, C))
    Q, R = reduced_basis(AgentParams(m=m, U=U))
    c = m.shape[1]
    qm, qu = R[:, :c], R[:, c:]
    zq, vq = z.T @ Q, V.T @ Q
    d = Q.shape[1]
    top = jnp.concatenate([A, B @ zq], axis=1)
    left = alpha * qm @ C @ A
    right = (1 - alpha) * jnp.eye(d, dtype=m.dtype) + alpha * (qm @ C @ B @ zq + qu @ vq)
    return jnp.concatenate([top, jnp.concatenate([left, right], axis=1)], axis=0)


def overlap_joint_matrix(A, B, C, zq, vq, alpha=1.0):
    r"""Joint matrix in the coordinates $\kappa$ on $[m\;U]$ ($h = [m\;U]\kappa$), `(k + c + r, k + c + r)`:

    $$\begin{pmatrix} A & B\, z_q \\ \alpha E_m C A & (1-\alpha) I + \alpha (E_m C B\, z_q + E_U v_q)\end{pmatrix},$$

    $z_q = z^\top[m\;U]$ `(n_out, c + r)`, $v_q = V^\top[m\;U]$ `(r, c + r)`, $E_m$, $E_U$ the embeddings of the
    first c and last r coordinates (the update of :func:`loopdyn.agents.overlap_core`).
    """
    A, B, C = (jnp.asarray(M, dtype=zq.dtype) for M in (A, B, C))
    c, d = C.shape[0], zq.shape[-1]
    Em = jnp.eye(d, c, dtype=zq.dtype)
    Eu = jnp.eye(d, d - c, k=-c, dtype=zq.dtype)
    top = jnp.concatenate([A, B @ zq], axis=1)
    right = (1 - alpha) * jnp.eye(d, dtype=zq.dtype) + alpha * (Em @ C @ B @ zq + Eu @ vq)
    return jnp.concatenate([top, jnp.concatenate([alpha * Em @ C @ A, right], axis=1)], axis=0)


def agent_joint_matrix(spec, plant, params, g=0.0):
    """The joint matrix an agent is simulated with: in overlap coordinates for a Gram matrix, reduced for a
    reduced agent, else full (linear agents). An agent part that steps its own core (`spec.part`): the
    Jacobian of one step of the loop at the origin, by `jax.jacfwd` through the rollout (exact for a linear loop)."""
    if spec.part is not None:
        return step_jacobian_at_origin(spec, plant, params, g)
    if params.G is not None:
        zq, vq = gram_readout(jnp.asarray(params.G), gram_layout(spec))
        return overlap_joint_matrix(plant.A, plant.B, plant.C, zq, vq, spec.alpha)
    if spec.reduced:
        return reduced_joint_matrix(plant.A, plant.B, plant.C, params.m, params.U, params.V, params.z, spec.alpha)
    return joint_matrix(plant.A, plant.B, plant.C, params.m, connectivity(spec, params, g), params.z, spec.alpha)


def step_jacobian_at_origin(spec, plant, params, g=0.0):
    r"""$\partial s_{t+1} / \partial s_t$ at $s = 0$ for one noise-free step of the loop (delayed timing of
    :func:`loopdyn.system.rollout`), `(k + d, k + d)` with `d` the core's state size."""
    core = make_core(spec, params, g)
    k = plant.n_states
    dtype = jax.tree.leaves(params)[0].dtype

    def F(s):
        traj = rollout(core, plant, s[None, :k], 1, h0=s[None, k:], emit=("x_next", "h_next"))
        return jnp.concatenate([traj.x_next[0, 0], traj.h_next[0, 0]])

    return jax.jacfwd(F)(jnp.zeros(k + core.hidden_dim, dtype))


def overlaps(m, z, U, V):
    r"""Rank-1 overlaps as plain dot products (spec §2.2): $\sigma_{zm}=z^\top m$, $\sigma_{zu}=z^\top u$,
    $\sigma_{vm}=v^\top m$, $\sigma_{vu}=v^\top u$. Vectors may carry a trailing axis of size 1."""
    m, z, u, v = (a.reshape(a.shape[:-2] + (-1,)) if a.ndim >= 2 and a.shape[-1] == 1 else a for a in (m, z, U, V))
    xp = array_namespace(m, z, u, v)
    dot = lambda a, b: xp.sum(a * b, axis=-1)  # noqa: E731
    return {"sigma_zm": dot(z, m), "sigma_zu": dot(z, u), "sigma_vm": dot(v, m), "sigma_vu": dot(v, u)}


def all_overlaps(params: AgentParams) -> dict:
    r"""The ten overlaps of a rank-1 agent (:data:`OVERLAP_NAMES` + :data:`INVISIBLE_NAMES`), from its vectors or
    its Gram matrix `G` (`(..., 4, 4)`); leading axes kept, same library as the inputs."""
    pairs = {"sigma_zm": "zm", "sigma_zu": "zu", "sigma_vm": "vm", "sigma_vu": "vu", "sigma_mu": "mu",
             "sigma_zv": "zv", "sigma_mm": "mm", "sigma_zz": "zz", "sigma_uu": "uu", "sigma_vv": "vv"}
    if params.G is not None:
        G = params.G
        return {k: G[..., RANK1_INDEX[a], RANK1_INDEX[b]] for k, (a, b) in pairs.items()}
    vec = {n: getattr(params, f) for n, f in (("m", "m"), ("z", "z"), ("u", "U"), ("v", "V"))}
    vec = {n: (a.reshape(a.shape[:-2] + (-1,)) if a.ndim >= 2 and a.shape[-1] == 1 else a) for n, a in vec.items()}
    xp = array_namespace(*vec.values())
    return {k: xp.sum(vec[a] * vec[b], axis=-1) for k, (a, b) in pairs.items()}


def state_covariances(P, S0, T: int):
    r"""$\Sigma_t = P^t \Sigma_0 P^{t\top}$ for $t = 0..T-1$, `(T, n, n)`: the second moments of a linear loop
    $s_{t+1} = P s_t$ over a distribution of initial states with second moment $\Sigma_0$ (the closed form of the
    expected loss, spec §3.1 averaged over $x_0$)."""
    P, S0 = jnp.asarray(P), jnp.asarray(S0)

    def step(S, _):
        return P @ S @ P.T, S

    return jax.lax.scan(step, S0, None, length=T)[1]


def unstack_overlaps(sigma):
    """Four overlap arrays from a dict keyed by :data:`OVERLAP_NAMES` or an array `(..., 4)`."""
    if isinstance(sigma, dict):
        return tuple(sigma[k] for k in OVERLAP_NAMES)
    xp = array_namespace(sigma)
    sigma = xp.asarray(sigma)
    if sigma.shape[-1] != 4:
        raise ValueError(f"overlaps must have a last axis of size 4 ordered {OVERLAP_NAMES}, got shape {sigma.shape}")
    return tuple(sigma[..., i] for i in range(4))


def effective_matrix(sigma_zm, sigma_zu, sigma_vm, sigma_vu):
    r"""$P_{\rm eff}$ of spec §4.2 (double integrator, rank 1, g = 0), batched over leading axes.
    State $(x, v, \kappa_m, \kappa_u)$ with $h = \kappa_m m + \kappa_u u$."""
    szm, szu, svm, svu = jnp.broadcast_arrays(*(jnp.asarray(s) for s in (sigma_zm, sigma_zu, sigma_vm, sigma_vu)))
    one, zero = jnp.ones_like(szm), jnp.zeros_like(szm)
    rows = [
        [one, one, zero, zero],
        [zero, one, szm, szu],
        [one, one, zero, zero],
        [zero, zero, svm, svu],
    ]
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def spectrum(P, per_matrix: bool = False) -> np.ndarray:
    """Eigenvalues of (batched) matrices, on the host in float64, sorted by decreasing modulus
    (ties: positive imaginary part first). A matrix with a non-finite entry (a diverged run) gets NaN.
    `per_matrix`: one single-threaded LAPACK call per matrix (`scipy.linalg.eigvals`) instead of numpy's batch;
    faster for a few dozen 100x100 matrices on a loaded machine (`benchmarks/bench_fixed_point.py`)."""
    P = np.asarray(P, dtype=np.float64)
    finite = np.all(np.isfinite(P), axis=(-2, -1))
    P = np.where(finite[..., None, None], P, 0.0)
    if per_matrix:
        import scipy.linalg

        flat = P.reshape((-1,) + P.shape[-2:])
        lam = np.stack([scipy.linalg.eigvals(p, check_finite=False) for p in flat]).reshape(P.shape[:-1])
    else:
        lam = _eigvals(P)
    order = np.lexsort((-lam.imag, -np.round(np.abs(lam), 12)), axis=-1)
    lam = np.take_along_axis(lam, order, axis=-1)
    return np.where(finite[..., None], lam, complex(np.nan, np.nan))


def _eigvals(P: np.ndarray) -> np.ndarray:
    """`np.linalg.eigvals` of a stack, split over one thread per core when the matrices are large enough to pay
    for it (LAPACK releases the GIL; 1.9x on 2 cores for 100x100 matrices)."""
    workers = min(os.cpu_count() or 1, 8)
    n = P.shape[-1]
    flat = P.reshape(-1, n, n)
    if workers < 2 or n < 32 or len(flat) < 4 * workers:
        return np.linalg.eigvals(P)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(np.linalg.eigvals, np.array_split(flat, workers)))
    return np.concatenate(parts).reshape(P.shape[:-1])


def spectral_radius(eigenvalues) -> np.ndarray:
    """`max |lambda|` over the last axis (NaN stays NaN)."""
    return np.max(np.abs(eigenvalues), axis=-1)
