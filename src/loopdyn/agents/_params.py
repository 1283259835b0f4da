"""Typed agent parameters and the trainable/frozen split."""

from __future__ import annotations

from typing import NamedTuple

import jax


class AgentParams(NamedTuple):
    r"""Parameters of an RNN controller, column-vector convention (Ger & Barak 2025; spec §2).

    $$h_t = (1-\alpha)\,h_{t-1} + \alpha\,\phi(W h_{t-1} + m\,y_t),\qquad u_t = z^\top h_t,
    \qquad W = U V^\top + g J \text{ (low rank) or free (full rank)}.$$

    - `m`: `(N, n_in)` input vectors; `z`: `(N, n_out)` readout vectors;
    - `W`: `(N, N)` recurrent matrix of a full-rank agent, else `None`;
    - `U`, `V`: `(N, r)` factors of a low-rank agent, else `None`;
    - `J`: `(N, N)` fixed random connectivity of a low-rank agent with `g > 0`, else `None`;
    - `G`: `(d, d)` Gram matrix of the columns of $[m\;z\;U\;V]$ of a linear low-rank agent in the overlap
      representation (spec §7; :mod:`loopdyn.agents` `gram_*`), the vectors then `None`;
    - `extra`: further parameters of an agent part of its own (e.g. the gates of a GRU), a dict of
      `(N, width)` arrays by name (the agent declares them: `Agent.extra_parameters`), else `None`. They are
      trained as one unit (`"extra"` in `trainable`) and stored as `extra_<name>`.

    A pytree: `None` fields are empty subtrees, so `jax.tree.map`, `vmap` and optax see only the
    arrays that exist. Leading batch axes (runs, checkpoints) are allowed on every field.
    """

    m: jax.Array | None = None
    z: jax.Array | None = None
    W: jax.Array | None = None
    U: jax.Array | None = None
    V: jax.Array | None = None
    J: jax.Array | None = None
    G: jax.Array | None = None
    extra: dict[str, jax.Array] | None = None

    def present(self) -> dict[str, jax.Array]:
        """The arrays, by name: the fields that hold one, and each `extra` parameter as `extra_<name>`."""
        out = {k: v for k, v in self._asdict().items() if v is not None and k != "extra"}
        out.update({f"{EXTRA}{k}": v for k, v in (self.extra or {}).items()})
        return out

    @classmethod
    def of(cls, arrays: dict) -> "AgentParams":
        """The inverse of :meth:`present`: `extra_<name>` entries gathered into `extra`."""
        extra = {k[len(EXTRA):]: v for k, v in arrays.items() if k.startswith(EXTRA)}
        return cls(**{k: v for k, v in arrays.items() if not k.startswith(EXTRA)}, extra=extra or None)


EXTRA = "extra_"
"""Prefix of an agent's further parameters among the arrays of :meth:`AgentParams.present` and in a store."""


def partition(params: AgentParams, trainable) -> tuple[AgentParams, AgentParams]:
    """`(trained, frozen)`: two `AgentParams` holding the named fields and the others (`None` elsewhere)."""
    names = set(trainable)
    trained = AgentParams(**{k: (v if k in names else None) for k, v in params._asdict().items()})
    frozen = AgentParams(**{k: (None if k in names else v) for k, v in params._asdict().items()})
    return trained, frozen


def combine(*parts: AgentParams) -> AgentParams:
    """Merge the non-`None` fields of several `AgentParams` (the inverse of :func:`partition`)."""
    out = {}
    for name in AgentParams._fields:
        vals = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        out[name] = vals[0] if vals else None
    return AgentParams(**out)
