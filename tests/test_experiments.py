"""Every experiment with phases keeps a config's `[sweep]` in each phase (issue #17, part 6), and a phase
that continues from or imitates an earlier one takes each run's source from the run with the same seed and
the same swept values."""

import pytest

import loopdyn
from loopdyn.experiments import REGISTRY, get
from loopdyn.experiments._sources import _rows
from loopdyn.training import make_groups

SWEEP = "sweep.train.lr=[0.003, 0.01, 0.03]"


def _multi_phase():
    out = []
    for name, exp in sorted(REGISTRY.items()):
        source = exp.reproduce.config if exp.reproduce else name
        try:
            cfg = loopdyn.load_config(source)
        except loopdyn.ConfigError:
            continue
        if len(exp.phases(cfg)) > 1:
            out.append(name)
    return out


MULTI_PHASE = _multi_phase()


def test_the_phased_experiments_are_found():
    assert {"closed-vs-open", "stages", "tracking", "ablation-T", "closed-vs-open-seeds"} <= set(MULTI_PHASE)


def _load(name, *more):
    exp = get(name)
    return loopdyn.load_config(exp.reproduce.config if exp.reproduce else name, [SWEEP, *more])


@pytest.mark.parametrize("name", [n for n in MULTI_PHASE if n != "invisible-memory"])
def test_a_swept_config_loads_and_every_phase_carries_the_sweep(name):
    cfg = _load(name)  # was: "sweep.train.lr must be a non-empty list of values"
    phases = get(name).phases(cfg)
    assert len(phases) > 1
    for phase, label in phases:
        assert dict(phase.sweep)["train.lr"] == (0.003, 0.01, 0.03), label
    runs = [r for gr in make_groups(phases) for r in gr.values]
    assert {r["train.lr"] for r in runs} == {0.003, 0.01, 0.03}


def test_the_invisible_memory_experiment_refuses_a_sweep_in_one_line():
    with pytest.raises(loopdyn.ConfigError) as e:
        _load("invisible-memory")
    assert "[sweep]" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["closed-vs-open", "stages", "tracking", "ablation-T"])
def test_a_later_phase_continues_the_run_with_the_same_seed_and_swept_values(name):
    cfg = _load(name, "seeds=[0, 1]")
    groups = make_groups(get(name).phases(cfg))
    first = [(r, v) for gr in groups if gr.phase == 0 for r, v in zip(gr.runs, gr.values)]
    for gr in groups:
        if gr.phase == 0:
            continue
        rows = _rows(gr, groups, None, True, -1, "self", cfg.source, "start")
        for row, v in zip(rows, gr.values):
            source = dict(first)[row]
            assert (source["seed"], source["train.lr"]) == (v["seed"], v["train.lr"]), (gr.label, row, v)


def test_the_reported_closed_vs_open_toml_with_a_sweep_loads(tmp_path):
    """The config of the bug report: `experiment = "closed-vs-open"` with `[sweep] "train.lr" = [...]`."""
    path = tmp_path / "cvo.toml"
    path.write_text('experiment = "closed-vs-open"\nseeds = [0]\n\n[sweep]\n"train.lr" = [0.003, 0.01, 0.03]\n')
    cfg = loopdyn.load_config(path)
    assert [(label, dict(c.sweep)) for c, label in get("closed-vs-open").phases(cfg)] == [
        ("closed", {"train.lr": (0.003, 0.01, 0.03)}), ("open", {"train.lr": (0.003, 0.01, 0.03)})]


def test_closed_vs_open_pairs_each_closed_run_with_the_student_of_the_same_seed_and_sweep():
    xr = pytest.importorskip("xarray")
    from loopdyn.analysis import closed_open_pairs

    # seeds x lr = (0, 1) x (a, b), seeds fastest, in both phases
    ds = xr.Dataset(coords={"seed": ("run", [0, 1, 0, 1] * 2), "phase": ("run", ["closed"] * 4 + ["open"] * 4)})
    assert closed_open_pairs(ds) == [(0, 0, 4), (0, 2, 6), (1, 1, 5), (1, 3, 7)]


def test_a_continuation_without_a_matching_source_run_is_a_one_line_error():
    from loopdyn.config import ConfigError

    cfg = _load("stages", "seeds=[0]", "sweep.task.T=[30]")  # the T-continuation sweeps its own T values
    groups = make_groups(get("stages").phases(cfg))
    t_cont = next(gr for gr in groups if gr.label == "T-continuation")
    with pytest.raises(ConfigError) as e:
        _rows(t_cont, groups, None, True, -1, "self", cfg.source, "start")
    assert "no run of phase 0 has" in str(e.value) and "task.T = " in str(e.value) and "\n" not in str(e.value)
