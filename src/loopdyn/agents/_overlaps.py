r"""Linear low-rank agents written in their overlaps: the Gram matrix and its exact gradient step.

For a linear agent with $W = U V^\top$ (no random part) the hidden state stays in span{m, U}, and the
loss of any episode depends on the parameters only through the overlaps $z^\top[m\;U]$ and
$V^\top[m\;U]$ (Ger & Barak 2025, spec §4.2; Ger & Barak 2026, spec §7). Collect the vectors as the
columns of $X = [m\;z\;U\;V]$ (`N x d`, $d = n_{in} + n_{out} + 2r$) and their inner products in the
Gram matrix $G = X^\top X$: the loss is a function $f(G)$ of entries of $G$ only. With
$F = \partial f / \partial G$ (the gradient with respect to $G$ read as an unconstrained matrix),

$$\nabla_X \mathcal L = X (F + F^\top),$$

so the gradient of every column is $X$ times a column of the $d \times d$ coefficient matrix
$C = (F + F^\top) M$ ($M$ the diagonal mask of the trained columns). One SGD step with rate $\eta$
(and global-norm clip factor $s$) maps $X' = X (I - \eta s C)$, hence exactly

$$G' = (I - \eta s C)^\top\, G\, (I - \eta s C),\qquad \|\nabla_\theta \mathcal L\|^2 = \operatorname{tr}(C^\top G C),$$

and gradient flow is $\dot G = -(C^\top G + G C)$. This is the closed overlap dynamics of Ger & Barak 2026
(spec §7.2 for all vectors trained, §7.4 with m fixed: the ten equations are the entries of $\dot G$ for
rank 1), for any rank r, input and output size. It holds for rotation-invariant updates (SGD with or
without global-norm clipping), not for Adam, whose per-coordinate scaling is not a function of $G$.

Conserved by gradient flow (spec §7.2): with $P$ the trained columns of type z, V and $Q$ those of type
m, U, and $\Pi$ the projector orthogonal to the frozen columns, $\Pi (P P^\top - Q Q^\top) \Pi$ is
constant; its non-zero eigenvalues are those of $D S$, $S$ the Gram matrix of the trained columns
projected orthogonally to the frozen ones (a Schur complement of $G$), $D = \pm 1$ (+ for z, V).
With every vector trained, $\operatorname{tr}(DS) = \|z\|^2 + \|V\|^2 - \|m\|^2 - \|U\|^2$; with m frozen
(rank 1) it is $\|z\|^2 + \|v\|^2 - \|u\|^2 - (\sigma_{zm}^2 + \sigma_{vm}^2 - \sigma_{mu}^2)/\|m\|^2$.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ._params import AgentParams
from ._core import Core, overlap_core

GRAM_BLOCKS = ("m", "z", "U", "V")
"""Order of the vector blocks along the axes of a Gram matrix."""

RANK1_INDEX = {"m": 0, "z": 1, "u": 2, "v": 3}
"""Row/column of each vector in the 4 x 4 Gram matrix of a rank-1 agent with one input and one output."""


@dataclass(frozen=True)
class GramLayout:
    """Where each block of $X = [m\\;z\\;U\\;V]$ sits along the axes of the Gram matrix."""

    n_in: int
    n_out: int
    rank: int

    @property
    def dim(self) -> int:
        return self.n_in + self.n_out + 2 * self.rank

    def block(self, name: str) -> slice:
        sizes = {"m": self.n_in, "z": self.n_out, "U": self.rank, "V": self.rank}
        start = sum(sizes[b] for b in GRAM_BLOCKS[: GRAM_BLOCKS.index(name)])
        return slice(start, start + sizes[name])

    @property
    def span(self) -> np.ndarray:
        """Indices of the columns of $[m\\;U]$, the basis the hidden state is written in."""
        return np.r_[self.block("m"), self.block("U")]

    def mask(self, trainable) -> np.ndarray:
        """`(d,)` float: 1 for the columns of the trained blocks, 0 for the frozen ones."""
        out = np.zeros(self.dim)
        for name in trainable:
            out[self.block(name)] = 1.0
        return out

    @property
    def signs(self) -> np.ndarray:
        """`(d,)`: -1 for the columns of m and U, +1 for those of z and V (the balance of spec §7.2)."""
        out = np.ones(self.dim)
        out[self.block("m")] = -1.0
        out[self.block("U")] = -1.0
        return out


def gram_layout(spec) -> GramLayout:
    """The :class:`GramLayout` of an :class:`~loopdyn.agents.AgentSpec` (a low-rank agent)."""
    return GramLayout(spec.n_in, spec.n_out, spec.rank)


def gram_matrix(params: AgentParams):
    r"""$G = X^\top X$ of $X = [m\;z\;U\;V]$, computed in float64, `(..., d, d)` (leading axes kept)."""
    X = jnp.concatenate([jnp.asarray(getattr(params, b), jnp.float64) for b in GRAM_BLOCKS], axis=-1)
    return jnp.swapaxes(X, -1, -2) @ X


def represent(spec, params: AgentParams) -> AgentParams:
    """The parameters in the agent's representation: for `spec.representation == "overlaps"` the Gram
    matrix of the vectors (in their dtype) — a run starts from exactly the inner products of its N-dimensional
    initialisation; vectors otherwise."""
    if spec.representation == "overlaps":
        if params.G is not None:
            return AgentParams(G=params.G)
        return AgentParams(G=gram_matrix(params).astype(params.m.dtype))
    if params.G is not None:
        raise ValueError("parameters in overlap space (a Gram matrix) cannot be turned back into the vectors of a "
                         "'vectors' agent")
    return params


def gram_readout(G, layout: GramLayout):
    r"""`(zq, vq)`: $z^\top[m\;U]$ `(..., n_out, n_in + r)` and $V^\top[m\;U]$ `(..., r, n_in + r)` read from $G$."""
    span = layout.span
    zq = G[..., layout.block("z"), :][..., span]
    vq = G[..., layout.block("V"), :][..., span]
    return zq, vq


def gram_core(G, layout: GramLayout, alpha=1.0) -> Core:
    """The core of an agent given by its Gram matrix: :func:`loopdyn.agents.overlap_core` of the overlaps
    read from `G`, stepped in float64 (as the reduced strategy, whose dynamics it is)."""
    zq, vq = gram_readout(jnp.asarray(G).astype(jnp.float64), layout)
    return dataclasses.replace(overlap_core(zq, vq, alpha), dtype=jnp.float64)


def gram_coefficients(F, mask):
    r"""$C = (F + F^\top) M$: the gradient of column $j$ of $X$ is $X C_{:, j}$ (module docstring).

    **Arguments:** `F` `(..., d, d)`: $\partial\mathcal L/\partial G$; `mask` `(d,)`: 1 for trained columns.
    """
    return (F + jnp.swapaxes(F, -1, -2)) * jnp.asarray(mask, F.dtype)


def gram_gradient_sq_norm(G, C):
    r"""$\|\nabla_\theta \mathcal L\|^2 = \operatorname{tr}(C^\top G C)$, the squared global norm of the vector gradient."""
    return jnp.sum(C * (G @ C), axis=(-2, -1))


def gram_step(G, C, step):
    r"""$G' = (I - \text{step}\, C)^\top G\, (I - \text{step}\, C)$: the Gram matrix after the SGD step
    $X' = X - \text{step}\,\nabla_X\mathcal L$ (`step` = learning rate times clip factor)."""
    B = jnp.eye(G.shape[-1], dtype=G.dtype) - step * C
    return jnp.swapaxes(B, -1, -2) @ G @ B


