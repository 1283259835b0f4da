"""The nonlinear plants of issue #19 (inverted pendulum, cart-pole, two-link arm) against independent
integrations of their ODEs, their energies, their linearisations and their parameter checks; the fixed point
of a nonlinear loop by Newton's method and the basin of the target.

The new plants are named by import path here: their entry-point names (`inverted_pendulum`, `cartpole`,
`two_link_arm`) exist once the package is reinstalled."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from loopdyn import config as cfg_mod
from loopdyn.agents import AgentParams, AgentSpec, connectivity, init_params, make_core
from loopdyn.errors import ConfigError
from loopdyn.plants import CartPole, InvertedPendulum, Plant, TwoLinkArm, double_integrator, linear
from loopdyn.system import (agent_joint_matrix, basin, fixed_point, jacobian_at_origin, jacobian_spectra, rollout,
                            spectrum)

F64 = jnp.float64
KINDS = {"pendulum": "loopdyn.plants._pendulum:InvertedPendulum", "cartpole": "loopdyn.plants._cartpole:CartPole",
         "arm": "loopdyn.plants._arm:TwoLinkArm"}


# ------------------------------------------------------------------ the ODEs, written again in numpy
def pendulum_ode(p):
    g, l, m, d = p.gravity, p.length, p.mass, p.damping

    def f(x, u):
        return np.array([x[1], g / l * np.sin(x[0]) - d * x[1] + u[0] / (m * l * l)])
    return f


def cartpole_ode(p):
    """Lagrange's equations of the cart and a point-mass pole, solved with numpy's linear solver."""
    M, m, l, g, b, d = p.cart_mass, p.pole_mass, p.length, p.gravity, p.cart_friction, p.pole_friction

    def f(x, u):
        _, th, v, w = x
        mass = np.array([[M + m, m * l * np.cos(th)], [m * l * np.cos(th), m * l * l]])
        rhs = np.array([u[0] - b * v + m * l * w * w * np.sin(th), m * g * l * np.sin(th) - d * w])
        return np.concatenate([[v, w], np.linalg.solve(mass, rhs)])
    return f


def arm_inertia(p, q):
    """M(q) of the two-link arm from the links' masses, lengths, centres of mass and inertias (parallel axes)."""
    m1, m2, l1, s1, s2, I1, I2 = p.mass1, p.mass2, p.length1, p.com1, p.com2, p.inertia1, p.inertia2
    c = np.cos(q[1])
    m11 = I1 + m1 * s1**2 + I2 + m2 * (l1**2 + s2**2 + 2 * l1 * s2 * c)
    m12 = I2 + m2 * (s2**2 + l1 * s2 * c)
    return np.array([[m11, m12], [m12, I2 + m2 * s2**2]])


def arm_ode(p):
    rest = np.array([p.rest_shoulder, p.rest_elbow])
    Bv = np.array([[p.viscosity_shoulder, p.viscosity_coupling], [p.viscosity_coupling, p.viscosity_elbow]])
    h0 = p.mass2 * p.length1 * p.com2

    def f(x, u):
        q, dq = x[:2] + rest, x[2:]
        h = h0 * np.sin(q[1])
        cor = np.array([-h * dq[1] * (2 * dq[0] + dq[1]), h * dq[0] ** 2])
        return np.concatenate([dq, np.linalg.solve(arm_inertia(p, q), u - cor - Bv @ dq)])
    return f


ODES = {"pendulum": pendulum_ode, "cartpole": cartpole_ode, "arm": arm_ode}
CASES = {  # plant class, parameters, x0, u, duration, dts
    "pendulum": (InvertedPendulum, {"damping": 0.2}, [0.4, -0.3], [0.7], 1.0, (0.1, 0.05, 0.025)),
    "cartpole": (CartPole, {}, [0.1, 0.3, -0.2, 0.5], [1.5], 0.5, (0.05, 0.025, 0.0125)),
    "arm": (TwoLinkArm, {}, [0.3, -0.4, 2.0, -3.0], [1.0, -0.5], 0.5, (0.05, 0.025, 0.0125)),
}


