"""`loopdyn analyze` and `loopdyn figures stages`: the Jacobian of the joint map, the analyses written back
into a store, and the figures (spec §4.1-4.5, §5 Figs 3-5)."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import loopdyn
from _helpers import closed_loop
from loopdyn.agents import AgentParams, AgentSpec, connectivity, init_params, make_core
from loopdyn.analysis import VARIABLES as GENERIC_VARIABLES
from loopdyn.analysis import closed_loop_trajectory
from loopdyn.experiments.stages import VARIABLES as STAGES_VARIABLES
from loopdyn.plants import double_integrator, integrator
from loopdyn.system import activation_slope, jacobian_at_origin, jacobian_spectra, joint_jacobian, joint_matrix, joint_step

VARIABLES = {**GENERIC_VARIABLES, **STAGES_VARIABLES}

F64 = jnp.float64


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ------------------------------------------------------------------------------------------ Jacobian
def _agent(activation, alpha, rank, g, N=12, seed=0):
    spec = AgentSpec(N=N, rank=rank, activation=activation, alpha=alpha, init="rnn" if rank == 0 else "lowrank",
                     trainable=("m", "W", "z") if rank == 0 else ("z", "U", "V"), random=bool(rank and g))
    params = init_params(spec, jax.random.PRNGKey(seed), g=g, dtype=F64)
    # Large enough weights that the Jacobian is far from the identity and every block matters.
    params = params._replace(m=params.m * 30, z=params.z * 30)
    return spec, params


def _reference_step(spec, plant, params, g):
    """One closed-loop step written out: u = readout(h); x', y' = plant.step; h' = update(h, y')."""
    core = make_core(spec, params, g)
    readout, update = core.readout, core.update
    k = plant.n_states

    def F(s):
        x, h = s[None, :k], s[None, k:]
        u = readout(h)
        x1, y1 = plant.step(x, u)
        return jnp.concatenate([x1[0], update(h, y1)[0]])

    return F


CASES = [("tanh", 1.0, 0, 0.5), ("tanh", 0.3, 0, 0.5), ("tanh", 1.0, 2, 0.6), ("relu", 1.0, 0, 0.5),
         ("relu", 0.25, 2, 0.6), ("linear", 0.5, 0, 0.8)]


@pytest.mark.parametrize("activation,alpha,rank,g", CASES)
def test_jacobian_at_origin_is_jacfwd_of_the_joint_map(activation, alpha, rank, g):
    spec, params = _agent(activation, alpha, rank, g)
    plant = double_integrator()
    W = connectivity(spec, params, g)
    F = _reference_step(spec, plant, params, g)
    zero = jnp.zeros(plant.n_states + spec.N, F64)
    exact = jax.jacfwd(F)(zero)
    # JAX's slope of relu at exactly 0 is 0; tanh and linear have slope 1 there.
    jax_slope = 0.0 if activation == "relu" else 1.0
    np.testing.assert_allclose(jacobian_at_origin(plant.A, plant.B, plant.C, params.m, W, params.z, alpha, jax_slope),
                               exact, atol=1e-13)
    np.testing.assert_allclose(joint_jacobian(spec, plant, params, zero, g), exact, atol=1e-13)
    # The default slope phi'(0) is the mean of the Jacobians at +-eps*xi: exact for the piecewise-linear
    # relu (1[a > 0] + 1[-a > 0] = 1), to O(eps^2) for tanh.
    xi = jax.random.normal(jax.random.PRNGKey(7), zero.shape, F64)
    eps = 1e-4
    sym = 0.5 * (jax.jacfwd(F)(eps * xi) + jax.jacfwd(F)(-eps * xi))
    J = jacobian_at_origin(plant.A, plant.B, plant.C, params.m, W, params.z, alpha, activation_slope(activation))
    if activation == "tanh":
        np.testing.assert_allclose(J, sym, rtol=1e-5, atol=1e-9)
    else:
        np.testing.assert_allclose(J, sym, atol=1e-12)
    if activation != "relu":
        np.testing.assert_allclose(J, exact, atol=1e-13)


def test_joint_step_reproduces_closed_loop_rollout():
    spec, params = _agent("tanh", 0.4, 0, 0.5)
    plant = integrator(3, 0.5, 1, 1)
    x0 = jnp.asarray([[0.3, -0.2, 0.1]], F64)
    xs, us, hs = closed_loop(spec, plant, params, x0, 12, g=0.5, return_hidden=True)
    F = joint_step(spec, plant, params, 0.5)
    s = jnp.concatenate([x0[0], jnp.zeros(spec.N, F64)])
    for t in range(12):
        np.testing.assert_allclose(s, jnp.concatenate([xs[t, 0], hs[t, 0]]), atol=1e-14)
        s = F(s)


def test_jacobian_spectra_batched():
    spec, params = _agent("tanh", 1.0, 0, 0.5)
    plant = double_integrator()
    stacked = AgentParams(**{k: jnp.stack([v * (1 + 0.1 * i) for i in range(5)]) if k != "z" else v
                             for k, v in params.present().items()})
    lam = jacobian_spectra(spec, plant, stacked, block=2)  # z frozen: broadcast over the batch
    assert lam.shape == (5, plant.n_states + spec.N)
    for i in range(5):
        P = joint_matrix(plant.A, plant.B, plant.C, stacked.m[i], stacked.W[i], params.z, 1.0)
        np.testing.assert_allclose(np.sort_complex(lam[i]), np.sort_complex(np.linalg.eigvals(np.asarray(P))), atol=1e-12)
        assert np.all(np.diff(np.abs(lam[i])) <= 1e-12)


def test_relu_slope_is_documented():
    assert activation_slope("relu") == 0.5 and activation_slope("tanh") == 1.0
    with pytest.raises(ValueError, match="no slope"):
        activation_slope("softplus")


# ------------------------------------------------------------------------------------------ stores
@pytest.fixture(scope="module")
def stages_store(tmp_path_factory):
    # 100 epochs: the closed run (seed 9) stabilises at epoch 78 and stays stable, so the
    # beta-continuation can start at its stabilisation epoch.
    cfg = loopdyn.load_config("stages", ["epochs=100", "stages.T_values=[20]", "stages.T_epochs=10",
                                         "stages.beta_values=[0.0, 2.0]", "stages.beta_epochs=12",
                                         "stages.surrogate_steps=20"])
    path = loopdyn.train(cfg, tmp_path_factory.mktemp("stages") / "stages.zarr", progress=False)
    summary = loopdyn.analyze(path)
    return path, summary


def _analysis_arrays(path):
    """The analysis group read with xarray alone, through the link `analysis` (its record names the variables)."""
    ds = xr.open_zarr(str(path), group="analysis", consolidated=False, zarr_format=3)
    return {k: ds[k].values for k in ds.attrs["loopdyn_analysis"]["variables"]}


def _loop_stabilisation(rho):
    unstable = [e for e, r in enumerate(rho) if not r < 1]
    if not unstable:
        return 0
    return -1 if unstable[-1] == len(rho) - 1 else unstable[-1] + 1


def test_analyze_writes_the_analyses(stages_store):
    path, summary = stages_store
    ds = loopdyn.open_run(path)
    expected = {"stage1_end", "stage2_end", "stabilisation_epoch", "dominant_eigenvalue", "lambda3", "lambda3_approx",
                "modulus_sq_approx", "effective_discrepancy", "gradient_angle", "stage1_log_loss_theory",
                "stage1_log_loss_sim", "sigma_zm_traj", "surrogate_dominant", "effective_train_loss", "effective_eigenvalues"}
    assert expected <= set(ds.variables)
    for name in expected:
        assert ds[name].dims == VARIABLES[name][0]
        assert ds[name].attrs["description"]
    modes = [str(m) for m in ds["phase"].values]
    phase_epochs = {label: cfg["epochs"] for label, cfg in ds.attrs["phases"]}
    for r, mode in enumerate(modes):
        n = phase_epochs[mode]
        assert int(ds.stage2_end[r]) == _loop_stabilisation(ds.spectral_radius.values[r, :n])
        assert int(ds.stabilisation_epoch[r]) == int(ds.stage2_end[r])
    closed = modes.index("closed")
    assert float(ds.sigma_zm[closed, 0]) > 0  # the experiment's seed starts with sigma_zm > 0: all three stages
    s1, s2 = int(ds.stage1_end[closed]), int(ds.stage2_end[closed])
    assert 0 < s1 < s2
    lam = ds.eigenvalues.values[closed]
    assert np.all(np.abs(lam[s1 - 1, :2].imag) < 1e-9) and abs(lam[s1, 0].imag) > 1e-6  # real pair -> complex pair
    assert np.nanmax(ds.effective_discrepancy.values) < 1e-8
    # the stored approximations are the formulas of spec §4.4 applied to the stored overlaps
    zm, zu, vm, vu = (ds[k].values[closed] for k in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu"))
    l3 = vu + vm * zu / (vu**2 - 2 * vu - zm + 1)
    np.testing.assert_allclose(ds.lambda3_approx.values[closed, :100], l3, rtol=1e-12)
    np.testing.assert_allclose(ds.modulus_sq_approx.values[closed, :100], (2 * vu - zm + 1) - (vu + 2) * l3 + l3**2, rtol=1e-12)
    stage2 = slice(s1, s2)
    assert np.max(np.abs(ds.lambda3_approx.values[closed, stage2] - ds.lambda3.values[closed, stage2].real)) < 5e-3
    assert np.all(ds.gradient_angle.values[closed, stage2] > 120)  # short- and long-term gradients conflict
    # Fig 3d: the geometric sum 1/2 (r^101 - 1)/(r - 1), r = 1 + |sigma| for sigma < 0
    s = ds.stage1_sigma.values
    i = int(np.argmin(np.abs(s + 0.1)))
    r = 1 + abs(s[i])
    assert ds.stage1_log_loss_theory.values[i] == pytest.approx(np.log(0.5 * (r**101 - 1) / (r - 1)), rel=1e-12)
    # Fig 3e: over sets sigma_zm exactly at epoch 0
    np.testing.assert_allclose(ds.sigma_zm_traj.values[:, 0], np.linspace(-0.2, 0.2, 10), atol=1e-12)
    # Fig 4d: every path starts at the closed run's dominant eigenvalue of epoch T_start_epoch = 10
    np.testing.assert_allclose(ds.surrogate_dominant.values[closed, :, 0], ds.dominant_eigenvalue.values[closed, 10], atol=1e-12)
    # Fig 5d: the effective model sees the full model's initial states, so epoch 0 (same overlaps) agrees exactly
    for r in [i for i, m in enumerate(modes) if m == "beta-continuation"]:
        assert ds.effective_train_loss.values[r, 0] == pytest.approx(ds.train_loss.values[r, 0], rel=1e-10)
        n = phase_epochs["beta-continuation"]
        assert np.all(np.isfinite(ds.effective_train_loss.values[r, :n])) and np.all(np.isnan(ds.effective_train_loss.values[r, n:]))
        # the exact overlap dynamics (spec §7.4) reproduce the full model to round-off, epoch by epoch
        np.testing.assert_allclose(ds.exact_train_loss.values[r, :n], ds.train_loss.values[r, :n], rtol=1e-10)
        full_sigma = np.stack([ds[k].values[r, :n] for k in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu")], -1)
        np.testing.assert_allclose(ds.exact_sigma.values[r, :n], full_sigma, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ds.exact_gram.values[r, :n, 0, 0], ds.sigma_mm.values[r, :n], rtol=1e-12)
    for needle in ("stages", "effective cubic", "stage-1 theory", "surrogate", "T-continuation", "effective model",
                   "exact overlap dynamics never departs"):
        assert needle in summary
    # xarray alone (no loopdyn) reads the analysis; the training arrays are untouched by it
    assert _analysis_arrays(path)["stage2_end"].shape == (ds.sizes["run"],)
    raw = xr.open_zarr(str(path), consolidated=False, zarr_format=3)
    assert "stage2_end" not in raw


def test_analyze_is_idempotent(stages_store):
    path, _ = stages_store
    before = _analysis_arrays(path)
    old_group = os.readlink(path / "analysis")
    loopdyn.analyze(path)
    after = _analysis_arrays(path)
    assert not (path / old_group).exists()  # replaced, not accumulated
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def test_draw_writes_png_and_pdf(stages_store, tmp_path):
    path, _ = stages_store
    paths = loopdyn.figures("stages", path, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"fig_3.png", "fig_3.pdf", "fig_4.png", "fig_4.pdf", "fig_5.png", "fig_5.pdf"} <= names
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
    from _helpers import small_text, text_overlaps  # issue #21.7: no overlapping text, readable in print

    for name, fig in loopdyn.experiments.get("stages").figures(loopdyn.open_run(path)).items():
        assert text_overlaps(fig) == [] and small_text(fig) == [], name


def test_trajectory_panel_data_is_the_closed_loop_rollout(stages_store):
    path, _ = stages_store
    ds = loopdyn.open_run(path)
    params = AgentParams(**{k: np.asarray(ds[k].values[0, 40] if "checkpoint" in ds[k].dims else ds[k].values[0], np.float64)
                            for k in ("m", "z", "U", "V")})
    # the full N-dimensional joint matrix, powered: an independent computation of the same trajectory
    plant = double_integrator()
    P = np.asarray(joint_matrix(plant.A, plant.B, plant.C, params.m, params.U @ params.V.T, params.z))
    s = np.concatenate([[1.0, -1.0], np.zeros(params.m.shape[0])])
    want = []
    for _ in range(60):
        want.append(s[:2])
        s = P @ s
    np.testing.assert_allclose(closed_loop_trajectory(ds, 0, 40, 60), np.array(want), rtol=1e-9, atol=1e-10)


def test_draw_needs_analysis(stages_store, tmp_path):
    path, _ = stages_store
    copy = tmp_path / "copy.zarr"
    shutil.copytree(path, copy)
    shutil.rmtree(copy / "analysis")  # copied as a directory (copytree follows the link)
    with pytest.raises(loopdyn.StoreError, match="loopdyn analyze"):
        loopdyn.figures("stages", copy, tmp_path / "figs")


TANH = """
name = "tiny-tanh"
epochs = 12
seeds = [0]
[task]
T = 10
batch = 8
x0_range = 1.0
loss = "sum"
beta = 0.005
test_batch = 4
test_loss = "sum_t"
[agent]
N = 10
rank = 0
activation = "tanh"
g = 0.1
init = "rnn"
trainable = ["m", "W", "z"]
[record]
chunk = 6
"""


def test_analyze_tanh_store_jacobian_spectra(tmp_path):
    cfg_path = tmp_path / "tanh.toml"
    cfg_path.write_text(TANH)
    path = loopdyn.train(loopdyn.load_config(cfg_path), tmp_path / "tanh.zarr", progress=False)
    summary = loopdyn.analyze(path)
    assert "phi'(0) = tanh: 1" in summary
    ds = loopdyn.open_run(path)
    plant = double_integrator()
    lam = ds.jacobian_eigenvalues.values[0]
    assert lam.shape == (12, 12)
    for c in range(12):
        m, W, z = (np.asarray(ds[k].values[0, c], np.float64) for k in ("m", "W", "z"))
        P = np.asarray(joint_matrix(plant.A, plant.B, plant.C, jnp.asarray(m), jnp.asarray(W), jnp.asarray(z), 1.0))
        np.testing.assert_allclose(np.sort_complex(lam[c]), np.sort_complex(np.linalg.eigvals(P)), atol=1e-10)
    np.testing.assert_allclose(ds.jacobian_spectral_radius.values[0], np.max(np.abs(lam), axis=-1))
    assert int(ds.stage1_end[0]) >= -1 and int(ds.stage2_end[0]) >= -1
    assert "dominant_eigenvalue" not in ds  # no spectra of P for a nonlinear agent


def test_effective_model_epoch_keys_equal_split_key():
    from loopdyn.theory import train_effective_model

    s0 = np.array([-0.04, -0.06, 0.13, 0.11])
    key = jax.random.PRNGKey(3)
    kw = dict(epochs=15, T=20, batch=16, beta=0.5)
    a = train_effective_model(s0, key=key, **kw)
    b = train_effective_model(s0, epoch_keys=jax.random.split(key, 15), **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    with pytest.raises(ValueError, match="exactly one"):
        train_effective_model(s0, **kw)
