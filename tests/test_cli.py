"""The command line: bad input gives one line naming the problem, exit code 2, nothing written."""

import json
import re
import subprocess
import sys

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
    """A value given with --set or --seeds is named as such (not as the file's); misspelt names get the
    closest one."""
    cfg = _write(tmp_path, TINY)
    line = _bad(tmp_path, ["train", str(cfg), "--set", "train.lr=0"], "train.lr", "> 0")
    assert line.startswith("loopdyn: error: --set train.lr") and "cfg.toml" not in line
    _bad(tmp_path, ["train", str(cfg), "--set", "trian.lr=0.1"], "trian", "unknown table", "did you mean train?")
    assert _bad(tmp_path, ["train", str(cfg), "--seeds", "7..2"], "seeds").startswith("loopdyn: error: --seeds '7..2'")
    _bad(tmp_path, ["train", str(cfg), "--set", "train.lrr=0.1"], "--set train.lrr", "did you mean train.lr?")
    _bad(tmp_path, ["train", str(cfg), "--set", "agent.NN=3"], "did you mean agent.N?")
    _bad(tmp_path, ["train", str(cfg), "--set", "plant.kind=double_integrater"], "did you mean double_integrator?")
    line = _bad(tmp_path, ["train", str(_write(tmp_path, TINY.replace("[record]", "[recrod]"), "c2.toml"))], "recrod")
    assert "c2.toml" in line and line.endswith("did you mean record?")
    _bad(tmp_path, ["train", "linear-rnak1"], "did you mean linear-rank1?")
    _bad(tmp_path, ["keys", "plant.cartpol"], "did you mean plant.cartpole?")


def test_version_configs_and_keys():
    """`--version`; `configs` lists each shipped config with its experiment and description; `keys` prints
    every key of a table with its type, default, choices and documentation, read from the schema's fields."""
    import dataclasses

    import loopdyn
    from loopdyn import config as cfg_mod

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"loopdyn {loopdyn.__version__}"
    lines = runner.invoke(app, ["configs"]).output.splitlines()
    assert len(lines) == len(cfg_mod.shipped())
    for name, line in zip(cfg_mod.shipped(), lines):
        cfg = cfg_mod.load(name)
        assert line.split()[:2] == [name, cfg.experiment] and line.endswith(cfg.description) and cfg.description
    out = runner.invoke(app, ["keys", "train"]).output
    for f in dataclasses.fields(cfg_mod.TrainConfig):
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [f.name])
        assert f.metadata["doc"] in line and str(f.default).lower().strip("'") in line.lower()
    assert "choices: " + ", ".join(cfg_mod.TRAINING_MODES) in out
    out = runner.invoke(app, ["keys", "plant"]).output  # every kind of plant, each with its own parameters
    for kind in cfg_mod.family("plant").names():
        assert f'[plant] kind = "{kind}"' in out
        for key, f in cfg_mod.parameters(cfg_mod.family("plant").resolve(kind)).items():
            assert f.metadata["doc"] in out, (kind, key)
    assert "T_start_epoch" in runner.invoke(app, ["keys", "stages"]).output


def test_unknown_shipped_config(tmp_path):
    _bad(tmp_path, ["train", "no-such-config"], "linear-rank1", "tanh-closed")


def test_info_on_something_that_is_not_a_store(tmp_path):
    (tmp_path / "x").mkdir()
    _bad(tmp_path, ["info", str(tmp_path / "x")], "not a loopdyn store")
    (tmp_path / "x" / "zarr.json").write_text("{not json")
    _bad(tmp_path, ["info", str(tmp_path / "x")], "corrupt")


def test_train_info_json_and_resume(tmp_path):
    cfg = _write(tmp_path, TINY)
    res = runner.invoke(app, ["train", str(cfg), "--seeds", "0..2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    # the progress bar names the phase (the store's `phase`), after a line with the compilation's seconds
    assert re.search(r"tiny \[ensemble\]: compiled in \d+\.\d s\n", res.output), res.output
    assert re.search(r"tiny \[ensemble\] .*12/12 epochs", res.output), res.output
    store = tmp_path / "o" / "tiny.zarr"
    res = runner.invoke(app, ["info", str(store), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [r["seed"] for r in data["runs"]] == [0, 1, 2]
    import loopdyn

    ds = loopdyn.open_run(store)
    for r, i in zip(data["runs"], range(3)):
        np.testing.assert_allclose(r["final_train_loss"], float(ds.train_loss[i, -1]), rtol=1e-6)
        lam = ds.eigenvalues.values[i, -1][:3]
        np.testing.assert_allclose(r["final_dominant_eigenvalues"], np.c_[lam.real, lam.imag], atol=1e-4)
    table = runner.invoke(app, ["info", str(store)])
    assert "stab_epoch" in table.output and "closed-loop test loss" in table.output
    # resume of a finished store is a no-op; a second train into the same place refuses
    assert runner.invoke(app, ["train", "--resume", str(store), "--quiet"]).exit_code == 0
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "already exists" in res.output
    # a fresh process: `--help` and `info` import neither JAX nor the parts (they start in a fraction of the time)
    probe = (f"import sys\nfrom typer.testing import CliRunner\nfrom loopdyn.cli import app\nr = CliRunner()\n"
             f"h = r.invoke(app, ['--help'])\njax_help = 'jax' in sys.modules\n"
             f"i = r.invoke(app, ['info', {str(store)!r}])\n"
             f"print(h.exit_code, i.exit_code, jax_help, 'jax' in sys.modules, 'loopdyn.experiments' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0", "False", "False", "False"], out
