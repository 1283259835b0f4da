"""The `model` rule's network model (docs/learning-rules.md, training/_netmodel.py) on the inverted pendulum: fitted
from the agent's own explored transitions, its one-step prediction matches the plant's own RK4 step at fresh
actions (where the least-squares linear model does not) and its gradient is the gradient through the true plant;
its state is stored and restored as the trainer does; bad settings are one line, exit 2; the learning-rules
experiment runs on the pendulum end to end."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from _helpers import assert_refused_in_one_line
from loopdyn.agents import combine, make_core
from loopdyn.config import HYPERPARAMETERS, from_toml_text
from loopdyn.system import rollout
from loopdyn.training import HyperParams, Model, Settings, build_problem, fit_linear_model, init_run
from loopdyn.training import transition_statistics
from loopdyn.training._netmodel import LinearisedPlant, NetworkPlant, Point, affine_fit, jacobians, predict
from loopdyn.training._rules import collect_transitions
from loopdyn.training._trainer import restore_states, state_arrays

PENDULUM = """
name = "netmodel"
epochs = 4
seeds = [0]
dtype = "float32"
[plant]
kind = "inverted_pendulum"
[task]
T = 12
batch = 32
x0_range = 0.5
test_batch = 4
beta = 0.0
[agent]
N = 8
rank = 1
activation = "linear"
"""


def _flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree.leaves(tree)]).astype(np.float64)


def _true_gradient(problem, trained, consts, key, sigma):
    """The gradient of the same noisy episodes (initial states, exploration noise) through the true plant, taken by
    JAX (independent of the rule's code)."""
    task, hp = problem.task, consts.hyper
    k_x, _ = jax.random.split(key)
    x0 = task.train_episode(k_x, problem.dtype).x0
    xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (task.T, x0.shape[0], 1), problem.dtype)

    def loss(tr):
        traj = rollout(make_core(problem.spec, combine(tr, consts.frozen), hp.g), problem.plant, x0, task.T,
                       action_noise=xi)
        return task.train_loss(traj.x, traj.u, hp.beta)

    return jax.grad(loss)(trained)


def test_the_network_model_learns_the_pendulum_and_its_gradient_is_the_true_one():
    cfg = from_toml_text(PENDULUM)
    problem = build_problem(cfg)
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), jnp.float32) for k in HYPERPARAMETERS})
    state, consts = init_run(problem, 3, hyper)
    sigma = 0.1
    rule = Model(model="network", sigma=sigma, replay=8, keep=400, variance=False)
    step = jax.jit(lambda k, s: rule.gradient(problem, state.params, consts, k, Settings(), s))
    st, errors, residuals = rule.init_state(problem), [], []
    for e in range(30):  # the agent held fixed: the model is refitted on 30 epochs of its own transitions
        out = step(jax.random.PRNGKey(e), st)
        st = out.state
        if e == 15:  # stored and restored as the trainer stores a run's state: the same next epoch
            group = SimpleNamespace(index=0, runs=[0])
            saved = state_arrays([group], [jax.tree.map(lambda a: a[None], st)])
            template = jax.tree.map(lambda a: a[None], rule.init_state(problem))
            back = jax.tree.map(lambda a: a[0], restore_states([group], [template], saved, "test")[0])
            again = step(jax.random.PRNGKey(99), back)
            np.testing.assert_array_equal(_flat(again.grads), _flat(step(jax.random.PRNGKey(99), st).grads))
        errors.append(float(out.records["model_error"]))
        residuals.append(float(out.records["model_residual"]))
    assert np.isnan(residuals[0]) and np.all(np.isfinite(residuals[1:])) and residuals[-1] < residuals[1] / 3
    assert errors[-1] < errors[0] / 3, errors

    # the closed-form parts, solved from the ring's moments, are those of the replay's rows solved directly (numpy)
    rows = [np.asarray(a, np.float64) for a in (st.replay.x, st.replay.u, st.replay.x_next, st.replay.y_next)]
    assert np.all(np.asarray(st.replay.w) == 1)  # 30 epochs filled the ring of 8 x 400
    x, u, xn, yn = rows
    z = np.concatenate([x, u], axis=1)
    mu, s_z, s_d = z.mean(0), z.std(0), np.sqrt(np.mean((xn - x) ** 2, 0))
    zt = np.concatenate([(z - mu) / s_z, np.ones((len(z), 1))], axis=1)
    L = np.linalg.lstsq(zt, (xn - x) / s_d, rcond=None)[0].T
    C = np.linalg.lstsq(xn, yn, rcond=None)[0].T
    for got, want in zip(affine_fit(st.moments, 1e-12), (mu, s_z, s_d, L, C)):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(st.model.L, L, rtol=1e-5, atol=1e-6)  # the fitted model's, in float32

    # one step of fresh, held-out transitions (new initial states and exploration noise) vs the plant's own RK4 step:
    # the relative error of the predicted increment, against the least-squares linear model of the same replay
    key = jax.random.PRNGKey(1234)
    x0 = problem.task.train_episode(key, problem.dtype).x0
    xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (problem.task.T, x0.shape[0], 1), problem.dtype)
    traj = rollout(make_core(problem.spec, combine(state.params, consts.frozen), hyper.g), problem.plant, x0,
                   problem.task.T, action_noise=xi)
    x, u = traj.x.reshape(-1, 2), traj.u.reshape(-1, 1)
    truth = np.asarray(problem.plant.dynamics(x, u))
    fitted = NetworkPlant.of(st.model, jnp.asarray([[1.0, 0.0]], jnp.float32))

    def rel(pred):
        return float(np.sqrt(np.sum((np.asarray(pred) - truth) ** 2) / np.sum((truth - np.asarray(x)) ** 2)))

    rep = st.replay
    A, B, _ = fit_linear_model(transition_statistics(rep.x, rep.u, rep.x_next, rep.y_next))
    net_err, lin_err = rel(predict(st.model, x, u)), rel(x @ A.T.astype(x.dtype) + u @ B.T.astype(x.dtype))
    np.testing.assert_allclose(fitted.dynamics(x, u), predict(st.model, x, u), rtol=1e-5, atol=1e-6)  # folded
    print(f"one-step error of the increment: network {net_err:.4f}, linear {lin_err:.4f}")
    assert net_err < 0.05 and lin_err > 3 * net_err, (net_err, lin_err)

    # the model's Jacobians in closed form (the observed path's) are JAX's derivatives of its prediction
    Jx, Ju = jacobians(st.model, x[:5], u[:5])
    Jz = jax.vmap(jax.jacfwd(lambda z: predict(st.model, z[:2], z[2:])))(jnp.concatenate([x[:5], u[:5]], -1))
    np.testing.assert_allclose(np.concatenate([Jx, Ju], -1), Jz, rtol=1e-4, atol=1e-5)

    # the gradient through the fitted model is the gradient of the same episodes through the true plant, along the
    # observed transitions and through a rollout of the model (the default)
    key = jax.random.PRNGKey(99)
    g_true = _flat(jax.jit(lambda k: _true_gradient(problem, state.params, consts, k, sigma))(key))
    along = Model(model="network", sigma=sigma, replay=8, keep=400, variance=False, path="observed")
    observed = jax.jit(lambda k, s: along.gradient(problem, state.params, consts, k, Settings(), s))
    for path, fn in (("observed", observed), ("model", step)):
        g_model = _flat(fn(key, st).grads)
        cos = g_model @ g_true / np.linalg.norm(g_model) / np.linalg.norm(g_true)
        ratio = np.linalg.norm(g_model) / np.linalg.norm(g_true)
        print(f"gradient through the model ({path}) vs the true plant: cosine {cos:.5f}, norm ratio {ratio:.3f}")
        assert cos > 0.99 and 0.75 < ratio < 1.33, (path, cos, ratio)

    # the linearised plant retraces the observed trajectory at the parameters it was collected with
    episode, _, xi, _, obs, _ = collect_transitions(rule, problem, state.params, consts, key, Settings())
    points = Point(obs.x, obs.u, obs.x_next, *jacobians(st.model, obs.x, obs.u))
    lin = LinearisedPlant(C_hat=jnp.asarray([[1.0, 0.0]], jnp.float32), m=1)
    again = rollout(make_core(problem.spec, combine(state.params, consts.frozen), hyper.g), lin, episode.x0,
                    problem.task.T, action_noise=xi, process_noise=points)
    np.testing.assert_allclose(again.x, obs.x, rtol=1e-5, atol=1e-6)


