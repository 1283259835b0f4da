r"""Recurrent controllers.

Column-vector maths (spec §2.1): with leak $\alpha = dt/\tau$,

$$h_{t} = (1-\alpha)\,h_{t-1} + \alpha\,\phi(W h_{t-1} + m\,y_t),\qquad u_t = z^\top h_t,$$

and $W = U V^\top + g J$ for a low-rank agent ($J$ a fixed Gaussian matrix), or a free $W$
for a full-rank one. Parameters are a dict of arrays: `m (N, n_in)`, `z (N, n_out)`, and
either `W (N, N)` or `U, V (N, r)` plus the fixed `J (N, N)` when the agent has random
connectivity. Batches are rows: `h` has shape `(batch, d)`.

A linear low-rank agent without random connectivity keeps its hidden state in
span{m, U}; its *reduced* core works in those coordinates, `h = Q kappa` with
`Q = [m U]`, so the `(N + k)`-dimensional joint matrix is never formed during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

ACTIVATIONS = {"linear": lambda a: a, "tanh": jnp.tanh, "relu": jax.nn.relu}


@dataclass(frozen=True)
class AgentSpec:
    """Static description of an agent (hashable: it selects the compiled code).

    - `N`: hidden units; `rank`: 0 for a full-rank `W`, else r for `W = U V^T (+ g J)`.
    - `activation`: `linear`, `tanh` or `relu`; `alpha`: leak dt/tau (1 = discrete).
    - `init`: `lowrank` (spec §2.2) or `rnn` (spec §2.1); `n_in`, `n_out`: input and output sizes.
    - `trainable`: names of the trained parameters; `random`: whether `J` is present.
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

    @property
    def linear(self) -> bool:
        return self.activation == "linear"

    @property
    def reduced(self) -> bool:
        """Whether the hidden state can be simulated in span{m, U} (dimension n_in + rank)."""
        return self.linear and self.rank > 0 and not self.random and self.n_in + self.rank < self.N

    @property
    def hidden_dim(self) -> int:
        return self.n_in + self.rank if self.reduced else self.N

    @property
    def rank1_overlaps(self) -> bool:
        """Whether the overlaps sigma_zm, sigma_zu, sigma_vm, sigma_vu are defined."""
        return self.rank == 1 and self.n_in == 1 and self.n_out == 1


def spec_from_config(cfg, n_in: int, n_out: int, random: bool) -> AgentSpec:
    a = cfg.agent
    return AgentSpec(a.N, a.rank, a.activation, a.alpha, a.init, n_in, n_out, tuple(a.trainable), random)


def init_params(spec: AgentSpec, key, *, g=0.0, over=jnp.nan, dtype=jnp.float32) -> dict:
    """Initial parameters; the same key gives the same weights whatever the training mode.

    `lowrank` (spec §2.2): `m, z ~ U(-1/sqrt N, 1/sqrt N)`, `U, V ~ N(0, 1/N)`, `J ~ N(0, 1/N)`.
    `rnn` (spec §2.1): `m, z ~ N(0, 1/N^2)`, `W = g J`. A finite `over` (rank 1 only) replaces `z`
    by `(over/|m|^2) m + b`, `b` the random `z` made orthogonal to `m` with norm `0.1 |over| / |m|`,
    so that `z.m = over` exactly.
    """
    N, r = spec.N, spec.rank
    k_m, k_z, k_u, k_v, k_j = jax.random.split(key, 5)
    s = 1.0 / jnp.sqrt(N)
    if spec.init == "lowrank":
        m = jax.random.uniform(k_m, (N, spec.n_in), dtype, -s, s)
        z = jax.random.uniform(k_z, (N, spec.n_out), dtype, -s, s)
    else:
        m = jax.random.normal(k_m, (N, spec.n_in), dtype) / N
        z = jax.random.normal(k_z, (N, spec.n_out), dtype) / N
    J = jax.random.normal(k_j, (N, N), dtype) * s
    params = {"m": m, "z": z}
    if r:
        params["U"] = jax.random.normal(k_u, (N, r), dtype) * s
        params["V"] = jax.random.normal(k_v, (N, r), dtype) * s
        if spec.random:
            params["J"] = J
    else:
        params["W"] = jnp.asarray(g, dtype) * J
    if spec.rank1_overlaps:
        mm = m[:, 0] @ m[:, 0]
        direction = (over / mm) * m[:, 0]
        b = z[:, 0] - (z[:, 0] @ m[:, 0]) / mm * m[:, 0]
        b = b / jnp.linalg.norm(b) * 0.1 * jnp.abs(over) / jnp.sqrt(mm)
        params["z"] = jnp.where(jnp.isnan(over), z, (direction + b)[:, None]).astype(dtype)
    return params


def split_trainable(params: dict, trainable) -> tuple[dict, dict]:
    """`(trained, frozen)` dicts; merge back with `{**trained, **frozen}`."""
    trained = {k: v for k, v in params.items() if k in trainable}
    frozen = {k: v for k, v in params.items() if k not in trainable}
    return trained, frozen


def connectivity(spec: AgentSpec, params: dict, g=0.0):
    """The full recurrent matrix `W` (`(N, N)`, column-vector convention)."""
    if spec.rank == 0:
        return params["W"]
    W = params["U"] @ params["V"].T
    if "J" in params:
        W = W + g * params["J"]
    return W


def make_core(spec: AgentSpec, params: dict, g=0.0):
    """`(readout, update)` closures for batched hidden states.

    `readout(h) -> u` of shape `(batch, n_out)`; `update(h, y) -> h'`. For a reduced agent
    `h` holds the coordinates kappa on `Q = [m U]` (see the module docstring).
    """
    a = spec.alpha
    m, z = params["m"], params["z"]
    if spec.reduced:
        Q = jnp.concatenate([m, params["U"]], axis=1)  # (N, n_in + r)
        zq = z.T @ Q  # (n_out, d)
        vq = params["V"].T @ Q  # (r, d)

        def readout(k):
            return k @ zq.T

        def update(k, y):
            return (1 - a) * k + a * jnp.concatenate([y, k @ vq.T], axis=-1)

        return readout, update

    phi = ACTIVATIONS[spec.activation]
    if spec.rank:
        U, V, J = params["U"], params["V"], params.get("J")

        def recur(h):
            out = (h @ V) @ U.T
            return out if J is None else out + g * (h @ J.T)
    else:
        W = params["W"]

        def recur(h):
            return h @ W.T

    def readout(h):
        return h @ z

    def update(h, y):
        return (1 - a) * h + a * phi(recur(h) + y @ m.T)

    return readout, update
