"""Experiment tables are typed frozen dataclasses owned by their experiment (issue #17, item 5): each key of a
configuration's `[experiment_table]` is checked by its field (type, choices, check) with the same one-line
errors as every other key, naming `table.key`; configurations survive `to_dict`/`from_dict` unchanged and are
written as plain data; an experiment that declares a plain dict `defaults` still works. Configuration level
only: nothing is trained here."""

import dataclasses
import json
import textwrap

import pytest

import loopdyn
from loopdyn import config as cfg_mod
from loopdyn.errors import ConfigError
from loopdyn.experiments import REGISTRY, Experiment, get

# experiment -> (key, a bad value): every key of every shipped table that has a check or choices (see
# test_every_checked_key_has_a_bad_value_below), several for some
BAD = {
    "ablation-T": [("T_values", [10, 0]), ("T_values", []), ("T_values", [10.5]), ("start_epoch", -1)],
    "ablation-activation": [("activations", ["sigmoid"]), ("activations", [])],
    "ablation-beta": [("beta_values", [-1.0]), ("beta_values", [])],
    "ablation-optimizer": [("optimizers", ["sgd", "rmsprop"]), ("optimizers", []), ("lrs", [0.01, 0.0]),
                           ("lrs", [])],
    "ablation-time": [("dt", 0.0), ("dt", 2.0)],
    "closed-vs-open": [("open_mode", "open_loop_gain"), ("open_mode", "closed_loop")],
    "closed-vs-open-seeds": [("open_mode", "open_loop_target")],
    "invisible-memory": [("first_epochs", 0), ("detours", [0.4, -0.2]), ("detours", []), ("detour_epochs", 0),
                         ("noise", -0.1), ("noise_lr_factor", 0.0), ("noise_epochs", 0), ("settle_epochs", 0),
                         ("new_decay", -0.4), ("new_epochs", 0)],
    "learning-rules": [("activations", ["sigmoid"]), ("activations", []), ("sigmas", [0.1, 0.0]), ("sigmas", []),
                       ("model_replay", 0), ("model", "mlp"), ("model_sigma", -0.1), ("T_values", [10, 0]), ("T_values", []), ("T_epochs", [0, -1]),
                       ("T_epochs", [])],
    "arm-tracking": [("open_epochs", -1), ("open_trainable", ["W", "W"]), ("acquisition_fraction", 1.0),
                     ("acquisition_window", 0), ("interference_window", 0), ("eig_tolerance", 0.0)],
    "nonlinear-stages": [("open_mode", "open_loop_gain"), ("agents", ["relu"]), ("agents", [])],
    "nonlinear-stages-cartpole": [("open_mode", "closed_loop"), ("agents", ["linear", "gru"])],
    "stages": [("T_start_epoch", -1), ("T_values", [10, 0]), ("T_values", []), ("T_epochs", 0),
               ("beta_start", "soon"), ("beta_start", "-3"), ("beta_values", [0.0, -1.0]), ("beta_epochs", 0),
               ("alphas", [0.5, 1.5]), ("alphas", []), ("surrogate_T", 0), ("surrogate_steps", 0)],
    "tracking": [("open_epochs", -1), ("open_trainable", ["W", "W"]), ("open_trainable", ["W", "q"]),
                 ("open_trainable", []), ("acquisition_fraction", 1.0), ("acquisition_fraction", 0.0),
                 ("acquisition_window", 0), ("interference_window", 0), ("eig_tolerance", 0.0),
                 ("eig_tolerance", 1.0)],
}


def _config_of(name: str) -> str:
    exp = get(name)
    return exp.reproduce.config if exp.reproduce else name


def _table_name(name: str) -> str:
    return name.replace("-", "_")


