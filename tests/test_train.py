"""Training ensembles: vmapped runs equal runs trained one by one; resume; divergence."""

import dataclasses

import numpy as np
import pytest

import loopdyn
from loopdyn import config as _config

SMALL = """
name = "small"
epochs = 30
seeds = [0, 1, 2]
dtype = "float64"
[task]
T = 15
batch = 16
test_batch = 8
[agent]
N = 12
rank = 1
[train]
lr = 0.05
[record]
chunk = 10
"""


def _cfg(extra="", **tables):
    return _config.from_toml_text(SMALL + extra, source="test.toml")


def _arrays(path):
    ds = loopdyn.open_run(path)
    return {k: ds[k].values for k in ds.data_vars}, ds


def test_ensemble_equals_runs_one_by_one(tmp_path):
    cfg = _cfg('[sweep]\n"train.lr" = [0.05, 0.2]\n"agent.N" = [12, 9]\n')
    arrays, ds = _arrays(loopdyn.train(cfg, tmp_path / "ens.zarr", progress=False))
    assert ds.sizes["run"] == 12
    # both groups (N, the smaller one padded), both learning rates, two seeds: each solo run costs a compilation
    for i in (0, 11):
        run = ds.isel(run=i)
        solo = dataclasses.replace(cfg, seeds=(int(run.seed),), sweep=())
        solo = _config.with_values(solo, {"train.lr": float(run.lr), "agent.N": int(run.N)})
        a, sds = _arrays(loopdyn.train(solo, tmp_path / f"solo{i}.zarr", progress=False))
        np.testing.assert_allclose(arrays["train_loss"][i], a["train_loss"][0], rtol=1e-9)
        np.testing.assert_allclose(arrays["test_loss"][i], a["test_loss"][0], rtol=1e-9)
        np.testing.assert_allclose(arrays["eigenvalues"][i], a["eigenvalues"][0], rtol=1e-7, atol=1e-9)
        n = int(run.N)
        np.testing.assert_allclose(arrays["z"][i][:, :n], a["z"][0], rtol=1e-9, atol=1e-12)
        assert np.all(np.isnan(arrays["z"][i][:, n:]))  # padding of the smaller group


def test_tanh_ensemble_in_blocks_equals_runs_one_by_one(tmp_path):
    """A nonlinear ensemble whose epochs are large runs in blocks of 2 on each CPU device (8 runs over
    the two test devices: 2 blocks each, looped); every run equals the same run trained alone."""
    from loopdyn.training import make_groups

    cfg = _cfg()
    cfg = _config.with_values(cfg, {"agent.N": 128, "agent.rank": 0, "agent.activation": "tanh", "agent.init": "rnn",
                                    "agent.trainable": ["m", "W", "z"], "agent.g": 0.5, "task.T": 20, "task.batch": 64})
    cfg = dataclasses.replace(cfg, seeds=tuple(range(8)), epochs=6)
    (group,) = make_groups([(cfg, "ens")])
    assert group.problem.runs_per_block == 2
    arrays, ds = _arrays(loopdyn.train(cfg, tmp_path / "ens.zarr", progress=False))
    for i in (0, 5):
        solo = dataclasses.replace(cfg, seeds=(i,))
        a, _ = _arrays(loopdyn.train(solo, tmp_path / f"solo{i}.zarr", progress=False))
        np.testing.assert_allclose(arrays["train_loss"][i], a["train_loss"][0], rtol=1e-10)
        np.testing.assert_allclose(arrays["test_loss"][i], a["test_loss"][0], rtol=1e-10)
        np.testing.assert_allclose(arrays["W"][i], a["W"][0], rtol=1e-10, atol=1e-13)
    assert not np.allclose(arrays["train_loss"][0], arrays["train_loss"][5])  # different seeds, different runs


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """SMALL trained once, uninterrupted: the reference of the tests below, which only read it."""
    return loopdyn.train(_cfg(), tmp_path_factory.mktemp("small") / "small.zarr", progress=False)


def test_same_config_same_numbers(tmp_path, small_store):
    a, _ = _arrays(small_store)
    b, _ = _arrays(loopdyn.train(_cfg(), tmp_path / "b.zarr", progress=False))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_resume_is_identical_to_uninterrupted(tmp_path, small_store):
    cfg = _cfg()
    full, _ = _arrays(small_store)
    part = loopdyn.train(cfg, tmp_path / "part.zarr", progress=False, stop_after=20)
    _, ds = _arrays(part)
    assert ds.sizes["epoch"] == 20 and ds.sizes["checkpoint"] == 20
    loopdyn.resume(part, progress=False)
    resumed, ds = _arrays(part)
    assert ds.sizes["epoch"] == 30
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k])


def test_half_written_chunk_is_ignored_and_overwritten(tmp_path, small_store):
    cfg = _cfg()
    full, _ = _arrays(small_store)
    part = loopdyn.train(cfg, tmp_path / "part.zarr", progress=False, stop_after=10)
    import zarr

    g = zarr.open_group(str(part), mode="r+")
    g["train_loss"][:, 10:20] = 123.0  # a chunk written but never committed by the progress marker
    assert loopdyn.open_run(part).sizes["epoch"] == 10
    loopdyn.resume(part, progress=False)
    resumed, _ = _arrays(part)
    np.testing.assert_array_equal(full["train_loss"], resumed["train_loss"])