def _steps(p, x0, u, n):
    x = jnp.asarray(np.asarray(x0, float)[None], F64)
    uu = jnp.asarray(np.asarray(u, float)[None], F64)
    for _ in range(n):
        x = p.dynamics(x, uu)
    return np.asarray(x[0])


@pytest.mark.parametrize("name", list(CASES))
def test_rk4_step_converges_to_the_exact_flow_at_fourth_order(name):
    cls, kw, x0, u, duration, dts = CASES[name]
    f = ODES[name](cls(**kw))
    ref = solve_ivp(lambda t, q: f(q, np.asarray(u)), (0, duration), np.asarray(x0, float), method="DOP853",
                    rtol=1e-12, atol=1e-13).y[:, -1]
    assert all(round(duration / dt) * dt == pytest.approx(duration, rel=1e-12) for dt in dts)
    errors = [np.max(np.abs(_steps(cls(dt=dt, **kw), x0, u, round(duration / dt)) - ref)) for dt in dts]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] > 1e-11, errors  # above round-off: the fit measures the scheme
    assert np.all(orders > 3.7), (errors, orders)


def _energy_drift(make, E, x0, u, duration, dts):
    """|E(x_T) - E(x_0)| after `duration` seconds of RK4 steps, for each dt."""
    out = []
    for dt in dts:
        x = _steps(make(dt), x0, u, round(duration / dt))
        out.append(abs(E(x) - E(np.asarray(x0, float))))
    return np.array(out), x


def _assert_fourth_order(drift, scale, small):
    """Small, and shrinking at the scheme's order from dt to dt/2 (at one instant it may shrink faster)."""
    assert drift[0] < small * scale, drift
    order = np.log2(drift[0] / drift[1])
    assert order > 3.7, (drift, order)


def test_frictionless_plants_conserve_energy_to_the_schemes_order():
    # inverted pendulum, d = 0: E = m l^2 w^2 / 2 + m g l cos(theta), from near the top over the bottom
    E = lambda x: 0.5 * 0.7 * 0.64 * x[1] ** 2 + 0.7 * 9.81 * 0.8 * np.cos(x[0])  # noqa: E731
    drift, x = _energy_drift(lambda dt: InvertedPendulum(dt=dt, damping=0.0, mass=0.7, length=0.8), E, [0.3, 0.0],
                             [0.0], 3.0, (0.02, 0.01))
    assert abs(x[0] - 0.3) > 1.0  # it has fallen
    _assert_fourth_order(drift, 5.25, 1e-6)
    p = InvertedPendulum(mass=0.7, length=0.8)
    np.testing.assert_allclose(float(p.energy(jnp.asarray(x[None]))[0]), E(x), rtol=1e-13)
    # cart-pole without friction or force
    M, m, l, g = 1.0, 0.1, 0.5, 9.81
    Ec = lambda x: (0.5 * (M + m) * x[2] ** 2 + m * l * np.cos(x[1]) * x[2] * x[3] + 0.5 * m * l**2 * x[3] ** 2  # noqa: E731
                    + m * g * l * np.cos(x[1]))
    drift, x = _energy_drift(lambda dt: CartPole(dt=dt, cart_friction=0.0, pole_friction=0.0), Ec,
                             [0.0, 0.2, 0.1, 0.0], [0.0], 2.0, (0.02, 0.01))
    assert abs(x[1] - 0.2) > 1.0
    _assert_fourth_order(drift, 0.5, 1e-6)
    np.testing.assert_allclose(float(CartPole().energy(jnp.asarray(x[None]))[0]), Ec(x), rtol=1e-13)
    # two-link arm without viscosity or torque: kinetic energy
    a = TwoLinkArm(viscosity_shoulder=0.0, viscosity_elbow=0.0, viscosity_coupling=0.0)
    rest = np.array([a.rest_shoulder, a.rest_elbow])
    T = lambda x: 0.5 * x[2:] @ arm_inertia(a, x[:2] + rest) @ x[2:]  # noqa: E731
    drift, x = _energy_drift(lambda dt: TwoLinkArm(dt=dt, viscosity_shoulder=0.0, viscosity_elbow=0.0,
                                                   viscosity_coupling=0.0), T, [0.0, 0.0, 3.0, -2.0], [0.0, 0.0],
                             1.0, (0.02, 0.01))
    assert np.max(np.abs(x[2:] - [3.0, -2.0])) > 0.5  # Coriolis forces have turned the velocities
    _assert_fourth_order(drift, 0.63, 1e-6)
    np.testing.assert_allclose(float(a.kinetic_energy(jnp.asarray(x[None]))[0]), T(x), rtol=1e-13)


