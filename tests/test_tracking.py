"""The tracking task (spec §1.3, §3.4, §4.7; Fig 6): references against their closed form, superposition of
basis episodes against plain rollouts (loss, gradient, evaluation; the clamp fallback), the probe of a
perfect tracker, acquisition and interference on synthetic curves, config errors, and a short real run."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from loopdyn import config as _config
from loopdyn.agents import AgentParams, combine, make_core
from loopdyn.analysis import acquisition_epochs, interference, trailing_mean
from loopdyn.errors import ConfigError
from loopdyn.system import rollout
from loopdyn.tasks import Tracking, concat_episodes
from loopdyn.training import (MODES, HyperParams, build_problem, closed_basis, init_run, superposition_capacities,
                              superposition_fits, teacher_drive)

TRACKING = {
    "name": "tiny-tracking", "epochs": 5, "seeds": [0], "dtype": "float64",
    "plant": {"kind": "point_mass_2d", "dt": 0.1, "n_observed": 2, "clamp": 10.0},
    "task": {"kind": "tracking", "T": 300, "batch": 20, "test_batch": 10},
    "agent": {"N": 30, "rank": 0, "activation": "linear", "alpha": 0.1, "g": 0.2, "init": "uniform",
              "trainable": ["W", "z"]},
    "train": {"optimizer": "adam", "lr": 1e-3, "clip": 0.0, "skip_first_update": True},
}


def _cfg(**changes):
    d = json.loads(json.dumps(TRACKING))
    for dotted, v in changes.items():
        section, key = dotted.split(".")
        d.setdefault(section, {})[key] = v
    return _config.from_dict(d, source="<test>")


def _setup(cfg, scale=1.0, seed=0):
    """Problem, full parameters (trained part scaled by `scale`) and constants of a fresh run."""
    problem = build_problem(cfg)
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), problem.dtype) for k in _config.HYPERPARAMETERS})
    state, consts = init_run(problem, seed, hyper)
    trained = jax.tree.map(lambda a: scale * a, state.params)
    return problem, trained, consts


def _loss_and_grad(problem, trained, consts, key, mode="closed_loop"):
    def f(p):
        return MODES[mode].loss(problem, combine(p, consts.frozen), consts, key)[0]

    loss, grad = jax.jit(jax.value_and_grad(f))(trained)
    return float(loss), grad


def _close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol * float(np.max(np.abs(y))))


# ------------------------------------------------------------------------------------------ references
def test_references_match_the_closed_form():
    task = Tracking(ramp=1.0)
    ep = task.sample_episode(jax.random.PRNGKey(1), 7, jnp.float64)
    phases = np.arctan2(np.asarray(ep.coef)[:, 1::2], np.asarray(ep.coef)[:, 0::2])  # (7, 4), components by frequency
    t = 0.1 * np.arange(300)
    ramp = np.minimum(t / 1.0, 1.0)
    # x: 0.1 and 0.3 Hz (components 0 and 2), y: 0.2 and 0.4 Hz (components 1 and 3), amplitude 2.31
    want_x = ramp[:, None] * 2.31 * (np.cos(2 * np.pi * 0.1 * t[:, None] + phases[:, 0]) + np.cos(2 * np.pi * 0.3 * t[:, None] + phases[:, 2]))
    want_y = ramp[:, None] * 2.31 * (np.cos(2 * np.pi * 0.2 * t[:, None] + phases[:, 1]) + np.cos(2 * np.pi * 0.4 * t[:, None] + phases[:, 3]))
    np.testing.assert_allclose(np.asarray(ep.exo[..., 0]), want_x, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ep.exo[..., 1]), want_y, atol=1e-12)
    np.testing.assert_allclose(np.asarray(task.references(jnp.asarray(phases), dtype=jnp.float64)), np.asarray(ep.exo), atol=1e-12)
    assert np.all(np.abs(phases) <= np.pi) and np.asarray(ep.x0).shape == (7, 4) and not np.any(ep.x0)
    np.testing.assert_allclose(task.omegas, [0.6283185, 1.2566371, 1.8849556, 2.5132741], rtol=1e-6)


def test_phases_are_fresh_per_episode_and_probes_fixed():
    task = Tracking()
    a = task.sample_episode(jax.random.PRNGKey(0), 100, jnp.float64).coef
    b = task.sample_episode(jax.random.PRNGKey(1), 100, jnp.float64).coef
    assert not np.allclose(a, b)
    phases = np.arctan2(np.asarray(a)[:, 1::2], np.asarray(a)[:, 0::2])
    assert abs(np.mean(phases)) < 0.5 and np.std(phases) > 1.5  # U(-pi, pi): std pi/sqrt(3) = 1.81
    p1, p2 = task.probe_episode(jnp.float64), task.probe_episode(jnp.float64)
    np.testing.assert_array_equal(p1.exo, p2.exo)
    t = 0.1 * np.arange(300)
    for j, (f, axis, amp) in enumerate(task.components):
        want = np.minimum(t, 1.0) * amp * np.cos(2 * np.pi * f * t + task.probe_phases()[j])
        np.testing.assert_allclose(np.asarray(p1.exo[:, j, axis]), want, atol=1e-12)
        assert not np.any(np.asarray(p1.exo[:, j, 1 - axis]))


def test_ramp_off_and_custom_components():
    task = Tracking(freqs_x=(0.25,), freqs_y=(), amps_x=(1.5,), amps_y=(), ramp=0.0, T=40, dt=0.05)
    ep = task.sample_episode(jax.random.PRNGKey(2), 3, jnp.float64)
    phi = np.arctan2(np.asarray(ep.coef)[:, 1], np.asarray(ep.coef)[:, 0])
    t = 0.05 * np.arange(40)
    np.testing.assert_allclose(np.asarray(ep.exo[..., 0]), 1.5 * np.cos(2 * np.pi * 0.25 * t[:, None] + phi), atol=1e-12)
    assert not np.any(np.asarray(ep.exo[..., 1]))


# ------------------------------------------------------------------------------------------ superposition
def test_superposed_closed_loop_loss_gradient_and_evaluation_equal_the_plain_rollout():
    cfg = _cfg()
    problem, trained, consts = _setup(cfg, scale=0.7)  # a weak controller: the clamp never acts
    plain = dataclasses.replace(problem, strategy="plain")
    assert problem.superposed and not plain.superposed
    key = jax.random.PRNGKey(4)
    params = combine(trained, consts.frozen)
    basis = closed_basis(problem, make_core(problem.spec, params, 0.2))
    ep = problem.task.sample_episode(jax.random.split(key)[0], problem.task.batch, problem.dtype)
    rebuilt = np.einsum("bk,tks->tbs", ep.coef, basis.states)
    assert 1.0 < np.max(np.abs(rebuilt)) < cfg.plant.clamp  # the superposition branch is the one taken
    l1, g1 = _loss_and_grad(problem, trained, consts, key)
    l2, g2 = _loss_and_grad(plain, trained, consts, key)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    _close(g1, g2, 1e-9)
    hyper = consts.hyper
    (t1, m1), (t2, m2) = (jax.jit(p.evaluate)(params, hyper, key, None) for p in (problem, plain))
    np.testing.assert_allclose(float(t1), float(t2), rtol=1e-12)
    np.testing.assert_allclose(m1["probe_loss"], m2["probe_loss"], rtol=1e-11)


def test_superposed_open_loop_loss_and_gradient_equal_the_plain_rollout():
    cfg = _cfg(**{"train.mode": "open_loop_teacher", "teacher.store": "x", "agent.trainable": ["m", "W", "z"]})
    problem, trained, consts = _setup(cfg, scale=1.0)
    teacher = jax.tree.map(lambda a: 0.7 * a, combine(trained, consts.frozen))
    consts = consts._replace(teacher=teacher)
    plain = dataclasses.replace(problem, strategy="plain")
    key = jax.random.PRNGKey(5)
    l1, g1 = _loss_and_grad(problem, trained, consts, key, "open_loop_teacher")
    l2, g2 = _loss_and_grad(plain, trained, consts, key, "open_loop_teacher")
    assert l1 > 1e-6
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    _close(g1, g2, 1e-9)


@pytest.mark.parametrize("scale, sizes", [(1.5, (1, 4)), (1.7, (5, 10))])
def test_episodes_that_meet_the_clamp_are_rolled_out_beside_the_superposition(scale, sizes):
    cfg = _cfg()
    problem, trained, consts = _setup(cfg, scale=scale)  # 3 (scale 1.5) or 8 (1.7) of the 20 episodes reach the clamp
    assert superposition_capacities(problem.task.batch) == (4, 10)  # the partial branches (at most half the batch)
    plain = dataclasses.replace(problem, strategy="plain")
    key = jax.random.PRNGKey(4)
    params = combine(trained, consts.frozen)
    basis = closed_basis(problem, make_core(problem.spec, params, 0.2))
    ep = problem.task.sample_episode(jax.random.split(key)[0], problem.task.batch, problem.dtype)
    outside = np.max(np.abs(np.einsum("bk,tks->tbs", ep.coef, basis.states)), axis=(0, 2)) > cfg.plant.clamp
    assert sizes[0] <= outside.sum() <= sizes[1]  # the partial branch of the second size is the one taken
    q = np.asarray(jnp.einsum("bk,kl,bl->b", ep.coef, basis.gram, ep.coef))
    l1, g1 = _loss_and_grad(problem, trained, consts, key)
    l2, g2 = _loss_and_grad(plain, trained, consts, key)
    assert abs(problem.task.loss_scale * q.mean() - l2) > 1e-5 * l2  # superposition alone would be wrong
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    _close(g1, g2, 1e-9)


@pytest.mark.parametrize("scale, outside", [(1.4, (1, 10)), (1.45, (11, 20))])
def test_teacher_driven_episodes_that_meet_the_clamp_are_rolled_out(scale, outside):
    cfg = _cfg(**{"train.mode": "open_loop_teacher", "teacher.store": "x", "agent.trainable": ["m", "W", "z"]})
    problem, trained, consts = _setup(cfg, scale=1.0)
    teacher = jax.tree.map(lambda a: scale * a, combine(trained, consts.frozen))
    consts = consts._replace(teacher=teacher)
    key = jax.random.PRNGKey(5)
    drive = teacher_drive(problem, make_core(problem.spec, teacher, 0.2))
    ep = problem.task.sample_episode(jax.random.split(key)[0], problem.task.batch, problem.dtype)
    n = np.sum(np.max(np.abs(np.einsum("bk,tks->tbs", ep.coef, drive.x_next)), axis=(0, 2)) > cfg.plant.clamp)
    assert outside[0] <= n <= outside[1]  # 7 episodes: a partial branch; 11: the whole batch
    student = jax.tree.map(lambda a: 0.8 * a, trained)
    l1, g1 = _loss_and_grad(problem, student, consts, key, "open_loop_teacher")
    l2, g2 = _loss_and_grad(dataclasses.replace(problem, strategy="plain"), student, consts, key, "open_loop_teacher")
    superposed = np.einsum("bk,kl,bl->b", ep.coef, np.asarray(_gram_of_imitation(problem, student, consts, drive)), ep.coef)
    assert abs(problem.task.imitation_scale * superposed.mean() - l2) > 1e-4 * l2  # superposition alone would be wrong
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    _close(g1, g2, 1e-9)


def _gram_of_imitation(problem, trained, consts, drive):
    from loopdyn.system import rollout

    core = make_core(problem.spec, combine(trained, consts.frozen), 0.2)
    u = rollout(core, None, exo=drive.inputs, timing=problem.task.timing, emit=("u",)).u - drive.u
    return jnp.einsum("tkd,tld->kl", u, u)


def test_the_plain_rollout_takes_over_when_the_clamp_binds():
    cfg = _cfg()
    problem, trained, consts = _setup(cfg, scale=3.0)  # a strong random controller: most episodes reach the clamp
    plain = dataclasses.replace(problem, strategy="plain")
    key = jax.random.PRNGKey(4)
    params = combine(trained, consts.frozen)
    basis = closed_basis(problem, make_core(problem.spec, params, 0.2))
    ep = problem.task.sample_episode(jax.random.split(key)[0], problem.task.batch, problem.dtype)
    superposed = problem.task.loss_scale * float(jnp.mean(jnp.einsum("bk,kl,bl->b", ep.coef, basis.gram, ep.coef)))
    l1, g1 = _loss_and_grad(problem, trained, consts, key)
    l2, g2 = _loss_and_grad(plain, trained, consts, key)
    assert abs(superposed - l2) > 0.1 * l2  # the unclamped superposition would be wrong here ...
    np.testing.assert_allclose(l1, l2, rtol=1e-13)  # ... and the fallback is the plain rollout itself
    _close(g1, g2, 1e-12)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g1))
    (t1, m1), (t2, m2) = (jax.jit(p.evaluate)(params, consts.hyper, key, None) for p in (problem, plain))
    np.testing.assert_allclose(float(t1), float(t2), rtol=1e-13)
    np.testing.assert_allclose(m1["probe_loss"], m2["probe_loss"], rtol=1e-13)


def test_the_fallback_is_decided_for_all_runs_of_a_vmapped_block():
    from loopdyn.training import RUN_AXIS

    cfg = _cfg()
    problem, trained, consts = _setup(cfg, scale=0.7)
    chunked = dataclasses.replace(problem, run_axis=RUN_AXIS)
    plain = dataclasses.replace(problem, strategy="plain")
    key = jax.random.PRNGKey(4)
    ep = problem.task.sample_episode(key, problem.task.batch, problem.dtype)
    scales = jnp.asarray([1.0, 4.0])  # run 0 fits within the clamp, run 1 does not

    def fits(pb):
        def one(s):
            params = combine(jax.tree.map(lambda a: s * a, trained), consts.frozen)
            return superposition_fits(pb, closed_basis(pb, make_core(pb.spec, params, 0.2)).states, ep.coef)
        return list(np.asarray(jax.jit(jax.vmap(one, axis_name=RUN_AXIS))(scales)))

    assert fits(problem) == [True, False]  # each run on its own ...
    assert fits(chunked) == [False, False]  # ... but in a block all take the plain branch together

    def losses(pb):
        def one(s):
            p = jax.tree.map(lambda a: s * a, trained)
            return MODES["closed_loop"].loss(pb, combine(p, consts.frozen), consts, key)[0]
        return jax.jit(jax.vmap(one, axis_name=RUN_AXIS))(scales)

    np.testing.assert_allclose(losses(chunked), losses(plain), rtol=1e-12)


def test_a_separate_evaluation_equals_the_epochs_own():
    """The open-loop student's closed-loop test and probes, evaluated apart from training 3 epochs at a time
    (as the trainer does on a spare device), equal what each epoch records itself — for a student whose
    closed loop stays within the clamp (scale 0.8: superposition), one whose closed loop meets it (1.6: the
    fallback branches), and a run that has diverged (NaN)."""
    from loopdyn.training import make_chunk, make_evaluation

    cfg = _cfg(**{"train.mode": "open_loop_teacher", "teacher.store": "x", "agent.trainable": ["m", "W", "z"]})
    problem = build_problem(cfg)
    assert problem.separable_evaluation and not build_problem(_cfg()).separable_evaluation
    hyper = HyperParams(**{k: jnp.asarray([cfg.hyper(k)] * 2, problem.dtype) for k in _config.HYPERPARAMETERS})
    states0, consts0 = jax.vmap(lambda seed, h: init_run(problem, seed, h))(jnp.asarray([0, 1]), hyper)
    chunk = jax.jit(make_chunk(problem, None))
    evaluation = make_evaluation(problem, None, batch=3)
    epochs = jnp.arange(3, 10, dtype=jnp.int32)
    for scale in (0.8, 1.6):
        states = states0._replace(params=jax.tree.map(lambda a: scale * a, states0.params))
        consts = consts0._replace(teacher=jax.tree.map(lambda a: 0.7 * a, combine(states.params, consts0.frozen)))
        core = make_core(problem.spec, jax.tree.map(lambda a: a[0], combine(states.params, consts.frozen)), 0.2)
        key = jax.random.fold_in(jax.random.fold_in(consts.key[0], 3), 1)  # epoch 3's evaluation
        episode = concat_episodes(problem.task.test_episode(None, key, problem.dtype), problem.task.probe_episode(problem.dtype))
        assert bool(superposition_fits(problem, closed_basis(problem, core).states, episode.coef)) == (scale < 1)
        _, rec = chunk(states, consts, epochs)
        params = jax.tree.map(lambda a: a.at[1, 5:].set(jnp.nan), rec.params)  # run 1 "diverged" at its 6th epoch
        test, metrics = evaluation(params, consts, epochs)
        want_test, want_probe = np.asarray(rec.test_loss).copy(), np.asarray(rec.metrics["probe_loss"]).copy()
        want_test[1, 5:], want_probe[1, 5:] = np.nan, np.nan
        np.testing.assert_allclose(np.asarray(test), want_test, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(metrics["probe_loss"]), want_probe, rtol=1e-12)


# ------------------------------------------------------------------------------------------ probes
def _deadbeat_tracker(N, omega, dt, alpha):
    """A linear leaky RNN that tracks a sinusoid of frequency `omega` on either axis, given its dynamics:
    it rebuilds the velocity from the last position and action, predicts r[n+1] = 2 cos(omega dt) r[n] - r[n-1]
    and sets u_n so that the position two steps ahead is that prediction (units: last x, last r, last u per axis)."""
    c = np.cos(omega * dt)
    MA, MB, z = np.zeros((N, N)), np.zeros((N, 4)), np.zeros((N, 2))
    for d in range(2):  # axis: input columns d (position) and 2 + d (reference)
        p, q, w = 3 * d, 3 * d + 1, 3 * d + 2
        MB[p, d] = 1.0
        MB[q, 2 + d] = 1.0
        MA[w, q], MA[w, p], MA[w, w] = -1 / dt**2, 2 / dt**2, -2.0
        MB[w, 2 + d], MB[w, d] = 2 * c / dt**2, -3 / dt**2
        z[w, d] = 1.0
    W = (MA - (1 - alpha) * np.eye(N)) / alpha
    return AgentParams(m=jnp.asarray(MB / alpha), z=jnp.asarray(z), W=jnp.asarray(W))


def test_the_probe_of_a_perfect_tracker_is_its_prediction_error_and_near_zero():
    cfg = _cfg()
    problem = build_problem(cfg)
    task = problem.task
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), jnp.float64) for k in _config.HYPERPARAMETERS})
    refs = np.asarray(task.probe_episode(jnp.float64).exo)
    evaluate = jax.jit(problem.evaluate)
    for j, (f, _, _) in enumerate(task.components):
        c = np.cos(2 * np.pi * f * 0.1)
        _, metrics = evaluate(_deadbeat_tracker(cfg.agent.N, 2 * np.pi * f, 0.1, 0.1), hyper, jax.random.PRNGKey(0), None)
        want = []
        for k, (_, axis, _) in enumerate(task.components):  # every probe, tracked with omega_j's prediction
            r = refs[:, k, axis]
            # e_0 = x_1 - r[0]; then x_{n+2} = 2 c r[n] - r[n-1] (r[-1] = 0): e_{n+1} = that minus r[n+1]
            prev = np.concatenate([[0.0], r[:-1]])
            err = np.concatenate([[-r[0]], 2 * c * r[:-1] - prev[:-1] - r[1:]])
            want.append(np.mean(err**2))
        assert want[j] < 2e-3  # its own frequency: only the ramp's first second is mispredicted
        np.testing.assert_allclose(np.asarray(metrics["probe_loss"]), want, rtol=1e-8)


def test_probe_losses_of_a_still_mass_are_the_reference_power():
    cfg = _cfg()
    problem, trained, consts = _setup(cfg)
    params = combine(jax.tree.map(jnp.zeros_like, trained), consts.frozen)  # z = 0: the mass never moves
    _, metrics = jax.jit(problem.evaluate)(params, consts.hyper, jax.random.PRNGKey(0), None)
    K = problem.task.n_components
    refs = np.asarray(problem.task.probe_episode(jnp.float64).exo)  # the K probes, then the phase average's
    power = np.mean(np.sum(refs**2, axis=-1), axis=0)
    want = power[:K]
    np.testing.assert_allclose(np.asarray(metrics["probe_loss"]), want, rtol=1e-12)
    avg = (want + power[K:].reshape(K, -1).sum(axis=1)) / problem.task.phase_probes
    np.testing.assert_allclose(np.asarray(metrics["probe_loss_phase_avg"]), avg, rtol=1e-12)
    np.testing.assert_allclose(want, 2.31**2 / 2, rtol=0.05)  # the variance of the component, up to the ramp


def test_the_phase_averaged_probe_of_a_linear_loop_is_the_mean_over_all_phases():
    """probe_loss_phase_avg (4 phases, by superposition) equals the probe loss averaged over 48 phases rolled out
    one by one, and (L_cos + L_sin)/2 (issue #19); the single-phase probe is not that average."""
    cfg = _cfg(**{"plant.clamp": 0.0})
    problem, trained, consts = _setup(cfg, scale=3.0)
    params = combine(trained, consts.frozen)
    _, metrics = jax.jit(problem.evaluate)(params, consts.hyper, jax.random.PRNGKey(0), None)
    task, K = problem.task, problem.task.n_components
    core = make_core(problem.spec, params, consts.hyper.g)
    phis = np.concatenate([np.linspace(-np.pi, np.pi, 48, endpoint=False), [0.0, -np.pi / 2]])  # then cos, sin
    n = phis.size
    mask = np.repeat(np.eye(K), n, axis=0)  # component-major: K blocks of n phases
    ep = task._episode(jnp.asarray(mask * np.tile(phis, K)[:, None]), jnp.asarray(mask), jnp.float64)
    traj = jax.jit(lambda e: rollout(core, problem.plant, e.x0, task.T, exo=e.exo, timing=task.timing,
                                     emit=task.emit))(ep)
    L = np.asarray(task.probe_losses(traj, ep)).reshape(K, n)
    want, cos_sin = L[:, :-2].mean(axis=1), L[:, -2:].mean(axis=1)
    avg = np.asarray(metrics["probe_loss_phase_avg"])
    np.testing.assert_allclose(avg, want, rtol=1e-9)
    np.testing.assert_allclose(avg, cos_sin, rtol=1e-9)
    assert np.max(np.abs(np.asarray(metrics["probe_loss"]) / avg - 1)) > 1e-3


# ------------------------------------------------------------------------------------------ acquisition
def _staircase(E=1000, drops=(100, 400, 700), plateau=2.6, done=0.5, noise=0.0, seed=0):
    e = np.arange(E)[:, None]
    curves = plateau - (plateau - done) / (1 + np.exp(-(e - np.array(drops)[None]) / 5.0))
    return curves + noise * np.random.default_rng(seed).standard_normal(curves.shape)


def test_acquisition_epochs_of_a_staircase():
    curves = _staircase(noise=0.05)
    a = acquisition_epochs(curves, 1.0, window=20)
    # the trailing mean passes 1.0 about window/2 epochs after the logistic centre's crossing
    crossing = np.array([100, 400, 700]) + 5.0 * np.log((2.6 - 0.5) / (1.0 - 0.5) - 1)
    assert np.all(np.abs(a - (crossing + 10)) <= 4), a
    np.testing.assert_array_equal(acquisition_epochs(curves, [1.0, 1.0, 0.1]), [a[0], a[1], -1])
    m = trailing_mean(np.arange(10.0)[:, None], 3)
    assert np.all(np.isnan(m[:2])) and np.allclose(m[2:, 0], np.arange(1, 9))


def test_interference_is_the_rise_of_an_acquired_curve_at_a_later_acquisition():
    curves = _staircase()
    bump = 0.04 * np.exp(-0.5 * ((np.arange(1000) - 410) / 6.0) ** 2)
    curves[:, 0] += bump  # curve 0 rises while curve 1 is acquired
    a = acquisition_epochs(curves, 1.0, 20)
    inter = interference(curves, a, window=100)
    np.testing.assert_allclose(inter.rise[0, 1], 0.04, atol=2e-3)
    assert abs(inter.epoch[0, 1] - 410) <= 2
    np.testing.assert_allclose(inter.baseline[0, 1], curves[a[1] - 100, 0])
    assert inter.rise[1, 2] < 1e-3 and np.isnan(inter.rise[1, 0]) and np.isnan(inter.rise[0, 0])
    never = interference(curves, np.array([a[0], -1, a[2]]), 100)
    assert np.all(np.isnan(never.rise[:, 1])) and np.all(np.isnan(never.rise[1]))


# ------------------------------------------------------------------------------------------ configuration
def test_eig_within_tolerance_per_checkpoint():
    from loopdyn.experiments.tracking import eig_within

    omega = 2 * np.pi * 0.1  # 0.628: within 10 % means an imaginary part in [0.565, 0.691]
    lam = np.array([[0.1 + 0.3j, 0.1 - 0.3j], [0.2 + 0.56j, 0.2 - 0.56j], [0.2 + 0.6j, 0.2 - 0.6j],
                    [np.nan, np.nan], [0.9 + 0.0j, -0.69j]])
    assert eig_within(lam, omega, 0.1).tolist() == [False, False, True, False, False]
    assert eig_within(lam, omega, 0.2).tolist() == [False, True, True, False, False]


@pytest.mark.parametrize("changes, key", [
    ({"task.freqs_x": [0.1, -0.3]}, "task.freqs_x"),
    ({"task.freqs_y": [0.2, 0.0]}, "task.freqs_y"),
    ({"task.freqs_x": [0.1, 5.0]}, "task.freqs_x"),  # Nyquist 1/(2 dt) = 5 Hz
    ({"task.freqs_x": [], "task.freqs_y": [], "task.amps_x": [], "task.amps_y": []}, "task.freqs_x"),
    ({"task.amps_x": [2.31]}, "task.amps_x"),
    ({"task.amps_y": [2.31, 0.0]}, "task.amps_y"),
    ({"task.freqs_x": [0.1, 0.1]}, "task.freqs_x"),
    ({"task.freqs_x": "fast"}, "task.freqs_x"),
    ({"task.beta": 0.1}, "task.beta"),
    ({"plant.kind": "integrator", "plant.order": 2, "plant.dt": 1.0, "plant.n_observed": 1}, "task.kind"),
])
def test_bad_tracking_settings_are_one_line_errors(changes, key):
    with pytest.raises(ConfigError) as e:
        _cfg(**changes)
    msg = str(e.value)
    assert "\n" not in msg and key in msg


@pytest.mark.parametrize("key, value", [("open_epochs", -1), ("acquisition_fraction", 1.5), ("acquisition_window", 0),
                                        ("interference_window", 0), ("eig_tolerance", 0.0), ("open_trainable", ["W", "q"])])
def test_bad_tracking_analysis_settings_are_one_line_errors(key, value):
    with pytest.raises(ConfigError) as e:
        loopdyn.load_config("tracking-quick", [f"tracking.{key}={json.dumps(value)}"])
    msg = str(e.value)
    assert "\n" not in msg and f"tracking.{key}" in msg


def test_one_axis_may_have_no_reference():
    cfg = _cfg(**{"task.freqs_y": [], "task.amps_y": []})
    task = build_problem(cfg).task
    assert task.n_components == 2 and list(task.axes) == ["x", "x"]


# ------------------------------------------------------------------------------------------ a real run
def test_a_short_closed_loop_run_acquires_omega1_then_omega2(tmp_path):
    """The shipped quick config, shortened: the 0.1 Hz component is acquired before the 0.2 Hz one
    (seed 0: about epochs 210 and 745), with a complex pair of eig(W) near each; then analysis, info, figure."""
    from loopdyn.report import format_table, run_table

    cfg = loopdyn.load_config("tracking-quick", ["epochs=900", "tracking.open_epochs=40", "record.chunk=300"])
    store = loopdyn.train(cfg, tmp_path / "t.zarr", progress=False)
    loopdyn.analyze(store)
    ds = loopdyn.open_run(store)
    a = ds.acquisition_epoch.values[0]
    assert 0 <= a[0] < a[1] < 900 and a[2] == -1, a
    err = ds.acquisition_eig_error.values[0, :2]
    assert np.all(err < 0.1), err
    # ... so the first checkpoint from acquisition with a pair within 10 % is the acquisition's own
    assert np.array_equal(ds.eig_match_epoch.values[0, :2], ds.acquisition_checkpoint.values[0, :2])
    assert ds.probe_loss.dims == ("run", "epoch", "frequency") and ds.sizes["frequency"] == 4
    assert "gains" not in ds and "eigenvalues" not in ds
    # the open phase (one run, a spare device) was evaluated beside training: its records are all there
    assert np.all(np.isfinite(ds.test_loss.values[1, :40])) and np.all(np.isfinite(ds.probe_loss.values[1, :40]))
    m = ds.m.values  # trained in the open phase only: constant over the closed phase's checkpoints
    assert np.array_equal(m[0, 0], m[0, -1]) and np.array_equal(m[0, 0], m[1, 0])
    rows, meta = run_table(store)
    assert rows[0]["acquisition_epochs"][:2] == [int(a[0]), int(a[1])]
    assert rows[0]["eig_match_epochs"][:2] == ds.eig_match_epoch.values[0, :2].tolist()
    assert "acquisition" in format_table(rows, meta)
    figs = loopdyn.figures("tracking", store, tmp_path / "fig")
    assert {p.name for p in figs} == {"fig_6.png", "fig_6.pdf"}
    from _helpers import small_text, text_overlaps  # issue #21.7: no overlapping text, readable in print

    for name, fig in loopdyn.experiments.get("tracking").figures(loopdyn.open_run(store)).items():
        assert text_overlaps(fig) == [] and small_text(fig) == [], name
