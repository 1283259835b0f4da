"""Open parts: a user's plant, loss term and experiment are each one file outside loopdyn, named in TOML by
import path, found in any process (train, resume, info, analyze, figures), checked before use, and their
numbers hold against independent computations (numpy, scipy)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad_vec, solve_ivp
from scipy.linalg import expm

import loopdyn
from loopdyn import config as cfg_mod
from loopdyn.errors import ConfigError
from loopdyn.plants import LinearPlant, Plant
from loopdyn.system import rollout
from loopdyn.training import build_problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
F64 = jnp.float64

# The examples, shortened: (toml, overrides, epochs of the interrupted first process)
SHORT = {
    "oscillator": (["epochs=40", "record.chunk=10"], 20),
    "pendulum": (["epochs=30", "task.batch=32", "task.test_batch=16", "record.chunk=10"], 10),
    "velocity_penalty": (["epochs=30", "record.chunk=10"], None),
    "curriculum": (["curriculum.phase_epochs=[10, 10, 10]", "record.chunk=5"], 10),  # stopped after phase 1
    "dale_rnn": (["epochs=30", "record.chunk=10"], 10),
}


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("XLA_FLAGS", None)  # the CLI chooses its own host devices
    return env


def _python(script: str, cwd: Path) -> str:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=_env(), capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def user_stores(tmp_path_factory):
    """Every example trained from its TOML in one fresh process, interrupted half-way (the velocity example
    by the `loopdyn` console script, complete), then resumed, inspected, analysed and drawn by the CLI in
    another fresh process. Returns `(stores, output of the second process)`."""
    out = tmp_path_factory.mktemp("user-parts")
    stores = {}
    for name, (overrides, stop) in SHORT.items():
        if name == "velocity_penalty":
            continue
        cfg = cfg_mod.load(EXAMPLES / f"{name}.toml", overrides)
        stores[name] = out / f"{cfg.name}.zarr"
    _python(f"""
        import loopdyn
        from loopdyn.errors import Interrupted
        for name, (overrides, stop) in {SHORT!r}.items():
            if name == "velocity_penalty":
                continue
            cfg = loopdyn.load_config("{EXAMPLES}/" + name + ".toml", overrides)
            loopdyn.train(cfg, "{out}/" + cfg.name + ".zarr", progress=False, stop_after=stop)
        """, out)
    overrides = [a for o in SHORT["velocity_penalty"][0] for a in ("--set", o)]
    res = subprocess.run(["loopdyn" if os.name != "nt" else "loopdyn.exe", "train", str(EXAMPLES / "velocity_penalty.toml"),
                          *overrides, "--out", str(out), "--quiet"], cwd=out, env=_env(), capture_output=True, text=True,
                         timeout=600, executable=str(Path(sys.executable).with_name("loopdyn")))
    assert res.returncode == 0, res.stdout + res.stderr
    stores["velocity_penalty"] = out / "velocity-penalty.zarr"
    for s in stores.values():
        assert s.is_dir()
    for name in ("oscillator", "pendulum", "curriculum", "dale_rnn"):
        assert not loopdyn.store.read_progress(stores[name])["complete"], name
    text = _python(f"""
        from typer.testing import CliRunner
        from loopdyn.cli import app
        r = CliRunner()
        for store in {[str(s) for s in stores.values()]!r}:
            for args in (["train", "--resume", store, "--quiet"], ["info", store], ["analyze", store],
                         ["figures", "training", store]):
                res = r.invoke(app, args)
                assert res.exit_code == 0, (args, res.output)
                print(res.output)
        """, out)
    return stores, text


def test_info_and_check_import_no_user_code_and_a_missing_part_is_one_line(user_stores):
    """Without the examples on the path: `info` and `check` read the store as it is; `analyze`, which needs the
    plant, names the missing module in one line (exit 2)."""
    store = user_stores[0]["pendulum"]
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.pop("PYTHONPATH", None)
    loopdyn_cli = str(Path(sys.executable).with_name("loopdyn"))
    for args in (["info", str(store)], ["check", str(store)]):
        res = subprocess.run([loopdyn_cli, *args], env=env, capture_output=True, text=True, timeout=300, cwd=store.parent)
        assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([loopdyn_cli, "analyze", str(store)], env=env, capture_output=True, text=True, timeout=300,
                         cwd=store.parent)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, lines
    assert "module 'examples' is not installed or not on the Python path" in lines[0]


def test_user_parts_train_resume_analyse_and_draw_in_fresh_processes(user_stores):
    stores, text = user_stores
    for name, store in stores.items():
        ds = loopdyn.open_run(store)
        assert ds.attrs["complete"], name
        assert np.all(np.isfinite(ds.train_loss.values)), name
        assert (store.parent / "figures" / f"{store.stem}-training.png").is_file()
    # the store records each part by the name it was found by
    assert loopdyn.open_run(stores["pendulum"]).attrs["config"]["plant"]["kind"] == "examples.pendulum:Pendulum"
    assert loopdyn.open_run(stores["curriculum"]).attrs["experiment"] == "examples.curriculum:Curriculum"
    assert "analysis of" in text and "nonlinear loops: spectra of P at the Newton fixed point" in text


def _oscillator_matrices(omega, zeta, dt):
    """A, B, C of the damped oscillator, independently of examples/oscillator.py: A by eigendecomposition of the
    continuous matrix, B = int_0^dt e^{Ac s} ds Bc by adaptive quadrature."""
    Ac = np.array([[0.0, 1.0], [-(omega**2), -2 * zeta * omega]])
    lam, V = np.linalg.eig(Ac)
    Vi = np.linalg.inv(V)

    def E(s):
        return np.real(V @ np.diag(np.exp(lam * s)) @ Vi)

    B = quad_vec(lambda s: E(s) @ np.array([[0.0], [1.0]]), 0.0, dt, epsabs=1e-13)[0]
    return E(dt), B, np.array([[1.0, 0.0]])


def test_user_linear_plant_records_the_spectrum_of_its_joint_matrix(user_stores):
    ds = loopdyn.open_run(user_stores[0]["oscillator"])
    plant = ds.attrs["config"]["plant"]
    A, B, C = _oscillator_matrices(plant["omega"], plant["zeta"], plant["dt"])
    m = ds.m.values.astype(np.float64)
    for run in range(ds.sizes["run"]):
        for e in (0, 17, ds.sizes["epoch"] - 1):
            z, U, V = (ds[k].values[run, e].astype(np.float64) for k in ("z", "U", "V"))
            P = np.block([[A, B @ z.T], [m[run] @ C @ A, U @ V.T + m[run] @ C @ B @ z.T]])
            lam = np.linalg.eigvals(P)
            stored = ds.eigenvalues.values[run, e]
            stored = stored[np.isfinite(stored)]
            # the recorded spectrum is that of the reduced P (span{m, U}): the nonzero eigenvalues of the full one
            big = np.sort_complex(lam[np.abs(lam) > 1e-9])
            np.testing.assert_allclose(np.sort_complex(stored[np.abs(stored) > 1e-9]), big, rtol=2e-5, atol=2e-6)
            assert ds.spectral_radius.values[run, e] == pytest.approx(np.max(np.abs(lam)), rel=2e-5)


def _pendulum_closed_loop(plant, m, W, z, x0, T, exact=False):
    """The closed loop of a tanh RNN and the pendulum, stepped in numpy (the delayed timing: u_t = z.h_t), each
    plant step one RK4 step written here, or (`exact`) integrated by scipy's solve_ivp (DOP853, tolerance
    1e-11), the torque held over the step."""
    s = -1.0 if not plant["upright"] else 1.0
    g, length, mass, d, dt = plant["gravity"], plant["length"], plant["mass"], plant["damping"], plant["dt"]
    xs = []
    for x in x0:
        h = np.zeros(W.shape[0])
        traj = []
        for _ in range(T):
            traj.append(x)
            u = float(z[:, 0] @ h)

            def f(q):
                return np.array([q[1], s * g / length * np.sin(q[0]) - d * q[1] + u / (mass * length**2)])

            if exact:
                x = solve_ivp(lambda t, q: f(q), (0.0, dt), x, rtol=1e-11, atol=1e-12, method="DOP853").y[:, -1]
            else:
                k1 = f(x)
                k2 = f(x + dt / 2 * k1)
                k3 = f(x + dt / 2 * k2)
                k4 = f(x + dt * k3)
                x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            h = np.tanh(W @ h + m[:, 0] * x[0])
        xs.append(traj)
    return np.asarray(xs)  # (B, T, 2)


def test_user_nonlinear_plant_test_loss_equals_an_independent_integration(user_stores):
    store = user_stores[0]["pendulum"]
    ds = loopdyn.open_run(store)
    cfg = cfg_mod.from_dict(ds.attrs["config"], source=str(store))
    task = cfg.task.bind(cfg.plant)
    x0 = np.asarray(task.test_set(jax.random.PRNGKey(cfg.task.test_seed), jnp.float64))[:6]
    e = ds.sizes["epoch"] - 1
    m, W, z = (ds[k].values[0, e].astype(np.float64) if "checkpoint" in ds[k].dims else ds[k].values[0].astype(np.float64)
               for k in ("m", "W", "z"))
    xs = _pendulum_closed_loop(ds.attrs["config"]["plant"], m, W, z, x0, cfg.task.T)
    # the same test episodes through loopdyn's rollout, in float64
    spec = build_problem(cfg).spec
    params = loopdyn.agents.AgentParams(m=jnp.asarray(m), W=jnp.asarray(W), z=jnp.asarray(z))
    traj = rollout(loopdyn.agents.make_core(spec, params), cfg.plant, jnp.asarray(x0), cfg.task.T)
    np.testing.assert_allclose(np.asarray(traj.x).transpose(1, 0, 2), xs, rtol=1e-10, atol=1e-12)
    # RK4 at dt = 0.05 s follows the exact flow of the ODE to its order (dt^4 ~ 6e-6 per unit time)
    exact = _pendulum_closed_loop(ds.attrs["config"]["plant"], m, W, z, x0, cfg.task.T, exact=True)
    np.testing.assert_allclose(xs, exact, atol=1e-4)
    # and the recorded test loss (float32, the whole fixed test set) is this metric
    x0_all = np.asarray(task.test_set(jax.random.PRNGKey(cfg.task.test_seed), jnp.float32), np.float64)  # as drawn
    xs_all = _pendulum_closed_loop(ds.attrs["config"]["plant"], m, W, z, x0_all, cfg.task.T)
    assert float(ds.test_loss.values[0, e]) == pytest.approx(np.mean(np.sum(xs_all**2, axis=-1)), rel=2e-4)


def test_user_experiment_continues_each_phase_from_the_last(user_stores):
    ds = loopdyn.open_run(user_stores[0]["curriculum"])
    phases = ds.attrs["phases"]
    assert [d["task"]["T"] for _, d in phases] == [10, 25, 50]
    phase = ds.phase.values
    for p in (1, 2):
        for seed in (0, 1):
            prev = np.nonzero((phase == phases[p - 1][0]) & (ds.seed.values == seed))[0][0]
            cur = np.nonzero((phase == phases[p][0]) & (ds.seed.values == seed))[0][0]
            # the first record of a phase is its start: the last parameters of the phase before
            np.testing.assert_array_equal(ds.U.values[cur, 0], ds.U.values[prev, 9])


def test_user_controller_records_the_spectrum_of_its_own_joint_matrix(user_stores):
    """The Dale's-law RNN steps W_eff = |W| diag(s): its recorded spectra are those of the joint matrix built
    in numpy from the stored W, and its first units are excitatory, the rest inhibitory."""
    ds = loopdyn.open_run(user_stores[0]["dale_rnn"])
    agent = ds.attrs["config"]["agent"]
    N, n_e = agent["N"], round(agent["excitatory"] * agent["N"])
    s = np.where(np.arange(N) < n_e, 1.0, -1.0)
    A, B, C = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.0], [1.0]]), np.array([[1.0, 0.0]])
    assert np.all(ds.W.values[:, 0] >= 0)  # initialised with non-negative magnitudes
    for run in range(ds.sizes["run"]):
        for e in (0, ds.sizes["epoch"] - 1):
            m, W, z = (ds[k].values[run, e].astype(np.float64) for k in ("m", "W", "z"))
            W_eff = np.abs(W) * s[None, :]
            P = np.block([[A, B @ z.T], [m @ C @ A, W_eff + m @ C @ B @ z.T]])
            lam = np.sort_complex(np.linalg.eigvals(P))
            np.testing.assert_allclose(np.sort_complex(ds.eigenvalues.values[run, e]), lam, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ in-process checks
def _pendulum(**kw):
    sys.path.insert(0, str(ROOT))
    try:
        from examples.pendulum import Pendulum
    finally:
        sys.path.remove(str(ROOT))
    return Pendulum(**kw)


@pytest.mark.parametrize("upright", [False, True])
def test_pendulum_rk4_step_converges_at_fourth_order(upright):
    x0 = np.array([0.4, -0.3])
    u = 0.7
    errors = []
    for dt in (0.1, 0.05, 0.025):
        p = _pendulum(dt=dt, upright=upright, damping=0.2)
        s = 1.0 if upright else -1.0
        ref = solve_ivp(lambda t, q: [q[1], s * 9.81 * np.sin(q[0]) - 0.2 * q[1] + u], (0, 1.0), x0, rtol=1e-12,
                        atol=1e-13, method="DOP853").y[:, -1]
        x = jnp.asarray(x0[None], F64)
        for _ in range(round(1.0 / dt)):
            x = p.dynamics(x, jnp.asarray([[u]], F64))
        errors.append(np.max(np.abs(np.asarray(x[0]) - ref)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 3.7), (errors, orders)


def test_undamped_pendulum_conserves_energy_to_the_schemes_order():
    p = _pendulum(dt=0.01, damping=0.0)
    x = jnp.asarray([[1.0, 0.0]], F64)
    energy = lambda q: 0.5 * q[..., 1] ** 2 - 9.81 * np.cos(q[..., 0])  # noqa: E731
    e0 = energy(np.asarray(x))
    for _ in range(1000):
        x = p.dynamics(x, jnp.zeros((1, 1), F64))
    assert abs(energy(np.asarray(x)) - e0)[0] < 1e-7


def test_a_nonlinear_plant_takes_the_plain_rollout_and_equals_a_step_by_step_loop():
    sys.path.insert(0, str(ROOT))
    try:
        cfg = cfg_mod.load(EXAMPLES / "pendulum.toml", ["dtype='float64'", "task.T=12", "task.batch=5"])
        problem = build_problem(cfg)
    finally:
        sys.path.remove(str(ROOT))
    assert not (problem.linear_loop or problem.superposed or problem.compress_batch or problem.joint_spectra)
    state, consts = loopdyn.training.init_run(problem, 3, loopdyn.training.HyperParams(
        **{k: jnp.asarray(cfg.hyper(k), F64) for k in cfg_mod.HYPERPARAMETERS}))
    params = loopdyn.agents.combine(state.params, consts.frozen)
    x0 = jax.random.uniform(jax.random.PRNGKey(1), (5, 2), F64, -0.5, 0.5)
    traj = rollout(loopdyn.agents.make_core(problem.spec, params), problem.plant, x0, 12)
    m, W, z = (np.asarray(getattr(params, k)) for k in ("m", "W", "z"))
    x, h = np.asarray(x0), np.zeros((5, W.shape[0]))
    for t in range(12):
        np.testing.assert_allclose(np.asarray(traj.x[t]), x, rtol=1e-12, atol=1e-13)
        u = h @ z
        x = np.asarray(problem.plant.dynamics(jnp.asarray(x), jnp.asarray(u)))
        h = np.tanh(h @ W.T + x[:, :1] @ m.T)


def test_a_velocity_penalty_adds_its_term_and_keeps_the_batch_compression_exact():
    sys.path.insert(0, str(ROOT))
    try:
        with_term = cfg_mod.load(EXAMPLES / "velocity_penalty.toml", ["dtype='float64'"])
    finally:
        sys.path.remove(str(ROOT))
    d = cfg_mod.to_dict(with_term)
    d.pop("loss")
    plain = cfg_mod.from_dict(d)
    hyper = loopdyn.training.HyperParams(**{k: jnp.asarray(with_term.hyper(k), F64) for k in cfg_mod.HYPERPARAMETERS})
    key = jax.random.PRNGKey(5)
    out = {}
    for name, cfg in (("term", with_term), ("plain", plain)):
        for strategy in ("auto", "plain"):
            problem = build_problem(cfg)
            if strategy == "plain":  # the whole batch rolled out: a "noisy" loop (of noise 0) is not compressed
                problem = dataclasses.replace(problem, noisy=True, strategy="plain")
            state, consts = loopdyn.training.init_run(problem, 0, hyper)
            params = loopdyn.agents.combine(state.params, consts.frozen)
            out[name, strategy] = float(problem.mode.loss(problem, params, consts, key)[0])
    assert build_problem(with_term).compress_batch  # the term is quadratic: the compression stays on
    np.testing.assert_allclose(out["term", "auto"], out["term", "plain"], rtol=1e-10)
    # the term's value, computed in numpy from the plain batch's trajectories
    problem = build_problem(plain)
    state, consts = loopdyn.training.init_run(problem, 0, hyper)
    params = loopdyn.agents.combine(state.params, consts.frozen)
    x0 = problem.task.train_episode(jax.random.split(key)[0], F64).x0
    traj = rollout(loopdyn.agents.make_core(problem.spec, params), problem.plant, x0, problem.task.T)
    v2 = float(np.mean(np.asarray(traj.x)[..., 1] ** 2))
    np.testing.assert_allclose(out["term", "plain"] - out["plain", "plain"], 0.5 * v2, rtol=1e-10)


# ------------------------------------------------------------------------------------------ finding parts
@pytest.mark.parametrize("kind,needles", [
    ("subprocess:run", ("names a function", "not a subclass of loopdyn.plants.Plant")),
    ("loopdyn.tasks:RegulationTask", ("names the class RegulationTask", "not a subclass of loopdyn.plants.Plant")),
    ("no_such_module_xyz:Plant", ("'no_such_module_xyz' is not installed",)),
    ("loopdyn.plants:NoSuch", ("has no 'NoSuch'",)),
    ("os.path; import os:x", ("not an import path",)),
    ("pendulum", ("not a known plant", "double_integrator", "package.module:Class")),
])
def test_a_part_is_checked_before_anything_of_it_is_called(kind, needles):
    with pytest.raises(ConfigError) as e:
        cfg_mod.from_dict({"plant": {"kind": kind}}, source="x.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("x.toml: plant.kind")
    for n in needles:
        assert n in msg, msg


def test_shipped_parts_are_announced_through_entry_points():
    from importlib.metadata import entry_points

    for section, names in (("plant", {"double_integrator", "integrator", "point_mass_2d", "linear", "inverted_pendulum",
                                      "cartpole", "two_link_arm"}),
                           ("task", {"regulation", "tracking", "impulse"}), ("agent", {"rnn", "gru"}),
                           ("optimizer", {"sgd", "adam"}),
                           ("loss", {"state", "control"})):
        fam = cfg_mod.family(section)
        announced = {ep.name for ep in entry_points(group=fam.group)}
        assert names <= announced
        for name in names:  # found by name, and recorded under that name
            cls = fam.resolve(name)
            assert issubclass(cls, fam.interface) and fam.kind_of(cls) == name


def test_a_linear_plant_given_by_its_matrices_trains_as_the_same_builtin_plant(tmp_path):
    base = {"epochs": 6, "seeds": [0, 1], "dtype": "float64", "task": {"T": 10, "batch": 8, "test_batch": 4},
            "agent": {"N": 8, "rank": 1}, "record": {"chunk": 3}}
    di = cfg_mod.from_dict({**base, "name": "di"})
    lin = cfg_mod.from_dict({**base, "name": "lin", "plant": {"kind": "linear", "A": [[1, 1], [0, 1]], "B": [[0], [1]],
                                                               "C": [[1, 0]]}})
    assert isinstance(lin.plant, LinearPlant) and lin.plant.is_double_integrator
    a = loopdyn.open_run(loopdyn.train(di, tmp_path / "di.zarr", progress=False))
    b = loopdyn.open_run(loopdyn.train(lin, tmp_path / "lin.zarr", progress=False))
    for k in ("train_loss", "test_loss", "eigenvalues", "U"):
        np.testing.assert_array_equal(a[k].values, b[k].values)
    with pytest.raises(ConfigError, match=r"x.toml: plant.B has 1 rows; B must have one row per state \(2\)"):
        cfg_mod.from_dict({"plant": {"kind": "linear", "A": [[1, 1], [0, 1]], "B": [[1]], "C": [[1, 0]]}},
                          source="x.toml")


def test_a_store_of_the_previous_format_still_opens_analyses_and_resumes(tmp_path):
    import shutil

    store = tmp_path / "store-v2.zarr"
    shutil.copytree(ROOT / "tests" / "data" / "store-v2.zarr", store)
    ds = loopdyn.open_run(store)
    assert ds.attrs["loopdyn_format"] == "loopdyn-store-2"
    assert ds.attrs["config"]["plant"] == {"kind": "double_integrator", "dt": 1.0, "noise": 0.0, "clamp": 0.0}
    assert loopdyn.check_store(store)["complete"]
    assert "stages" in loopdyn.analyze(store)
    # its stored eigenvalues are those of the joint matrix of its stored parameters
    P_spec = loopdyn.system.agent_joint_matrix
    cfg = cfg_mod.from_dict(ds.attrs["config"])
    problem = build_problem(cfg)
    p = loopdyn.agents.AgentParams(m=jnp.asarray(ds.m.values[1], F64), z=jnp.asarray(ds.z.values[1, -1], F64),
                                   U=jnp.asarray(ds.U.values[1, -1], F64), V=jnp.asarray(ds.V.values[1, -1], F64))
    lam = np.linalg.eigvals(np.asarray(P_spec(problem.spec, problem.plant, p)))
    assert np.max(np.abs(lam)) == pytest.approx(float(ds.spectral_radius.values[1, -1]), rel=1e-5)


def test_user_part_classes_can_be_passed_from_python(tmp_path):
    class Leaky(Plant):
        """x' = 0.9 x + u, observed."""

        @property
        def n_states(self):
            return 1

        @property
        def n_controls(self):
            return 1

        @property
        def n_observed(self):
            return 1

        def dynamics(self, x, u):
            return 0.9 * x + u

        def observe(self, x):
            return x

    cfg_mod.family("plant").register("test-leaky", Leaky)
    try:
        cfg = cfg_mod.from_dict({"epochs": 4, "plant": {"kind": "test-leaky"}, "task": {"T": 6, "batch": 4,
                                 "test_batch": 2}, "agent": {"N": 4, "rank": 0, "activation": "tanh",
                                                             "trainable": ["z"]}, "record": {"chunk": 2}})
        assert cfg.plant.kind == "test-leaky" and cfg_mod.to_dict(cfg)["plant"] == {"kind": "test-leaky", "dt": 1.0,
                                                                                     "noise": 0.0, "clamp": 0.0}
        ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "leaky.zarr", progress=False))
        assert np.all(np.isfinite(ds.train_loss.values)) and "eigenvalues" not in ds
        # a part object replaces a configured one, checked with the rest of the configuration
        assert cfg_mod.with_parts(cfg, plant=Leaky(dt=0.5)).plant.dt == 0.5
        with pytest.raises(ConfigError, match="is not a Plant"):
            cfg_mod.with_parts(cfg, plant=cfg.task)
        with pytest.raises(ConfigError, match="plant.dt = -1.0 must be > 0"):
            cfg_mod.from_dict({"plant": {"kind": "test-leaky", "dt": -1.0}}, source="x.toml")
    finally:
        cfg_mod.family("plant").registered.pop("test-leaky")


