"""The ablations' statistics (spec §6): medians and IQRs against NumPy, the zig-zag and rebound-peak
metrics on paths with known answers, conditions of a store, and the configs' one-line refusals."""

import numpy as np
import pytest

import loopdyn
from loopdyn.config import ConfigError
from loopdyn.analysis import rebound_peak, spread, zigzag
from loopdyn.experiments import REGISTRY, get

ABLATIONS = ("ablation-T", "ablation-optimizer", "ablation-activation", "ablation-time", "ablation-beta",
             "closed-vs-open-seeds")


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_spread_is_numpys_percentiles(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(size=n)
    s = spread(x)
    q25, med, q75 = np.percentile(x, [25, 50, 75])
    assert (s["n"], s["n_valid"]) == (n, n)
    assert s["median"] == pytest.approx(med) and s["q25"] == pytest.approx(q25) and s["q75"] == pytest.approx(q75)


def test_spread_of_epochs_leaves_out_never_and_nan():
    epochs = np.array([12, -1, 40, 7, -1, 19, np.nan, 3])
    s = spread(epochs, epochs=True)
    valid = np.array([12, 40, 7, 19, 3])
    assert (s["n"], s["n_valid"]) == (7, 5)
    assert [s["q25"], s["median"], s["q75"]] == pytest.approx(np.percentile(valid, [25, 50, 75]))
    never = spread([-1, -1], epochs=True)
    assert never["median"] is None and (never["n"], never["n_valid"]) == (2, 0)
    losses = spread([1.0, np.nan, 3.0])  # a diverged run is left out
    assert (losses["n"], losses["median"]) == (2, 2.0)


def test_zigzag_counts_sign_changes_of_the_increments():
    assert zigzag(np.arange(10.0)) == 0.0  # monotone
    assert zigzag([0, 1, 0, 1, 0, 1, 0]) == 1.0  # period 2: every increment flips
    # increments + + - - + + + - : sign changes at 3 of the 7 consecutive pairs
    path = np.cumsum([0, 1, 2, -1, -3, 2, 1, 1, -2])
    assert zigzag(path) == pytest.approx(3 / 7)
    # zero increments are dropped, a NaN ends the path, too short a path has no value
    assert zigzag([0, 1, 1, 0, 1, np.nan, 5, 9]) == 1.0
    assert np.isnan(zigzag([0, 1, 0]))
    rng = np.random.default_rng(0)
    assert abs(zigzag(np.cumsum(rng.standard_normal(20000))) - 0.5) < 0.02  # a random walk


def test_rebound_peak_finds_the_largest_rise_over_the_running_minimum():
    # falls from 100 to 5, rises to 400 (80x), falls to 2: the peak is the rebound, not epoch 0
    y = np.array([100, 50, 5, 20, 400, 30, 2, 2.5])
    assert rebound_peak(y) == (4, 400.0, pytest.approx(80.0))
    assert rebound_peak([5.0, 4.0, 3.0]) == (0, 5.0, 1.0)  # monotone: rise 1 at the start
    assert rebound_peak([3.0, 1.0, 6.0, np.nan, 100.0]) == (2, 6.0, 6.0)  # a divergence ends the curve
    assert rebound_peak([np.nan, np.nan]) is None


def test_every_ablation_ships_a_config_and_takes_part_in_reproduce():
    for name in ABLATIONS:
        exp = get(name)
        cfg = loopdyn.load_config(exp.reproduce.config)
        assert cfg.experiment == name and len(cfg.seeds) == 64
        labels = [label for _, label in exp.phases(cfg)]
        assert len(labels) == len(set(labels))
        assert exp.figure_names and set(exp.reproduce.claims) == set(exp.figure_names)
    assert {"closed-vs-open", "stages"} <= {n for n, e in REGISTRY.items() if e.reproduce}


def test_conditions_of_the_ablations():
    T = loopdyn.load_config("ablation-T")
    phases = get("ablation-T").phases(T)
    assert [label for _, label in phases] == ["base", "T=10", "T=20", "T=50", "T=100", "T=120"]
    assert phases[0][0].epochs == 11 and all(c.start.store == "self" and c.start.epoch == "10" for c, _ in phases[1:])
    time_phases = get("ablation-time").phases(loopdyn.load_config("ablation-time"))
    cont = time_phases[1][0]
    assert (cont.plant.kind, cont.plant.dt, cont.agent.alpha, cont.task.T) == ("integrator", 0.1, 0.1, 500)
    (beta, label), = get("ablation-beta").phases(loopdyn.load_config("ablation-beta"))
    assert dict(beta.sweep) == {"task.beta": (0.0, 0.5, 2.0, 5.0)}  # vmapped: one compiled ensemble


@pytest.mark.parametrize("config,override,needle", [
    ("ablation-optimizer", "ablation_optimizer.lrs=[0.01]", "same length"),
    ("ablation-optimizer", 'ablation_optimizer.optimizers=["sgd", "rmsprop"]', "rmsprop"),
    ("ablation-T", "ablation_T.T_values=[10, 0]", "positive integers"),
    ("ablation-time", "ablation_time.dt=2.0", "(0, 1]"),
    ("ablation-beta", "ablation_beta.beta_values=[-1.0]", ">= 0"),
    ("ablation-activation", 'ablation_activation.activations=["sigmoid"]', "sigmoid"),
    ("ablation-T", 'start.store="x.zarr"', "[start]"),
])
def test_bad_ablation_settings_are_one_line_errors(config, override, needle):
    with pytest.raises(ConfigError) as e:
        loopdyn.load_config(config, [override])
    assert needle in str(e.value) and "\n" not in str(e.value)
