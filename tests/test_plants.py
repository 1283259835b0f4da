import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.plants import double_integrator, integrator, point_mass_2d


def test_double_integrator_matrices():
    p = double_integrator()
    np.testing.assert_array_equal(p.A, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(p.B, [[0], [1]])
    np.testing.assert_array_equal(p.C, [[1, 0]])
    assert (p.C @ p.B).item() == 0  # y_{t+1} does not depend on u_t


@pytest.mark.parametrize("k,m,c,dt", [(3, 1, 1, 0.1), (4, 2, 2, 0.5), (2, 3, 1, 1.0)])
def test_integrator_structure(k, m, c, dt):
    p = integrator(k, dt, m, c)
    # A = I + dt * superdiagonal; B drives the last min(k, m) states with gain dt; C observes the first c.
    for i in range(k):
        for j in range(k):
            assert p.A[i, j] == (1.0 if i == j else dt if j == i + 1 else 0.0)
    nz = np.argwhere(p.B != 0)
    expected = [(k - i, m - i) for i in range(1, min(k, m) + 1)]
    assert sorted(map(tuple, nz)) == sorted(expected)
    assert np.all(p.B[p.B != 0] == dt)
    np.testing.assert_array_equal(p.C, np.eye(c, k))


def test_integrator_is_discretised_chain():
    # k-th order integrator with dt: position after one step from unit velocity moves by dt.
    p = integrator(3, 0.1, 1, 1)
    x = jnp.array([[0.0, 1.0, 0.0]])
    x1, y1 = p.step(x, jnp.zeros((1, 1)))
    np.testing.assert_allclose(np.asarray(x1), [[0.1, 1.0, 0.0]])
    np.testing.assert_allclose(np.asarray(y1), [[0.1]])


def test_point_mass_is_two_double_integrators():
    p = point_mass_2d(dt=0.1)
    x = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    u = jnp.array([[0.5, -0.5]])
    x1, y1 = p.step(x, u)
    np.testing.assert_allclose(np.asarray(x1), [[1.2, 2.05, 3.4, 3.95]], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y1), [[1.2, 3.4]], rtol=1e-6)


def test_process_noise_std_scales_with_sqrt_dt():
    p = integrator(2, 0.25, 1, 1, noise=2.0)
    x = jnp.zeros((200_000, 2))
    x1, _ = p.step(x, jnp.zeros((200_000, 1)), jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.std(np.asarray(x1), axis=0), 2.0 * 0.5, rtol=0.01)


def test_clamp_after_observation():
    p = integrator(2, 1.0, 1, 1, clamp=1.0)
    x1, y1 = p.step(jnp.array([[0.9, 0.9]]), jnp.zeros((1, 1)))
    np.testing.assert_allclose(np.asarray(y1), [[1.8]])  # observation taken before the clip
    np.testing.assert_allclose(np.asarray(x1), [[1.0, 0.9]])
