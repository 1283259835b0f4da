"""The GRU controller, a shipped agent written on the agent interface: its step is the GRU's equations, its
gradient is exact, and it is recorded, checkpointed, resumed, reloaded and linearised at its fixed point
(J(0)) like the RNN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from loopdyn import config as cfg_mod
from loopdyn.agents import GRU, AgentParams, make_core
from loopdyn.errors import ConfigError
from loopdyn.system import rollout
from loopdyn.training import HyperParams, build_problem, init_run

F64 = jnp.float64
BASE = {"epochs": 8, "seeds": [0, 1], "dtype": "float64", "task": {"T": 12, "batch": 8, "test_batch": 4},
        "agent": {"kind": "gru", "N": 6, "gain": 0.8, "gate_bias": 0.3}, "train": {"lr": 0.01}, "record": {"chunk": 4}}


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _problem(**agent):
    cfg = cfg_mod.from_dict({**BASE, "agent": {**BASE["agent"], **agent}})
    problem = build_problem(cfg)
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), F64) for k in cfg_mod.HYPERPARAMETERS})
    state, consts = init_run(problem, 3, hyper)
    return cfg, problem, loopdyn.agents.combine(state.params, consts.frozen), consts


def test_the_gru_step_is_the_grus_equations():
    _, problem, p, _ = _problem()
    x = {k: np.asarray(v) for k, v in p.extra.items()}
    m, W, z = (np.asarray(getattr(p, k)) for k in ("m", "W", "z"))
    h = np.random.default_rng(0).normal(size=(5, 6))
    y = np.random.default_rng(1).normal(size=(5, 1))
    core = make_core(problem.spec, p)
    a = _sigmoid(h @ x["W_a"].T + y @ x["M_a"].T + x["b_a"][:, 0])
    r = _sigmoid(h @ x["W_r"].T + y @ x["M_r"].T + x["b_r"][:, 0])
    c = np.tanh((r * h) @ W.T + y @ m.T)
    np.testing.assert_allclose(np.asarray(core.update(jnp.asarray(h), jnp.asarray(y))), (1 - a) * h + a * c, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(core.readout(jnp.asarray(h))), h @ z, rtol=1e-12)
    assert np.all(x["b_a"] == 0.3) and x["W_a"].shape == (6, 6) and x["M_r"].shape == (6, 1)


def test_the_gru_loss_gradient_matches_finite_differences():
    _, problem, p, consts = _problem()
    key = jax.random.PRNGKey(2)

    def loss(W_a):
        q = p._replace(extra={**p.extra, "W_a": W_a})
        return problem.mode.loss(problem, q, consts, key)[0]

    g = np.asarray(jax.grad(loss)(p.extra["W_a"]))
    for i, j in ((0, 0), (2, 5), (4, 1)):
        e = np.zeros((6, 6))
        e[i, j] = 1e-6
        fd = (loss(p.extra["W_a"] + e) - loss(p.extra["W_a"] - e)) / 2e-6
        assert g[i, j] == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


@pytest.fixture(scope="module")
def gru_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("gru")
    cfg = cfg_mod.from_dict({**BASE, "name": "gru"})
    whole = loopdyn.train(cfg, root / "whole.zarr", progress=False)
    part = loopdyn.train(cfg, root / "part.zarr", progress=False, stop_after=4)
    loopdyn.resume(part, progress=False)
    loopdyn.analyze(whole)
    return whole, part


def test_a_gru_store_records_its_gates_and_resumes_identically(gru_store):
    whole, part = (loopdyn.open_run(s) for s in gru_store)
    names = {"m", "W", "z", "extra_W_a", "extra_W_r", "extra_M_a", "extra_M_r", "extra_b_a", "extra_b_r"}
    assert names <= set(whole.data_vars)
    assert whole.extra_W_a.dims == ("run", "checkpoint", "neuron", "neuron_in")
    assert whole.attrs["config"]["agent"]["kind"] == "gru"
    for k in ("train_loss", "test_loss", *sorted(names)):
        np.testing.assert_array_equal(whole[k].values, part[k].values)
    # the gates' biases are trained (they move from their initial 0.3)
    assert not np.allclose(whole.extra_b_a.values[:, -1], 0.3)


def test_a_reloaded_gru_gives_the_stored_test_loss(gru_store):
    ds = loopdyn.open_run(gru_store[0])
    for run, epoch in ((0, 0), (1, 5), (1, 7)):
        agent = loopdyn.load_agent(ds, run, epoch)
        cfg = agent.run.cfg
        x0 = agent.task.test_set(jax.random.PRNGKey(cfg.task.test_seed), F64)
        traj = rollout(agent.core, agent.plant, x0, agent.task.T, timing=agent.task.timing)
        metric = float(np.mean(np.sum(np.asarray(traj.x) ** 2, axis=-1)))
        assert metric == pytest.approx(float(ds.test_loss.values[run, epoch]), rel=1e-10)


def test_the_grus_jacobian_at_its_fixed_point_is_its_linearisation(gru_store):
    """J(0) of the analysis equals the closed-form linearisation of the GRU (module docstring of
    loopdyn.agents._gru) composed with the double integrator, built in numpy from the stored parameters."""
    ds = loopdyn.open_run(gru_store[0])
    A, B, C = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.0], [1.0]]), np.array([[1.0, 0.0]])
    for run in (0, 1):
        for c in (0, 7):
            p = {k: ds[k].values[run, c] for k in ds.data_vars if k in ("m", "W", "z") or k.startswith("extra_")}
            a0, r0 = _sigmoid(p["extra_b_a"][:, 0]), _sigmoid(p["extra_b_r"][:, 0])
            Jhh = np.diag(1 - a0) + np.diag(a0) @ p["W"] @ np.diag(r0)
            Jhy = np.diag(a0) @ p["m"]
            P = np.block([[A, B @ p["z"].T], [Jhy @ C @ A, Jhh + Jhy @ C @ B @ p["z"].T]])
            lam = np.sort_complex(np.linalg.eigvals(P))
            stored = ds.jacobian_eigenvalues.values[run, c]
            np.testing.assert_allclose(np.sort_complex(stored[np.isfinite(stored)]), lam, rtol=1e-9, atol=1e-12)
            assert ds.jacobian_spectral_radius.values[run, c] == pytest.approx(np.max(np.abs(lam)), rel=1e-9)


def test_bad_gru_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"x.toml: agent.trainable = \['U'\]: choose a non-empty subset of m, W, z, "
                                          r"extra"):
        cfg_mod.from_dict({"agent": {"kind": "gru", "trainable": ["U"]}}, source="x.toml")
    with pytest.raises(ConfigError, match=r"x.toml: agent.rank is not a known key of agent.kind = 'gru'"):
        cfg_mod.from_dict({"agent": {"kind": "gru", "rank": 1}}, source="x.toml")
    assert isinstance(cfg_mod.from_dict({"agent": {"kind": "gru"}}).agent, GRU)
    assert AgentParams.of(AgentParams(m=1, extra={"W_a": 2}).present()) == AgentParams(m=1, extra={"W_a": 2})
