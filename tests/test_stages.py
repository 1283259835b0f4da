"""Stage detection (spec §4.1, §8 row 5) on synthetic spectra and gain paths with known transitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loopdyn.agents import AgentSpec, init_params
from loopdyn.analysis import (
    Stages,
    detect_stages_gains,
    detect_stages_linear,
    dominant_pair,
    stabilisation_epoch,
    third_eigenvalue,
)
from loopdyn.system import joint_matrix, spectrum
from loopdyn.plants import double_integrator


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _reference_stabilisation(rho):
    """The loop of `theory[2]`: last unstable epoch + 1, or -1 if the final epoch is unstable."""
    unstable = [e for e, r in enumerate(rho) if not r < 1]
    if not unstable:
        return 0
    return -1 if unstable[-1] == len(rho) - 1 else unstable[-1] + 1


def test_stabilisation_epoch_examples():
    assert stabilisation_epoch([1.2, 0.9, 1.1, 0.95, 0.9]) == 3
    assert stabilisation_epoch([0.5, 0.6]) == 0
    assert stabilisation_epoch([0.5, 1.0]) == -1  # rho = 1 is not stable
    assert stabilisation_epoch([1.2, np.nan, 0.9]) == 2  # a NaN epoch counts as unstable
    assert isinstance(stabilisation_epoch([1.2, 0.9]), int)


def test_stabilisation_epoch_batched_matches_loop():
    rng = np.random.default_rng(0)
    rho = 1 + 0.02 * rng.standard_normal((3, 4, 60)) - np.linspace(0, 0.05, 60)
    rho[0, :2, -1] = 1.01  # two runs end unstable
    got = stabilisation_epoch(rho)
    assert got.shape == (3, 4)
    expected = np.array([[_reference_stabilisation(r) for r in row] for row in rho])
    np.testing.assert_array_equal(got, expected)
    assert (got == -1).any() and (got > 0).any()


def _padded(lams, n=102, noise=1e-9, seed=0):
    """A stored-looking spectrum: the given eigenvalues plus a numerically noisy zero cluster."""
    rng = np.random.default_rng(seed)
    zeros = noise * (rng.standard_normal(n - len(lams)) + 1j * rng.standard_normal(n - len(lams)))
    lam = np.concatenate([np.asarray(lams, complex), zeros])
    return lam[np.lexsort((-lam.imag, -np.abs(lam)))]


def test_dominant_pair_and_third_eigenvalue():
    stage1 = _padded([1.09, 0.91, 0.05])
    np.testing.assert_allclose(dominant_pair(stage1), [1.09, 0.91])
    np.testing.assert_allclose(third_eigenvalue(stage1), 0.05)
    # late stage 3: the real lambda_3 has outgrown the complex pair in modulus
    stage3 = _padded([0.72, 0.43 + 0.5j, 0.43 - 0.5j])
    assert abs(stage3[0] - 0.72) < 1e-12
    np.testing.assert_allclose(dominant_pair(stage3), [0.43 + 0.5j, 0.43 - 0.5j])
    np.testing.assert_allclose(third_eigenvalue(stage3), 0.72)
    both = np.stack([stage1, stage3])
    np.testing.assert_allclose(third_eigenvalue(both), [0.05, 0.72])


def _synthetic_run(s1, s2, n=200, start_complex=False, stabilise=True, dip=None):
    """Spectra per epoch: real pair before s1, complex unstable pair until s2, then stable with a
    growing lambda_3 that ends larger in modulus than the pair."""
    spectra = []
    for e in range(n):
        if e < s1 and not start_complex:
            a = 0.02 * (s1 - e) / s1 + 1e-3
            lams = [1 + np.sqrt(a), 1 - np.sqrt(a), 0.05]
        elif e < s2 or not stabilise:
            r = 0.995 if e == dip else 1.01
            lams = [r * np.exp(0.16j), r * np.exp(-0.16j), -0.07]
        else:
            f = (e - s2) / (n - s2)
            r = 0.98 - 0.3 * f
            lams = [r * np.exp((0.16 + 0.7 * f) * 1j), r * np.exp(-(0.16 + 0.7 * f) * 1j), 0.75 * f]
        spectra.append(_padded(lams, n=12, seed=e))
    return np.stack(spectra)


def test_detect_stages_linear_synthetic():
    run = _synthetic_run(11, 40, dip=25)
    st = detect_stages_linear(run)
    assert (st.stage1_end, st.stage2_end) == (11, 40)
    assert st.spans(200) == {1: (0, 11), 2: (11, 40), 3: (40, 200)}

    batch = np.stack([
        run,
        _synthetic_run(11, 40, start_complex=True),  # sigma_zm(0) < 0: no stage 1
        _synthetic_run(11, 40, stabilise=False),  # no stage 3
    ])
    st = detect_stages_linear(batch)
    np.testing.assert_array_equal(st.stage1_end, [11, 0, 11])
    np.testing.assert_array_equal(st.stage2_end, [40, 40, -1])
    assert Stages(0, 40).spans(200) == {2: (0, 40), 3: (40, 200)}
    assert Stages(11, -1).spans(200) == {1: (0, 11), 2: (11, 200)}


def test_detect_stages_linear_never_complex():
    rho = np.concatenate([np.linspace(1.2, 1.01, 30), np.linspace(0.99, 0.9, 20)])
    spectra = np.stack([_padded([r, 0.5, 0.1], n=6) for r in rho])
    st = detect_stages_linear(spectra)
    assert (st.stage1_end, st.stage2_end) == (30, 30)  # stage 1 capped at stabilisation
    assert detect_stages_linear(spectra[:30]) == Stages(-1, -1)


def test_detect_stages_linear_on_full_joint_spectra():
    """Networks with sigma_zm = over crossing zero: stage 1 ends at the first negative sigma_zm."""
    plant = double_integrator()
    spec = AgentSpec(N=100, rank=1, init="lowrank")
    over = np.concatenate([np.linspace(0.03, 0.003, 10), np.linspace(-0.003, -0.03, 10)])

    @jax.jit
    @jax.vmap
    def joint(s):
        p = init_params(spec, jax.random.PRNGKey(3), over=s, dtype=jnp.float64)
        return joint_matrix(plant.A, plant.B, plant.C, p.m, p.U @ p.V.T, p.z)

    spectra = spectrum(joint(jnp.asarray(over)))
    st = detect_stages_linear(spectra)
    assert st.stage1_end == 10 and st.stage2_end == -1


def _gain_path(n=1000, zigzag=2e-4):
    """Modelled on the reference nonlinear run (spec §5 Fig 2): transient to the origin by epoch 5,
    k1 down along k2 = 0 until 24, zig-zag down in k2 until the diagonal is crossed at 110, then
    convergence to (-0.365, -1.003)."""
    e = np.arange(n, dtype=float)
    k1, k2 = np.zeros(n), np.zeros(n)
    t = e <= 5
    k1[t], k2[t] = -0.0021 * (1 - e[t] / 5), 0.084 * (1 - e[t] / 5)
    t = (e > 5) & (e <= 24)
    k1[t] = -0.0203 * (e[t] - 5) / 19
    k2[t] = 1e-5 * np.sin(e[t])
    t = (e > 24) & (e <= 110)
    k1[t] = -0.0203 - 0.0019 * (e[t] - 24) / 86
    k2[t] = k1[t] * (e[t] - 24) / 85.5  # crosses k2 = k1 between epochs 109 and 110
    wiggle = zigzag * (-1.0) ** e[t]
    k1[t] += wiggle
    k2[t] += wiggle
    t = e > 110
    f = 1 - np.exp(-(e[t] - 110) / 100)
    k1[t] = -0.0222 + (-0.365 + 0.0222) * f
    k2[t] = -0.0245 + (-1.003 + 0.0245) * f
    return k1, k2


def test_detect_stages_gains_reference_like_path():
    k1, k2 = _gain_path()
    for tol in (0.2, 1.0, 5.0):
        st = detect_stages_gains(k1, k2, tol=tol)
        assert st.stage2_end == 110
        assert abs(st.stage1_end - 24) <= 1, (tol, st)


def test_detect_stages_gains_batched_and_edge_cases():
    k1, k2 = _gain_path()
    # starts on the plateau: k1 rises from -0.2 to -0.03, then k2 goes down past the diagonal
    e = np.arange(300.0)
    p1 = np.where(e < 50, -0.2 + 0.17 * e / 50, -0.03)
    p2 = np.where(e < 50, 0.0, -0.001 * (e - 50))  # crosses k2 = k1 = -0.03 after epoch 80
    st = detect_stages_gains(np.stack([k1[:300], p1]), np.stack([k2[:300], p2]))
    np.testing.assert_array_equal(st.stage2_end, [110, 81])
    assert st.stage1_end[1] == 0
    assert abs(st.stage1_end[0] - 24) <= 1
    # still moving along the axis at the end of the record
    st = detect_stages_gains(k1[:20], k2[:20])
    assert st == Stages(-1, -1)
    with pytest.raises(ValueError):
        detect_stages_gains(k1[:3], k2[:3])