def _continuous(name, p):
    """A_c, B_c, C of each plant at the origin, derived by hand."""
    if name == "pendulum":
        g, l, m, d = p.gravity, p.length, p.mass, p.damping
        return (np.array([[0, 1], [g / l, -d]]), np.array([[0], [1 / (m * l * l)]]),
                np.eye(2) if p.observed == "state" else np.array([[1.0, 0.0]]))
    if name == "cartpole":
        M, m, l, g, b, d = p.cart_mass, p.pole_mass, p.length, p.gravity, p.cart_friction, p.pole_friction
        acc = np.array([[0, -m * g / M, -b / M, d / (l * M)],
                        [0, (M + m) * g / (l * M), b / (l * M), -(M + m) * d / (m * l * l * M)]])
        A = np.vstack([np.hstack([np.zeros((2, 2)), np.eye(2)]), acc])
        return A, np.array([[0], [0], [1 / M], [-1 / (l * M)]]), np.eye(4)[:2]
    rest = np.array([p.rest_shoulder, p.rest_elbow])
    Mi = np.linalg.inv(arm_inertia(p, rest))
    Bv = np.array([[p.viscosity_shoulder, p.viscosity_coupling], [p.viscosity_coupling, p.viscosity_elbow]])
    A = np.block([[np.zeros((2, 2)), np.eye(2)], [np.zeros((2, 2)), -Mi @ Bv]])
    q1, q12 = rest[0], rest.sum()
    l1, l2 = p.length1, p.length2
    Jhand = np.array([[-l1 * np.sin(q1) - l2 * np.sin(q12), -l2 * np.sin(q12)],
                      [l1 * np.cos(q1) + l2 * np.cos(q12), l2 * np.cos(q12)]])
    return A, np.vstack([np.zeros((2, 2)), Mi]), np.hstack([Jhand, np.zeros((2, 2))])


@pytest.mark.parametrize("name,kw", [("pendulum", {"dt": 0.05}), ("pendulum", {"dt": 0.1, "observed": "state"}),
                                     ("cartpole", {"dt": 0.05}), ("arm", {"dt": 0.02, "observed": "hand"})])
def test_linearisation_is_the_exact_discretisation_to_the_schemes_order(name, kw):
    p = CASES[name][0](**kw)
    A, B, C = p.linearisation()
    Ac, Bc, Cc = _continuous(name, p)
    k, m, dt = Ac.shape[0], Bc.shape[1], p.dt
    # the exact zero-order-hold discretisation: expm of the augmented matrix
    E = expm(np.block([[Ac, Bc], [np.zeros((m, k + m))]]) * dt)
    Ad, Bd = E[:k, :k], E[:k, k:]
    # RK4 of a linear ODE is the 4th-degree Taylor polynomial of the exact map: equal to it to round-off ...
    Z = np.block([[Ac, Bc], [np.zeros((m, k + m))]]) * dt
    taylor = sum(np.linalg.matrix_power(Z, j) / math.factorial(j) for j in range(5))
    np.testing.assert_allclose(A, taylor[:k, :k], atol=1e-13)
    np.testing.assert_allclose(B, taylor[:k, k:], atol=1e-13)
    # ... so within the first omitted term, |A_c dt|^5 / 5!, of the matrix exponential
    bound = np.linalg.norm(Z, 2) ** 5 / 120
    assert np.max(np.abs(A - Ad)) <= bound and np.max(np.abs(B - Bd)) <= bound
    np.testing.assert_allclose(C, Cc, atol=1e-14)
    if name == "pendulum":  # to first order, [[1, dt], [g/l dt, 1 - d dt]] and (0, dt/(m l^2))
        np.testing.assert_allclose(A, [[1, dt], [9.81 * dt, 1 - 0.1 * dt]], atol=dt**2 * 10)


