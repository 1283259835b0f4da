r"""A user's controller: an RNN with two populations that obey Dale's law (loopdyn `RNN` subclass).

The first `excitatory` fraction of the N units are excitatory, the rest inhibitory: every outgoing weight
of a unit has that unit's sign. The trained matrix `W` is free; the network uses

$$W_{\rm eff} = |W|\,\mathrm{diag}(s),\qquad s_j = +1 \text{ (excitatory) or } -1 \text{ (inhibitory)},$$

$h' = (1-\alpha) h + \alpha\,\phi(W_{\rm eff} h + m y)$, $u = z^\top h$. The subclass changes how the network
is initialised and stepped (`initial_parameters`, `core`) and keeps the RNN's parameters (`m, W, z`), so the
store, the checkpoints and the analyses take it as they are; loopdyn obtains its joint matrix (and J(0)) by
automatic differentiation of its core.

    [agent]
    kind = "examples.dale_rnn:DaleRNN"
    N = 40
    rank = 0
    excitatory = 0.8
"""

import jax
import jax.numpy as jnp

from loopdyn.agents import ACTIVATIONS, RNN, Core
from loopdyn.config import InvalidParameter, param


class DaleRNN(RNN):
    """A full-rank RNN whose units are excitatory or inhibitory (module docstring)."""

    excitatory: float = param(0.8, doc="fraction of excitatory units (the first ones)",
                              check=("in (0, 1)", lambda v: 0 < v < 1))

    def check(self, cfg) -> None:
        super().check(cfg)
        if self.rank != 0:
            raise InvalidParameter("agent.rank", f"= {self.rank}; a Dale RNN has a full W (rank = 0)")

    def signs(self, dtype=jnp.float32):
        n_e = round(self.excitatory * self.N)
        return jnp.where(jnp.arange(self.N) < n_e, 1.0, -1.0).astype(dtype)

    def initial_parameters(self, spec, key, *, g=0.0, over=float("nan"), dtype=jnp.float32):
        params = super().initial_parameters(spec, key, g=g, over=over, dtype=dtype)
        # balanced at the start: inhibitory weights scaled so that every row sums to about 0
        n_e = round(self.excitatory * self.N)
        scale = jnp.where(jnp.arange(self.N) < n_e, 1.0, n_e / max(self.N - n_e, 1)).astype(dtype)
        return params._replace(W=jnp.abs(params.W) * scale[None, :])

    def effective_W(self, W):
        return jnp.abs(W) * self.signs(W.dtype)[None, :]

    def core(self, spec, params, g=0.0):
        phi, a, m, z = ACTIVATIONS[spec.activation], spec.alpha, params.m, params.z
        W = self.effective_W(params.W)

        def update(h, y):
            return (1 - a) * h + a * phi(h @ W.T + y @ m.T)

        return Core(spec.N, update, lambda h: h @ z)