BASE = PENDULUM + '[gradient]\nkind = "model"\nmodel = "network"\n'
BAD = [
    ("hidden = 0", ("gradient.hidden", "> 0")),
    ("fit_steps = 0", ("gradient.fit_steps", "> 0")),
    ("fit_lr = nan", ("gradient.fit_lr", "finite")),
    ("fit_lr = inf", ("gradient.fit_lr", "finite")),
    ('model = "mlp"', ("gradient.model", "network")),
]


@pytest.mark.parametrize("extra,needles", BAD)
def test_bad_network_model_settings_are_one_line_exit_2_nothing_written(tmp_path, extra, needles):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(BASE.replace('model = "network"\n', "") + extra + "\n" if extra.startswith("model")
                   else BASE + extra + "\n")
    assert_refused_in_one_line(cfg, tmp_path / "out", needles)


def test_the_learning_rules_experiment_on_the_pendulum_end_to_end(tmp_path):
    """`learning-rules-pendulum` on a tiny protocol (linear agent, 2 seeds, 8 epochs): the model condition fits a
    network, explored; the stages come from P(theta) at the checkpoints; the caption comes from the store."""
    from loopdyn.experiments import get

    cfg = loopdyn.load_config("learning-rules-pendulum", [
        "epochs=8", "agent.N=8", "task.batch=16", "task.T=20", "task.test_batch=16", "record.chunk=8",
        "record.n_log=4", "learning_rules.activations=['linear']", "learning_rules.sigmas=[0.3]",
        "learning_rules.T_values=[10, 20]", "learning_rules.T_epochs=[0, 4]"], "0..1")
    path = tmp_path / "lrp.zarr"
    store = loopdyn.train(cfg, path, progress=False)
    loopdyn.analyze(store)
    ds = loopdyn.open_run(store)
    phases = list(dict.fromkeys(ds.phase.values.tolist()))
    assert phases == ["linear/bptt", "linear/reinforce-0.3", "linear/model-network", "linear/bptt-T10to20"]
    runs = {r.phase: r for r in loopdyn.store_runs(ds)}
    rule = runs["linear/model-network"].cfg.gradient
    assert (rule.kind, rule.model, rule.sigma) == ("model", "network", 0.1)
    idx = np.nonzero(ds.phase.values == "linear/model-network")[0]
    res, err = ds.model_residual.values[idx], ds.model_error.values[idx]
    assert np.all(np.isnan(res[:, 0])) and np.all(np.isfinite(res[:, 1:])) and np.all(res[:, 1:] < 0.05)
    assert np.all(np.isfinite(err)) and np.all(err[:, -1] < err[:, 0])
    assert "stage1_end" in ds and "jacobian_spectral_radius" in ds  # the stages of P(theta) at the checkpoints
    exp = get("learning-rules")
    caption = exp.captions(ds)["learning_rules"]
    assert "stage boundaries from P(theta) at the checkpoints" in caption
    assert "linear/model-network: all three stages in" in caption
