r"""The rollout: the one place where a plant and an agent are stepped together.

Every simulation in loopdyn goes through :func:`rollout` — the training losses of every mode, the test
metric, the effective gains, the Jacobian of the joint map, the stage theories' effective models, the
gain landscape and the figures' trajectories. It steps a batch of joint states $(x_t, h_t)$ for $T$ steps
(one `lax.scan`), the agent being any :class:`loopdyn.agents.Core` (neurons, the reduced span{m, U}
coordinates, the overlaps of an effective model, or a static gain).

Two timings (Ger & Barak 2025; spec §3.2, §3.4, §4.1):

- `"delayed"` (regulation): the agent is not called at $t = 0$; $u_t = z^\top h_t$ (so $u_0 = 0$ for
  $h_0 = 0$), $x_{t+1} = A x_t + B u_t + w_t$, $y_{t+1} = C x_{t+1}$, $h_{t+1} = \mathrm{update}(h_t, y_{t+1})$.
  For a linear agent this is exactly $s_{t+1} = P s_t$ with the joint matrix $P$ of
  :func:`loopdyn.system.joint_matrix`.
- `"immediate"` (tracking, open-loop drives): the agent is called first, $h_{t+1} = \mathrm{update}(h_t,
  y_t)$, $u_t = z^\top h_{t+1}$, then $x_{t+1} = A x_t + B u_t + w_t$.

The agent's input at a call is the plant's observation (`observe="output"`: $y = Cx$; `"state"`: $x$;
`"none"`), followed by the exogenous input of that call when `exo` is given (a reference, white
noise, or a teacher's observations). Without a plant (`plant=None`) the agent is driven by `exo` alone.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class Trajectory(NamedTuple):
    """What :func:`rollout` emits, each with leading axes `(T, batch)`; fields not asked for are `None`.

    - `x`: plant state $x_t$ at the start of step $t$ (`x[0] = x0`); `x_next`: $x_{t+1}$;
    - `u`: control $u_t$ applied in step $t$;
    - `h`: agent state $h_t$ at the start of step $t$ (core coordinates); `h_next`: after the step;
    - `inputs`: the agent's input in step $t$;
    - `log_scale`: with `renormalise=True`, the joint state of step $t$ is `exp(log_scale[t])` times
      the emitted `x[t]`, `h[t]` (which have unit joint norm).
    """

    x: jax.Array | None = None
    x_next: jax.Array | None = None
    u: jax.Array | None = None
    h: jax.Array | None = None
    h_next: jax.Array | None = None
    inputs: jax.Array | None = None
    log_scale: jax.Array | None = None


EMITTABLE = ("x", "x_next", "u", "h", "h_next", "inputs")


def rollout(core, plant, x0=None, T: int | None = None, *, h0=None, exo=None, observe: str = "output",
            timing: str = "delayed", key=None, noise=None, renormalise: bool = False,
            emit=("x", "u"), action_noise=None, process_noise=None) -> Trajectory:
    r"""Step plant and agent together for `T` steps (module docstring).

    **Arguments:**
    - `core`: a :class:`loopdyn.agents.Core`; `plant`: a :class:`loopdyn.plants.Plant`, or `None`
      for an agent driven by `exo` alone;
    - `x0`: initial plant states `(batch, k)`; `T`: number of steps (default: `exo.shape[0]`);
    - `h0`: initial agent states `(batch, d)` (default 0);
    - `exo`: exogenous inputs `(T, batch, n_exo)`, appended to the observation at each agent call;
    - `observe`: `"output"`, `"state"` or `"none"`; `timing`: `"delayed"` or `"immediate"`;
    - `key`: PRNG key of the process noise (none drawn without it); `noise`: its std (traced ok;
      default the plant's);
    - `renormalise`: keep the joint state at unit norm and carry its log-scale (linear, noise- and
      clamp-free loops only), so that diverging closed loops stay finite in any dtype;
    - `emit`: names of the :class:`Trajectory` fields to return;
    - `action_noise`: `(T, batch, m)` added to the agent's action at each step, $u_t = z^\top h + \xi_t$
      (a learning rule's exploration, :mod:`loopdyn.training`); the emitted `u` is the applied action;
    - `process_noise`: `(T, batch, k)` standard-normal draws of the process noise, used instead of drawing them
      from `key` (a sub-batch of episodes that keeps the draws of its full batch).

    **Returns:** a :class:`Trajectory`.
    """
    if timing not in ("delayed", "immediate"):
        raise ValueError(f"timing = {timing!r}; choose 'delayed' or 'immediate'")
    unknown = set(emit) - set(EMITTABLE)
    if unknown:
        raise ValueError(f"cannot emit {sorted(unknown)}; choose from {EMITTABLE}")
    if plant is None:
        if exo is None:
            raise ValueError("an agent without a plant needs exogenous inputs `exo`")
        observe = "none"
        x0 = jnp.zeros((exo.shape[1], 0), exo.dtype)
    if T is None:
        if exo is None:
            raise ValueError("give T or exo")
        T = exo.shape[0]
    if renormalise and (key is not None or process_noise is not None
                        or (plant is not None and (plant.clamp > 0 or not plant.linear)) or exo is not None):
        raise ValueError("renormalise needs a linear loop without noise, clamp or exogenous input")
    if core.dtype is not None:  # e.g. the reduced strategy computes in float64
        x0 = x0.astype(core.dtype)
        exo = None if exo is None else exo.astype(core.dtype)
        h0 = None if h0 is None else h0.astype(core.dtype)
    batch, dtype = x0.shape[0], x0.dtype
    h0 = jnp.zeros((batch, core.hidden_dim), dtype) if h0 is None else h0
    y0 = plant.observe(x0) if plant is not None else x0
    keys = jax.random.split(key, T) if key is not None and process_noise is None else None

    def agent_input(x, y, e):
        parts = {"output": [y], "state": [x], "none": []}[observe] + ([e] if e is not None else [])
        return jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    def advance(x, u, k):
        if plant is None:
            return x, x
        if process_noise is not None:
            return plant.step(x, u, None, noise, draws=k)
        return plant.step(x, u, k, noise)

    def explore(u, xi):
        return u if xi is None else u + xi

    def step(carry, inp):
        x, y, h, scale = carry
        e, k, xi = inp
        if timing == "immediate":
            a = agent_input(x, y, e)
            h1 = core.update(h, a)
            u = explore(core.readout(h1), xi)
            x1, y1 = advance(x, u, k)
        else:
            u = explore(core.readout(h), xi)
            x1, y1 = advance(x, u, k)
            a = agent_input(x1, y1, e)
            h1 = core.update(h, a)
        out = {"x": x, "x_next": x1, "u": u, "h": h, "h_next": h1, "inputs": a, "log_scale": scale}
        if renormalise:
            n = jnp.linalg.norm(jnp.concatenate([x1, h1], axis=-1), axis=-1, keepdims=True)
            n = jnp.where(n > 0, n, 1.0)
            x1, y1, h1, scale = x1 / n, y1 / n, h1 / n, scale + jnp.log(n[..., 0])
        wanted = set(emit) | ({"log_scale"} if renormalise else set())
        return (x1, y1, h1, scale), {name: v for name, v in out.items() if name in wanted}

    scale0 = jnp.zeros((batch,), dtype)
    if renormalise:
        n0 = jnp.linalg.norm(jnp.concatenate([x0, h0], axis=-1), axis=-1, keepdims=True)
        n0 = jnp.where(n0 > 0, n0, 1.0)
        x0, y0, h0, scale0 = x0 / n0, y0 / n0, h0 / n0, jnp.log(n0[..., 0])
    if action_noise is not None and core.dtype is not None:
        action_noise = action_noise.astype(core.dtype)
    drawn = keys if process_noise is None else process_noise
    _, out = lax.scan(step, (x0, y0, h0, scale0), (exo, drawn, action_noise), length=T)
    return Trajectory(**out)


def log_sum_sq(traj: Trajectory, *, first: int = 0, n_states: int | None = None):
    r"""$\log\sum_{t \ge \text{first}} \|x_t\|^2$ per batch element of a renormalised trajectory, without overflow.

    **Arguments:** `traj`: a :class:`Trajectory` with `x` and `log_scale` (from `renormalise=True`);
    `first`: first step in the sum; `n_states`: use only the first `n_states` coordinates of `x`.
    """
    x = traj.x if n_states is None else traj.x[..., :n_states]
    terms = 2 * traj.log_scale[first:] + jnp.log(jnp.sum(x[first:] ** 2, axis=-1))
    return jax.scipy.special.logsumexp(terms, axis=0)
