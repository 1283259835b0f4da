"""Open-loop (teacher-student) training modes, bad teachers, and the closed-vs-open experiment (spec §3.3, §6.6).

Losses are checked against NumPy re-computations of the reference's imitation MSE
`dt sum_t mean_{b,j} (u_student - u_teacher)^2`; bad teachers through the CLI (exit code 2, one line).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

import loopdyn
from loopdyn import config as _config
from loopdyn.experiments import get as get_experiment
from loopdyn.agents import AgentParams, combine
from loopdyn.cli import app
from loopdyn.store import open_run
from loopdyn.training import MODES, HyperParams, build_problem, init_run

runner = CliRunner()

TANH = {
    "name": "tiny-tanh", "epochs": 6, "seeds": [0], "dtype": "float64",
    "task": {"T": 9, "batch": 5, "test_batch": 4, "x0_range": 1.0, "loss": "sum", "beta": 0.005},
    "agent": {"N": 7, "rank": 0, "activation": "tanh", "g": 0.3, "init": "rnn", "trainable": ["m", "W", "z"]},
    "record": {"chunk": 6},
}


def _cfg(mode="closed_loop", plant=None, **teacher):
    d = json.loads(json.dumps(TANH))
    d["train"] = {"mode": mode}
    if plant:
        d["plant"] = plant
    if teacher:
        d["teacher"] = teacher
    return _config.from_dict(d, source="<test>")


def _setup(cfg, seed=0):
    """Problem, trained parameters and constants (hp) of a fresh run, as the trainer builds them."""
    problem = build_problem(cfg)
    hyper = HyperParams(**{k: jnp.asarray(cfg.hyper(k), problem.dtype) for k in _config.HYPERPARAMETERS})
    state, consts = init_run(problem, seed, hyper)
    return problem, combine(state.params, consts.frozen), consts


def _loss(mode, problem, params, consts, teacher, key):
    return MODES[mode].loss(problem, params, consts._replace(teacher=teacher), key)[0]


def _numpy_rnn(p, g):
    """`(readout, update)` of the tanh RNN in NumPy, column-vector maths of spec §2.1 on row batches."""
    m, W, z = (np.asarray(getattr(p, k), np.float64) for k in ("m", "W", "z"))
    return (lambda h: h @ z), (lambda h, y: np.tanh(h @ W.T + y @ m.T))


def _perturbed(params, key, scale=0.05):
    present = params.present()
    keys = jax.random.split(key, len(present))
    return AgentParams(**{k: v + scale * jax.random.normal(kk, v.shape, v.dtype)
                          for (k, v), kk in zip(sorted(present.items()), keys)})


# ------------------------------------------------------------------------------------------ white noise
def test_white_noise_loss_is_independent_of_the_plant_and_matches_numpy():
    key = jax.random.PRNGKey(3)
    cfgs = [_cfg("open_loop_noise", store="x"),
            _cfg("open_loop_noise", {"kind": "integrator", "order": 3}, store="x"),
            _cfg("open_loop_noise", {"kind": "integrator", "order": 1}, store="x")]
    problem0, params, consts = _setup(cfgs[0])
    teacher = _perturbed(params, jax.random.PRNGKey(7), 0.3)
    losses = []
    for cfg in cfgs:
        problem, p, _ = _setup(cfg)
        for k in ("m", "W", "z"):  # the same student on every plant
            np.testing.assert_array_equal(getattr(p, k), getattr(params, k))
        losses.append(float(_loss("open_loop_noise", problem, params, consts, teacher, key)))
    assert losses[0] == losses[1] == losses[2]
    # the same value from scratch: xi ~ N(0, 1) fed to both nets at every t = 0..T-1, h_{-1} = 0
    T, B = cfgs[0].task.T, cfgs[0].task.batch
    xi = np.asarray(jax.random.normal(key, (T, B, 1), problem0.dtype))
    (rs, us_), (rt, ut_) = _numpy_rnn(params, 0.3), _numpy_rnn(teacher, 0.3)
    hs = ht = np.zeros((B, cfgs[0].agent.N))
    total = 0.0
    for t in range(T):
        hs, ht = us_(hs, xi[t]), ut_(ht, xi[t])
        total += np.mean((rs(hs) - rt(ht)) ** 2)
    np.testing.assert_allclose(losses[0], total, rtol=1e-12)
    assert total > 1e-6


@pytest.mark.parametrize("mode", ["open_loop_noise", "open_loop_teacher"])
def test_student_initialised_as_teacher_has_zero_loss_and_zero_gradient(mode):
    problem, params, consts = _setup(_cfg(mode, store="x"))
    trained = _perturbed(params, jax.random.PRNGKey(1), 0.2)  # a non-trivial network
    fn = lambda p: _loss(mode, problem, p, consts, trained, jax.random.PRNGKey(5))  # noqa: E731
    loss, grads = jax.value_and_grad(fn)(trained)
    assert float(loss) == 0.0
    for name, g in grads.present().items():
        assert np.all(np.asarray(g) == 0.0), name
    # and a different student has a positive loss with a non-zero gradient
    other = _perturbed(trained, jax.random.PRNGKey(2), 0.05)
    loss, grads = jax.value_and_grad(fn)(other)
    assert float(loss) > 0 and any(np.any(np.asarray(g) != 0) for g in grads.present().values())


# ------------------------------------------------------------------------------------------ teacher-driven
def _numpy_teacher_driven(problem, student, teacher_act, key, T, B):
    """Plant driven by the teacher from x_0 (u_0 = 0 for both), the student updated with y_t = C x_t."""
    plant = problem.plant
    A, Bm, C = (np.asarray(M, np.float64) for M in (plant.A, plant.B, plant.C))
    k_x, _ = jax.random.split(key)
    x = np.asarray(problem.task.sample_x0(k_x, B, problem.dtype), np.float64)
    readout, update = _numpy_rnn(student, 0.3)
    hs = np.zeros((B, np.shape(student.W)[0]))
    h_t = None
    u_t = np.zeros((B, 1))
    total = 0.0
    for t in range(T):
        total += np.mean((readout(hs) - u_t) ** 2)
        x = x @ A.T + u_t @ Bm.T
        y = x @ C.T
        hs = update(hs, y)
        u_t, h_t = teacher_act(x, y, h_t)
    return total


def test_teacher_driven_loss_matches_numpy():
    cfg = _cfg("open_loop_teacher", store="x")
    problem, params, consts = _setup(cfg)
    teacher = _perturbed(params, jax.random.PRNGKey(11), 0.4)
    key = jax.random.PRNGKey(4)
    loss = float(_loss("open_loop_teacher", problem, params, consts, teacher, key))
    t_read, t_update = _numpy_rnn(teacher, 0.3)

    def teacher_act(x, y, h):
        h = t_update(np.zeros((x.shape[0], cfg.agent.N)) if h is None else h, y)
        return t_read(h), h

    ref = _numpy_teacher_driven(problem, params, teacher_act, key, cfg.task.T, cfg.task.batch)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    assert ref > 1e-8


def test_static_gain_teacher_loss_matches_numpy():
    K = ((-0.4, -1.1),)
    cfg = _cfg("open_loop_gain", K=K)
    problem, params, consts = _setup(cfg)
    student = _perturbed(params, jax.random.PRNGKey(12), 0.3)
    key = jax.random.PRNGKey(6)
    teacher = jnp.asarray(K, problem.dtype)
    loss = float(_loss("open_loop_gain", problem, student, consts, teacher, key))
    Kn = np.asarray(K)
    ref = _numpy_teacher_driven(problem, student, lambda x, y, h: (x @ Kn.T, h), key, cfg.task.T, cfg.task.batch)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    # the gradient is that of the NumPy loss (central differences along a random direction)
    direction = _perturbed(jax.tree.map(jnp.zeros_like, student), jax.random.PRNGKey(13), 1.0)
    grads = jax.grad(lambda p: _loss("open_loop_gain", problem, p, consts, teacher, key))(student)
    eps = 1e-6
    plus = jax.tree.map(lambda a, d: np.asarray(a) + eps * np.asarray(d), student, direction)
    minus = jax.tree.map(lambda a, d: np.asarray(a) - eps * np.asarray(d), student, direction)
    fd = (_numpy_teacher_driven(problem, plus, lambda x, y, h: (x @ Kn.T, h), key, cfg.task.T, cfg.task.batch)
          - _numpy_teacher_driven(problem, minus, lambda x, y, h: (x @ Kn.T, h), key, cfg.task.T, cfg.task.batch)) / (2 * eps)
    analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
    np.testing.assert_allclose(analytic, fd, rtol=1e-6)


# ------------------------------------------------------------------------------------------ bad teachers (CLI)
def _plant_lines(text, kind):
    """The double integrator has no `order` parameter (it is the integrator of order 2)."""
    return text.replace("order = 2\n", "") if kind == "double_integrator" else text


TEACHER = """
name = "teacher"
epochs = 6
seeds = [0]
[plant]
kind = "{kind}"
order = {order}
[task]
T = 8
batch = 4
test_batch = 4
[agent]
N = 8
rank = 1
[record]
chunk = 6
checkpoint = "every:4"
"""

STUDENT = """
name = "student"
epochs = 4
seeds = [{seed}]
[plant]
kind = "{kind}"
order = {order}
[task]
T = 8
batch = 4
test_batch = 4
[agent]
N = {N}
rank = 1
[train]
mode = "open_loop_noise"
[teacher]
store = "{store}"
run = {run}
epoch = {epoch}
[record]
chunk = 4
"""


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two one-run teacher stores (checkpoints at epochs 0, 4, 5): a double integrator and a 3rd-order integrator."""
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for kind, order in (("double_integrator", 2), ("integrator", 3)):
        cfg = root / f"{kind}.toml"
        cfg.write_text(_plant_lines(TEACHER.format(kind=kind, order=order), kind))
        res = runner.invoke(app, ["train", str(cfg), "--out", str(root / kind), "--quiet"])
        assert res.exit_code == 0, res.output
        out[kind] = root / kind / "teacher.zarr"
    # a store whose configuration no longer describes a plant: not a linear-plant controller
    import shutil

    broken = root / "no-plant.zarr"
    shutil.copytree(out["double_integrator"], broken)
    group = zarr.open_group(str(broken), mode="r+")
    cfg = json.loads(group.attrs["config"])
    del cfg["plant"]
    group.attrs["config"] = json.dumps(cfg)
    out["no-plant"] = broken
    (root / "empty").mkdir()
    out["empty"] = root / "empty"
    return out


