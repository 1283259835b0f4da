"""Learning rules and schedules (docs/learning-rules.md): REINFORCE's expectation is the reparameterised gradient of
the same noisy objective and its variance falls as 1/B; the least-squares model is the plant and its gradient
BPTT's; a T-curriculum's loss is the task's loss at length T_e; schedules are recorded per epoch; bad input is
one line, exit 2, nothing written."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from _helpers import assert_refused_in_one_line
from loopdyn.agents import combine, make_core
from loopdyn.config import HYPERPARAMETERS, from_toml_text, with_values
from loopdyn.errors import ConfigError
from loopdyn.system import rollout
from loopdyn.training import HyperParams, build_problem, init_run
from loopdyn.config import param
from loopdyn.training import (BPTT, GradientRule, Model, Reinforce, RuleStep, Settings, fit_linear_model,
                              transition_statistics)
from loopdyn.training._rules import BlackBox

LINEAR = """
name = "rules"
epochs = 6
seeds = [0]
dtype = "float64"
[plant]
kind = "double_integrator"
[task]
kind = "regulation"
T = 8
batch = 16
test_batch = 4
beta = 0.05
[agent]
kind = "rnn"
N = 4
rank = 1
activation = "linear"
[record]
chunk = 3
"""


def _setup(text, **values):
    cfg = from_toml_text(text)
    if values:
        cfg = with_values(cfg, values)
    problem = build_problem(cfg)
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), jnp.float64) for k in HYPERPARAMETERS})
    state, consts = init_run(problem, 3, hyper)
    return cfg, problem, state, consts


def _noisy_pathwise_gradient(problem, trained, consts, key, sigma):
    """The reparameterised gradient of the noisy objective: the same episodes and noise as REINFORCE's, the
    derivative taken through the plant by JAX (independent of the score-function code)."""
    task, hp = problem.task, consts.hyper
    k_x, _ = jax.random.split(key)
    x0 = task.train_episode(k_x, problem.dtype).x0
    xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (task.T, x0.shape[0], 1), problem.dtype)

    def loss(tr):
        traj = rollout(make_core(problem.spec, combine(tr, consts.frozen), hp.g), problem.plant, x0, task.T,
                       action_noise=xi)
        return task.train_loss(traj.x, traj.u, hp.beta)

    return jax.grad(loss)(trained)


def _flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(tree)])


class SignSGD(GradientRule):
    """A user's rule in one file (docs/learning-rules.md): BPTT's gradient, keeping its signs only."""

    variance: bool = param(False, doc="unused")

    def gradient(self, problem, trained, consts, key, settings, state):
        def loss(tr):
            return problem.mode.loss(problem, combine(tr, consts.frozen), consts, key)

        (value, aux), g = jax.value_and_grad(loss, has_aux=True)(trained)
        return RuleStep(value, jax.tree.map(jnp.sign, g), aux, state, {})


@pytest.fixture(scope="module")
def linear_run():
    return _setup(LINEAR)


def test_reinforce_expectation_is_the_reparameterised_gradient_of_the_noisy_objective(linear_run):
    sigma = 0.5
    _, _, state, consts = linear_run
    problem = build_problem(with_values(from_toml_text(LINEAR), {"task.batch": 500}))
    rule = Reinforce(sigma=sigma, variance=False)
    keys = jax.random.split(jax.random.PRNGKey(11), 60)  # 60 batches of 500: 3e4 episodes

    def both(key):
        g = rule.gradient(problem, state.params, consts, key, Settings(), None).grads
        return _flat(g), _flat(_noisy_pathwise_gradient(problem, state.params, consts, key, sigma))

    score, path = jax.jit(jax.vmap(both))(keys)
    exact = path.mean(0)
    rng = np.random.default_rng(0)
    for d in (exact / jnp.linalg.norm(exact), *rng.normal(size=(3, exact.size))):
        diff = (score - path) @ d  # per batch; the pathwise estimate's own noise is small and shares episodes
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert abs(diff.mean()) < 4 * se, (diff.mean(), se)
    # the test has power: the estimate's standard error is a small part of the gradient
    se_along = ((score @ exact) / jnp.linalg.norm(exact)).std(ddof=1) / np.sqrt(len(keys))
    assert se_along < 0.05 * jnp.linalg.norm(exact)


def test_reinforce_variance_falls_as_one_over_the_batch_and_is_recorded(linear_run):
    _, _, state, consts = linear_run
    out = {}
    for B in (32, 128):
        pb = build_problem(with_values(from_toml_text(LINEAR), {"task.batch": B}))
        rule = Reinforce(sigma=0.3, variance=True)

        def one(key, pb=pb, rule=rule):
            step = rule.gradient(pb, state.params, consts, key, Settings(), None)
            return _flat(step.grads), step.records["grad_variance"]

        g, est = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(B), 200))
        out[B] = (np.sum(np.var(np.asarray(g), axis=0, ddof=1)), float(np.mean(est)))
    ratio = out[32][0] / out[128][0]
    assert 2.8 < ratio < 5.6, ratio  # 4 = 128/32 (1/sqrt(B) would give 2)
    for B, (empirical, recorded) in out.items():  # the recorded half-batch estimate is the variance
        assert 0.7 < recorded / empirical < 1.4, (B, recorded, empirical)


def test_the_least_squares_model_is_the_plant():
    rng = np.random.default_rng(1)
    A, B, C = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2)), rng.normal(size=(2, 3))
    fit = jax.jit(lambda x, u, xn: fit_linear_model(transition_statistics(x, u, xn, xn @ C.T)))
    x, u = rng.normal(size=(4, 10000, 3)), rng.normal(size=(4, 10000, 2))
    xn = x @ A.T + u @ B.T
    # noise-free: exact from 100 transitions; with process noise the fit converges as the data grow
    noisy = xn + 0.1 * rng.normal(size=xn.shape)
    (Ah, Bh, Ch), (A1, B1, _), (A2, B2, _) = (fit(x[0, :100], u[0, :100], xn[0, :100]),
                                              fit(x[1, :100], u[1, :100], noisy[1, :100]), fit(x[2], u[2], noisy[2]))
    np.testing.assert_allclose(Ah, A, atol=1e-8)
    np.testing.assert_allclose(Bh, B, atol=1e-8)
    np.testing.assert_allclose(Ch, C, atol=1e-8)
    small, large = (float(np.linalg.norm(a - A) + np.linalg.norm(b - B)) for a, b in ((A1, B1), (A2, B2)))
    assert large < small / 4  # 100 -> 10000 transitions: the error falls ~10x


def test_model_gradient_is_bptt_once_the_model_is_fitted_from_the_agents_own_transitions(linear_run):
    _, problem, state, consts = linear_run
    rule = Model(replay=2, variance=False)
    step, exact = jax.jit(lambda k: (rule.gradient(problem, state.params, consts, k, Settings(),
                                                   rule.init_state(problem)),
                                     BPTT().gradient(problem, state.params, consts, k, Settings(), None)))(
        jax.random.PRNGKey(5))
    assert float(step.records["model_error"]) < 1e-7  # A, B, C of the double integrator from one epoch's data
    np.testing.assert_allclose(_flat(step.grads), _flat(exact.grads), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(step.loss, exact.loss, rtol=1e-10)
    # a user's rule, found by its import path like any part
    cfg = from_toml_text(LINEAR + '[gradient]\nkind = "test_rules:SignSGD"')
    user = jax.jit(lambda k: cfg.gradient.gradient(problem, state.params, consts, k, Settings(), None))(
        jax.random.PRNGKey(5))
    np.testing.assert_array_equal(_flat(user.grads), np.sign(_flat(exact.grads)))


def test_a_curriculum_episode_is_the_tasks_episode_at_length_T_e(linear_run):
    """Rolled out for T = 8 steps and masked at T_e = 5, the loss is the task's loss of the first 5 steps (its
    normalisation at T = 5 included, both conventions); BPTT's half-batch path gives the plain path's gradient."""
    _, problem, state, consts = linear_run
    traj = rollout(make_core(problem.spec, combine(state.params, consts.frozen), 0.0), problem.plant,
                   problem.task.sample_x0(jax.random.PRNGKey(0), 16, jnp.float64), 8)
    cut = type(traj)(x=traj.x[:5], u=traj.u[:5])
    for loss in ("mean", "sum"):
        task = dataclasses.replace(problem.task, loss=loss)
        short = dataclasses.replace(task, T=5)
        np.testing.assert_allclose(task.episode_loss(traj, None, 0.05, horizon=jnp.asarray(5)),
                                   short.train_loss(cut.x, cut.u, 0.05, stands_for=16), rtol=1e-12)
    key, horizon = jax.random.PRNGKey(2), Settings(horizon=jnp.asarray(5))
    plain, halves = jax.jit(lambda k: tuple(rule.gradient(problem, state.params, consts, k, horizon, None)
                                            for rule in (BPTT(), BPTT(variance=True))))(key)
    np.testing.assert_allclose(halves.loss, plain.loss, rtol=1e-10)
    np.testing.assert_allclose(_flat(halves.grads), _flat(plain.grads), rtol=1e-8)
    assert np.isfinite(halves.records["grad_variance"]) and halves.records["grad_variance"] > 0


def test_schedules_rule_and_noise_are_recorded_per_epoch_and_resumed(tmp_path):
    text = LINEAR + """
