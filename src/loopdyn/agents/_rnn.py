r"""Recurrent controllers and the cores that step them.

Column-vector maths (Ger & Barak 2025; spec §2.1): with leak $\alpha = dt/\tau$,

$$h_{t} = (1-\alpha)\,h_{t-1} + \alpha\,\phi(W h_{t-1} + m\,y_t),\qquad u_t = z^\top h_t,$$

$W = U V^\top + g J$ for a low-rank agent ($J$ a fixed Gaussian matrix) or a free $W$ for a full-rank
one. Batches are rows: a hidden state `h` has shape `(batch, d)`.

A :class:`Core` is what the rollout (:func:`loopdyn.system.rollout`) steps: `update(h, input)` and
`readout(h)`. Four strategies build one:

- :func:`make_core` for an agent; for a linear low-rank agent without random part it is *reduced*:
  the hidden state stays in span{m, U}, and the core works in the coordinates $\kappa$ on $[m\;U]$
  ($h = m\kappa_m + U\kappa_u$): it is :func:`overlap_core` of the agent's overlaps $z^\top[m\;U]$,
  $V^\top[m\;U]$, so nothing of size N is stepped. Its state has only `n_in + r` coordinates, so it is
  stepped in float64 whatever the parameters' dtype: in float32 this low-dimensional recursion loses
  more digits in its gradients than the N-dimensional one (late in training up to 100x), in float64 its
  gradients are more accurate than the float32 N-dimensional path's, at no cost in time;
- :func:`overlap_core`: an agent written directly in its overlaps, e.g. the 4-D effective model of
  spec §4.2 (:func:`effective_core`);
- :func:`gain_core`: a static state feedback $u = K x$ (its input is the plant state).

An agent in the *overlap representation* (`AgentSpec.representation == "overlaps"`) has only its Gram
matrix as parameters (:mod:`loopdyn.agents._overlaps`); its core is :func:`overlap_core` of the overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._core import Core, overlap_core
from ._params import AgentParams

ACTIVATIONS = {"linear": lambda a: a, "tanh": jnp.tanh, "relu": jax.nn.relu}

SMALL_INPUT = 4
r"""Up to this many inputs, :func:`input_drive` forms $m\,y$ as a sum of broadcast products (see there)."""


REMATERIALISE = True
"""Whether a low-rank nonlinear core without random part recomputes its update in the backward pass (`jax.checkpoint`,
bit-identical) instead of storing its intermediates (:func:`rnn_core`; `benchmarks/bench_checkpoint_update.py`
switches it)."""


@jax.custom_jvp
def input_drive(y, m):
    r"""The input drive $m\,y$ of a batch, `y (..., c)`, `m (N, c)` -> `(..., N)`, equal to `y @ m.T`.

    For a few inputs ($c \le$ :data:`SMALL_INPUT`) it is written as $\sum_k y_k\, m_{:,k}$, which the compiler
    fuses into the activation that reads it; a matrix product with a contraction of 2 (two observations, as the
    cart-pole's or the arm's) would be a product of its own and an extra `(batch, N)` array per step, while
    for $c = 1$ the compiler already makes it a product of broadcasts. Its derivative is the matrix product
    $\dot m\,y + m\,\dot y$ (custom JVP), so that the backward pass keeps matrix products (its cotangents
    are contractions over the batch and over N) and forward-mode (`jax.jacfwd`) stays available.
    """
    c = y.shape[-1]
    if c > SMALL_INPUT:
        return y @ m.T
    if c == 0:
        return jnp.zeros(y.shape[:-1] + (m.shape[0],), jnp.result_type(y, m))
    out = y[..., 0:1] * m[:, 0]
    for k in range(1, c):
        out = out + y[..., k:k + 1] * m[:, k]
    return out


@input_drive.defjvp
def _input_drive_jvp(primals, tangents):
    y, m = primals
    dy, dm = tangents
    return input_drive(y, m), dy @ m.T + y @ dm.T


@dataclass(frozen=True)
class AgentSpec:
    """Static description of an agent (hashable: it selects the compiled code).

    - `N`: hidden units; `rank`: 0 for a full-rank `W`, else r for `W = U V^T (+ g J)`.
    - `activation`: `linear`, `tanh` or `relu`; `alpha`: leak dt/tau (1 = discrete).
    - `init`: `lowrank` (spec §2.2), `rnn` or `uniform` (spec §2.1); `n_in`, `n_out`: input and output sizes.
    - `trainable`: names of the trained parameters; `random`: whether `J` is present.
    - `representation`: `vectors` (the N-dimensional parameters) or `overlaps` (a linear low-rank agent
      trained exactly through the Gram matrix of its vectors, spec §7; `trainable` then says which
      vectors the gradient moves).
    - `part`: a user's subclass of :class:`loopdyn.agents.RNN` that initialises or steps the parameters
      its own way (:meth:`~loopdyn.agents.RNN.initial_parameters`, :meth:`~loopdyn.agents.RNN.core`), else `None`.
    """

    N: int
    rank: int
    activation: str = "linear"
    alpha: float = 1.0
    init: str = "lowrank"
    n_in: int = 1
    n_out: int = 1
    trainable: tuple[str, ...] = ("z", "U", "V")
    random: bool = False
    representation: str = "vectors"
    part: Any = None

    @property
    def linear(self) -> bool:
        return self.activation == "linear"

    @property
    def reduced(self) -> bool:
        """Whether the hidden state can be simulated in span{m, U} (dimension n_in + rank < N); never for an
        agent part that steps its own core (`part`)."""
        return (self.part is None and self.linear and self.rank > 0 and not self.random
                and self.n_in + self.rank < self.N)

    @property
    def hidden_dim(self) -> int:
        return self.n_in + self.rank if self.reduced or self.representation == "overlaps" else self.N

    @property
    def rank1_overlaps(self) -> bool:
        """Whether the overlaps sigma_zm, sigma_zu, sigma_vm, sigma_vu are defined."""
        return self.rank == 1 and self.n_in == 1 and self.n_out == 1

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The arrays of :meth:`AgentParams.present` (the store's parameter variables)."""
        if self.representation == "overlaps":
            return ("G",)
        extra = tuple(f"extra_{k}" for k in self.part.extra_parameters(self)) if self.part is not None else ()
        return ("m", "z") + (("U", "V") if self.rank else ("W",)) + (("J",) if self.random else ()) + extra


    @property
    def trained_names(self) -> tuple[str, ...]:
        """The fields of `AgentParams` that change in training: the Gram matrix in the overlap representation."""
        return ("G",) if self.representation == "overlaps" else self.trainable


