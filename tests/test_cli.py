"""The command line: bad input gives one line naming the problem, exit code 2, nothing written."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from loopdyn.cli import app

runner = CliRunner()

TINY = """
name = "tiny"
epochs = 12
seeds = [0]
[task]
T = 10
batch = 8
test_batch = 4
[agent]
N = 10
rank = 1
[record]
chunk = 6
"""


def _write(tmp_path, text, name="cfg.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _bad(tmp_path, args, *needles):
    out = tmp_path / "out"
    res = runner.invoke(app, [*args, "--out", str(out)] if args[0] == "train" else args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())
    return lines[0]


@pytest.mark.parametrize(
    "patch,needles",
    [
        (("[agent]", "[agent]\nbogus = 3"), ("agent.bogus", "not a known key", "allowed")),
        (("N = 10", 'N = "ten"'), ("agent.N", "integer")),
        (("[agent]", "[train]\nlr = -0.1\n[agent]"), ("train.lr", "> 0")),
        (("T = 10", "T = 0"), ("task.T", "> 0")),
        (("N = 10", "N = -5"), ("agent.N", "> 0")),
        (("batch = 8", "batch = 0"), ("task.batch", "> 0")),
        (("rank = 1", "rank = 11"), ("agent.rank", "<= agent.N = 10")),
        (("rank = 1", 'rank = 1\nactivation = "sigmoid"'), ("agent.activation", "linear, tanh, relu")),
        (("[task]", '[plant]\nkind = "pendulum"\n[task]'), ("plant.kind", "double_integrator")),
        (("epochs = 12", "epochs = 12\nfoo = 1"), ("foo", "not a known key")),
    ],
)
def test_bad_config_is_one_line_exit_2_nothing_written(tmp_path, patch, needles):
    cfg = _write(tmp_path, TINY.replace(*patch, 1))
    line = _bad(tmp_path, ["train", str(cfg)], *needles)
    assert "cfg.toml" in line


def test_bad_set_override(tmp_path):
    cfg = _write(tmp_path, TINY)
    _bad(tmp_path, ["train", str(cfg), "--set", "train.lr=0"], "train.lr", "> 0")
    _bad(tmp_path, ["train", str(cfg), "--set", "trian.lr=0.1"], "trian", "unknown table")
    _bad(tmp_path, ["train", str(cfg), "--seeds", "7..2"], "seeds")


def test_unknown_shipped_config(tmp_path):
    _bad(tmp_path, ["train", "no-such-config"], "linear-rank1", "tanh-closed")


def test_info_on_something_that_is_not_a_store(tmp_path):
    (tmp_path / "x").mkdir()
    _bad(tmp_path, ["info", str(tmp_path / "x")], "not a loopdyn store")
    (tmp_path / "x" / "zarr.json").write_text("{not json")
    _bad(tmp_path, ["info", str(tmp_path / "x")], "corrupt")


def test_train_info_json_and_resume(tmp_path):
    cfg = _write(tmp_path, TINY)
    res = runner.invoke(app, ["train", str(cfg), "--seeds", "0..2", "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    store = tmp_path / "o" / "tiny.zarr"
    res = runner.invoke(app, ["info", str(store), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [r["seed"] for r in data["runs"]] == [0, 1, 2]
    import loopdyn

    ds = loopdyn.open_run(store)
    for r, i in zip(data["runs"], range(3)):
        np.testing.assert_allclose(r["final_train_loss"], float(ds.train_loss[i, -1]), rtol=1e-6)
        assert len(r["final_dominant_eigenvalues"]) == 3
    table = runner.invoke(app, ["info", str(store)])
    assert "stab_epoch" in table.output and "closed-loop test loss" in table.output
    # resume of a finished store is a no-op; a second train into the same place refuses
    assert runner.invoke(app, ["train", "--resume", str(store), "--quiet"]).exit_code == 0
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "already exists" in res.output
