"""Stage theories (spec §4.3-4.5) against explicit simulations, closed forms, finite differences and
per-epoch Python references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.agents import AgentSpec, init_params
from loopdyn.system import characteristic_cubic, cubic_roots, effective_matrix, overlaps
from loopdyn.plants import double_integrator
from loopdyn.tasks import Regulation
from loopdyn.theory import (
    effective_episode_loss,
    geometric_sum_loss,
    gradient_angle,
    long_term_loss,
    optimise_surrogate,
    short_term_loss,
    simulated_stage1_loss,
    stage1_eigenvalues,
    surrogate_loss,
    train_effective_model,
)
from _helpers import closed_loop

# log L_th of spec §4.3 (0- is sigma = -1e-4)
REFERENCE_LOG_LOSS = {-0.5: 40.95, -0.3: 27.01, -0.1: 11.24, -0.03: 5.75, -1e-4: 3.93,
                      0.01: 20.12, 0.05: 40.77, 0.1: 55.12, 0.2: 73.88, 0.3: 87.20}
EPOCH10 = np.array([-0.0276, np.sqrt(7.7e-4), np.sqrt(7.7e-4), -0.0704])  # spec §5 Fig 3c


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _stage1_matrix(sigma, sigma_zu=0.37):
    """P_eff where the stage-1 reduction is exact: sigma_vu = 0 and sigma_vm sigma_zu = 0."""
    return np.asarray(effective_matrix(sigma, sigma_zu, 0.0, 0.0))


# ---------------------------------------------------------------------------------------- stage 1
def test_stage1_eigenvalues_are_exact_when_svu_and_product_vanish():
    for s in (-0.5, -0.03, 0.01, 0.2):
        lam = np.linalg.eigvals(_stage1_matrix(s))
        pair = stage1_eigenvalues(s)
        nonzero = lam[np.abs(lam) > 1e-6]
        np.testing.assert_allclose(np.sort_complex(nonzero), np.sort_complex(pair), atol=1e-12)
    np.testing.assert_allclose(stage1_eigenvalues(np.array([-0.04, 0.04])),
                               [[1 + 0.2j, 1 - 0.2j], [1.2, 0.8]], atol=1e-15)


def test_geometric_sum_reference_values():
    sigma = np.array(list(REFERENCE_LOG_LOSS))
    got = geometric_sum_loss(sigma, log=True)
    np.testing.assert_allclose(got, list(REFERENCE_LOG_LOSS.values()), atol=0.01)
    np.testing.assert_allclose(geometric_sum_loss(jnp.asarray(sigma), log=True), got, rtol=1e-12)
    # continuous at sigma = 0 (r -> 1: T'/2), where the closed form is 0/0
    np.testing.assert_allclose(geometric_sum_loss(np.array([0.0, 1e-30, -1e-14]), log=True), np.log(50.5), rtol=1e-9)


def test_geometric_sum_is_the_sum_over_the_exact_spectral_radius():
    for s in (-0.5, -0.1, -0.03, 0.01, 0.1, 0.3):
        r = np.max(np.abs(np.linalg.eigvals(_stage1_matrix(s)))) ** 2
        direct = 0.5 * sum(r**t for t in range(101))
        np.testing.assert_allclose(geometric_sum_loss(s), direct, rtol=1e-10)
        np.testing.assert_allclose(geometric_sum_loss(s, T_prime=7), 0.5 * sum(r**t for t in range(7)), rtol=1e-12)


def _simulate_stage1(P, steps):
    s, L = np.array([1.0, -1.0, 0.0, 0.0]), 0.0
    for _ in range(steps):
        L += 0.5 * (s[0] ** 2 + s[1] ** 2)
        s = P @ s
    return L


def test_geometric_sum_equals_simulation_where_exact():
    """With sigma_vu = sigma_vm sigma_zu = 0 and sigma_zm = -1 the plant block after t = 1 is sqrt(2)
    times a rotation, so ||x_t||^2 = r^(t-1) exactly (r = 2) and the simulated loss is a geometric sum:
    sum_{t<100} ||x_t||^2 / 2 = ||x_0||^2 / 2 + L_th(T' = 99)."""
    P = _stage1_matrix(-1.0)
    np.testing.assert_allclose(_simulate_stage1(P, 100), 1.0 + geometric_sum_loss(-1.0, T_prime=99), rtol=1e-12)


def test_geometric_sum_has_the_growth_rate_of_the_simulation():
    """For every sigma the simulated loss grows like r^T with r of the formula (per-step log slope)."""
    for s in (-0.5, -0.3, -0.1, 0.05, 0.2):
        P = _stage1_matrix(s)
        slope_sim = (np.log(_simulate_stage1(P, 400)) - np.log(_simulate_stage1(P, 200))) / 200
        slope_th = (geometric_sum_loss(s, 400, log=True) - geometric_sum_loss(s, 200, log=True)) / 200
        np.testing.assert_allclose(slope_sim, slope_th, atol=0.02 * abs(slope_th) + 1e-3)


def test_simulated_stage1_loss_matches_neuron_by_neuron_simulation():
    sigma = np.array([-0.5, -0.3, -0.03, 0.05, 0.2, 0.3])  # same shape as below: one compilation
    key = jax.random.PRNGKey(7)
    got = simulated_stage1_loss(sigma, key=key)
    plant, spec = double_integrator(), AgentSpec(N=100, rank=1, init="lowrank")
    init = jax.jit(lambda k, s: init_params(spec, k, over=s, dtype=jnp.float64))
    for s, k, g in zip(sigma, jax.random.split(key, sigma.size), got):
        p = jax.tree.map(np.asarray, init(k, s))
        assert abs(float(p.z[:, 0] @ p.m[:, 0]) - s) < 1e-12
        W = p.U @ p.V.T
        x, h, L = np.array([1.0, -1.0]), np.zeros(100), 0.0
        for _ in range(100):
            L += 0.5 * x @ x
            u = p.z[:, 0] @ h
            x = plant.A @ x + plant.B[:, 0] * u
            h = W @ h + p.m[:, 0] * (plant.C @ x)[0]
        np.testing.assert_allclose(g, L, rtol=1e-9)
    np.testing.assert_allclose(simulated_stage1_loss(sigma, key=key, log=True), np.log(got), rtol=1e-12)


def test_simulated_stage1_loss_follows_the_theory_away_from_zero():
    """Fig 3d: simulation and theory agree in log loss up to an O(1) offset (the theory sums 101
    powers of r from ||x_0||^2 = 1) and share the asymmetric V shape."""
    sigma = np.array([-0.5, -0.3, -0.1, 0.1, 0.2, 0.3])
    sim = simulated_stage1_loss(sigma, key=jax.random.PRNGKey(0), log=True)
    th = geometric_sum_loss(sigma, log=True)
    assert np.max(np.abs(sim - th)) < 2.5
    assert sim[3] > sim[2] and sim[0] > sim[2]  # steeper at +0.1 than at -0.1


# ---------------------------------------------------------------------------------------- stage 2
def test_short_term_loss_closed_form_and_three_step_definition():
    rng = np.random.default_rng(0)
    sig = rng.uniform(-0.5, 0.5, (25, 4))
    szm, szu, svm, svu = sig.T
    closed = (szm + 1) ** 2 + (szm + 3) ** 2 + (svm * szu + 2 * szm) ** 2 + (svm * szu + 3 * szm + 1) ** 2
    got = short_term_loss(sig)
    np.testing.assert_allclose(got, closed, rtol=1e-12)
    for s, g in zip(sig, got):
        P = np.asarray(effective_matrix(*s))
        x3 = [np.linalg.matrix_power(P, 3) @ np.r_[e, 0.0, 0.0] for e in np.eye(2)]
        np.testing.assert_allclose(g, sum(v[:2] @ v[:2] for v in x3), rtol=1e-12)


def test_long_term_loss_uses_the_perturbative_modulus():
    exact = np.abs(cubic_roots(characteristic_cubic(*EPOCH10))[0]) ** 2
    np.testing.assert_allclose(long_term_loss(EPOCH10, 10), exact**10, rtol=1e-4)


def test_surrogate_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    f = jax.jit(surrogate_loss, static_argnums=2)
    grad = jax.jit(jax.grad(surrogate_loss), static_argnums=2)
    for alpha, T in ((0.0, 10), (0.5, 10), (1.0, 20)):
        s = EPOCH10 + 0.01 * rng.standard_normal(4)
        g = np.asarray(grad(jnp.asarray(s), alpha, T))
        h = 1e-6
        fd = [(float(f(s + h * e, alpha, T)) - float(f(s - h * e, alpha, T))) / (2 * h) for e in np.eye(4)]
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_optimise_surrogate_matches_explicit_clipped_sgd():
    alphas, steps, lr = [0.0, 0.5, 1.0], 4, 0.05
    path = optimise_surrogate(EPOCH10, alphas, T=10, steps=steps, lr=lr)
    assert path.sigma.shape == (3, steps + 1, 4) and path.dominant.shape == (3, steps + 1)
    value_and_grad = jax.jit(jax.value_and_grad(surrogate_loss), static_argnums=2)
    for i, a in enumerate(alphas):
        s = EPOCH10.copy()
        for t in range(steps):
            np.testing.assert_allclose(path.sigma[i, t], s, rtol=1e-12, atol=1e-15)
            loss, g = value_and_grad(jnp.asarray(s), a, 10)
            np.testing.assert_allclose(path.loss[i, t], loss, rtol=1e-12)
            g = np.asarray(g)
            g = g * min(1.0, 1.0 / np.linalg.norm(g))
            s = s - lr * g
        np.testing.assert_allclose(path.sigma[i, -1], s, rtol=1e-12, atol=1e-15)
        roots = np.roots(characteristic_cubic(*s))
        np.testing.assert_allclose(path.dominant[i, -1], roots[np.lexsort((-roots.imag, -np.abs(roots)))][0])


def test_optimise_surrogate_reproduces_the_alpha_ordering_of_fig_4d():
    """Notebook variant (T = 20, 200 steps) from the epoch-10 overlaps (sigma_vm sigma_zu split evenly):
    end points (0.990, 0.242), (0.989, 0.184), (0.989, 0.150), (0.990, 0.109) for alpha = .2 .3 .35 .4."""
    path = optimise_surrogate(EPOCH10, [0.0, 0.2, 0.3, 0.35, 0.4], T=20, steps=200)
    np.testing.assert_allclose(path.dominant[:, 0], 0.99967 + 0.16396j, atol=2e-4)
    end = path.dominant[:, -1]
    assert end[0].imag > 0.3  # alpha = 0 moves up, never stabilises
    assert np.all(np.diff(end.imag) < 0)
    np.testing.assert_allclose(end[1:].real, [0.990, 0.989, 0.989, 0.990], atol=0.01)
    np.testing.assert_allclose(end[1:].imag, [0.242, 0.184, 0.150, 0.109], atol=0.01)


def test_gradient_angle_is_independent_and_near_opposite_in_stage_2():
    rng = np.random.default_rng(2)
    sig = EPOCH10 + 0.005 * rng.standard_normal((2, 3, 4))
    ang = np.asarray(gradient_angle(sig))
    assert ang.shape == (2, 3)
    h, steps = 1e-6, 1e-6 * np.eye(4)
    short, long = jax.jit(short_term_loss), jax.jit(lambda s: long_term_loss(s, 7))
    for s, a in zip(sig.reshape(-1, 4), ang.reshape(-1)):
        g0 = (np.asarray(short(s + steps)) - np.asarray(short(s - steps))) / (2 * h)  # central differences
        gi = (np.asarray(long(s + steps)) - np.asarray(long(s - steps))) / (2 * h)
        ref = np.degrees(np.arccos(g0 @ gi / np.linalg.norm(g0) / np.linalg.norm(gi)))
        np.testing.assert_allclose(a, ref, atol=1e-4)
    assert np.all(ang > 150)


# ---------------------------------------------------------------------------------------- stage 3
def _reference_effective_training(s, key, epochs, lr, clip, batch, T, beta):
    """Per-epoch Python loop with an explicit time loop and a hand-built P_eff."""
    task = Regulation(n_states=2, T=T, batch=batch, x0_range=2.0)

    def loss_fn(s, x0, beta):
        szm, szu, svm, svu = s
        x, v = x0[:, 0], x0[:, 1]
        km, ku = jnp.zeros(batch), jnp.zeros(batch)
        sq, usq = 0.0, 0.0
        for _ in range(T):
            u = szm * km + szu * ku
            sq = sq + jnp.sum(x**2 + v**2)
            usq = usq + jnp.sum(u**2)
            x, v, km, ku = x + v, v + u, x + v, svm * km + svu * ku
        return sq / (T * batch * 2) + beta * usq / batch

    losses, trail = [], [np.asarray(s)]
    s = jnp.asarray(s)
    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    for k in jax.random.split(key, epochs):
        x0 = task.sample_x0(k, batch, s.dtype)
        loss, g = value_and_grad(s, x0, beta)
        g = g * jnp.minimum(1.0, clip / jnp.linalg.norm(g))
        s = s - lr * g
        losses.append(float(loss))
        trail.append(np.asarray(s))
    return np.array(losses), np.stack(trail)


def test_train_effective_model_matches_per_epoch_reference():
    s0 = np.array([-0.03, 0.1, 0.1, 0.2])
    key = jax.random.PRNGKey(4)
    kw = dict(epochs=3, lr=0.01, clip=1.0, batch=7, T=6)
    got = train_effective_model(s0, key=key, beta=[0.0, 0.5], **kw)  # vmapped over beta
    assert got.loss.shape == (2, 3) and got.sigma.shape == (2, 4, 4) and got.eigenvalues.shape == (2, 4)
    for i, beta in enumerate((0.0, 0.5)):
        loss, trail = _reference_effective_training(s0, key, beta=beta, **kw)
        np.testing.assert_allclose(got.loss[i], loss, rtol=1e-12)
        np.testing.assert_allclose(got.sigma[i], trail, rtol=1e-12, atol=1e-15)
        lam = np.linalg.eigvals(np.asarray(effective_matrix(*trail[-1])))
        np.testing.assert_allclose(np.sort_complex(got.eigenvalues[i]), np.sort_complex(lam), atol=1e-12)
    single = train_effective_model(s0, key=key, beta=0.5, **kw)
    np.testing.assert_allclose(single.loss, got.loss[1], rtol=1e-12)


def test_effective_episode_loss_equals_full_network_loss():
    """The 4-D model reproduces the forward loss of an N = 100 network simulated in full."""
    plant = double_integrator()
    spec = AgentSpec(N=100, rank=1, init="lowrank", random=True)  # random=True: no reduced core
    task = Regulation(n_states=2, T=20, batch=9)

    @jax.jit
    def both_losses(key, x0, beta):
        p = init_params(spec, key, dtype=jnp.float64)
        p = p._replace(z=3 * p.z, U=3 * p.U, V=3 * p.V)
        ov = overlaps(p.m, p.z, p.U, p.V)
        sig = jnp.stack([ov[k] for k in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu")])
        xs, us = closed_loop(spec, plant, p, x0, 20, g=0.0)
        return effective_episode_loss(sig, x0, beta, 20), task.train_loss(xs, us, beta)

    x0 = jax.random.uniform(jax.random.PRNGKey(6), (9, 2), jnp.float64, -2, 2)
    for beta in (0.0, 2.0):
        eff, full = both_losses(jax.random.PRNGKey(5), x0, beta)
        np.testing.assert_allclose(eff, full, rtol=1e-10)
