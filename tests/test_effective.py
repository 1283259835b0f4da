"""The effective cubic of spec §4.2/§4.4 against eigenvalues of the full N = 100 joint matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.agents import AgentSpec, init_params
from loopdyn.system import (
    characteristic_cubic,
    cubic_roots,
    dominant_modulus_sq_approx,
    effective_matrix,
    effective_spectrum_discrepancy,
    joint_matrix,
    lambda3_perturbative,
    overlaps,
    spectrum,
)
from loopdyn.plants import double_integrator


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _random_sigma(rng, n, scale=(0.3, 0.5, 0.5, 0.5)):
    return rng.uniform(-1, 1, (n, 4)) * np.asarray(scale)


def test_cubic_coefficients_equal_characteristic_polynomial_of_P_eff():
    rng = np.random.default_rng(0)
    for s in _random_sigma(rng, 20):
        P = np.asarray(effective_matrix(*s))
        np.testing.assert_allclose(np.poly(P), np.append(characteristic_cubic(*s), 0.0), atol=1e-12)


def test_characteristic_cubic_follows_input_library():
    s = (0.1, 0.2, 0.3, 0.4)
    assert isinstance(characteristic_cubic(*np.array(s)), np.ndarray)
    assert isinstance(characteristic_cubic(*jnp.array(s)), jax.Array)
    g = jax.grad(lambda x: characteristic_cubic(*x)[3])(jnp.array(s))
    np.testing.assert_allclose(g, [s[3], -s[2], -s[1], s[0] - 1])  # d/dsigma of svu*szm - svu - svm*szu


def test_cubic_roots_match_np_roots_batched():
    rng = np.random.default_rng(1)
    coeffs = characteristic_cubic(*_random_sigma(rng, 30).T)
    roots = cubic_roots(coeffs.reshape(5, 6, 4))
    assert roots.shape == (5, 6, 3)
    assert np.all(np.diff(np.abs(roots), axis=-1) <= 1e-12)  # decreasing modulus
    for c, r in zip(coeffs, roots.reshape(30, 3)):
        np.testing.assert_allclose(np.sort_complex(r), np.sort_complex(np.roots(c)), atol=1e-12)


_init_rank1 = jax.jit(lambda key: init_params(AgentSpec(N=100, rank=1, init="lowrank"), key, dtype=jnp.float64))


def _rank1_network(key, scale):
    # scale the vectors so the overlaps are O(0.1-1) and the three roots are well separated from 0
    return jax.tree.map(lambda v: np.asarray(v) * scale, _init_rank1(key))


@pytest.mark.parametrize("seed", range(4))
def test_cubic_roots_equal_nonzero_eigenvalues_of_full_joint_matrix(seed):
    plant = double_integrator()
    p = _rank1_network(jax.random.PRNGKey(seed), scale=1.0 + seed)
    ov = {k: float(v) for k, v in overlaps(p.m, p.z, p.U, p.V).items()}
    sig = np.array([ov[k] for k in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu")])
    P = np.block([[plant.A, plant.B @ p.z.T], [p.m @ plant.C @ plant.A, p.U @ p.V.T]])
    np.testing.assert_allclose(joint_matrix(plant.A, plant.B, plant.C, p.m, p.U @ p.V.T, p.z), P)
    full = spectrum(P)
    assert full.shape == (102,)
    roots = cubic_roots(characteristic_cubic(*sig))
    assert np.min(np.abs(roots)) > 1e-2
    np.testing.assert_allclose(full[:3], roots, atol=1e-8)
    assert np.max(np.abs(full[3:])) < 1e-6  # the N - 1 zeros
    eff = spectrum(effective_matrix(*sig))
    np.testing.assert_allclose(eff[:3], roots, atol=1e-10)
    assert float(effective_spectrum_discrepancy(ov, full)) < 1e-8
    assert float(effective_spectrum_discrepancy(sig, full)) < 1e-8


def test_effective_spectrum_discrepancy_measures_a_perturbation():
    rng = np.random.default_rng(2)
    sig = _random_sigma(rng, 6)
    eig = spectrum(effective_matrix(*sig.T))  # (6, 4), exact
    assert np.all(effective_spectrum_discrepancy(sig, eig) < 1e-10)
    bumped = eig.copy()
    bumped[:, 2] += 1e-3  # move one root
    np.testing.assert_allclose(effective_spectrum_discrepancy(sig, bumped), 1e-3, rtol=1e-6)
    assert effective_spectrum_discrepancy(sig.reshape(2, 3, 4), eig.reshape(2, 3, 4)).shape == (2, 3)


def _exact_third_root(s):
    roots = cubic_roots(characteristic_cubic(*s))
    return roots[np.argmin(np.abs(roots - s[3]))]


def test_lambda3_perturbative_is_first_order_in_svm_szu():
    szm, svu = -0.0276, -0.0704  # epoch-10 overlaps of the reference run (spec §5 Fig 3c)
    errors = []
    for eps in (4e-3, 2e-3, 1e-3):
        s = np.array([szm, eps, 1.0, svu])  # sigma_vm * sigma_zu = eps
        err = abs(lambda3_perturbative(*s) - _exact_third_root(s))
        errors.append(err)
        assert err < 2 * eps**2
    # second-order error: halving eps divides it by ~4
    assert 3.5 < errors[0] / errors[1] < 4.5 and 3.5 < errors[1] / errors[2] < 4.5
    # the reference epoch-10 spectrum: lambda_3 = -0.0698 for sigma_vm sigma_zu = 7.7e-4
    s = np.array([szm, np.sqrt(7.7e-4), np.sqrt(7.7e-4), svu])
    assert abs(lambda3_perturbative(*s) - (-0.0698)) < 3e-4


def test_dominant_modulus_sq_approx_tracks_exact_modulus():
    szm, svu = -0.0276, -0.0704
    s = np.array([szm, np.sqrt(7.7e-4), np.sqrt(7.7e-4), svu])
    exact = np.abs(cubic_roots(characteristic_cubic(*s))[0]) ** 2
    np.testing.assert_allclose(dominant_modulus_sq_approx(*s), exact, atol=1e-5)  # O(eps^2) error
    np.testing.assert_allclose(np.sqrt(exact), 1.0130, atol=2e-4)  # |lambda_1| at epoch 10
    # along a stage-2-like path the error stays far below the distance to the unit circle
    rng = np.random.default_rng(3)
    sig = np.column_stack([rng.uniform(-0.05, -0.01, 50), rng.uniform(-0.1, 0.1, (50, 3))])
    roots = cubic_roots(characteristic_cubic(*sig.T))
    exact = np.abs(roots[:, 0]) ** 2
    assert np.all(np.abs(roots[:, 0].imag) > 0)
    assert np.max(np.abs(dominant_modulus_sq_approx(*sig.T) - exact)) < 1e-3
