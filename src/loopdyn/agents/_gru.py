r"""A gated recurrent unit (GRU) controller, a part written on the agent interface (`[agent] kind = "gru"`).

Column-vector maths (Cho et al. 2014, with the candidate's bias left out so that the origin is always a
fixed point of the network):

$$a = \sigma(W_a h + M_a y + b_a),\qquad r = \sigma(W_r h + M_r y + b_r),\qquad
c = \tanh\big(W (r \odot h) + m\, y\big),$$
$$h' = (1 - a) \odot h + a \odot c,\qquad u = z^\top h.$$

The RNN's names carry over (`m`, `W`, `z`); the gates' weights are the agent's further parameters
(`AgentParams.extra`: `W_a`, `W_r` `(N, N)`, `M_a`, `M_r` `(N, n_in)`, `b_a`, `b_r` `(N, 1)`), stored as
`extra_W_a`, …. At the origin the gates are $a_0 = \sigma(b_a)$, $r_0 = \sigma(b_r)$ and the network's
linearisation is

$$\frac{\partial h'}{\partial h} = \mathrm{diag}(1 - a_0) + \mathrm{diag}(a_0)\, W\, \mathrm{diag}(r_0),\qquad
\frac{\partial h'}{\partial y} = \mathrm{diag}(a_0)\, m,$$

which loopdyn obtains, with the plant's, by automatic differentiation of the loop (J(0), the analysis of
a nonlinear agent).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..config import POSITIVE, InvalidParameter, param
from ._core import Core
from ._params import AgentParams
from ._part import Agent
from ._rnn import AgentSpec

GATES = ("W_a", "W_r", "M_a", "M_r", "b_a", "b_r")


class GRU(Agent):
    """A GRU controller (module docstring)."""

    N: int = param(100, doc="number of hidden units", check=POSITIVE)
    gain: float = param(1.0, doc="initial recurrent weights W, W_a, W_r ~ N(0, gain^2 / N)", check=POSITIVE)
    gate_bias: float = param(0.0, doc="initial b_a = b_r (0: the gates start half open)")
    trainable: tuple[str, ...] = param(("m", "W", "z", "extra"), doc="trained parameters, a non-empty subset of m, W, "
                                                                     "z and extra (the gates' weights and biases)")

    @property
    def linear(self) -> bool:
        return False

    def check(self, cfg) -> None:
        bad = [t for t in self.trainable if t not in ("m", "W", "z", "extra")]
        if not self.trainable or bad:
            raise InvalidParameter("agent.trainable", f"= {list(self.trainable)!r}: choose a non-empty subset of m, W, "
                                   f"z, extra")

    def spec(self, n_in: int, n_out: int) -> AgentSpec:
        return AgentSpec(self.N, 0, "tanh", 1.0, "gru", n_in, n_out, tuple(self.trainable), False, "vectors", self)

    def extra_parameters(self, spec) -> dict[str, tuple[int, str]]:
        return {"W_a": (spec.N, "neuron_in"), "W_r": (spec.N, "neuron_in"), "M_a": (spec.n_in, "in"),
                "M_r": (spec.n_in, "in"), "b_a": (1, "one"), "b_r": (1, "one")}

    def footprint(self, n_in: int, n_out: int) -> tuple[int, int, int]:
        N = self.N
        every = N * (n_in + n_out + N) + 2 * N * (N + n_in + 1)
        sizes = {"m": N * n_in, "W": N * N, "z": N * n_out, "extra": 2 * N * (N + n_in + 1)}
        return N, every, sum(sizes.get(t, 0) for t in self.trainable)

    @property
    def dense_checkpoints(self) -> bool:
        return self.N <= 100

    def initial_parameters(self, spec, key, *, g=0.0, over=float("nan"), dtype=jnp.float32) -> AgentParams:
        """`m, z, M_a, M_r ~ U(-1/sqrt N, 1/sqrt N)`, `W, W_a, W_r ~ N(0, gain^2/N)`, `b_a = b_r = gate_bias`."""
        N, n_in, s = spec.N, spec.n_in, 1.0 / jnp.sqrt(spec.N)
        k = jax.random.split(key, 7)
        uni = lambda kk, cols: jax.random.uniform(kk, (N, cols), dtype, -s, s)  # noqa: E731
        nrm = lambda kk: jax.random.normal(kk, (N, N), dtype) * (self.gain * s)  # noqa: E731
        bias = jnp.full((N, 1), self.gate_bias, dtype)
        extra = {"W_a": nrm(k[3]), "W_r": nrm(k[4]), "M_a": uni(k[5], n_in), "M_r": uni(k[6], n_in), "b_a": bias,
                 "b_r": bias}
        return AgentParams(m=uni(k[0], n_in), z=uni(k[1], spec.n_out), W=nrm(k[2]), extra=extra)

    def core(self, spec, params, g=0.0) -> Core:
        m, W, z, x = params.m, params.W, params.z, params.extra

        def update(h, y):
            a = jax.nn.sigmoid(h @ x["W_a"].T + y @ x["M_a"].T + x["b_a"][:, 0])
            r = jax.nn.sigmoid(h @ x["W_r"].T + y @ x["M_r"].T + x["b_r"][:, 0])
            c = jnp.tanh((r * h) @ W.T + y @ m.T)
            return (1 - a) * h + a * c

        return Core(spec.N, update, lambda h: h @ z)
