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


def test_reduced_strategy_float32_gradients_as_accurate_as_the_full_path(tmp_path):
    """At parameters late in training (stable closed loop, small gradient), float32 gradients of the reduced
    span{m, U} strategy and of the N-dimensional path, each against float64: the reduced one (stepped in
    float64) is at least as accurate."""
    import dataclasses

    import loopdyn

    cfg = loopdyn.load_config("linear-rank1", ["epochs=300", "record.chunk=100", "dtype='float64'"])
    ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "r.zarr", progress=False))
    spec = AgentSpec(N=100, rank=1)
    full = dataclasses.replace(spec, random=True)  # same parameters, no J: stepped neuron by neuron
    assert spec.reduced and not full.reduced
    task = Regulation(2, T=50, loss="mean")
    errors = {"reduced": [], "full": []}
    for epoch in (10, 150, 299):
        p64 = AgentParams(m=ds.m.values[0], **{k: ds[k].values[0, epoch] for k in ("z", "U", "V")})
        x0 = jax.random.uniform(jax.random.PRNGKey(epoch), (100, 2), F64, -2, 2)
        for name, s in (("reduced", spec), ("full", full)):
            def loss(p, x):
                xs, us = closed_loop(s, double_integrator(), p, x, 50)
                return task.train_loss(xs, us, 0.0)

            g64 = jax.grad(loss)(jax.tree.map(jnp.asarray, p64), x0)
            g32 = jax.grad(loss)(jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p64), x0.astype(jnp.float32))
            for k in ("z", "U", "V"):
                a, b = np.asarray(getattr(g64, k)), np.asarray(getattr(g32, k), np.float64)
                errors[name].append(np.linalg.norm(a - b) / np.linalg.norm(a))
    assert max(errors["reduced"]) < 1e-5 and max(errors["full"]) < 1e-5, errors
    assert np.median(errors["reduced"]) <= np.median(errors["full"]), errors


@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.3])
def test_clip_conventions(eps):
    """clip_eps = 0 is optax's clip_by_global_norm; clip_eps > 0 scales by min(1, c / (|g| + eps)) (PyTorch's
    clip_grad_norm_ with eps = 1e-6)."""
    from loopdyn.optim import init_optimizer, make_optimizer

    g = {"a": jnp.asarray([3.0, -4.0], F64), "b": jnp.asarray([[12.0]], F64)}  # |g| = 13
    p = jax.tree.map(jnp.zeros_like, g)
    opt = make_optimizer("sgd", clip_eps=eps)
    for clip in (1.0, 20.0, 0.0):
        updates, _ = opt.update(g, init_optimizer(opt, p, 0.5, clip), p)
        scale = 1.0 if clip == 0 else min(1.0, clip / (13.0 + eps))
        for k in g:
            np.testing.assert_allclose(updates[k], -0.5 * scale * np.asarray(g[k]), rtol=1e-15)



def test_input_drive_is_the_matrix_product():
    """`input_drive` (broadcast products for few inputs, custom JVP) against `y @ m.T`: value, reverse- and
    forward-mode derivatives in float64, for a fused size and one above `SMALL_INPUT`."""
    from loopdyn.agents._rnn import SMALL_INPUT, input_drive

    def dot(y, m):
        return y @ m.T

    @jax.jit
    def both(y, m, w):
        out = []
        for f in (input_drive, dot):
            def scalar(y, m):
                return jnp.sum(w * jnp.tanh(f(y, m)))
            out.append((f(y, m), jax.grad(scalar, (0, 1))(y, m), jax.jacfwd(f, (0, 1))(y, m)))
        return out

    for c in (2, SMALL_INPUT + 1):  # c = 1 (the double integrator) is held by the losses and gradients above
        ky, km, kw = jax.random.split(jax.random.PRNGKey(c), 3)
        got, want = both(jax.random.normal(ky, (6, c), F64), jax.random.normal(km, (7, c), F64),
                         jax.random.normal(kw, (6, 7), F64))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
