r"""Linearisation of the joint agent-environment map of a nonlinear agent (spec §4.1, §6.1).

One closed-loop step (delayed timing of :func:`loopdyn.system.rollout`) maps the joint state
$s_t = (x_t, h_t)$ to

$$x_{t+1} = A x_t + B z^\top h_t,\qquad
h_{t+1} = (1-\alpha)\, h_t + \alpha\, \phi\big(W h_t + m\, C x_{t+1}\big),$$

so its Jacobian at a joint state $s$ is, with $D = \operatorname{diag}\phi'(W h + m C x_{t+1})$,

$$J(s) = \begin{pmatrix} A & B z^\top \\ \alpha D\, m C A & (1-\alpha) I + \alpha D\,(W + m C B z^\top)\end{pmatrix}.$$

At the fixed point $s = 0$ every unit has the same slope $D = \phi'(0)\, I$, and $J(0)$ is the joint matrix
$P$ with $m \to \phi'(0)\, m$ and $W \to \phi'(0)\, W$ — for a linear agent $J(0) = P$ exactly. Its
spectrum decides the local stability of the origin of the closed loop: it is the nonlinear agent's
counterpart of the spectrum of $P$ that the stage analysis follows. A nonlinear plant enters through its
linearisation at the origin ($A = \partial f/\partial x$, $B = \partial f/\partial u$, $C = \partial g/\partial x$,
:meth:`loopdyn.plants.Plant.linearisation`), so the same formula is $J(0)$ of any loop whose origin is an
equilibrium.

Slopes $\phi'(0)$ (:data:`ACTIVATION_SLOPES`): `linear` 1, `tanh` 1, and `relu` ½. ReLU has no derivative
at 0 (one-sided slopes 0 and 1, and JAX's convention is 0, which would cut the agent out of the loop).
We take the mean of the two one-sided slopes, which is the expected slope $\mathbb E\,\mathbf 1[a > 0]$
of a unit whose pre-activation is symmetric about 0: exactly, $\tfrac12\big(J(\varepsilon\xi) +
J(-\varepsilon\xi)\big) = J_{1/2}(0)$ for any direction $\xi$ with nonzero pre-activations, since the map
is piecewise linear with $\mathbf 1[a>0] + \mathbf 1[-a>0] = 1$. Pass `slope=` to choose otherwise.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import AgentParams, connectivity, make_core
from ._joint import joint_matrix, spectrum, step_jacobian_at_origin
from ._rollout import rollout

ACTIVATION_SLOPES = {"linear": 1.0, "tanh": 1.0, "relu": 0.5}
r"""$\phi'(0)$ used for the Jacobian at the origin, by activation name (see the module docstring)."""


def activation_slope(activation: str) -> float:
    r"""$\phi'(0)$ of an activation (:data:`ACTIVATION_SLOPES`); raises `ValueError` for unknown names."""
    try:
        return ACTIVATION_SLOPES[activation]
    except KeyError:
        raise ValueError(f"activation {activation!r} has no slope at 0 defined; known: {', '.join(ACTIVATION_SLOPES)}") from None


def jacobian_at_origin(A, B, C, m, W, z, alpha=1.0, slope=1.0):
    r"""$J(0)$, the Jacobian of the joint map at $s = 0$ (module docstring), shape `(k + N, k + N)`.

    **Arguments:**
    - `A (k, k)`, `B (k, n_out)`, `C (c, k)`: the plant;
    - `m (N, c)`, `W (N, N)`, `z (N, n_out)`: input vectors, full recurrent matrix ($UV^\top + gJ$ for a
      low-rank agent) and readout, column-vector convention;
    - `alpha`: leak $dt/\tau$; `slope`: $\phi'(0)$, e.g. `activation_slope("tanh")`.

    **Returns:** the matrix, in the dtype of `m`. Pure JAX (works under `jit` and `vmap`).
    """
    return joint_matrix(A, B, C, slope * m, slope * W, z, alpha)


