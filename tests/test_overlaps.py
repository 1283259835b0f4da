"""Overlap space (Ger & Barak 2026; spec §7): the Gram-matrix step against the explicit N-dimensional step,
the overlap representation in the trainer against the vectors, the gradient flow and its conserved
quantities, the expected loss against Monte Carlo, the impulse task."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import loopdyn
from loopdyn import config as _config
from loopdyn.agents import (
    RANK1_INDEX,
    AgentParams,
    AgentSpec,
    GramLayout,
    balance,
    conserved_quantities,
    effective_core,
    gram_matrix,
    init_params,
    make_core,
)
from loopdyn.cli import app
from loopdyn.optim import descend, init_optimizer, make_optimizer
from loopdyn.plants import double_integrator, integrator
from loopdyn.system import joint_matrix, rollout, state_covariances
from loopdyn.tasks import ImpulseTarget, Regulation
from loopdyn.theory import RANK1, flow_velocity, gradient_flow, gram_episode_loss, overlap_descent


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ------------------------------------------------------------------------------------------ the Gram step
@jax.jit
def _neuron_loss(params, ABC, x0, beta):
    """The `mean` regulation loss by powers of the full (k + N)-dimensional joint matrix (spec §4.1), no reduction."""
    T = 12
    P = joint_matrix(*ABC, params.m, params.U @ params.V.T, params.z)
    k = ABC[0].shape[0]
    s = jnp.concatenate([x0, jnp.zeros((x0.shape[0], params.m.shape[0]))], axis=1)
    xs, us = [], []
    for _ in range(T):
        xs.append(s[:, :k])
        us.append(s[:, k:] @ params.z)
        s = s @ P.T
    xs, us = jnp.stack(xs), jnp.stack(us)
    return jnp.mean(xs**2) + beta * jnp.sum(us**2) / x0.shape[0]


CASES = [  # (plant, rank, trainable, clip, clip_eps)
    (double_integrator(), 1, ("z", "U", "V"), 0.0, 0.0),
    (double_integrator(), 1, ("z", "U", "V"), 1e-3, 0.0),  # clipping active
    (double_integrator(), 1, ("m", "z", "U", "V"), 1e-3, 1e-6),  # the authors' clip convention
    (double_integrator(), 1, ("z",), 1e6, 0.0),  # clip threshold above the norm
    (integrator(3, 1.0, 1, 2), 2, ("m", "U", "V"), 1e-2, 0.0),  # rank 2, two inputs
]


@pytest.mark.parametrize("plant,rank,trainable,clip,clip_eps", CASES)
def test_gram_step_is_the_image_of_the_vector_step(plant, rank, trainable, clip, clip_eps):
    N, T, lr, beta = 30, 12, 0.05, 0.3
    spec = AgentSpec(N, rank, n_in=plant.n_observed, n_out=plant.n_controls, trainable=trainable)
    params = init_params(spec, jax.random.PRNGKey(7), dtype=jnp.float64)
    x0 = jax.random.uniform(jax.random.PRNGKey(8), (16, plant.n_states), jnp.float64, -1, 1)
    # explicit N-dimensional step: autodiff through the neurons, global-norm clip, SGD
    ABC = tuple(jnp.asarray(M) for M in (plant.A, plant.B, plant.C))
    loss_v, grads = jax.value_and_grad(_neuron_loss)(params, ABC, x0, beta)
    norm = np.sqrt(sum(float(jnp.sum(getattr(grads, n) ** 2)) for n in trainable))
    scale = min(1.0, clip / (norm + clip_eps)) if clip > 0 else 1.0
    new = params._replace(**{n: getattr(params, n) - lr * scale * getattr(grads, n) for n in trainable})
    X = np.concatenate([np.asarray(getattr(new, n)) for n in ("m", "z", "U", "V")], axis=1)
    if clip in (1e-3, 1e-2):
        assert scale < 1
    # overlap step: the loss of the Gram matrix through the overlap core, the Gram optimiser
    layout = GramLayout(plant.n_observed, plant.n_controls, rank)
    G = gram_matrix(params)

    def loss_g(G):
        traj = rollout(make_core(spec, AgentParams(G=G)), plant, x0, T)
        return Regulation(plant.n_states, T).train_loss(traj.x, traj.u, beta), None

    opt = make_optimizer("sgd", clip_eps, gram_mask=layout.mask(trainable))
    step = descend(loss_g, G, init_optimizer(opt, G, lr, clip), opt)
    assert float(step.loss) == pytest.approx(float(loss_v), rel=1e-12)
    np.testing.assert_allclose(np.asarray(step.params), X.T @ X, rtol=0, atol=1e-13 * np.max(np.abs(X.T @ X)))


def test_adam_cannot_train_a_gram_matrix():
    with pytest.raises(ValueError, match="rotation-invariant"):
        make_optimizer("adam", gram_mask=np.ones(4))


def test_flow_velocity_is_the_ten_equations_of_the_spec():
    """Spec §7.4 (m fixed) and §7.2 (all trained) written out, with L_ab by autodiff through the 4-D effective model."""
    spec = AgentSpec(40, 1)
    G = np.asarray(gram_matrix(init_params(spec, jax.random.PRNGKey(1), dtype=jnp.float64)))
    x0 = jax.random.uniform(jax.random.PRNGKey(2), (20, 2), jnp.float64, -2, 2)

    def loss_sigma(s):
        traj = rollout(effective_core(s), double_integrator(), x0, 20)
        return Regulation(2, 20).train_loss(traj.x, traj.u, 0.1)

    i = RANK1_INDEX
    o = {a + b: G[i[a], i[b]] for a in i for b in i}
    s = jnp.array([o["zm"], o["zu"], o["vm"], o["vu"]])
    Lzm, Lzu, Lvm, Lvu = np.asarray(jax.grad(loss_sigma)(s))
    loss_G = lambda G: gram_episode_loss(G, x0, 0.1, 20)  # noqa: E731
    fixed = {  # spec §7.4, eta = 1
        "zm": -(o["mm"] * Lzm + o["mu"] * Lzu), "zu": -(o["mu"] * Lzm + (o["uu"] + o["zz"]) * Lzu + o["zv"] * Lvu),
        "vm": -(o["mm"] * Lvm + o["mu"] * Lvu), "vu": -(o["mu"] * Lvm + (o["uu"] + o["vv"]) * Lvu + o["zv"] * Lzu),
        "mu": -(o["zm"] * Lzu + o["vm"] * Lvu), "zv": -(o["vm"] * Lzm + o["vu"] * Lzu + o["zm"] * Lvm + o["zu"] * Lvu),
        "zz": -2 * (o["zm"] * Lzm + o["zu"] * Lzu), "uu": -2 * (o["zu"] * Lzu + o["vu"] * Lvu),
        "vv": -2 * (o["vm"] * Lvm + o["vu"] * Lvu), "mm": 0.0}
    every = {  # spec §7.2
        "zm": -((o["mm"] + o["zz"]) * Lzm + o["mu"] * Lzu + o["zv"] * Lvm),
        "vm": -((o["mm"] + o["vv"]) * Lvm + o["mu"] * Lvu + o["zv"] * Lzm),
        "zu": -((o["uu"] + o["zz"]) * Lzu + o["mu"] * Lzm + o["zv"] * Lvu),
        "vu": -((o["uu"] + o["vv"]) * Lvu + o["mu"] * Lvm + o["zv"] * Lzu),
        "mu": -(o["zm"] * Lzu + o["vm"] * Lvu + o["zu"] * Lzm + o["vu"] * Lvm),
        "zv": -(o["vm"] * Lzm + o["vu"] * Lzu + o["zm"] * Lvm + o["zu"] * Lvu),
        "mm": -2 * (o["zm"] * Lzm + o["vm"] * Lvm), "uu": -2 * (o["zu"] * Lzu + o["vu"] * Lvu),
        "vv": -2 * (o["vm"] * Lvm + o["vu"] * Lvu), "zz": -2 * (o["zm"] * Lzm + o["zu"] * Lzu)}
    for trainable, eqs in ((("z", "U", "V"), fixed), (("m", "z", "U", "V"), every)):
        dG = np.asarray(flow_velocity(loss_G, jnp.asarray(G), RANK1.mask(trainable)))
        for ab, want in eqs.items():
            assert dG[i[ab[0]], i[ab[1]]] == pytest.approx(want, rel=1e-10, abs=1e-12), (trainable, ab)


# ------------------------------------------------------------------------------------------ the trainer
EQUIV = """
name = "equiv"
epochs = 24
seeds = [0, 1]
dtype = "float64"
[task]
T = 30
batch = 32
test_batch = 16
[agent]
N = 30
rank = 1
[train]
lr = 0.02
clip = 1.0
[record]
chunk = 12
[sweep]
"agent.representation" = ["vectors", "overlaps"]
"""


def test_trainer_overlap_representation_reproduces_the_vectors(tmp_path):
    cfg = _config.from_toml_text(EQUIV, source="equiv.toml")
    path = loopdyn.train(cfg, tmp_path / "eq.zarr", progress=False)
    ds = loopdyn.open_run(path)
    assert list(ds.representation.values) == ["vectors", "vectors", "overlaps", "overlaps"]
    names = ["train_loss", "test_loss", "sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu", "sigma_mu", "sigma_zv",
             "sigma_mm", "sigma_zz", "sigma_uu", "sigma_vv", "spectral_radius"]
    for name in names:
        v = ds[name].values
        np.testing.assert_allclose(v[2:], v[:2], rtol=1e-10, atol=1e-13 * np.max(np.abs(v[:2])), err_msg=name)
    np.testing.assert_allclose(ds.gains.values[2:], ds.gains.values[:2], rtol=1e-8, atol=1e-12)
    # the stored Gram matrices are those of the stored vectors; the vector runs have none
    X = np.concatenate([np.broadcast_to(ds.m.values[:2, None], ds.z.values[:2].shape), ds.z.values[:2], ds.U.values[:2],
                        ds.V.values[:2]], axis=-1)
    np.testing.assert_allclose(ds.G.values[2:], np.swapaxes(X, -1, -2) @ X, rtol=1e-10, atol=1e-13)
    assert np.all(np.isnan(ds.G.values[:2])) and np.all(np.isnan(ds.z.values[2:]))
    # info and the overview figure read it unchanged
    res = CliRunner().invoke(app, ["info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["runs"]
    assert len(rows) == 4 and rows[2]["final_train_loss"] == pytest.approx(rows[0]["final_train_loss"], rel=1e-10)
    assert any(p.suffix == ".png" for p in loopdyn.figures("training", path, tmp_path / "figs"))


def test_overlaps_at_large_N_reproduce_the_vectors(tmp_path):
    text = EQUIV.replace("N = 30", "N = 10000").replace("epochs = 24", "epochs = 6").replace("chunk = 12", "chunk = 6")
    path = loopdyn.train(_config.from_toml_text(text, source="big.toml"), tmp_path / "big.zarr", progress=False)
    ds = loopdyn.open_run(path)
    for name in ("train_loss", "sigma_zm", "sigma_vu", "sigma_uu"):
        v = ds[name].values
        np.testing.assert_allclose(v[2:], v[:2], rtol=1e-10, atol=1e-13 * np.max(np.abs(v[:2])), err_msg=name)


def test_adam_with_overlaps_is_refused_on_the_command_line(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(EQUIV.replace('[sweep]\n"agent.representation" = ["vectors", "overlaps"]\n', ""))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["train", str(cfg), "--out", str(out), "--set", "agent.representation='overlaps'",
                                   "--set", "train.optimizer='adam'"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "train.optimizer" in lines[0] and "rotation-invariant" in lines[0], res.output
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("patch,needle", [
    (("N = 30", 'N = 30\nactivation = "tanh"'), "agent.representation = 'overlaps' needs a linear low-rank"),
    (("[task]", '[plant]\nnoise = 0.1\n[task]\nobjective = "expected"'), "task.objective = 'expected' has a closed form"),
    (("[train]", '[train]\nmode = "open_loop_target"'), "task.kind"),
])
def test_bad_combinations_are_one_line_errors(patch, needle):
    text = EQUIV.replace(*patch, 1)
    with pytest.raises(loopdyn.ConfigError, match=needle):
        _config.from_toml_text(text, source="bad.toml")


# ------------------------------------------------------------------------------------------ gradient flow
@pytest.fixture(scope="module")
def flow_setup():
    with jax.enable_x64(True):
        spec = AgentSpec(100, 1)
        G0 = gram_matrix(init_params(spec, jax.random.PRNGKey(3), over=-0.02, dtype=jnp.float64))
        x0 = Regulation(2, objective="expected").population_x0(jnp.float64)
        return G0, (lambda G: gram_episode_loss(G, x0, 0.0, 50))


@pytest.mark.parametrize("trainable", [("z", "U", "V"), ("m", "z", "U", "V")])
def test_gradient_flow_conserves_its_invariants(flow_setup, trainable):
    G0, loss = flow_setup
    flow = gradient_flow(loss, G0, RANK1.mask(trainable), 0.5, clip=1.0, rtol=1e-10, atol=1e-12)
    assert flow.loss[-1] < flow.loss[0] / 5
    inv = conserved_quantities(flow.G, RANK1, trainable)
    assert np.max(np.abs(inv - inv[0])) < 1e-9
    assert np.max(np.abs(flow.G - flow.G[0])) > 0.1  # while the overlaps themselves move
    b = balance(flow.G, RANK1, trainable)
    i = RANK1_INDEX
    g = flow.G
    if "m" in trainable:  # spec §7.2: |z|^2 + |v|^2 - |m|^2 - |u|^2
        want = g[:, i["z"], i["z"]] + g[:, i["v"], i["v"]] - g[:, i["m"], i["m"]] - g[:, i["u"], i["u"]]
    else:  # m fixed: |z|^2 + |v|^2 - |u|^2 - (s_zm^2 + s_vm^2 - s_mu^2) / |m|^2
        want = (g[:, i["z"], i["z"]] + g[:, i["v"], i["v"]] - g[:, i["u"], i["u"]]
                - (g[:, i["z"], i["m"]] ** 2 + g[:, i["v"], i["m"]] ** 2 - g[:, i["m"], i["u"]] ** 2) / g[:, i["m"], i["m"]])
    np.testing.assert_allclose(b, want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(flow.solution.evaluate(0.25)), flow.G[50], rtol=1e-8, atol=1e-10)


STAGE3 = np.array([[0.28028052, -0.29262973, 0.05261905, 0.25394259],  # m, z, u, v of a stable agent (the flow of
                   [-0.29262973, 0.54299, 0.52189502, -0.13088008],  # `flow_setup` at time 1): in stage 3 the
                   [0.05261905, 0.52189502, 1.41669133, 0.44540708],  # curvature is small enough for lr = 4e-3
                   [0.25394259, -0.13088008, 0.44540708, 1.22851667]])


def test_sgd_approaches_the_flow_at_first_order(flow_setup):
    _, loss = flow_setup
    mask = RANK1.mask(("z", "U", "V"))
    start = jnp.asarray(STAGE3)
    end = gradient_flow(loss, start, mask, 0.4, rtol=1e-11, atol=1e-13).G[-1]
    errors = []
    for lr in (0.004, 0.002, 0.001):
        trail, _ = overlap_descent(loss, start, mask, lr=lr, steps=int(round(0.4 / lr)))
        errors.append(np.max(np.abs(np.asarray(trail[-1]) - end)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.05)


# ------------------------------------------------------------------------------------------ expected loss
@pytest.mark.parametrize("dist,loss", [("uniform", "mean"), ("gaussian", "mean"), ("uniform", "sum")])
def test_expected_loss_is_the_monte_carlo_mean(dist, loss):
    plant = double_integrator()
    spec = AgentSpec(40, 1)
    params = init_params(spec, jax.random.PRNGKey(4), over=-0.05, dtype=jnp.float64)
    beta, T = 0.2, 30
    core = make_core(spec, params)
    task = Regulation(2, T, batch=50, x0_range=1.5, loss=loss, objective="expected", x0_distribution=dist)
    episode = task.train_episode(None, jnp.float64)  # the k quadrature states standing for the batch
    traj = rollout(core, plant, episode.x0, T)
    expected = float(task.episode_loss(traj, episode, beta))
    # closed form of spec §3.1 averaged over x0: sums of P^t Sigma_0 P^t^T of the full joint matrix
    P = joint_matrix(plant.A, plant.B, plant.C, params.m, params.U @ params.V.T, params.z)
    S0 = np.zeros(P.shape)
    S0[:2, :2] = task.x0_variance * np.eye(2)
    S = np.asarray(state_covariances(P, S0, T))
    ex2 = np.trace(S[:, :2, :2], axis1=1, axis2=2)
    eu2 = np.einsum("i,tij,j->t", np.asarray(params.z[:, 0]), S[:, 2:, 2:], np.asarray(params.z[:, 0]))
    closed = ex2.sum() / (2 * T) + beta * eu2.sum() if loss == "mean" else ex2.sum() / 2 + beta * task.batch * eu2.sum()
    assert expected == pytest.approx(closed, rel=1e-11)
    # Monte Carlo: the sampled loss of 4000 batches of 50
    sampled = Regulation(2, T, batch=50, x0_range=1.5, loss=loss, x0_distribution=dist)

    def one(key):
        tr = rollout(core, plant, sampled.train_x0(key, jnp.float64), T)
        return sampled.train_loss(tr.x, tr.u, beta)

    mc = np.asarray(jax.lax.map(one, jax.random.split(jax.random.PRNGKey(5), 4000)))
    se = mc.std(ddof=1) / np.sqrt(len(mc))
    assert se < 0.01 * expected  # a tight bound
    assert abs(mc.mean() - expected) < 4 * se


def test_expected_objective_trains_identically_in_both_representations(tmp_path):
    text = EQUIV.replace("[task]", '[task]\nobjective = "expected"\nx0_distribution = "gaussian"', 1).replace(
        "epochs = 40", "epochs = 20")
    ds = loopdyn.open_run(loopdyn.train(_config.from_toml_text(text, source="e.toml"), tmp_path / "e.zarr", progress=False))
    v = ds.train_loss.values
    np.testing.assert_allclose(v[2:], v[:2], rtol=1e-10)
    # noise-free: the loss of a seed is the same function of its parameters every epoch
    task = Regulation(2, 30, batch=32, objective="expected", x0_distribution="gaussian")
    params = AgentParams(G=ds.G.values[2, 5])
    traj = rollout(make_core(AgentSpec(30, 1, representation="overlaps"), params), double_integrator(),
                   task.population_x0(jnp.float64), 30)
    assert float(task.train_loss(traj.x, traj.u, 0.0)) == pytest.approx(v[2, 5], rel=1e-12)
    assert "expectation over x0 ~ N(0, a^2)" in ds.attrs["train_loss_definition"]


# ------------------------------------------------------------------------------------------ impulse task, memory
def test_impulse_response_starts_at_sigma_zm_in_both_representations():
    spec = AgentSpec(50, 1, alpha=0.05, init="unit", trainable=("m", "z", "U", "V"))
    params = init_params(spec, jax.random.PRNGKey(0), dtype=jnp.float64)
    np.testing.assert_allclose([float(jnp.sum(params.m**2)), float(jnp.sum(params.V**2))], 1.0, rtol=1e-12)
    task = ImpulseTarget(2, T=100, dt=0.05, decay=0.2)
    outs = []
    for p, sp in ((params, spec), (AgentParams(G=gram_matrix(params)), AgentSpec(50, 1, alpha=0.05, representation="overlaps"))):
        outs.append(np.asarray(rollout(make_core(sp, p), None, exo=task.inputs(1, jnp.float64), timing="immediate",
                                       emit=("u",)).u[:, 0, 0]))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-10, atol=1e-14)
    assert outs[0][0] == pytest.approx(float(params.z[:, 0] @ params.m[:, 0]), rel=1e-12)  # h_1 = alpha/dt m = m


def test_invisible_memory_short_run(tmp_path):
    overrides = ["task.T=60", "invisible_memory.first_epochs=40", "invisible_memory.detours=[0.4]",
                 "invisible_memory.detour_epochs=20", "invisible_memory.noise_epochs=30",
                 "invisible_memory.settle_epochs=20", "invisible_memory.new_epochs=20", "record.chunk=10"]
    cfg = loopdyn.load_config("invisible-memory", overrides)
    path = loopdyn.train(cfg, tmp_path / "mem.zarr", progress=False)
    summary = loopdyn.analyze(path)
    ds = loopdyn.open_run(path)
    phases = [str(p) for p in ds["phase"].values]
    assert phases == ["A", "B:detour-1", "B:noise", "B", "A:new", "B:new"]
    # the histories share their first 40 epochs; each continuation starts where the previous phase ended
    np.testing.assert_array_equal(ds.G.values[1, 0], ds.G.values[0, 40])
    np.testing.assert_array_equal(ds.G.values[3, 0], ds.G.values[2, 29])
    np.testing.assert_array_equal(ds.G.values[5, 0], ds.G.values[3, 19])
    numbers = loopdyn.store.read_analysis(ds)["numbers"]["memory"][0]
    assert numbers["theory_vs_trainer_max_rel_dev"] < 1e-12
    # a chimera computes the function of the history whose visible overlaps it has
    c, d = ds.chimera_train_loss.values[5, :, 0]
    assert c == pytest.approx(ds.train_loss.values[4, 0], rel=1e-10)
    assert d == pytest.approx(ds.train_loss.values[5, 0], rel=1e-10)
    assert "invisible memory" in summary
    assert any(p.name == "memory.png" for p in loopdyn.figures("invisible-memory", path, tmp_path / "figs"))
    from _helpers import small_text, text_overlaps  # issue #21.7: no overlapping text, readable in print

    for name, fig in loopdyn.experiments.get("invisible-memory").figures(loopdyn.open_run(path)).items():
        assert text_overlaps(fig) == [] and small_text(fig) == [], name