@pytest.mark.parametrize("name,plant,needle", [
    ("pendulum", {"mass": -1.0}, "plant.mass = -1.0 must be > 0"),
    ("pendulum", {"length": 0.0}, "plant.length = 0.0 must be > 0"),
    ("pendulum", {"dt": 0.5}, "plant.dt = 0.5 is too large for one RK4 step: dt * max|lambda(A_c)| = 1.59 > 1"),
    ("pendulum", {"observed": "velocity"}, "plant.observed = 'velocity' is not allowed; choose one of angle, state"),
    ("cartpole", {"pole_mass": 0}, "plant.pole_mass = 0.0 must be > 0"),
    ("cartpole", {"cart_friction": -0.1}, "plant.cart_friction = -0.1 must be >= 0"),
    ("cartpole", {"dt": 0.3}, "plant.dt = 0.3 is too large for one RK4 step"),
    ("arm", {"length2": -0.3}, "plant.length2 = -0.3 must be > 0"),
    ("arm", {"com1": 0.5}, "plant.com1 = 0.5 must be <= plant.length1 = 0.3"),
    ("arm", {"viscosity_coupling": 0.1}, "plant.viscosity_coupling = 0.1 makes the viscosity matrix indefinite"),
    ("arm", {"viscosity_shoulder": 10.0, "dt": 0.5}, "plant.dt = 0.5 is too large for one RK4 step"),
])
def test_bad_parameters_are_refused_with_one_line_naming_the_bound(name, plant, needle):
    with pytest.raises(ConfigError) as e:
        cfg_mod.from_dict({"plant": {"kind": KINDS[name], **plant}}, source="x.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("x.toml: " + needle), msg


def test_default_plants_pass_their_checks_and_the_origin_is_an_equilibrium():
    for name, kind in KINDS.items():
        p = cfg_mod.from_dict({"plant": {"kind": kind}}, source="x.toml").plant
        x0 = jnp.zeros((1, p.n_states), F64)
        assert np.all(np.asarray(p.dynamics(x0, jnp.zeros((1, p.n_controls), F64))) == 0), name
        assert np.all(np.asarray(p.observe(x0)) == 0), name


def test_torque_limit_saturates_the_control():
    p = InvertedPendulum(dt=0.05, max_torque=2.0)
    x = jnp.asarray([[0.1, 0.2]], F64)
    np.testing.assert_array_equal(np.asarray(p.dynamics(x, jnp.asarray([[50.0]], F64))),
                                  np.asarray(p.dynamics(x, jnp.asarray([[2.0]], F64))))


# ------------------------------------------------------------------ fixed points and basins of nonlinear loops
def test_fixed_point_of_a_linear_loop_has_todays_joint_matrix():
    plant = linear([[1.0, 0.1], [0.0, 0.9]], [[0.0], [0.1]], [[1.0, 0.0]])
    spec = AgentSpec(N=12, rank=0, activation="linear", init="rnn", trainable=("z",))
    params = init_params(spec, jax.random.PRNGKey(0), g=0.8, dtype=F64)
    params = params._replace(z=params.z * 30, m=params.m * 10)
    fp = fixed_point(spec, plant, params, 0.8)
    assert bool(fp.converged) and fp.reason == "converged" and int(fp.iterations) == 0
    np.testing.assert_array_equal(np.asarray(fp.s), 0.0)
    np.testing.assert_allclose(np.asarray(fp.P), np.asarray(agent_joint_matrix(spec, plant, params, 0.8)),
                               rtol=1e-13, atol=1e-15)
    # a reduced low-rank agent in float32 (stepped in float64 on [m U]): P similar to the orthonormal reduced P
    spec = AgentSpec(N=30, rank=1, activation="linear", trainable=("z", "U", "V"))
    params = init_params(spec, jax.random.PRNGKey(3), dtype=jnp.float32)
    params = params._replace(z=params.z * 5, V=params.V * 3)
    fp = fixed_point(spec, plant, params)
    assert bool(fp.converged) and fp.P.shape == (4, 4) and fp.P.dtype == F64
    np.testing.assert_allclose(spectrum(np.asarray(fp.P)), spectrum(agent_joint_matrix(spec, plant, params)), atol=1e-6)


def test_fixed_point_of_a_tanh_agent_on_the_double_integrator_has_J0():
    spec = AgentSpec(N=20, rank=1, activation="tanh", trainable=("z", "U", "V"))
    params = init_params(spec, jax.random.PRNGKey(1), dtype=F64)
    params = params._replace(z=params.z * 5, V=params.V * 3)
    plant = double_integrator()
    fp = fixed_point(spec, plant, params)
    assert bool(fp.converged)
    A, B, C = plant.matrices()
    J0 = jacobian_at_origin(A, B, C, params.m, connectivity(spec, params), params.z, spec.alpha, 1.0)
    np.testing.assert_allclose(np.asarray(fp.P), np.asarray(J0), rtol=1e-13, atol=1e-15)
    lam = jacobian_spectra(spec, plant, jax.tree.map(lambda a: a[None], params))[0]
    np.testing.assert_allclose(spectrum(np.asarray(fp.P)), lam, atol=1e-12)


class LoadedPlant(Plant):
    """The double integrator (dt = 1) with both states observed and a constant load c on the velocity:
    x' = A x + B (u + c); the loop's equilibrium is shifted from the origin."""

    load: float = 0.3

    @property
    def n_states(self):
        return 2

    @property
    def n_controls(self):
        return 1

    @property
    def n_observed(self):
        return 2

    def dynamics(self, x, u):
        return jnp.stack([x[:, 0] + x[:, 1], x[:, 1] + u[:, 0] + self.load], axis=-1)

    def observe(self, x):
        return x


def _tanh_state_feedback(K, a=0.5, n_in=2):
    """A 2-unit tanh agent that sees the state: h = tanh(a x), u = z.h ~ K x near the origin (delayed)."""
    spec = AgentSpec(N=2, rank=0, activation="tanh", init="rnn", n_in=n_in, n_out=1, trainable=("z",))
    m = jnp.concatenate([a * jnp.eye(2, dtype=F64), jnp.zeros((2, n_in - 2), F64)], axis=1)
    return spec, AgentParams(m=m, W=jnp.zeros((2, 2), F64), z=jnp.asarray(K, F64)[:, None] / a)


def test_newton_fixed_point_is_where_a_long_simulation_settles():
    spec, params = _tanh_state_feedback([-0.3, -1.0])
    plant = LoadedPlant()
    fp = fixed_point(spec, plant, params)
    assert bool(fp.converged), fp.reason
    s = np.asarray(fp.s)
    assert np.max(np.abs(s[:2])) > 0.1  # a nonzero equilibrium: the load is held by a position offset
    assert np.max(np.abs(spectrum(np.asarray(fp.P)))) < 1  # and it is stable
    traj = rollout(make_core(spec, params), plant, jnp.zeros((1, 2), F64), 400, emit=("x_next", "h_next"))
    np.testing.assert_allclose(np.asarray(traj.x_next[-1, 0]), s[:2], atol=1e-10)
    np.testing.assert_allclose(np.asarray(traj.h_next[-1, 0]), s[2:], atol=1e-10)
    # independently: at the equilibrium v* = 0 and the control cancels the load, z.tanh(a x*) = -c
    assert abs(s[1]) < 1e-12
    np.testing.assert_allclose(float(params.z[:, 0] @ np.tanh(0.5 * s[:2])), -0.3, atol=1e-12)
    # the same with the offset as a constant exogenous input to the agent (a third input column)
    spec3, p3 = _tanh_state_feedback([-0.3, -1.0], n_in=3)
    p3 = p3._replace(m=p3.m.at[0, 2].set(0.4))
    fp3 = fixed_point(spec3, double_integrator_full_state(), p3, exo=jnp.asarray([1.0], F64))
    traj = rollout(make_core(spec3, p3), double_integrator_full_state(), jnp.zeros((1, 2), F64), 400,
                   exo=jnp.ones((400, 1, 1), F64), emit=("x_next",))
    assert bool(fp3.converged) and abs(float(fp3.s[0])) > 0.1
    np.testing.assert_allclose(np.asarray(traj.x_next[-1, 0]), np.asarray(fp3.s[:2]), atol=1e-10)


def double_integrator_full_state():
    return linear([[1.0, 1.0], [0.0, 1.0]], [[0.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]])


def test_no_fixed_point_is_a_nan_and_a_reason_not_an_exception():
    spec, params = _tanh_state_feedback([0.0, 0.0])  # no control: the load accelerates the plant for ever
    fp = fixed_point(spec, LoadedPlant(), params)
    assert not bool(fp.converged) and fp.reason != "converged"
    assert np.all(np.isnan(np.asarray(fp.s))) and np.all(np.isnan(np.asarray(fp.P)))
    # too few steps for a loop that has one
    spec, params = _tanh_state_feedback([-0.3, -1.0])
    fp = fixed_point(spec, LoadedPlant(), params, max_iter=1)
    assert fp.reason == "no convergence within max_iter Newton steps"
    # per run under vmap: one run with control, one without
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, params._replace(z=params.z * 0))
    fps = jax.vmap(lambda q: fixed_point(spec, LoadedPlant(), q))(batch)
    np.testing.assert_array_equal(np.asarray(fps.converged), [True, False])


