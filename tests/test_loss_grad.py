"""Episode losses against a direct NumPy simulation, and gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.agents import AgentParams, AgentSpec, combine, connectivity, init_params, partition
from loopdyn.plants import double_integrator
from loopdyn.tasks import Regulation
from _helpers import closed_loop

F64 = jnp.float64


def numpy_episode(W, m, z, x0, T, alpha=1.0, phi=lambda a: a):
    """Reference simulation in column-vector form, one initial state at a time."""
    A = np.array([[1.0, 1.0], [0.0, 1.0]])
    B = np.array([0.0, 1.0])
    xs, us = [], []
    for x in x0:
        h = np.zeros(W.shape[0])
        traj_x, traj_u = [], []
        for _ in range(T):
            u = z @ h
            traj_x.append(x.copy())
            traj_u.append(u)
            x = A @ x + B * u
            h = (1 - alpha) * h + alpha * phi(W @ h + m * x[0])
        xs.append(traj_x)
        us.append(traj_u)
    return np.array(xs), np.array(us)  # (batch, T, 2), (batch, T)


@pytest.mark.parametrize("activation,alpha", [("linear", 1.0), ("tanh", 1.0), ("linear", 0.5)])
def test_losses_match_numpy(activation, alpha):
    rank = 1 if activation == "linear" else 0
    spec = AgentSpec(N=20, rank=rank, activation=activation, alpha=alpha, init="lowrank", trainable=("z",))
    p = init_params(spec, jax.random.PRNGKey(0), g=0.5, dtype=F64)
    p = p._replace(z=p.z * 10)
    x0 = np.random.default_rng(0).uniform(-2, 2, (5, 2))
    T, beta = 25, 0.3
    W = np.asarray(connectivity(spec, p, 0.5))
    xs_np, us_np = numpy_episode(W, np.asarray(p.m[:, 0]), np.asarray(p.z[:, 0]), x0, T, alpha,
                                 np.tanh if activation == "tanh" else (lambda a: a))
    xs, us = closed_loop(spec, double_integrator(), p, jnp.asarray(x0), T, g=0.5)
    for conv in ("mean", "sum"):
        task = Regulation(2, T=T, loss=conv)
        got = float(task.train_loss(xs, us, beta))
        if conv == "mean":
            want = np.mean(xs_np**2) + beta * np.mean(np.sum(us_np**2, axis=1))
        else:
            want = sum(np.mean(xs_np[:, t] ** 2) + beta * np.sum(us_np[:, t] ** 2) for t in range(T))
        np.testing.assert_allclose(got, want, rtol=1e-10)
    for metric in ("mean_xv", "sum_t"):
        task = Regulation(2, T=T, test_loss=metric)
        per_t = np.mean(np.sum(xs_np**2, axis=2), axis=0)
        want = per_t.mean() if metric == "mean_xv" else per_t.sum()
        np.testing.assert_allclose(float(task.test_metric(xs)), want, rtol=1e-10)


def test_static_gain_policy_loss():
    """A rank-1 agent whose readout ignores the hidden state gives u = 0: the loss is the free plant's."""
    spec = AgentSpec(N=10, rank=1)
    p = init_params(spec, jax.random.PRNGKey(0), dtype=F64)
    p = p._replace(z=jnp.zeros_like(p.z))
    x0 = jnp.array([[1.0, -1.0], [0.5, 0.25]], F64)
    xs, _ = closed_loop(spec, double_integrator(), p, x0, 10)
    t = np.arange(10)
    pos = np.asarray(x0)[:, :1] + np.outer(np.asarray(x0)[:, 1], t)
    want = np.mean(np.stack([pos.T, np.broadcast_to(np.asarray(x0)[:, 1], (10, 2))], -1) ** 2)
    np.testing.assert_allclose(float(Regulation(2, T=10).train_loss(xs, xs[..., :1] * 0, 0.0)), want, rtol=1e-12)


@pytest.mark.parametrize("activation,rank,trainable", [("linear", 1, ("z", "U", "V")), ("tanh", 0, ("m", "W", "z")),
                                                       ("relu", 2, ("m", "U", "V", "z"))])
def test_gradient_matches_finite_differences(activation, rank, trainable):
    spec = AgentSpec(N=15, rank=rank, activation=activation, init="lowrank", trainable=trainable)
    p = init_params(spec, jax.random.PRNGKey(2), g=0.3, dtype=F64)
    p = jax.tree.map(lambda v: v * 3, p)
    x0 = jax.random.uniform(jax.random.PRNGKey(1), (8, 2), F64, -1, 1)
    task = Regulation(2, T=20, loss="sum")
    trained, frozen = partition(p, trainable)

    def loss(tr):
        xs, us = closed_loop(spec, double_integrator(), combine(AgentParams(**tr), frozen), x0, 20, g=0.3)
        return task.train_loss(xs, us, 0.01)

    tr = trained.present()
    grad = jax.grad(loss)(tr)
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in tr.items()}
        eps = 1e-6
        plus = loss({k: tr[k] + eps * d[k] for k in tr})
        minus = loss({k: tr[k] - eps * d[k] for k in tr})
        fd = (plus - minus) / (2 * eps)
        an = sum(jnp.vdot(grad[k], d[k]) for k in tr)
        np.testing.assert_allclose(float(an), float(fd), rtol=1e-6)