def _student(tmp_path, store, *, N=8, run=-1, epoch=-1, seed=0, kind="double_integrator", order=2):
    p = tmp_path / "student.toml"
    p.write_text(_plant_lines(STUDENT.format(store=store, N=N, run=run, epoch=epoch, seed=seed, kind=kind, order=order), kind))
    return p


BAD_TEACHERS = [
    (dict(N=10), "double_integrator", ("teacher.store", "agent.N = 8", "same architecture")),
    (dict(run=3), "double_integrator", ("teacher.run = 3", "runs 0..0")),
    (dict(seed=5), "double_integrator", ("teacher.run = -1", "seed 5")),
    (dict(epoch=2), "double_integrator", ("teacher.epoch = 2", "not a stored checkpoint", "[0, 4, 5]")),
    (dict(epoch=9), "double_integrator", ("teacher.epoch = 9", "beyond")),
    (dict(), "integrator", ("teacher.store", "'integrator' (dt = 1.0, order = 3", "same plant")),
    (dict(kind="integrator", order=2), "integrator", ("teacher.store", "order = 3", "order = 2")),
    (dict(), "no-plant", ("teacher.store", "not hold a controller of a plant")),
    (dict(), "empty", ("teacher.store", "not a loopdyn store")),
]


@pytest.mark.parametrize("student,teacher,needles", BAD_TEACHERS)
def test_bad_teacher_is_one_line_exit_2(tmp_path, teachers, student, teacher, needles):
    cfg = _student(tmp_path, teachers[teacher], **student)
    out = tmp_path / "out"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("loopdyn: error: ") and "student.toml" in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    # nothing trained: no completed epoch anywhere
    assert not any(p.name == "state" for p in out.rglob("*"))


