"""Self-describing stores (issue #21.4, #21.6): a store read with xarray alone, in a process where loopdyn
cannot be imported, has its run settings as coordinates, CF attributes on every variable, the analysis as
a group, nothing that is not a Zarr node (no warning) and a mask telling unwritten epochs from diverged
ones; stores of formats -2 and -3 are migrated on read and upgraded when written; a complete store extended
with `--resume --epochs` equals a store trained that long at once."""

import json
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import loopdyn
from conftest import SWEPT
from loopdyn.analysis import checkpoint_params
from loopdyn.cli import app
from loopdyn.errors import ConfigError
from loopdyn.store import StoreLock, _files, upgrade, write_analysis

DATA = Path(__file__).parent / "data"

# Run with `python -I -S` (no site, no .pth files, so no editable loopdyn), site-packages appended by hand:
# the reader a colleague without loopdyn has. Warnings are errors.
PLAIN = r"""
import json, sys, warnings
sys.path.append(sys.argv[1])
try:
    import loopdyn
    sys.exit("loopdyn is importable")
except ImportError:
    pass
warnings.simplefilter("error")
import numpy as np, xarray as xr, zarr
def read(path):
  ds = xr.open_zarr(path)  # as a colleague types it: consolidated metadata, no warning
  list(zarr.open_group(path, mode="r").members(max_depth=None))  # every node of the hierarchy
  out = {"coords": {k: ds[k].values.tolist() for k in ds.coords if ds[k].dims == ("run",)},
         "attrs": {k: dict(v.attrs) for k, v in ds.variables.items()},
         "epochs_done": ds.attrs["epochs_done"], "complete": ds.attrs["complete"],
         "committed": ds.committed.values.tolist(), "train_loss": np.where(np.isnan(ds.train_loss.values), None,
                                                                         ds.train_loss.values).tolist()}
  try:
      an = xr.open_zarr(path, group="analysis")
      enc = lambda a: {"re": a.real.tolist(), "im": a.imag.tolist()} if np.iscomplexobj(a) else a.tolist()
      out["analysis"] = {k: enc(an[k].values) for k in an.data_vars}
      out["analysis_record"] = an.attrs["loopdyn_analysis"]
  except (FileNotFoundError, KeyError):  # no analysis yet (KeyError: not in the consolidated metadata)
      pass
  return out


for path in sys.argv[2:]:
    print(json.dumps(read(path)))
"""


def _plain(*paths: Path):
    """What xarray alone reads from each store (one fresh process for all of them)."""
    res = subprocess.run([sys.executable, "-I", "-S", "-c", PLAIN, sysconfig.get_paths()["purelib"], *map(str, paths)],
                         capture_output=True, text=True, cwd=paths[0].parent, timeout=120)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    return out if len(paths) > 1 else out[0]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_a_store_read_with_xarray_alone_describes_itself(swept_store, tmp_path):
    store = _copy(swept_store, tmp_path / "s.zarr")
    ds = loopdyn.open_run(store)
    final = ds.train_loss.values[:, -1]
    with StoreLock(store, "analyse"):  # any analysis: written atomically, reachable as group "analysis"
        write_analysis(store, {"final": (("run",), final)}, {"final": "the last training loss"}, {"numbers": {"n": 4}})
    got = _plain(store)
    # the per-run settings are coordinates, equal to what loopdyn reads
    assert {"seed", "lr", "clip", "phase", "beta"} <= set(got["coords"])
    for k in ("seed", "lr", "clip", "phase"):
        assert got["coords"][k] == ds[k].values.tolist(), k
    assert sorted(set(got["coords"]["lr"])) == [0.003, 0.01]
    # CF-style attributes on every variable; descriptions from the store's definitions
    for name, attrs in got["attrs"].items():
        assert attrs.get("long_name"), name
    assert got["attrs"]["train_loss"]["description"] == ds.attrs["train_loss_definition"]
    assert got["attrs"]["spectral_radius"]["units"] == "1" and "joint matrix" in got["attrs"]["eigenvalues"]["long_name"]
    assert got["attrs"]["lr"]["long_name"] == "learning rate" and got["attrs"]["gains"]["description"] == ds.attrs["gains_definition"]
    assert "clip" in got["attrs"]["clip"]["description"]
    assert got["epochs_done"] == 6 and got["complete"] is True and np.all(got["committed"])
    assert got["analysis"] == {"final": final.tolist()} and got["analysis_record"]["numbers"] == {"n": 4}
    assert loopdyn.check_store(store)["complete"]


def test_unwritten_epochs_are_told_from_diverged_ones_and_an_extension_equals_one_run(swept_store, tmp_path):
    store = _copy(swept_store, tmp_path / "s.zarr")
    seen = []

    def probe():  # polled after each committed chunk: after the first, epochs 12..17 are not yet written
        if not seen:
            seen.append(_plain(store))
        return False

    loopdyn.experiments.extend(store, 18, progress=False, should_stop=probe)
    got = seen[0]
    committed = np.array(got["committed"])
    assert got["epochs_done"] == 12 and got["complete"] is False and committed.shape == (4, 18)
    assert committed[:, :12].all() and not committed[:, 12:].any()
    loss = np.array(got["train_loss"], dtype=float)
    assert np.isnan(loss[:, 12:]).all() and np.isfinite(loss[:, :12]).all()
    direct = loopdyn.train(loopdyn.load_config("linear-rank1", [*SWEPT, "epochs=18"], "0..1"), tmp_path / "d.zarr",
                           progress=False)
    a, b = loopdyn.open_run(store), loopdyn.open_run(direct)
    assert a.attrs["extended_from"] == 6 and a.attrs["config"]["epochs"] == 18 and set(a.data_vars) == set(b.data_vars)
    for k in b.data_vars:  # bit-identical: losses, spectra, gains, every checkpoint's parameters
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)
    np.testing.assert_array_equal(a.checkpoint.values, b.checkpoint.values)
    # a complete store of that length is left as it is; shorter is refused in one line
    assert CliRunner().invoke(app, ["train", "--resume", str(store), "--epochs", "18", "--quiet"]).exit_code == 0
    res = CliRunner().invoke(app, ["train", "--resume", str(store), "--epochs", "10", "--quiet"])
    assert res.exit_code == 2 and "already holds 18 epochs" in res.output and len(res.output.strip().splitlines()) == 1