def test_basin_is_whole_for_a_strongly_stable_linear_loop():
    plant = linear([[0.5, 0.1], [0.0, 0.4]], [[0.0], [1.0]], [[1.0, 0.0]])
    spec = AgentSpec(N=6, rank=0, activation="linear", init="rnn", trainable=("z",))
    params = init_params(spec, jax.random.PRNGKey(2), g=0.3, dtype=F64)
    assert np.max(np.abs(spectrum(np.asarray(agent_joint_matrix(spec, plant, params, 0.3))))) < 0.6
    b = basin(spec, plant, params, 0.3, T=200)
    assert float(b.fraction) == 1.0 and b.x0.shape == (4 * (2 * 2 + 8), 2)


def test_basin_of_a_torque_limited_inverted_pendulum_excludes_large_angles():
    """The torque limit 5 N m is below the gravity torque m g l sin(theta) = 9.81 sin(theta) N m for
    theta > arcsin(5 / 9.81) = 0.535 rad. From |theta_0| >= 1 rad moving away from the upright (or at rest)
    theta'' >= (g/l) sin(theta) - tau_max/(m l^2) - d theta' > 0 while theta < pi - 1 and theta' < 32 rad/s, so
    the pendulum falls over: those states are outside the basin, the small ones inside."""
    plant = InvertedPendulum(dt=0.05, damping=0.1, max_torque=5.0, observed="state")
    spec, params = _tanh_state_feedback([-20.0, -6.0], a=0.1)
    fp = fixed_point(spec, plant, params)
    assert bool(fp.converged) and np.max(np.abs(spectrum(np.asarray(fp.P)))) < 1  # locally stable upright
    b = basin(spec, plant, params, T=300)
    x0, ok = np.asarray(b.x0), np.asarray(b.converged)
    assert np.all(ok[np.max(np.abs(x0), axis=1) <= 0.3])
    lost = (np.abs(x0[:, 0]) >= 1.0) & (x0[:, 0] * x0[:, 1] >= 0)
    assert lost.sum() >= 4 and not np.any(ok[lost])
    assert 0.5 < float(b.fraction) < 1.0