@pytest.mark.parametrize("student,teacher", [(dict(N=10), "double_integrator"), (dict(), "integrator")])
def test_bad_teacher_writes_nothing(tmp_path, teachers, student, teacher):
    out = tmp_path / "out"
    res = runner.invoke(app, ["train", str(_student(tmp_path, teachers[teacher], **student)), "--out", str(out), "--quiet"])
    assert res.exit_code == 2, res.output
    assert not out.exists() or not any(out.iterdir())


def test_good_teacher_trains_and_figures_refuse_a_store_without_pairs(tmp_path, teachers):
    store = teachers["double_integrator"]
    res = runner.invoke(app, ["train", str(_student(tmp_path, store, epoch=4)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    ds = open_run(tmp_path / "o" / "student.zarr")
    assert [str(m) for m in ds["phase"].values] == ["ensemble"]
    assert [str(m) for m in ds["training_mode"].values] == ["open_loop_noise"]
    assert np.all(np.isfinite(ds.test_loss.values)) and np.all(np.isfinite(ds.gains.values))
    res = runner.invoke(app, ["figures", "closed-vs-open", str(store), "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "not of 'closed-vs-open'" in res.output
    assert not (tmp_path / "f").exists()


# ------------------------------------------------------------------------------------------ the experiment
def test_closed_vs_open_short_run_and_figures(tmp_path):
    cfg = _config.load("closed-vs-open", ["epochs=60", "agent.N=24", "task.batch=32", "record.chunk=30"], "0..1")
    path = loopdyn.train(cfg, tmp_path / "cvo.zarr", progress=False)
    ds = open_run(path)
    modes = [str(m) for m in ds["phase"].values]
    seeds = [int(s) for s in ds["seed"].values]
    assert sorted(zip(modes, seeds)) == [("closed", 0), ("closed", 1), ("open", 0), ("open", 1)]
    for s in (0, 1):
        o = next(i for i, (m, ss) in enumerate(zip(modes, seeds)) if m == "open" and ss == s)
        c = next(i for i, (m, ss) in enumerate(zip(modes, seeds)) if m == "closed" and ss == s)
        for name in ("m", "W", "z"):  # identical initial weights
            np.testing.assert_array_equal(ds[name].isel(run=c, checkpoint=0).values, ds[name].isel(run=o, checkpoint=0).values)
        np.testing.assert_allclose(ds.test_loss.values[o, 0], ds.test_loss.values[c, 0], rtol=1e-6)
        np.testing.assert_allclose(ds.gains.values[o, 0], ds.gains.values[c, 0], rtol=1e-5, atol=1e-7)
        # both learn in closed-loop terms at first (stage 1), the student from imitation alone
        assert ds.test_loss.values[c, 59] < ds.test_loss.values[c, 0] / 3
        assert np.nanmin(ds.test_loss.values[o, :60]) < ds.test_loss.values[o, 0] / 3
    assert ds.attrs["test_loss_definition"] == "closed-loop test loss sum_t mean_b ||x_t||^2"
    paths = loopdyn.figures("closed-vs-open", path, tmp_path / "figures")
    assert sorted(p.name for p in paths) == ["fig_1c.pdf", "fig_1c.png", "fig_2.pdf", "fig_2.png"]
    from _helpers import small_text, text_overlaps  # issue #21.7: no overlapping text, readable in print

    for name, fig in get_experiment("closed-vs-open").figures(loopdyn.open_run(path)).items():
        assert text_overlaps(fig) == [] and small_text(fig) == [], name
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF"), p
        assert p.stat().st_size > 10_000