def joint_step(spec, plant, params: AgentParams, g=0.0):
    r"""The one-step joint map $F: s_t \mapsto s_{t+1}$ of a single (unbatched) joint state.

    $s = (x, h)$ of length `k + spec.hidden_dim` (core coordinates), one noise-free step of
    :func:`loopdyn.system.rollout`.
    """
    core = make_core(spec, params, g)
    k = plant.n_states

    def F(s):
        traj = rollout(core, plant, s[None, :k], 1, h0=s[None, k:], emit=("x_next", "h_next"))
        return jnp.concatenate([traj.x_next[0, 0], traj.h_next[0, 0]])

    return F


def joint_jacobian(spec, plant, params: AgentParams, s, g=0.0):
    r"""$J(s) = \partial F / \partial s$ at a joint state `s` (e.g. along a closed-loop trajectory), by `jax.jacfwd`.

    At a point where a ReLU pre-activation is exactly 0 this uses JAX's slope 0; see
    :func:`jacobian_at_origin` for the origin.
    """
    return jax.jacfwd(joint_step(spec, plant, params, g))(jnp.asarray(s))


def jacobian_spectra(spec, plant, params: AgentParams, g=0.0, *, slope: float | None = None, block: int = 128,
                     per_matrix: bool = False) -> np.ndarray:
    r"""Spectra of $J(0)$ for a batch of parameter sets (e.g. every checkpoint of a run), float64.

    **Arguments:**
    - `spec`: the `AgentSpec` (full-rank or low-rank, any activation and leak); `plant`: a
      :class:`loopdyn.plants.Plant`, linearised at the origin (:meth:`~loopdyn.plants.Plant.linearisation`;
      a linear plant's own matrices), which must be an equilibrium of the plant;
    - `params`: `AgentParams` whose arrays share leading batch axes `L` (e.g. `(checkpoint,)`) before the
      parameter shapes; parameters without them (frozen ones) are broadcast;
    - `g`: gain of the random part $J$; `slope`: $\phi'(0)$ (default :func:`activation_slope`);
    - `block`: matrices per `np.linalg.eigvals` call (bounds memory); `per_matrix`: as :func:`loopdyn.system.spectrum`.

    **Returns:** complex `L + (k + N,)`, sorted like :func:`loopdyn.system.spectrum` (decreasing modulus).
    """
    slope = activation_slope(spec.activation) if slope is None else float(slope)
    present = params.present()
    lead = max((np.shape(v)[:-2] for v in present.values()), key=len)
    flat = {k: np.broadcast_to(np.asarray(v, np.float64), lead + np.shape(v)[-2:]).reshape((-1,) + np.shape(v)[-2:])
            for k, v in present.items()}
    n = int(np.prod(lead)) if lead else 1
    A, B, C = (jnp.asarray(M, jnp.float64) for M in plant.linearisation())
    size = min(block, n)
    out = []
    for lo in range(0, n, size):
        # Pad the last block to the common size so that every call reuses one compilation.
        idx = np.minimum(np.arange(lo, lo + size), n - 1)
        chunk = AgentParams.of({k: jnp.asarray(v[idx]) for k, v in flat.items()})
        if spec.part is not None:
            J = _custom_jacobians(spec, plant, chunk, jnp.asarray(g, jnp.float64))
        else:
            J = _batched_jacobians(spec, slope, A, B, C, chunk, jnp.asarray(g, jnp.float64))
        lam = spectrum(np.asarray(J), per_matrix=per_matrix)
        out.append(lam[: min(size, n - lo)])
    lam = np.concatenate(out, axis=0)
    return lam.reshape(lead + lam.shape[-1:])


@partial(jax.jit, static_argnames=("spec", "slope"))
def _batched_jacobians(spec, slope, A, B, C, params, g):
    def one(q):
        return jacobian_at_origin(A, B, C, q.m, connectivity(spec, q, g), q.z, spec.alpha, slope)

    return jax.vmap(one)(params)


def _custom_jacobians(spec, plant, params, g):
    """$J(0)$ of an agent part that steps its own core, by `jax.jacfwd` through one step of the loop."""
    return jax.jit(jax.vmap(lambda q: step_jacobian_at_origin(spec, plant, q, g)))(params)
