"""Closed-loop episodes: the agent's action drives the plant whose observation feeds back.

Timing (spec §3.2, §4.1): `h_0 = 0` so `u_0 = z^T h_0 = 0`; then for t >= 0,
`x_{t+1} = A x_t + B u_t + w_t`, `y_{t+1} = C x_{t+1}`, `h_{t+1} = update(h_t, y_{t+1})`,
`u_{t+1} = z^T h_{t+1}` -- exactly `s_{t+1} = P s_t` for a linear agent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..agents import make_core


def closed_loop(spec, plant, params, x0, T: int, *, g=0.0, noise=None, key=None, return_hidden=False):
    """Simulate `T` steps from `x0` (`(batch, k)`).

    **Returns:** `xs (T, batch, k)` = x_0..x_{T-1}, `us (T, batch, n_out)` = u_0..u_{T-1}, and,
    with `return_hidden`, `hs (T, batch, d)` = h_0..h_{T-1} (reduced coordinates for reduced agents).
    Process noise is drawn only when `key` is given.
    """
    readout, update = make_core(spec, params, g)
    h0 = jnp.zeros((x0.shape[0], spec.hidden_dim), x0.dtype)
    keys = jax.random.split(key, T) if key is not None else None

    def step(carry, k_t):
        x, h = carry
        u = readout(h)
        x1, y1 = plant.step(x, u, k_t, noise)
        return (x1, update(h, y1)), ((x, u, h) if return_hidden else (x, u))

    _, out = lax.scan(step, (x0, h0), keys, length=T)
    return out