def test_divergent_run_is_marked_and_others_kept_bit_identical(tmp_path):
    """sigma_zm(0) = 0.3 > 0 makes the joint system diverge like (1 + sqrt 0.3)^t: its loss at T = 100 is
    ~1e38, beyond train.diverge_above. The other runs of the float32 ensemble are bit-identical to those of
    an ensemble where that run is healthy, and every value of the diverged run is NaN after its divergence."""
    text = SMALL.replace('dtype = "float64"', 'dtype = "float32"').replace("T = 15", "T = 100").replace("lr = 0.05", "lr = 0.01")
    bad = _config.from_toml_text(text + '[sweep]\n"agent.over" = [-0.02, 0.3]\n', source="t.toml")
    good = _config.from_toml_text(text + '[sweep]\n"agent.over" = [-0.02, -0.03]\n', source="t.toml")
    a, ds = _arrays(loopdyn.train(bad, tmp_path / "bad.zarr", progress=False))
    b, _ = _arrays(loopdyn.train(good, tmp_path / "good.zarr", progress=False))
    assert list(a["diverged_epoch"]) == [-1, -1, -1, 0, 0, 0] and list(b["diverged_epoch"]) == [-1] * 6
    assert a["train_loss"].dtype == np.float32 and a["z"].dtype == np.float32
    for name in a:
        np.testing.assert_array_equal(a[name][:3], b[name][:3], err_msg=name)
    assert np.all(np.isfinite(a["train_loss"][:3]))
    assert np.all(a["train_loss"][3:, 0] > 1e25)  # the divergence epoch keeps its (overflowing) loss
    for name in ("train_loss", "test_loss", "spectral_radius", "sigma_zm"):
        assert np.all(np.isnan(a[name][3:, 1:])), name
    assert np.all(np.isnan(a["z"][3:, 1:])) and np.all(np.isnan(a["gains"][3:, 1:]))
    assert np.all(np.isnan(a["eigenvalues"][3:, 1:]))


def test_store_records_provenance(small_store):
    ds = loopdyn.open_run(small_store)
    assert ds.attrs["config"]["agent"]["N"] == 12
    assert ds.attrs["versions"]["jax"] and ds.attrs["git_commit"]
    assert list(ds.seed.values) == [0, 1, 2]
    # the stored parameters reproduce the stored overlaps and spectral radius
    m = ds.m.values[0, :, 0]
    z = ds.z.values[0, 7, :, 0]
    np.testing.assert_allclose(z @ m, ds.sigma_zm.values[0, 7], rtol=1e-10)
    from loopdyn.system import effective_matrix, spectrum

    ov = {k: ds[k].values[0, 7] for k in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu")}
    np.testing.assert_allclose(np.abs(spectrum(effective_matrix(**ov))).max(), ds.spectral_radius.values[0, 7], rtol=1e-10)


def test_skip_first_update_repeats_epoch_zero_weights(tmp_path):
    cfg = _config.with_values(_cfg(), {"train.skip_first_update": True})
    ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "s.zarr", progress=False))
    np.testing.assert_array_equal(ds.z.values[:, 0], ds.z.values[:, 1])
    assert not np.array_equal(ds.z.values[:, 1], ds.z.values[:, 2])
    np.testing.assert_array_equal(ds.test_loss.values[:, 0], ds.test_loss.values[:, 1])


@pytest.mark.parametrize("schedule,expected", [("every:7", [0, 7, 14, 21, 28, 29]), ("log", None)])
def test_checkpoint_schedules(tmp_path, schedule, expected):
    cfg = _config.with_values(_cfg(), {"record.checkpoint": schedule, "record.n_log": 5})
    ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "c.zarr", progress=False))
    ck = list(ds.checkpoint.values)
    if expected is not None:
        assert ck == expected
    else:
        assert ck[0] == 0 and ck[-1] == 29 and len(ck) <= 7
    assert np.all(np.isfinite(ds.z.values))


def test_many_runs_sharded_and_gains_match_an_independent_fit(tmp_path):
    """16 runs over the two test devices (8 each; LAPACK inside a sharded program once hung here),
    and the stored gains equal a QR least-squares fit on the re-simulated training trajectories."""
    import jax

    from _helpers import closed_loop
    from loopdyn.agents import AgentParams, AgentSpec
    from loopdyn.plants import double_integrator

    assert len(jax.devices()) == 2
    cfg = _config.with_values(_cfg(), {"agent.N": 8})
    cfg = dataclasses.replace(cfg, seeds=tuple(range(16)), epochs=10)
    ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "many.zarr", progress=False))
    assert ds.sizes["run"] == 16 and np.all(np.isfinite(ds.train_loss.values))
    spec = AgentSpec(N=8, rank=1)
    w = cfg.record.gain_window
    assert w == 4
    for run, epoch in ((0, 0), (5, 9), (15, 4)):
        X, U = [], []
        for e in range(max(0, epoch - w + 1), epoch + 1):  # the gain window: this epoch and the w - 1 before
            p = AgentParams(**{k: ds[k].values[run] if "checkpoint" not in ds[k].dims else ds[k].values[run, e]
                               for k in ("m", "z", "U", "V")})
            # the epoch's training batch: the keys of loopdyn.training (run key, fold_in epoch, split)
            key = jax.random.fold_in(jax.random.split(jax.random.PRNGKey(int(ds.seed[run])))[1], e)
            x0 = jax.random.uniform(jax.random.split(key)[0], (cfg.task.batch, 2), np.float64, -cfg.task.x0_range,
                                    cfg.task.x0_range)
            xs, us = closed_loop(spec, double_integrator(), p, x0, cfg.task.T)
            X.append(np.asarray(xs[1:]).reshape(-1, 2))
            U.append(np.asarray(us[1:]).reshape(-1, 1))
        K = np.linalg.lstsq(np.concatenate(X), np.concatenate(U), rcond=None)[0].T
        np.testing.assert_allclose(ds.gains.values[run, epoch], K, rtol=1e-8)
