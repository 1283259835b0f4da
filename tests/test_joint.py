"""Simulated closed-loop trajectories against powers of the joint matrix (spec §4.1-4.2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.agents import AgentSpec, connectivity, effective_core, init_params
from loopdyn.system import OVERLAP_NAMES, effective_matrix, joint_matrix, overlaps, reduced_joint_matrix, rollout, spectrum
from loopdyn.plants import double_integrator, integrator, point_mass_2d
from _helpers import closed_loop

F64 = jnp.float64


def _simulate_vs_powers(spec, plant, g, T=30):
    params = init_params(spec, jax.random.PRNGKey(3), g=g, dtype=F64)
    if spec.rank == 0 and g == 0:
        params = params._replace(W=jax.random.normal(jax.random.PRNGKey(4), params.W.shape, F64) * 0.9 / np.sqrt(spec.N))
    # Make the readout large enough that the control actually matters.
    params = params._replace(z=params.z * 20)
    x0 = jax.random.uniform(jax.random.PRNGKey(5), (7, plant.n_states), F64, -1, 1)
    xs, us, hs = closed_loop(spec, plant, params, x0, T, g=g, return_hidden=True)
    W = connectivity(spec, params, g)
    P = np.asarray(joint_matrix(plant.A, plant.B, plant.C, params.m, W, params.z, spec.alpha))
    s = np.concatenate([np.asarray(x0), np.zeros((7, spec.N))], axis=1).T
    k = plant.n_states
    for t in range(T):
        np.testing.assert_allclose(np.asarray(xs[t]).T, s[:k], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(us[t]).T, np.asarray(params.z).T @ s[k:], rtol=1e-9, atol=1e-9)
        s = P @ s
    return params, P


@pytest.mark.parametrize("alpha", [1.0, 0.3])
@pytest.mark.parametrize("activation_rank_g", [(0, 0.0), (0, 0.8), (2, 0.0), (2, 0.5)])
def test_trajectories_equal_powers_of_P(alpha, activation_rank_g):
    rank, g = activation_rank_g
    spec = AgentSpec(N=30, rank=rank, alpha=alpha, init="lowrank" if rank else "rnn", random=bool(rank and g),
                     trainable=("z",))
    _simulate_vs_powers(spec, double_integrator(), g)


@pytest.mark.parametrize("alpha", [1.0, 0.25])
def test_multi_input_plants_match_P(alpha):
    spec = AgentSpec(N=25, rank=3, alpha=alpha, n_in=2, n_out=2, trainable=("z",))
    _simulate_vs_powers(spec, point_mass_2d(dt=0.1), 0.0)
    spec = AgentSpec(N=25, rank=2, alpha=alpha, n_in=2, n_out=2, trainable=("z",))
    _simulate_vs_powers(spec, integrator(3, 0.2, 2, 2), 0.0)


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_reduced_matrix_spectrum_is_full_spectrum(alpha):
    spec = AgentSpec(N=40, rank=2, alpha=alpha, trainable=("z",))
    plant = integrator(3, 0.5, 1, 1)
    params, P = _simulate_vs_powers(spec, plant, 0.0)
    P_red = reduced_joint_matrix(plant.A, plant.B, plant.C, params.m, params.U, params.V, params.z, alpha)
    lam_full = spectrum(P)
    lam_red = spectrum(P_red)
    extra = np.full(spec.N - spec.n_in - spec.rank, 1 - alpha)
    np.testing.assert_allclose(np.sort_complex(lam_full), np.sort_complex(np.concatenate([lam_red, extra])), atol=1e-6)


def test_rank1_spectrum_is_effective_spectrum_plus_zeros():
    spec = AgentSpec(N=100, rank=1)
    plant = double_integrator()
    for seed in range(5):
        p = init_params(spec, jax.random.PRNGKey(seed), dtype=F64)
        p = p._replace(z=p.z * 5, V=p.V * 2)  # away from the near-degenerate initial spectrum
        ov = overlaps(p.m, p.z, p.U, p.V)
        P_eff = effective_matrix(**ov)
        P = joint_matrix(plant.A, plant.B, plant.C, p.m, connectivity(spec, p), p.z)
        lam = spectrum(P)
        expected = np.concatenate([spectrum(P_eff), np.zeros(spec.N - 2)])
        np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(expected), atol=1e-6)
        # the reduced joint matrix (orthonormal basis of span{m, u}) is similar to P_eff
        P_red = reduced_joint_matrix(plant.A, plant.B, plant.C, p.m, p.U, p.V, p.z)
        np.testing.assert_allclose(np.sort_complex(spectrum(P_red)), np.sort_complex(spectrum(P_eff)), atol=1e-10)
        # and the effective core steps exactly P_eff
        x0 = jnp.array([[0.7, -0.3], [1.0, 2.0]], F64)
        traj = rollout(effective_core(jnp.stack([ov[k] for k in OVERLAP_NAMES])), plant, x0, 12, emit=("x", "h"))
        s = np.concatenate([np.asarray(x0), np.zeros((2, 2))], axis=1).T
        for t in range(12):
            np.testing.assert_allclose(np.concatenate([traj.x[t], traj.h[t]], axis=1).T, s, atol=1e-12)
            s = np.asarray(P_eff) @ s


def test_over_sets_sigma_zm_exactly():
    spec = AgentSpec(N=100, rank=1)
    for over in (-0.2, 0.03, 0.3):
        p = init_params(spec, jax.random.PRNGKey(1), over=over, dtype=F64)
        m, z = np.asarray(p.m[:, 0]), np.asarray(p.z[:, 0])
        assert abs(z @ m - over) < 1e-12
        perp = z - (z @ m) / (m @ m) * m
        np.testing.assert_allclose(np.linalg.norm(perp), 0.1 * abs(over) / np.linalg.norm(m), rtol=1e-10)


def test_spectrum_of_a_large_stack_is_each_matrix_s_spectrum():
    """A stack large enough to be split over threads gives each matrix's own eigenvalues (as LAPACK gives them
    for that matrix alone), NaN for a non-finite matrix, sorted by decreasing modulus."""
    A = np.random.default_rng(0).normal(size=(3, 20, 40, 40)) / np.sqrt(40)
    A[1, 7, 0, 0] = np.inf
    lam = spectrum(A)
    assert lam.shape == (3, 20, 40) and np.all(np.isnan(lam[1, 7]))
    for i, j in [(0, 0), (2, 19), (1, 6)]:
        want = np.linalg.eigvals(A[i, j])
        np.testing.assert_allclose(np.sort_complex(lam[i, j]), np.sort_complex(want), atol=1e-12)
        assert np.all(np.diff(np.abs(lam[i, j])) <= 1e-12)