def spec_from_config(cfg, n_in: int, n_out: int) -> AgentSpec:
    """The `AgentSpec` of a configuration's `[agent]` table, for a plant with `n_in` outputs and `n_out` inputs
    (:meth:`loopdyn.agents.Agent.spec`)."""
    return cfg.agent.spec(n_in, n_out)


def init_params(spec: AgentSpec, key, *, g=0.0, over=jnp.nan, dtype=jnp.float32) -> AgentParams:
    r"""Initial parameters; the same key gives the same weights whatever the training mode.

    An agent part of one's own (`spec.part`) initialises them with its
    :meth:`~loopdyn.agents.RNN.initial_parameters`; the schemes below are :func:`rnn_init_params`.
    """
    if spec.part is not None:
        return spec.part.initial_parameters(spec, key, g=g, over=over, dtype=dtype)
    return rnn_init_params(spec, key, g=g, over=over, dtype=dtype)


def rnn_init_params(spec: AgentSpec, key, *, g=0.0, over=jnp.nan, dtype=jnp.float32) -> AgentParams:
    r"""The RNN's initial parameters (the schemes of `spec.init`).

    `lowrank` (spec §2.2): `m, z ~ U(-1/sqrt N, 1/sqrt N)`, `U, V ~ N(0, 1/N)`, `J ~ N(0, 1/N)`.
    `rnn` (spec §2.1): `m, z ~ N(0, 1/N^2)`, `W = g J`. `uniform` (spec §2.1, the tracking network):
    `m, z ~ U(-1/sqrt N, 1/sqrt N)`, `W = g J`. `unit` (Ger & Barak 2026, spec §7.1): every column
    of `m, z, U, V` Gaussian, normalised to unit norm ($\|a\|^2 = 1$, the follow-up's $\|a\|^2/N = 1$ in
    plain dot products). A finite `over` (rank 1 only) replaces `z`
    by `(over/|m|^2) m + b`, `b` the random `z` made orthogonal to `m` with norm `0.1 |over| / |m|`,
    so that `z.m = over` exactly.
    """
    N, r = spec.N, spec.rank
    k_m, k_z, k_u, k_v, k_j = jax.random.split(key, 5)
    s = 1.0 / jnp.sqrt(N)
    def unit(k, cols):
        a = jax.random.normal(k, (N, cols), dtype)
        return a / jnp.linalg.norm(a, axis=0)

    if spec.init in ("lowrank", "uniform"):
        m = jax.random.uniform(k_m, (N, spec.n_in), dtype, -s, s)
        z = jax.random.uniform(k_z, (N, spec.n_out), dtype, -s, s)
    elif spec.init == "unit":
        m, z = unit(k_m, spec.n_in), unit(k_z, spec.n_out)
    else:
        m = jax.random.normal(k_m, (N, spec.n_in), dtype) / N
        z = jax.random.normal(k_z, (N, spec.n_out), dtype) / N
    # drawn only where used: an N x N matrix at N = 10 000 is 0.8 GB
    J = jax.random.normal(k_j, (N, N), dtype) * s if spec.random or not r else None
    if spec.rank1_overlaps:
        mm = m[:, 0] @ m[:, 0]
        direction = (over / mm) * m[:, 0]
        b = z[:, 0] - (z[:, 0] @ m[:, 0]) / mm * m[:, 0]
        b = b / jnp.linalg.norm(b) * 0.1 * jnp.abs(over) / jnp.sqrt(mm)
        z = jnp.where(jnp.isnan(over), z, (direction + b)[:, None]).astype(dtype)
    if r and spec.init == "unit":
        return AgentParams(m=m, z=z, U=unit(k_u, r), V=unit(k_v, r), J=J if spec.random else None)
    if r:
        U = jax.random.normal(k_u, (N, r), dtype) * s
        V = jax.random.normal(k_v, (N, r), dtype) * s
        return AgentParams(m=m, z=z, U=U, V=V, J=J if spec.random else None)
    return AgentParams(m=m, z=z, W=jnp.asarray(g, dtype) * J)