def test_older_formats_are_migrated_on_read_and_upgraded_when_written(tmp_path):
    stores, olds, states = [], [], []
    for fixture in ("store-v2.zarr", "store-v3.zarr"):
        store = _copy(DATA / fixture, tmp_path / fixture)
        with warnings.catch_warnings(record=True) as seen:  # the old layout: files that are not Zarr nodes
            warnings.simplefilter("always")
            xr.open_zarr(store, consolidated=False)
        assert any("not recognized" in str(w.message) for w in seen)
        old = loopdyn.open_run(store)
        assert old.attrs["loopdyn_format"] == f"loopdyn-store-{fixture[7]}"
        assert old.committed.values.all() and old.train_loss.attrs["long_name"] == "training loss"
        assert old.train_loss.attrs["description"] == old.attrs["train_loss_definition"] and "seed" in old.coords
        states.append(_files.load_state(store, 0, 6))
        with StoreLock(store, "upgrade"):
            upgrade(store)
        stores.append(store)
        olds.append(old)
    for store, old, state, got in zip(stores, olds, states, _plain(*stores)):  # no warning now, the same numbers
        assert loopdyn.open_run(store).attrs["loopdyn_format"] == "loopdyn-store-4"
        assert got["coords"]["seed"] == old.seed.values.tolist() and np.all(got["committed"])
        np.testing.assert_array_equal(np.array(got["train_loss"], float), old.train_loss.values.astype(float))
        assert not any((store / f).exists() for f in ("progress.json", "analysis.json", "lock"))
        again = _files.load_state(store, 0, 6)  # the training state moved into a Zarr group, unchanged
        assert again.keys() == state.keys() and all(np.array_equal(again[k], state[k]) for k in state)
        for k in old.attrs["analysis"]["variables"]:
            v = got["analysis"][k]
            v = np.asarray(v["re"]) + 1j * np.asarray(v["im"]) if isinstance(v, dict) else np.asarray(v)
            np.testing.assert_array_equal(v.astype(old[k].dtype), old[k].values, err_msg=k)
        assert loopdyn.check_store(store)["complete"]


def test_unstack_runs_indexes_the_run_dimension_by_the_swept_keys(swept_store):
    ds = loopdyn.open_run(swept_store)
    u = loopdyn.unstack_runs(ds)
    assert list(u.indexes["run"].names) == ["lr", "seed"]  # clip has one value: not swept
    rho = u.spectral_radius.unstack("run")
    assert rho.dims == ("epoch", "lr", "seed")
    for i in range(ds.sizes["run"]):
        lr, seed = float(ds.lr.values[i]), int(ds.seed.values[i])
        np.testing.assert_array_equal(rho.sel(lr=lr, seed=seed).values, ds.spectral_radius.values[i])
    with pytest.raises(loopdyn.StoreError, match="not told apart by lr"):
        loopdyn.unstack_runs(ds, ["lr"])


def test_figures_training_colours_by_a_swept_key(swept_store, tmp_path):
    from loopdyn.plots import training_figure

    ds = loopdyn.open_run(swept_store)
    fig = training_figure(ds, hue="lr")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr = 0.003", "lr = 0.01"]
    colours = {float(ds.lr.values[i]): tuple(line.get_color()) for i, line in enumerate(ax.get_lines())}
    for i, line in enumerate(ax.get_lines()):
        assert tuple(line.get_color()) == colours[float(ds.lr.values[i])]
    assert len(set(colours.values())) == 2
    assert "$" in ax.get_title()  # the loss definition as mathtext
    with pytest.raises(ConfigError, match="--hue nope: not a per-run coordinate"):
        training_figure(ds, hue="nope")
    res = CliRunner().invoke(app, ["figures", "training", str(swept_store), "--hue", "seed", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "swept-training.png").exists()


def test_checkpoint_params_takes_numpy_indices_and_run_numbers(swept_store):
    ds = loopdyn.open_run(swept_store)
    run = loopdyn.store_runs(ds)[2]
    for sel in (3, np.int64(3), np.array(3)):
        p = checkpoint_params(ds, 2, sel)
        np.testing.assert_array_equal(p.U, ds.U.values[2, 3].astype(np.float64))
        np.testing.assert_array_equal(p.m, ds.m.values[2].astype(np.float64))
    stacked = checkpoint_params(ds, run, np.array([1, 4]))
    assert stacked.U.shape == (2, 8, 1) and stacked.m.shape == (2, 8, 1)  # the untrained m repeated
    np.testing.assert_array_equal(stacked.U[1], ds.U.values[2, 4].astype(np.float64))
    np.testing.assert_array_equal(stacked.m[0], ds.m.values[2].astype(np.float64))
