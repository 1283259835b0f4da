"""Effective gains, the double-integrator stability map and LQR (spec §4.6), checked against
independent computations: eigenvalues of A + BK, Riccati value iteration, explicit loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.analysis import gain_loss_landscape, lqr_gain, stability_boundaries, stability_region
from loopdyn.system import effective_gains, gain_moments, gains_from_moments

A = np.array([[1.0, 1.0], [0.0, 1.0]])
B = np.array([[0.0], [1.0]])
GOLDEN = (1 + np.sqrt(5)) / 2


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _closed_loop_eigs(k1, k2):
    K = np.stack([np.asarray(k1), np.asarray(k2)], -1)[..., None, :]
    return np.linalg.eigvals(A + B @ K)


def test_stability_region_matches_eigenvalues_of_closed_loop():
    rng = np.random.default_rng(0)
    k1 = rng.uniform(-5, 1.5, 20000)
    k2 = rng.uniform(-5.5, 2.0, 20000)
    lam = _closed_loop_eigs(k1, k2)
    rho = np.abs(lam).max(-1)
    oscillatory = np.abs(lam.imag).max(-1) > 0
    expected = np.where(rho < 1, 2, np.where(oscillatory, 1, 0))
    # Leave out the few points within rounding of a boundary (|lambda| = 1 or a double root).
    clear = (np.abs(rho - 1) > 1e-9) & (np.abs(k2**2 + 4 * k1) > 1e-9)
    labels = stability_region(k1, k2)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels[clear], expected[clear])
    assert set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_array_equal(np.asarray(stability_region(jnp.asarray(k1), jnp.asarray(k2))), labels)


def test_stability_region_reference_points():
    # learned end point, stage-2 plateau (oscillatory), positive position gain (real), LQR gain
    k1 = np.array([-0.365, -0.021, 0.1, -1 / GOLDEN])
    k2 = np.array([-1.003, -0.016, 0.0, -GOLDEN])
    np.testing.assert_array_equal(stability_region(k1, k2), [2, 1, 0, 2])


def test_stability_boundaries_lie_on_the_unit_circle():
    b = stability_boundaries(np.linspace(-4.5, 0.6, 301))
    k1, k2 = b["complex_unit"]
    assert k1.min() >= -4 and k1.max() <= 0
    lam = _closed_loop_eigs(k1[1:-1], k2[1:-1])  # open edge: a complex pair of modulus 1
    np.testing.assert_allclose(np.abs(lam), 1.0, atol=1e-12)
    k1, k2 = b["real_unit"]
    assert np.allclose(np.min(np.abs(_closed_loop_eigs(k1, k2) - 1), -1), 0, atol=1e-7)
    k1, k2 = b["real_minus_unit"]
    assert np.allclose(np.min(np.abs(_closed_loop_eigs(k1, k2) + 1), -1), 0, atol=1e-7)
    for name in ("discriminant_upper", "discriminant_lower"):
        k1, k2 = b[name]
        lam = _closed_loop_eigs(k1, k2)
        np.testing.assert_allclose(lam[..., 0], lam[..., 1], atol=2e-7)  # double root


def test_lqr_double_integrator_golden_ratio():
    K, lam = lqr_gain(A, B, np.eye(2), 1e-8)
    np.testing.assert_allclose(K, [[-1 / GOLDEN, -GOLDEN]], atol=1e-6)
    np.testing.assert_allclose(lam, [(3 - np.sqrt(5)) / 2, 0.0], atol=1e-6)


def test_lqr_matches_riccati_value_iteration():
    Q, R = np.diag([1.0, 0.5]), np.array([[2.0]])
    P = Q.copy()
    for _ in range(5000):
        K_it = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ A + A.T @ P @ B @ K_it
    K, lam = lqr_gain(A, B, Q, R)
    np.testing.assert_allclose(K, K_it, rtol=1e-10)
    assert np.all(np.abs(lam) < 1)
    np.testing.assert_allclose(sorted(np.abs(lam)), sorted(np.abs(np.linalg.eigvals(A + B @ K))))


def _simulate_static(K, x0, T, u0_zero=True):
    xs, us = [], []
    x = x0
    for t in range(T):
        u = np.zeros((x.shape[0], 1)) if (t == 0 and u0_zero) else x @ K.T
        xs.append(x)
        us.append(u)
        x = x @ A.T + u @ B.T
    return np.stack(xs), np.stack(us)


def test_effective_gains_recovers_a_static_gain():
    rng = np.random.default_rng(1)
    K = np.array([[-0.365, -1.003]])
    xs, us = _simulate_static(K, rng.uniform(-1, 1, (10, 2)), 50)
    got = effective_gains(xs, us)
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got, K, atol=1e-12)
    # keeping t = 0 (where u = 0 by construction) biases the fit
    assert np.max(np.abs(effective_gains(xs, us, drop_first=0) - K)) > 1e-3


def test_gain_moments_batched_in_compiled_code_and_solved_on_the_host():
    rng = np.random.default_rng(2)
    Ks = np.array([[[-0.365, -1.003]], [[-0.021, -0.016]], [[0.05, 0.01]]])  # stable, oscillatory, real
    sims = [_simulate_static(K, rng.uniform(-1, 1, (10, 2)), 50) for K in Ks]
    xs, us = np.stack([s[0] for s in sims]), np.stack([s[1] for s in sims])
    gram, cross = jax.jit(jax.vmap(gain_moments))(xs, us)  # as the trainer accumulates them
    batched = gains_from_moments(gram, cross)
    assert batched.shape == (3, 1, 2)
    # against an independent fit, QR least squares on the stacked samples: the normal equations lose
    # accuracy as cond(X)^2 (the real unstable gain's trajectories grow over five orders of magnitude)
    for i in range(3):
        X = np.asarray(xs[i, 1:]).reshape(-1, 2)
        coef = np.linalg.lstsq(X, np.asarray(us[i, 1:]).reshape(-1, 1), rcond=None)[0].T
        bound = 10 * np.linalg.cond(X) ** 2 * np.finfo(np.float64).eps
        np.testing.assert_allclose(coef, Ks[i], rtol=1e-12)
        assert np.max(np.abs(batched[i] - coef) / np.abs(coef)) <= max(bound, 1e-14), (i, bound)
    # non-finite moments (a diverged run) give NaN gains, not an error
    gram = np.asarray(gram).copy()
    gram[1, 0, 0] = np.nan
    assert np.all(np.isnan(gains_from_moments(gram, cross)[1])) and np.all(np.isfinite(gains_from_moments(gram, cross)[0]))


def test_gain_loss_landscape_matches_explicit_loop():
    k1_grid = np.linspace(-1.2, 0.6, 7)
    k2_grid = np.linspace(-1.2, 0.6, 5)
    Z = np.asarray(gain_loss_landscape(k1_grid, k2_grid))
    assert Z.shape == (5, 7)
    for i, k2 in enumerate(k2_grid):
        for j, k1 in enumerate(k1_grid):
            M = A + B @ np.array([[k1, k2]])
            x, L = np.array([1.0, 1.0]), 0.0
            for _ in range(50):
                x = M @ x
                L += x @ x
            np.testing.assert_allclose(Z[i, j], np.log(L / 50), rtol=1e-10)
    assert Z.max() > 70  # the colour bar of Fig 2b reaches ~70


def test_gain_loss_landscape_deadbeat_and_float32_overflow():
    # K = (-1, -2) is dead-beat: x_1 = (2, -2), x_2 = 0, so L = 8.
    np.testing.assert_allclose(gain_loss_landscape(np.array([-1.0]), np.array([-2.0])), [[np.log(8 / 50)]])
    with jax.enable_x64(False):
        z32 = gain_loss_landscape(np.float32([1.5]), np.float32([1.5]), T=100)
    z64 = gain_loss_landscape(np.array([1.5]), np.array([1.5]), T=100)
    assert np.isfinite(z32).all() and float(z64[0, 0]) > 89  # beyond float32's exp range
    np.testing.assert_allclose(z32, z64, rtol=1e-5)