def connectivity(spec: AgentSpec, params: AgentParams, g=0.0):
    """The full recurrent matrix `W` (`(..., N, N)`, column-vector convention)."""
    if spec.rank == 0:
        return params.W
    W = params.U @ jnp.swapaxes(params.V, -1, -2)
    if params.J is not None:
        W = W + g * params.J
    return W


def reduced_basis(params: AgentParams):
    r"""`(Q, R)`: orthonormal basis `Q (N, d)` of span{m, U} and `R (d, d)` with `[m U] = Q R` (host-side
    uses: LAPACK calls inside programs sharded over CPU devices have deadlocked, so compiled training
    code steps the reduced agent on $[m\;U]$ instead)."""
    return jnp.linalg.qr(jnp.concatenate([params.m, params.U], axis=-1))


def make_core(spec: AgentSpec, params: AgentParams, g=0.0) -> Core:
    """The core of an agent: its overlaps when given as a Gram matrix, the reduced strategy when `spec.reduced`
    (module docstring), else neurons; an agent part of one's own (`spec.part`) builds its own
    (:meth:`~loopdyn.agents.RNN.core`)."""
    if spec.part is not None:
        return spec.part.core(spec, params, g)
    return rnn_core(spec, params, g)


def rnn_core(spec: AgentSpec, params: AgentParams, g=0.0) -> Core:
    """The RNN's own core (:func:`make_core` without an agent part)."""
    if params.G is not None:
        from ._overlaps import gram_core, gram_layout

        return gram_core(params.G, gram_layout(spec), spec.alpha)
    a = spec.alpha
    m, z = params.m, params.z
    if spec.reduced:
        f64 = jnp.float64
        basis = jnp.concatenate([m, params.U], axis=-1).astype(f64)  # (N, n_in + r)
        core = overlap_core(z.astype(f64).T @ basis, params.V.astype(f64).T @ basis, a)
        return Core(core.hidden_dim, core.update, core.readout, basis, f64)

    phi = ACTIVATIONS[spec.activation]
    if spec.rank:
        U, V, J = params.U, params.V, params.J

        def recur(h):
            out = (h @ V) @ U.T
            return out if J is None else out + g * (h @ J.T)
    else:
        W = params.W

        def recur(h):
            return h @ W.T

    def update(h, y):
        return (1 - a) * h + a * phi(recur(h) + input_drive(y, m))

    if REMATERIALISE and spec.rank and params.J is None and not spec.linear:
        # a low-rank nonlinear update costs O(N r) per state: recomputing it in the backward pass is cheaper than
        # storing its (T, batch, N) intermediates (bit-identical; `benchmarks/bench_checkpoint_update.py`); a
        # full-rank one would recompute its N x N product, and is slower so
        update = jax.checkpoint(update)
    return Core(spec.N, update, lambda h: h @ z)
