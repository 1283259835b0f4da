"""Nonlinear loops in the analysis (issue #19): the Newton fixed point, P(theta) there and the basin recorded per
checkpoint, checked against a long simulation, jacfwd of the joint map and a direct count of the basin; the
nonlinear-stages experiment end to end on a tiny protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from loopdyn.agents import AgentParams, make_core
from loopdyn.analysis import checkpoint_params, store_runs
from loopdyn.analysis._analyze import BASIN_TOLERANCE
from loopdyn.experiments import get
from loopdyn.system import basin_test_set, fixed_points, joint_jacobian, origin_residuals, rollout, spectrum

from test_nonlinear_plants import LoadedPlant, _tanh_state_feedback

F64 = jnp.float64
TINY = ["agent.N=6", "task.T=8", "task.batch=8", "task.test_batch=8", "epochs=4", "record.chunk=2",
        "record.checkpoint=every"]


@pytest.fixture(scope="module")
def nl_store(tmp_path_factory):
    cfg = loopdyn.load_config("nonlinear-stages", TINY, seeds="0,1")
    path = loopdyn.train(cfg, tmp_path_factory.mktemp("nl") / "nl.zarr", progress=False)
    summary = loopdyn.analyze(path)
    return path, summary


def test_batched_fixed_points_are_where_long_simulations_settle():
    spec, params = _tanh_state_feedback([-0.3, -1.0])
    batch = AgentParams(m=params.m, W=params.W, z=jnp.stack([params.z, 1.5 * params.z, 0 * params.z]))
    assert np.all(origin_residuals(spec, LoadedPlant(), batch) > 0.1)  # the load moves the equilibrium
    fp = fixed_points(spec, LoadedPlant(), batch)
    assert list(np.asarray(fp.status)[:2]) == [0, 0] and int(fp.status[2]) > 0  # no control: no fixed point, a reason
    for i in (1,):
        q = AgentParams(m=params.m, W=params.W, z=batch.z[i])
        traj = rollout(make_core(spec, q), LoadedPlant(), jnp.zeros((1, 2), F64), 600, emit=("x_next", "h_next"))
        s = np.concatenate([traj.x_next[-1, 0], traj.h_next[-1, 0]])
        np.testing.assert_allclose(np.asarray(fp.s[i]), s, atol=1e-9)
        np.testing.assert_allclose(np.asarray(fp.P[i]), np.asarray(joint_jacobian(spec, LoadedPlant(), q, s)), atol=1e-9)
    assert np.all(np.isnan(np.asarray(fp.s[2])))


def test_recorded_fixed_point_spectrum_and_basin_of_a_nonlinear_store(nl_store):
    path, summary = nl_store
    ds = loopdyn.open_run(path)
    assert list(dict.fromkeys(ds.phase.values)) == ["closed-linear", "open-linear", "closed-tanh", "open-tanh"]
    runs = store_runs(ds)
    checked_basin = 0
    for run in (runs[0], runs[5]):  # a closed linear run, an open tanh student
        k, n = run.plant.n_states, run.plant.n_states + run.spec.hidden_dim
        for c in (0, 3):
            q = checkpoint_params(ds, run, c)
            s = ds.fixed_point.values[run.index, c, :n]
            assert int(ds.fixed_point_status.values[run.index, c]) == 0
            F = loopdyn.system.joint_step(run.spec, run.plant, q, run.g)
            np.testing.assert_allclose(np.asarray(F(jnp.asarray(s))), s, atol=1e-10)  # a fixed point of the map
            lam = spectrum(np.asarray(joint_jacobian(run.spec, run.plant, q, jnp.asarray(s), run.g)))
            stored = ds.jacobian_eigenvalues.values[run.index, c, :n]
            np.testing.assert_allclose(np.sort_complex(stored), np.sort_complex(lam), atol=1e-8)
            rho = float(ds.jacobian_spectral_radius.values[run.index, c])
            assert rho == pytest.approx(np.max(np.abs(lam)), rel=1e-9)
            if c == 0:
                continue
            # a long simulation from a small perturbation of s*: back to it when rho < 1, away when rho > 1
            core = make_core(run.spec, q, run.g)
            d = 1e-6 * np.ones(n)
            traj = rollout(core, run.plant, jnp.asarray(s[None, :k] + d[:k]), 400, h0=jnp.asarray(s[None, k:] + d[k:]),
                           emit=("x_next",))
            dev = float(np.max(np.abs(np.asarray(traj.x_next[-1, 0]) - s[:k])))
            assert (dev < 1e-7) if rho < 0.98 else (dev > 1e-6 if rho > 1.02 else True), (rho, dev)
            b = ds.basin.values[run.index, c]
            if np.isfinite(b):  # the basin by its definition: 4 T steps from the test states, |x| <= tol at the end
                x0 = basin_test_set(k, dtype=F64)
                T = 4 * run.cfg.task.T
                xs = np.asarray(rollout(core, run.plant, x0, T, emit=("x_next",)).x_next)[T - max(1, T // 10):]
                with np.errstate(invalid="ignore"):
                    ok = np.all(np.abs(xs) <= BASIN_TOLERANCE, axis=(0, 2))
                assert b == pytest.approx(np.mean(ok))
                checked_basin += 1
    assert checked_basin >= 1
    assert "nonlinear-stages: inverted_pendulum, linear agent, closed loop: three stages in" in summary


def test_nonlinear_stages_answer_and_figure_come_from_the_store(nl_store, tmp_path):
    path, _ = nl_store
    ds = loopdyn.open_run(path)
    exp = get("nonlinear-stages")
    caption = exp.captions(ds)["fig_nonlinear_stages"]
    # the numbers in the sentence are the store's: the closed tanh runs' final test losses, median
    r = np.nonzero(ds.phase.values == "closed-tanh")[0]
    med = np.median(ds.test_loss.values[r, -1])
    assert f"tanh agent, closed loop: three stages in" in caption and f"final test loss {med:.3g}" in caption
    stab = ds.stabilisation_epoch.values[r]
    assert (f"rho(P) < 1 from never" in caption.split("tanh agent")[1]) == bool(np.all(stab < 0))
    figs = exp.figures(ds)
    title = figs["fig_nonlinear_stages"]._suptitle.get_text().replace("\n", " ")
    k = int(np.sum((ds.stage1_end.values[r] > 0) & (ds.stage2_end.values[r] > ds.stage1_end.values[r])))
    assert f"tanh agent: three stages in {k}/{len(r)} seeds" in title
    from _helpers import small_text, text_overlaps  # issue #21.7

    assert text_overlaps(figs["fig_nonlinear_stages"]) == [] and small_text(figs["fig_nonlinear_stages"]) == []
    # the open-tanh students imitated the closed-tanh runs (teacher.phase = 2), not the linear ones
    assert ds.training_mode.values[r[0] + 2] == "open_loop_noise"


def test_leaving_the_valid_range_is_a_recorded_fraction_not_an_error(nl_store):
    from loopdyn import config as cfg_mod

    pend = cfg_mod.from_dict({"plant": {"kind": "inverted_pendulum"}}, source="x").plant
    arm = cfg_mod.from_dict({"plant": {"kind": "two_link_arm"}}, source="x").plant
    x = jnp.asarray([[3.0, 0.0], [-3.2, 0.0], [np.pi, 5.0]], F64)
    np.testing.assert_array_equal(np.asarray(pend.in_range(x)), [True, False, True])
    # the elbow (rest pi/2) folded past pi, or straightened past 0; the shoulder (rest pi/4) below -pi/2
    xa = jnp.asarray([[0, 0, 0, 0], [0, 1.7, 0, 0], [0, -1.6, 0, 0], [-2.4, 0, 0, 0]], F64)
    np.testing.assert_array_equal(np.asarray(arm.in_range(xa)), [True, False, False, False])
    ds = loopdyn.open_run(nl_store[0])
    runs = store_runs(ds)
    for run in runs[:1] + runs[4:5]:
        q = checkpoint_params(ds, run, ds.sizes["checkpoint"] - 1)
        x0 = run.task.test_set(jax.random.PRNGKey(run.cfg.task.test_seed), F64)
        xs = np.asarray(rollout(make_core(run.spec, q, run.g), run.plant, x0, run.task.T, emit=("x_next",)).x_next)
        left = np.any(np.abs(xs[..., 0]) > np.pi, axis=0)  # the pendulum's angle past the bottom
        assert float(ds.range_exits.values[run.index]) == pytest.approx(np.mean(left))


def test_arm_tracking_errors_are_the_hands_displacement_minus_the_reference():
    cfg = loopdyn.load_config("arm-tracking", ["task.T=5", "task.batch=3"])
    plant, task = cfg.plant, cfg.task.bind(cfg.plant)
    x = np.random.default_rng(0).uniform(-0.3, 0.3, (5, 3, 4))
    ep = task.sample_episode(jax.random.PRNGKey(0), 3, F64)

    def hand(q1, q2):  # forward kinematics, numpy
        return np.stack([0.30 * np.cos(q1) + 0.33 * np.cos(q1 + q2), 0.30 * np.sin(q1) + 0.33 * np.sin(q1 + q2)], -1)

    rest = (np.pi / 4, np.pi / 2)
    want = hand(x[..., 0] + rest[0], x[..., 1] + rest[1]) - hand(*rest) - np.asarray(ep.exo)
    err = task.errors(loopdyn.system.Trajectory(x_next=jnp.asarray(x)), ep)
    np.testing.assert_allclose(np.asarray(err), want, atol=1e-12)


def test_a_store_of_reduced_linear_agents_alone_keeps_every_eigenvalue(tmp_path):
    """A rank-1 linear agent seeing several observations (the cart-pole's full state): J(0) in closed form has
    an eigenvalue per neuron, more than the reduced core's coordinates; a store with no other agent must
    still hold them all, and its spectral radius is that of jacfwd's Jacobian of the joint map."""
    cfg = loopdyn.load_config("nonlinear-stages-cartpole", TINY[:-1] + [
        "record.checkpoint='every:2'", "plant.observed='state'", "nonlinear_stages_cartpole.agents=['linear']"],
        seeds="0")
    path = loopdyn.train(cfg, tmp_path / "cp.zarr", progress=False)
    loopdyn.analyze(path)
    ds = loopdyn.open_run(path)
    run = store_runs(ds)[0]
    q = checkpoint_params(ds, run, ds.sizes["checkpoint"] - 1)
    s = jnp.zeros((run.plant.n_states + run.spec.hidden_dim,), F64)
    lam = spectrum(np.asarray(joint_jacobian(run.spec, run.plant, q, s, run.g)))
    assert float(ds.jacobian_spectral_radius.values[run.index, -1]) == pytest.approx(np.max(np.abs(lam)), rel=1e-9)
    stored = ds.jacobian_eigenvalues.values[run.index, -1]
    assert np.sum(np.abs(stored) > 1e-9) == np.sum(np.abs(lam) > 1e-9)


def test_a_store_stopped_before_its_phases_with_other_parameters_checks_and_resumes_identically(nl_store, tmp_path):
    """nonlinear-stages stores U, V for its rank-1 phases and W for its tanh phases; stopped in phase 1, W has no
    chunk yet: the store is not damaged, `check` passes and the resume equals the uninterrupted store."""
    cfg = loopdyn.load_config("nonlinear-stages", TINY, seeds="0,1")
    path = tmp_path / "stopped.zarr"
    loopdyn.train(cfg, path, progress=False, stop_after=6)
    info = loopdyn.check_store(path)
    assert (info["phase"], info["epochs_done"], info["complete"]) == (1, 2, False)
    loopdyn.resume(path, progress=False)
    ref, got = loopdyn.open_run(nl_store[0]), loopdyn.open_run(path)
    for name in ("train_loss", "test_loss", "W", "U", "V", "z"):
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