def _one_line_error(name: str, key: str, value) -> str:
    with pytest.raises(ConfigError) as e:
        loopdyn.load_config(_config_of(name), [f"{_table_name(name)}.{key}={json.dumps(value)}"])
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_every_shipped_experiment_declares_a_typed_documented_table():
    for name, exp in sorted(REGISTRY.items()):
        table = type(exp).table
        if name == "ensemble":
            assert table is None and exp.defaults == {}
            continue
        assert dataclasses.is_dataclass(table) and table.__dataclass_params__.frozen, name
        for f in dataclasses.fields(table):
            assert f.metadata.get("doc"), f"{name}: {f.name} has no doc"
        # `defaults` is derived from the table, as plain data (lists, not tuples)
        assert _plain(exp.defaults)
        assert set(exp.defaults) == {f.name for f in dataclasses.fields(table)}


def test_every_checked_key_has_a_bad_value_below():
    for name, exp in sorted(REGISTRY.items()):
        table = type(exp).table
        if table is None:
            continue
        checked = {k for k, f in cfg_mod.parameters(table).items() if f.metadata.get("check") or f.metadata.get("choices")}
        assert checked <= {k for k, _ in BAD.get(name, [])}, (name, checked)


@pytest.mark.parametrize("name,key,value", [(n, k, v) for n, cases in BAD.items() for k, v in cases])
def test_a_bad_value_of_a_checked_key_is_a_one_line_error_naming_table_key(name, key, value):
    msg = _one_line_error(name, key, value)
    assert f"{_table_name(name)}.{key} = {value!r}" in msg, msg  # the value as written (a list, not a tuple)
    assert "must be" in msg or "not allowed" in msg, msg


def _wrong_type(fld):
    t = fld.type if isinstance(fld.type, str) else getattr(fld.type, "__name__", str(fld.type))
    return 3 if t in ("str", "tuple[str, ...]") else "three"


@pytest.mark.parametrize("name,key", [(n, k) for n, exp in sorted(REGISTRY.items()) if type(exp).table is not None
                                      for k in cfg_mod.parameters(type(exp).table)])
def test_a_value_of_the_wrong_type_is_a_one_line_error_naming_table_key(name, key):
    fld = cfg_mod.parameters(type(get(name)).table)[key]
    msg = _one_line_error(name, key, _wrong_type(fld))
    assert f"{_table_name(name)}.{key} = " in msg and "must be" in msg, msg


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "ensemble"))
def test_an_unknown_key_is_a_one_line_error_listing_the_allowed_ones(name):
    msg = _one_line_error(name, "bogus", 1)
    assert f"{_table_name(name)}.bogus is not a known key" in msg
    assert all(k in msg for k in get(name).defaults), msg


def test_checks_across_keys_stay_in_validate():
    assert "same length" in _one_line_error("ablation-optimizer", "lrs", [0.01])
    msg = _one_line_error("stages", "T_start_epoch", 100000)
    assert "stages.T_start_epoch" in msg and "< epochs" in msg


def _plain(v) -> bool:
    """Plain TOML/JSON data: dicts, lists, strings, numbers, booleans (no tuples)."""
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return isinstance(v, (str, int, float, bool))


@pytest.mark.parametrize("name", cfg_mod.shipped())
def test_a_shipped_config_survives_to_dict_and_from_dict_as_plain_data(name):
    c = cfg_mod.load(name)
    d = cfg_mod.to_dict(c)
    assert _plain(d), d  # lists, not tuples
    assert cfg_mod.from_dict(d, source=c.source) == c
    assert cfg_mod.from_dict(json.loads(json.dumps(d)), source=c.source) == c  # as read back from a store
    exp = get(c.experiment)
    if type(exp).table is not None:
        assert set(c.table) == set(exp.defaults)
        assert d[_table_name(exp.name)] == {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.table.items()}


def test_the_table_values_are_typed():
    c = loopdyn.load_config("stages", ["stages.alphas=[0, 1]", "stages.beta_values=[1, 2]"])
    assert c.table["alphas"] == (0.0, 1.0) and all(type(a) is float for a in c.table["alphas"])
    assert c.table["T_values"] == (10, 20, 50, 100, 120)
    assert type(loopdyn.load_config("ablation-time", ["ablation_time.dt=1"]).table["dt"]) is float


# ------------------------------------------------------------------------------------------ users' experiments
@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a user's experiment module into a fresh folder on sys.path; returns a writer."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(module: str, body: str) -> str:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
        return module

    return write


