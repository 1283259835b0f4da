"""Property tests (hypothesis): the config parser round-trips and refuses bad values in one line; the rollout
of any linear agent is the powers of its joint matrix."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopdyn import config as cfg_mod
from loopdyn.agents import RNN, AgentSpec, connectivity, init_params, make_core
from loopdyn.errors import ConfigError
from loopdyn.plants import integrator
from loopdyn.system import joint_matrix, rollout

F64 = jnp.float64

positive_float = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def configs(draw):
    N = draw(st.integers(2, 200))
    rank = draw(st.integers(0, N))
    activation = draw(st.sampled_from(["linear", "tanh", "relu"]))
    trainable = ["m", "U", "V", "z"] if rank else ["m", "W", "z"]
    tables = {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)),
        "epochs": draw(st.integers(1, 10_000)),
        "seeds": draw(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=5, unique=True)),
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "task": {"T": draw(st.integers(1, 500)), "batch": draw(st.integers(1, 256)), "beta": draw(st.floats(0, 10)),
                 "x0_range": draw(positive_float), "loss": draw(st.sampled_from(["mean", "sum"]))},
        "agent": {"N": N, "rank": rank, "activation": activation, "alpha": draw(st.floats(1e-3, 1.0)),
                  "g": draw(st.floats(0, 3)),
                  "trainable": draw(st.lists(st.sampled_from(trainable), min_size=1, max_size=3, unique=True))},
        "train": {"lr": draw(positive_float), "clip": draw(st.floats(0, 100)),
                  "optimizer": draw(st.sampled_from(["sgd", "adam"]))},
    }
    if draw(st.booleans()):
        tables["sweep"] = {"train.lr": draw(st.lists(positive_float, min_size=1, max_size=3, unique=True))}
    return tables


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_config_round_trips(tables):
    cfg = cfg_mod.from_dict(tables, source="prop.toml")
    again = cfg_mod.from_dict(cfg_mod.to_dict(cfg), source="prop.toml")
    assert again == cfg
    assert len(cfg_mod.runs(cfg)) == cfg_mod.n_runs(cfg) == len(cfg.seeds) * math.prod(len(v) for _, v in cfg.sweep)
    assert sum(len(g.runs) for g in cfg_mod.groups(cfg)) == cfg_mod.n_runs(cfg)


BAD_FLOATS = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.floats(max_value=0.0))


@settings(max_examples=40, deadline=None)
@given(key=st.sampled_from(["train.lr", "task.x0_range", "plant.dt"]), value=BAD_FLOATS)
def test_bad_positive_floats_are_one_line_naming_the_key(key, value):
    section, name = key.split(".")
    tables = {section: {name: value}}
    with pytest.raises(ConfigError) as err:
        cfg_mod.from_dict(tables, source="bad.toml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("bad.toml: ") and key in msg


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.integers(), min_size=1, max_size=3))
def test_unknown_keys_are_named(extra):
    known = set(cfg_mod.parameters(RNN)) | {"kind"}
    unknown = {k: v for k, v in extra.items() if k not in known}  # a known key drawn here may carry a bad value
    if not unknown:
        return
    with pytest.raises(ConfigError, match=r"agent\.\w+ is not a known key of agent\.kind = 'rnn'") as err:
        cfg_mod.from_dict({"agent": unknown}, source="x.toml")
    assert any(f"agent.{k} " in str(err.value) for k in unknown)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(3, 12), rank=st.integers(0, 2), alpha=st.floats(0.05, 1.0), order=st.integers(1, 3),
       seed=st.integers(0, 1000))
def test_linear_rollout_is_powers_of_the_joint_matrix(N, rank, alpha, order, seed):
    spec = AgentSpec(N=N, rank=min(rank, N - 1), alpha=alpha, init="lowrank" if rank else "rnn", trainable=("z",))
    params = init_params(spec, jax.random.PRNGKey(seed), g=0.7, dtype=F64)
    params = params._replace(z=params.z * 10, m=params.m * 3)
    plant = integrator(order, 0.5, 1, 1)
    x0 = jax.random.uniform(jax.random.PRNGKey(seed + 1), (3, order), F64, -1, 1)
    traj = rollout(make_core(spec, params, 0.7), plant, x0, 15, emit=("x", "u"))
    P = np.asarray(joint_matrix(plant.A, plant.B, plant.C, params.m, connectivity(spec, params, 0.7), params.z, alpha))
    s = np.concatenate([np.asarray(x0), np.zeros((3, N))], axis=1).T
    for t in range(15):
        np.testing.assert_allclose(np.asarray(traj.x[t]).T, s[:order], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(traj.u[t]).T, np.asarray(params.z).T @ s[order:], rtol=1e-9, atol=1e-9)
        s = P @ s