def gram_velocity(G, C):
    r"""$\dot G = -(C^\top G + G C)$ under gradient flow $\dot X = -\nabla_X \mathcal L$."""
    return -(jnp.swapaxes(C, -1, -2) @ G + G @ C)


def conserved_quantities(G, layout: GramLayout, trainable) -> np.ndarray:
    r"""The quantities gradient flow conserves (module docstring), host-side float64.

    The eigenvalues of $D S$, sorted, with $S$ the Gram matrix of the trained columns projected orthogonally
    to the frozen ones and $D$ their signs (+1 for z, V; -1 for m, U): the non-zero spectrum of
    $\Pi(PP^\top - QQ^\top)\Pi$. Their sum is the balance $\operatorname{tr}(DS)$ (:func:`balance`).

    **Arguments:** `G` `(..., d, d)`; `layout`; `trainable`: names of the trained blocks.

    **Returns:** `(..., n_trained)` real eigenvalues, ascending.
    """
    S, D = _projected(G, layout, trainable)
    L = np.linalg.cholesky(S)
    return np.linalg.eigvalsh(np.swapaxes(L, -1, -2) @ (D[:, None] * L))


def balance(G, layout: GramLayout, trainable) -> np.ndarray:
    r"""$\operatorname{tr}(D S)$ (:func:`conserved_quantities`): $\|z\|^2+\|V\|^2-\|m\|^2-\|U\|^2$ when every
    vector is trained (spec §7.2); its projected analogue when some are frozen (spec §7.4)."""
    S, D = _projected(G, layout, trainable)
    return np.einsum("...ii,i->...", S, D)


def _projected(G, layout: GramLayout, trainable):
    G = np.asarray(G, np.float64)
    t = layout.mask(trainable) > 0
    f = ~t
    S = G[..., t, :][..., t]
    if f.any():
        Gtf = G[..., t, :][..., f]
        Gff = G[..., f, :][..., f]
        S = S - Gtf @ np.linalg.solve(Gff, np.swapaxes(Gtf, -1, -2))
    return S, layout.signs[t]