def test_an_experiment_with_a_plain_dict_of_defaults_still_works(user_module):
    mod = user_module("legacy_tables_exp", """
        from loopdyn.experiments import Experiment

        class Legacy(Experiment):
            name = "legacy"
            defaults = {"n": 3, "xs": [1.0, 2.0], "ks": [1, 2], "names": ["a"], "flag": False, "label": "x"}
    """)
    base = {"experiment": f"{mod}:Legacy"}
    c = cfg_mod.from_dict(base)
    assert c.table == {"n": 3, "xs": (1.0, 2.0), "ks": (1, 2), "names": ("a",), "flag": False, "label": "x"}
    c = cfg_mod.from_dict({**base, "legacy": {"xs": [1, 5], "n": 7}})
    assert c.table["xs"] == (1.0, 5.0) and c.table["n"] == 7
    d = cfg_mod.to_dict(c)
    assert d["legacy"]["xs"] == [1.0, 5.0] and cfg_mod.from_dict(d) == c
    assert get(f"{mod}:Legacy").defaults == {"n": 3, "xs": [1.0, 2.0], "ks": [1, 2], "names": ["a"], "flag": False,
                                             "label": "x"}
    for key, value in [("n", 1.5), ("xs", ["a"]), ("xs", []), ("ks", [1.5]), ("flag", 1), ("label", 2), ("names", [1])]:
        with pytest.raises(ConfigError) as e:
            cfg_mod.from_dict({**base, "legacy": {key: value}}, source="u.toml")
        assert str(e.value).startswith(f"u.toml: legacy.{key} = ") and "\n" not in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match="legacy.other is not a known key; allowed: n, xs, ks, names, flag, label"):
        cfg_mod.from_dict({**base, "legacy": {"other": 1}})


def test_a_users_typed_table_is_checked_key_by_key(user_module):
    mod = user_module("typed_tables_exp", """
        from dataclasses import dataclass

        from loopdyn.config import each, param
        from loopdyn.experiments import Experiment

        @dataclass(frozen=True)
        class Table:
            rates: tuple[float, ...] = param((0.1,), doc="rates", check=each("> 0", lambda r: r > 0))
            how: str = param("a", doc="how", choices=("a", "b"))

        class Mine(Experiment):
            name = "my-exp"
            table = Table
    """)
    base = {"experiment": f"{mod}:Mine"}
    assert cfg_mod.from_dict(base).table == {"rates": (0.1,), "how": "a"}
    with pytest.raises(ConfigError, match=r"^u.toml: my_exp.rates = \[0.1, -1.0\] must be a non-empty list, each > 0$"):
        cfg_mod.from_dict({**base, "my_exp": {"rates": [0.1, -1.0]}}, source="u.toml")
    with pytest.raises(ConfigError, match=r"^u.toml: my_exp.how = 'c' is not allowed; choose one of a, b$"):
        cfg_mod.from_dict({**base, "my_exp": {"how": "c"}}, source="u.toml")


def test_a_table_that_is_not_a_dataclass_is_a_one_line_error(user_module):
    mod = user_module("untyped_tables_exp", """
        from loopdyn.experiments import Experiment

        class Bad(Experiment):
            name = "bad-table"
            table = {"x": 1}
    """)
    with pytest.raises(ConfigError) as e:
        cfg_mod.from_dict({"experiment": f"{mod}:Bad"})
    assert "must be a dataclass" in str(e.value) and "\n" not in str(e.value)


def test_the_curriculum_example_declares_a_typed_table(monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root))
    c = loopdyn.load_config(root / "examples" / "curriculum.toml")
    assert isinstance(Experiment, type) and dataclasses.is_dataclass(type(get(c.experiment)).table)
    assert cfg_mod.from_dict(cfg_mod.to_dict(c), source=c.source) == c
    with pytest.raises(ConfigError) as e:
        loopdyn.load_config(root / "examples" / "curriculum.toml", ["curriculum.T_values=[10, -5, 50]"])
    assert "curriculum.T_values = [10, -5, 50] must be" in str(e.value)