[gradient]
kind = "model"
sigma = 0.2
replay = 2
[schedule]
T = [[0, 3], [4, 8]]
lr = [[0, 0.02], [5, 0.01]]
sigma = [[0, 0.4], [5, 0.1]]
sigma_ramp = "steps"
"""
    cfg = from_toml_text(text)
    path = tmp_path / "s.zarr"
    loopdyn.train(cfg, path, progress=False, stop_after=3)
    loopdyn.resume(path, progress=False)
    ds = loopdyn.open_run(path)
    e = np.arange(6)
    np.testing.assert_array_equal(ds.T_epoch.values[0], np.where(e < 4, 3, 8))
    np.testing.assert_allclose(ds.lr_epoch.values[0], np.interp(e, [0, 5], [0.02, 0.01]))
    np.testing.assert_allclose(ds.sigma.values[0], np.where(e < 5, 0.4, 0.1))
    assert np.all(ds.grad_variance.values > 0) and np.all(ds.model_error.values < 1e-7)
    # the model's replay survived the interruption: epoch 3 predicts with the model fitted on epochs 1-2
    assert np.isnan(ds.model_residual.values[0, 0]) and np.all(ds.model_residual.values[0, 1:] < 1e-12)
    assert cfg.gradient.kind == "model" and loopdyn.store_runs(ds)[0].cfg.gradient == cfg.gradient


BAD = [
    ('[gradient]\nkind = "reinforce"\nsigma = 0.0', ("gradient.sigma", "> 0")),
    ('[gradient]\nkind = "reinforce"\nsigma = nan', ("gradient.sigma", "finite")),
    ("[schedule]\nT = [[0, 8], [0, 4]]", ("schedule.T", "strictly increasing")),
    ("[schedule]\nlr = [[50, 0.1], [10, 0.01]]", ("schedule.lr", "strictly increasing")),
    ("[schedule]\nT = [[0, 4], [10, 80]]", ("schedule.T", "task.T = 8")),
    ('[gradient]\nkind = "model"\nreplay = 0', ("gradient.replay", "> 0")),
    ('[gradient]\nkind = "reinforce"\n[schedule]\nsigma = [[0, 0.1], [5, -0.1]]', ("schedule.sigma", "> 0")),
    ('[schedule]\nsigma = [[0, 0.1], [5, 0.05]]', ("schedule.sigma", "'bptt'")),
]


@pytest.mark.parametrize("extra,needles", BAD)
def test_bad_rules_and_schedules_are_one_line_exit_2_nothing_written(tmp_path, extra, needles):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(LINEAR + extra)
    assert_refused_in_one_line(cfg, tmp_path / "out", needles)


@pytest.mark.parametrize("patch,extra,key", [
    (("beta = 0.05", 'beta = 0.05\nobjective = "expected"'), 'kind = "reinforce"', "task.objective"),
    (('activation = "linear"', 'activation = "linear"\nrepresentation = "overlaps"'), 'kind = "model"',
     "agent.representation"),
    (("batch = 16", "batch = 1"), 'kind = "model"\nreplay = 1', "gradient.replay"),  # 8 transitions < k + m = 3? no
])
def test_rules_refuse_what_they_cannot_express(patch, extra, key):
    text = LINEAR.replace(*patch).replace("T = 8", "T = 1") if key == "gradient.replay" else LINEAR.replace(*patch)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_toml_text(text + "[gradient]\n" + extra)


def test_the_learning_rules_experiment_end_to_end(tmp_path):
    """`loopdyn train learning-rules` on a tiny protocol (one agent, one noise, 2 seeds, 40 epochs): one phase per
    condition, every rule recorded; the analysis's per-condition stabilisation epochs are those of the runs'
    own gains, and the caption's answers and the figure come from the store (no overlapping text)."""
    from _helpers import small_text, text_overlaps

    from loopdyn.experiments import get

    cfg = loopdyn.load_config("learning-rules", ["epochs=40", "agent.N=16", "task.batch=16", "record.chunk=20",
                                                 "learning_rules.activations=['linear']", "learning_rules.sigmas=[0.3]",
                                                 "learning_rules.T_values=[10, 50]", "learning_rules.T_epochs=[0, 20]"],
                              "0..1")
    store = loopdyn.train(cfg, tmp_path / "lr.zarr", progress=False)
    loopdyn.analyze(store)
    ds = loopdyn.open_run(store)
    phases = list(dict.fromkeys(ds.phase.values.tolist()))
    assert phases == ["linear/bptt", "linear/reinforce-0.3", "linear/model", "linear/bptt-T10to50"]
    rules = {r.phase: r.cfg.gradient.kind for r in loopdyn.store_runs(ds)}
    assert rules == {"linear/bptt": "bptt", "linear/reinforce-0.3": "reinforce", "linear/model": "model",
                     "linear/bptt-T10to50": "bptt"}
    # the curriculum's episode length is recorded per epoch: 10 before epoch 20, 50 from it
    cur = np.nonzero(ds.phase.values == "linear/bptt-T10to50")[0]
    assert np.all(ds.T_epoch.values[cur, :20] == 10) and np.all(ds.T_epoch.values[cur, 20:] == 50)
    # every condition records its gradient variance; at epoch 0 (same weights per seed) the least-squares model's
    # gradient is bptt's (the model is exact on the span the transitions visit), reinforce's far noisier
    v0 = {p: ds.initial_grad_variance.values[ds.phase.values == p] for p in phases}
    assert all(np.all(np.isfinite(v) & (v > 0)) for v in v0.values())
    # (to float32 round-off: where the initial loop blows up, 1e17 for seed 0 here, the halves' difference is
    # round-off amplified over T steps and agrees only in its order of magnitude)
    tame = v0["linear/bptt"] < 1e8
    assert tame.any()
    np.testing.assert_allclose(v0["linear/model"][tame], v0["linear/bptt"][tame], rtol=1e-3)
    np.testing.assert_allclose(np.log(v0["linear/model"]), np.log(v0["linear/bptt"]), atol=0.5)
    assert np.all(v0["linear/reinforce-0.3"] > 10 * v0["linear/bptt"])
    exp = get("learning-rules")
    caption = exp.captions(ds)["learning_rules"]
    assert caption.startswith("Does a T-curriculum shorten the plateau? linear:")
    assert "Do the stages survive model-free learning? linear/reinforce-0.3: all three stages in" in caption
    ratio = np.median(v0["linear/reinforce-0.3"] / v0["linear/bptt"])
    assert f"relative to bptt's, per seed: linear/reinforce-0.3 {ratio:.3g} [" in caption
    fig = exp.figures(ds)["learning_rules"]
    assert text_overlaps(fig) == [] and small_text(fig) == []