def test_an_optimizer_of_ones_own_is_an_optax_transformation(tmp_path):
    import optax

    from loopdyn.optim import Optimizer

    class AdamW0(Optimizer):
        def transform(self, learning_rate):
            return optax.adamw(learning_rate, weight_decay=0.0)

    class AdamW(Optimizer):
        def transform(self, learning_rate):
            return optax.adamw(learning_rate, weight_decay=0.5)

    fam = cfg_mod.family("optimizer")
    fam.register("test-adamw0", AdamW0)
    fam.register("test-adamw", AdamW)
    try:
        base = {"epochs": 6, "seeds": [0, 1], "task": {"T": 10, "batch": 8, "test_batch": 4},
                "agent": {"N": 8, "rank": 1}, "record": {"chunk": 3}, "train": {"lr": 0.01}}
        stores = {}
        for name in ("adam", "test-adamw0", "test-adamw"):
            cfg = cfg_mod.from_dict({**base, "name": name, "train": {"lr": 0.01, "optimizer": name}})
            stores[name] = loopdyn.open_run(loopdyn.train(cfg, tmp_path / f"{name}.zarr", progress=False))
        # AdamW without decay is Adam, to the bit; with decay it is not
        np.testing.assert_array_equal(stores["adam"].U.values, stores["test-adamw0"].U.values)
        assert not np.allclose(stores["adam"].U.values[:, -1], stores["test-adamw"].U.values[:, -1])
        assert stores["test-adamw"].attrs["config"]["train"]["optimizer"] == "test-adamw"
        with pytest.raises(ConfigError, match=r"x.toml: train.optimizer = 'test-adamw' cannot train agent.representation"):
            cfg_mod.from_dict({"agent": {"representation": "overlaps"}, "train": {"optimizer": "test-adamw"}},
                              source="x.toml")
    finally:
        fam.registered.pop("test-adamw0")
        fam.registered.pop("test-adamw")
    with pytest.raises(ConfigError, match=r"x.toml: train.optimizer = 'subprocess:run' names a function, not a subclass "
                                          r"of loopdyn.optim.Optimizer"):
        cfg_mod.from_dict({"train": {"optimizer": "subprocess:run"}}, source="x.toml")