def test_pyproject_announces_the_plants_under_their_names():
    import tomllib
    from pathlib import Path

    from loopdyn.config import family

    eps = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    plants = eps["project"]["entry-points"]["loopdyn.plants"]
    for name, cls in (("inverted_pendulum", InvertedPendulum), ("cartpole", CartPole), ("two_link_arm", TwoLinkArm)):
        assert family("plant").resolve(plants[name]) is cls


@pytest.mark.parametrize("name", list(KINDS))
def test_J0_of_a_tanh_agent_on_each_plant_is_P_at_the_origin(name):
    """Two paths to the loop's Jacobian at the origin: the formula on the plant's jacfwd linearisation
    (`jacobian_spectra`, what the analysis records) and Newton's P, jacfwd through one step of the rollout."""
    plant = cfg_mod.from_dict({"plant": {"kind": KINDS[name]}}, source="x.toml").plant
    spec = AgentSpec(N=8, rank=0, activation="tanh", init="rnn", n_in=plant.n_observed, n_out=plant.n_controls,
                     trainable=("m", "W", "z"))
    params = init_params(spec, jax.random.PRNGKey(4), g=0.9, dtype=F64)
    params = params._replace(z=params.z * 8, m=params.m * 8)
    fp = fixed_point(spec, plant, params)
    assert bool(fp.converged) and int(fp.iterations) == 0
    lam = jacobian_spectra(spec, plant, jax.tree.map(lambda a: a[None], params))[0]
    np.testing.assert_allclose(spectrum(np.asarray(fp.P)), lam, atol=1e-11)