def test_half_batch_gradients_in_one_backward_pass_are_the_per_episode_gradients():
    """The rules' gradient and grad_variance (each half of the batch with its own copy of the parameters, one
    backward pass) against per-episode gradients taken one by one (`jax.jacrev` of the per-episode surrogates of
    one full-batch rollout, process noise drawn from the key as in the trainer): the mean, and |g1 - g2|^2 / 4 of
    the two halves' means, for an odd batch (its last episode counts in the mean only) on a noisy tanh loop."""
    text = (LINEAR.replace('activation = "linear"', 'activation = "tanh"').replace("batch = 16", "batch = 7")
            .replace('kind = "double_integrator"', 'kind = "double_integrator"\nnoise = 0.3'))
    cfg, problem, state, consts = _setup(text)
    assert problem.noisy
    task, hp, B, h, sigma = problem.task, consts.hyper, 7, 3, 0.2
    key, settings = jax.random.PRNGKey(4), Settings(horizon=jnp.asarray(6))
    k_x, k_w = jax.random.split(key)
    x0 = task.train_episode(k_x, problem.dtype).x0
    xi = sigma * jax.random.normal(jax.random.fold_in(key, 2), (task.T, B, 1), problem.dtype)

    def costs(tr, plant, xi=None):
        traj = rollout(make_core(problem.spec, combine(tr, consts.frozen), hp.g), plant, x0, task.T, key=k_w,
                       noise=hp.noise, action_noise=xi)
        return traj, task.step_costs(jax.lax.stop_gradient(traj), hp.beta, horizon=settings.horizon)

    def score_surrogate(tr):  # REINFORCE: sum_t (G - leave-one-out mean) log pi, through the agent alone
        traj, c = costs(tr, BlackBox(dt=problem.plant.dt, noise=problem.plant.noise, inner=problem.plant), xi)
        G = jnp.cumsum(c[::-1], axis=0)[::-1]
        adv = G - (G.sum(1, keepdims=True) - G) / (B - 1)
        mu = traj.u - xi
        return jnp.sum(adv * -0.5 * jnp.sum((jax.lax.stop_gradient(traj.u) - mu) ** 2, -1), 0) / sigma**2

    def pathwise(tr):  # BPTT: each episode's loss through the plant
        traj = rollout(make_core(problem.spec, combine(tr, consts.frozen), hp.g), problem.plant, x0, task.T,
                       key=k_w, noise=hp.noise)
        return jnp.sum(task.step_costs(traj, hp.beta, horizon=settings.horizon), 0)

    def reference(per_episode):
        rows = np.stack([np.asarray(_flat(jax.tree.map(lambda a, b=b: a[b], per_episode))) for b in range(B)])
        return rows.mean(0), np.sum((rows[:h].mean(0) - rows[h:2 * h].mean(0)) ** 2) / 4

    rules = {"reinforce": Reinforce(sigma=sigma), "bptt": BPTT(variance=True), "plain": BPTT()}
    refs = {"reinforce": score_surrogate, "bptt": pathwise}
    got, rows = jax.jit(lambda k, p: ({n: r.gradient(problem, p, consts, k, settings, None) for n, r in rules.items()},
                                      {n: jax.jacrev(f)(p) for n, f in refs.items()}))(key, state.params)
    for name in refs:
        mean, var = reference(rows[name])
        np.testing.assert_allclose(_flat(got[name].grads), mean, rtol=1e-9, atol=1e-12 * np.abs(mean).max())
        np.testing.assert_allclose(got[name].records["grad_variance"], var, rtol=1e-9)
        assert var > 1e-6 * np.sum(mean**2)  # the halves differ: the check has power
    # the episodes' loss and the noisy plant's draws are the trainer's: bptt's plain path (loss and gradient)
    plain = got["plain"]
    np.testing.assert_allclose(got["bptt"].loss, plain.loss, rtol=1e-12)
    np.testing.assert_allclose(_flat(got["bptt"].grads), _flat(plain.grads), rtol=1e-9)