def test_hand_observation_is_the_forward_kinematics_displacement():
    p = TwoLinkArm(observed="hand", length1=0.3, length2=0.33)
    q_rest = np.array([np.pi / 4, np.pi / 2])
    dq = np.array([0.2, -0.5])

    def hand(q):
        return np.array([0.3 * np.cos(q[0]) + 0.33 * np.cos(q[0] + q[1]), 0.3 * np.sin(q[0]) + 0.33 * np.sin(q[0] + q[1])])

    y = np.asarray(p.observe(jnp.asarray([[*dq, 1.0, 2.0]], F64)))[0]
    np.testing.assert_allclose(y, hand(q_rest + dq) - hand(q_rest), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name, limit", [("arm", 1.0), ("cartpole", 1.0)])
def test_hand_derivatives_are_the_odes_and_autodiffs_in_both_modes(name, limit):
    """A plant's hand-written derivative (`vector_field_jvp`, which training differentiates through) against
    central differences of the numpy ODE above, and its RK4 step's Jacobian and vector-Jacobian product against
    JAX's own differentiation of the same step written without it, controls inside and beyond the limit."""
    from loopdyn.plants._rk4 import rk4_step

    p = TwoLinkArm(max_torque=limit) if name == "arm" else CartPole(max_force=limit)
    k, m = p.n_states, p.n_controls
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, k)) * [0.5, 0.8, 2.0, 3.0]
    u = rng.normal(size=(6, m)) * 1.5  # with the limit 1: some controls saturate, some do not
    assert 0 < np.sum(np.abs(u) > limit) < u.size
    f = ODES[name](p)
    sat = (lambda v: np.clip(v, -limit, limit)) if limit else (lambda v: v)
    xs, us = jnp.asarray(x, F64), jnp.asarray(u, F64)
    eye = jnp.eye(k + m, dtype=F64)
    tangent = jax.jit(jax.vmap(lambda e: p.vector_field_jvp(xs, us, jnp.broadcast_to(e[:k], xs.shape),
                                                            jnp.broadcast_to(e[k:], us.shape))[1], out_axes=-1))
    hand = np.asarray(tangent(eye))  # (B, k, k + m)
    z, eps = np.concatenate([x, u], 1), 1e-6
    fd = np.stack([np.stack([(f(zp[:k], sat(zp[k:])) - f(zm[:k], sat(zm[k:]))) / (2 * eps)
                             for zp, zm in zip(z + eps * e, z - eps * e)]) for e in np.eye(k + m)], -1)
    assert np.allclose(hand, fd, rtol=1e-6, atol=1e-6), np.max(np.abs(hand - fd))
    plain = lambda a, c: rk4_step(p.vector_field, a, c, p.dt)  # noqa: E731
    ct = jnp.asarray(rng.normal(size=(6, k)), F64)

    @jax.jit
    def derivatives(z):  # the step, its Jacobian (forward mode) and a vector-Jacobian product, of both steps
        out = []
        for step in (p.dynamics, plain):
            jac = jax.vmap(jax.jacfwd(lambda zb: step(zb[None, :k], zb[None, k:])[0]))(z)
            y, vjp = jax.vjp(step, z[:, :k], z[:, k:])
            out.append((y, jac, *vjp(ct)))
        return out

    hand_step, autodiff = derivatives(jnp.concatenate([xs, us], 1))
    assert np.array_equal(hand_step[0], autodiff[0])
    for a, c in zip(hand_step[1:], autodiff[1:]):
        assert np.allclose(a, c, rtol=0, atol=1e-13)
