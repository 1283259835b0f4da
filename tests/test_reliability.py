"""Bad input never gets past validation, and no fault loses or corrupts a store (issue #8).

Every bad input gives one line (`loopdyn: error: ...`), exit code 2, and writes nothing; real concurrent
processes meet the store's lock; Ctrl-C and kill -9 at several moments leave a store that resumes to the
numbers of an uninterrupted run; a damaged store is reported in one line by every command that reads it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import loopdyn
from loopdyn.cli import app
from loopdyn.store import _files

runner = CliRunner()
LOOPDYN = Path(sys.executable).parent / "loopdyn"

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


def _one_line_exit_2(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("loopdyn: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _nothing_written(out: Path):
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


# ------------------------------------------------------------------------------------------ validation
BAD_SETS = [
    (["--set", "train.lr=nan"], ("train.lr", "finite")),
    (["--set", "train.lr=inf"], ("train.lr", "finite")),
    (["--set", "train.clip=nan"], ("train.clip", "finite")),
    (["--set", "agent.alpha=nan"], ("agent.alpha", "finite")),
    (["--set", "agent.over=inf"], ("agent.over", "finite")),
    (["--set", "sweep.train.lr=[0.01, nan]"], ("sweep.train.lr", "finite")),
    (["--set", "task.beta=nan"], ("task.beta", "finite")),
    (["--set", "task.x0_range=inf"], ("task.x0_range", "finite")),
    (["--set", "agent.g=nan"], ("agent.g", "finite")),
    (["--set", "plant.noise=nan"], ("plant.noise", "finite")),
    (["--set", "train.mode='open_loop_gain'", "--set", "teacher.K=[[nan, inf]]"], ("teacher.K", "finite")),
    (["--set", 'name="../../escape"'], ("name", "plain file name")),
    (["--set", 'name="/tmp/abs"'], ("name", "plain file name")),
    (["--set", 'name=""'], ("name", "plain file name")),
    (["--set", 'name="a\\nb"'], ("name", "plain file name")),
    (["--set", "agent.trainable=[]"], ("agent.trainable", "trains nothing")),
    (["--set", "stages=3"], ("stages = 3", "must be a table")),
    (["--set", "closed_vs_open=3"], ("closed_vs_open = 3", "must be a table")),
    (["--seeds", "-1"], ("seeds", "non-negative")),
    (["--seeds", "3,3"], ("seeds", "twice")),
    (["--set", "teacher.store='self'", "--set", "train.mode='open_loop_noise'"], ("teacher.store", "single phase")),
    (["--set", "start.store='self'"], ("start.store", "single phase")),
    (["--set", "seeds='0..100000'", "--set", "agent.N=100", "--set", "task.batch=100", "--set", "task.T=50"],
     ("memory", "fewer runs")),
    (["--set", "epochs=1000000000000"], ("disk", "record.checkpoint")),
    (["--set", "epochs=300000000", "--set", "agent.N=100", "--set", "record.checkpoint='every'"],
     ("disk", "record.checkpoint")),
]


@pytest.mark.parametrize("args,needles", BAD_SETS)
def test_bad_values_are_one_line_exit_2_nothing_written(tmp_path, args, needles):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), *args, "--out", str(out), "--quiet"]), *needles)
    _nothing_written(out)


STAGES_BAD = [
    (["--set", "epochs=20", "--set", "stages.T_start_epoch=500"], ("stages.T_start_epoch", "< epochs")),
    (["--set", 'stages.alphas=["a"]'], ("stages.alphas", "numbers")),
    (["--set", "stages.alphas=[0.5, 2.0]"], ("stages.alphas", "[0, 1]")),
    (["--set", "stages.bogus=1"], ("stages.bogus", "not a known key")),
    (["--set", "stages=3"], ("stages", "must be a table")),
    (["--set", "agent.activation='tanh'"], ("linear rank-1",)),
]


@pytest.mark.parametrize("args,needles", STAGES_BAD)
def test_experiment_tables_are_checked_before_training(tmp_path, args, needles):
    out = tmp_path / "out"
    _one_line_exit_2(runner.invoke(app, ["train", "stages", *args, "--out", str(out), "--quiet"]), *needles)
    _nothing_written(out)


def test_unreadable_and_empty_config_files(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    _one_line_exit_2(runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "o")]), "not UTF-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing\n")
    _one_line_exit_2(runner.invoke(app, ["train", str(empty), "--out", str(tmp_path / "o")]), "is empty")
    _nothing_written(tmp_path / "o")


def test_bad_output_paths(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(afile)]), "is a file")
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(afile / "sub")]), "is a file")
    assert afile.read_text() == "x"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    store = tmp_path / "o" / "tiny.zarr"
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(store), "--quiet"]), "inside the store")
    assert not (store / "tiny.zarr").exists()
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]), "already exists")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories; run as a user to check")
def test_read_only_output_directory(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(ro / "x")]), "permission denied")
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------------------------------ processes
def _run(args, **kw):
    return subprocess.run([str(LOOPDYN), *args], capture_output=True, text=True, timeout=300, **kw)


def _arrays(path):
    ds = loopdyn.open_run(path)
    return {k: ds[k].values for k in ds.data_vars}


LONG = """
name = "long"
epochs = 3000
seeds = [0, 1, 2, 3]
dtype = "float32"
[task]
T = 20
batch = 16
test_batch = 8
[agent]
N = 12
rank = 1
[record]
chunk = 100
checkpoint = "every:50"
"""


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    """The uninterrupted run of LONG, trained by the CLI (every core a host device, as resumes use)."""
    root = tmp_path_factory.mktemp("long")
    cfg = root / "long.toml"
    cfg.write_text(LONG)
    res = _run(["train", str(cfg), "--out", str(root / "ref"), "--quiet"])
    assert res.returncode == 0, res.stderr
    return cfg, _arrays(root / "ref" / "long.zarr")


def _committed(store: Path):
    """Whether a store has its first committed chunk (its progress marker moved)."""
    def committed():
        try:
            return _files.read_progress(store)["epochs_done"] > 0
        except loopdyn.StoreError:  # not created yet
            return False
    return committed


def _wait_for(path, proc, timeout=60.0):
    t0 = time.time()
    while not (path() if callable(path) else path.exists()):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.01)


def test_ctrl_c_at_startup_writes_nothing(tmp_path, long_reference):
    cfg, _ = long_reference
    proc = subprocess.Popen([str(LOOPDYN), "train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("loopdyn: interrupted"), err
    assert "Traceback" not in err and "Segmentation" not in err
    if not (tmp_path / "o" / "long.zarr").exists():
        return  # interrupted before the store was created: nothing written
    # (a slow start may reach training; then it must resume like any interrupted store)
    assert _run(["train", "--resume", str(tmp_path / "o" / "long.zarr"), "--quiet"]).returncode == 0


def _progress(store: Path, above: int):
    """Whether a store's committed epochs have passed `above`."""
    return lambda: _files.read_progress(store)["epochs_done"] > above


def _interrupted_at(proc, store: Path) -> int:
    """The epoch a Ctrl-C'd `loopdyn train` reports it committed, checked: exit 130, one line naming the epoch
    and the resume command, no traceback, and the store holds exactly those epochs."""
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("loopdyn: interrupted at epoch ") and f"loopdyn train --resume {store}" in last, err
    epoch = int(last.split("epoch ")[1].split(";")[0])
    assert 0 < epoch < 3000 and epoch % 100 == 0
    assert loopdyn.open_run(store).sizes["epoch"] == epoch
    return epoch


def test_ctrl_c_during_training_commits_and_resumes_identically(tmp_path, long_reference):
    """Ctrl-C during a fresh run's first chunk, then during a resumed run after it committed more: each time the
    chunk in flight is committed and named; the last resume equals the uninterrupted run. (One resumed process
    is both the second interruption and a resume, which saves a process start.)"""
    cfg, reference = long_reference
    store = tmp_path / "o" / "long.zarr"
    proc = subprocess.Popen([str(LOOPDYN), "train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(store / "zarr.json", proc)  # during the first chunk
    proc.send_signal(signal.SIGINT)
    first = _interrupted_at(proc, store)
    proc = subprocess.Popen([str(LOOPDYN), "train", "--resume", str(store), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(_progress(store, first), proc)  # later: after the resumed run committed a chunk of its own
    proc.send_signal(signal.SIGINT)
    assert _interrupted_at(proc, store) > first
    res = _run(["train", "--resume", str(store), "--quiet"])
    assert res.returncode == 0, res.stderr
    resumed = _arrays(store)
    for k in reference:
        np.testing.assert_array_equal(reference[k], resumed[k], err_msg=k)


def test_second_ctrl_c_stops_at_once_then_kill_9_then_resume_is_identical(tmp_path, long_reference):
    """A second Ctrl-C leaves at once (exit 130, one line) and the store resumes; that resume killed (-9) after
    it committed a chunk resumes again to the uninterrupted run, bit for bit."""
    cfg, reference = long_reference
    store = tmp_path / "o" / "long.zarr"
    proc = subprocess.Popen([str(LOOPDYN), "train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(store / "zarr.json", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert [ln for ln in err.splitlines() if ln.strip()][-1].startswith("loopdyn: interrupted"), err
    done = _files.read_progress(store)["epochs_done"]
    proc = subprocess.Popen([str(LOOPDYN), "train", "--resume", str(store), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(_progress(store, done), proc)  # the stopped store resumes and commits
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    res = _run(["train", "--resume", str(store), "--quiet"])
    assert res.returncode == 0, res.stderr
    assert loopdyn.open_run(store).attrs["complete"]
    resumed = _arrays(store)
    for k in reference:
        np.testing.assert_array_equal(reference[k], resumed[k], err_msg=k)


def test_interrupted_creation_is_reported_and_cleaned(tmp_path):
    """A process killed while it created the store leaves only `<name>.zarr.creating-<pid>`: the store
    does not exist (info says what happened), and the next train cleans it up."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = out / f"tiny.zarr.creating-{dead.pid}"
    leftover.mkdir()
    (leftover / "zarr.json").write_text("{}")
    _one_line_exit_2(runner.invoke(app, ["info", str(out / "tiny.zarr")]), "no such store", "interrupted")
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert not leftover.exists() and loopdyn.open_run(out / "tiny.zarr").attrs["complete"]


SAME_PATH = """
import sys, time
import loopdyn
cfg = loopdyn.load_config(sys.argv[1], ["train.lr=" + sys.argv[3]])
while time.time() < float(sys.argv[4]):
    time.sleep(0.001)
try:
    loopdyn.train(cfg, sys.argv[2], progress=False)
    print("trained")
except loopdyn.StoreError as e:
    print("refused:", e)
"""


def test_concurrent_trainers_of_one_path_never_mix(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    store = tmp_path / "same.zarr"
    start = time.time() + 6.0  # every process has imported JAX by then
    procs = [subprocess.Popen([sys.executable, "-c", SAME_PATH, str(cfg), str(store), lr, str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lr in ("0.01", "0.02", "0.03")]
    outs = [p.communicate(timeout=300) for p in procs]
    results = [o.strip().splitlines()[-1] if o.strip() else e for o, e in outs]
    assert sum(r == "trained" for r in results) == 1, results
    assert all(r == "trained" or (r.startswith("refused:") and "already exists" in r) for r in results), results
    ds = loopdyn.open_run(store)
    assert ds.attrs["config"]["train"]["lr"] == float(ds.lr.values[0])  # one writer: attrs and data agree
    assert ds.attrs["complete"]
    assert not list(tmp_path.glob("same.zarr.creating-*"))


HOLD = """
import sys, time
from loopdyn.store import StoreLock
lock = StoreLock(sys.argv[1], "hold").acquire()
print("held", flush=True)
time.sleep(120)
"""


RESUME_ONE_DEVICE = """
import sys
import loopdyn
try:
    loopdyn.resume(sys.argv[1], progress=False)
except loopdyn.StoreError as e:
    print("refused:", e)
"""


def test_lock_names_the_holder_and_a_dead_holder_is_taken_over_by_a_resume_in_the_stores_device_layout(
        tmp_path, long_reference):
    """A store stopped after 2 host devices trained it (conftest): resumed in a process of one device, it is
    refused naming the layout; while a live process holds its lock, `train --resume` and `analyze` name the holder
    (exit 2); once the holder dies, the CLI (which sets the device count itself) takes the lock over and resumes
    to the uninterrupted run. (One store and one resume for both properties: each resume is a process start.)"""
    cfg, reference = long_reference
    store = tmp_path / "s.zarr"
    loopdyn.train(loopdyn.load_config(str(cfg)), store, progress=False, stop_after=500)
    assert loopdyn.open_run(store).attrs["host_devices"] == 2
    two_cores = (os.cpu_count() or 1) >= 2
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} if two_cores else None
    if two_cores:  # a process of one device on a machine of 2 cores
        res = subprocess.run([sys.executable, "-c", RESUME_ONE_DEVICE, str(store)], capture_output=True, text=True,
                             env=env, timeout=300)
        assert "refused:" in res.stdout and "2 host devices" in res.stdout and "XLA_FLAGS" in res.stdout, res
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    for args in (["train", "--resume", str(store)], ["analyze", str(store)]):
        res = _run([*args, "--quiet"] if args[0] == "train" else args)
        assert res.returncode == 2, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"in use by PID {holder.pid}" in lines[0], res.stderr
    holder.kill()  # a holder that dies releases the lock: the next writer takes over
    holder.wait()
    res = _run(["train", "--resume", str(store), "--quiet"], env=env)  # the CLI sets the device count itself
    assert res.returncode == 0, res.stderr
    assert loopdyn.open_run(store).attrs["complete"]
    resumed = _arrays(store)
    for k in reference:
        np.testing.assert_array_equal(reference[k], resumed[k], err_msg=k)


# ------------------------------------------------------------------------------------------ damaged stores
@pytest.fixture(scope="module")
def small_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("damage")
    cfg = loopdyn.load_config("linear-rank1", ["epochs=60", "record.chunk=20", "agent.N=12", "task.batch=16"], "0..1")
    complete = loopdyn.train(cfg, root / "complete.zarr", progress=False)
    partial = loopdyn.train(cfg, root / "partial.zarr", progress=False, stop_after=40)
    return complete, partial


def _damage(kind, store: Path):
    if kind == "deleted chunk":
        (store / "eigenvalues" / "c" / "0" / "1" / "0").unlink()
        return "is missing"
    if kind == "truncated chunk":
        f = store / "train_loss" / "c" / "0" / "1"
        f.write_bytes(f.read_bytes()[:5])
        return "cannot be decoded"
    if kind == "truncated progress":
        _files.update_root_attrs(store, {"progress": {"phase": 0, "epo": 1}})
        return "progress marker is unreadable"
    if kind == "garbled progress":
        _files.update_root_attrs(store, {"progress": [1, 2]})
        return "progress marker is unreadable"
    if kind == "deleted array":
        shutil.rmtree(store / "sigma_vu")
        return "'sigma_vu' is missing"
    if kind == "truncated array metadata":
        f = store / "z" / "zarr.json"
        f.write_text(f.read_text()[:50])
        return "'z' is missing or its metadata is unreadable"
    if kind == "truncated root metadata":
        f = store / "zarr.json"
        f.write_text(f.read_text()[:50])
        return "metadata is unreadable"
    if kind == "truncated state":
        # the largest chunk of the saved state (a chunk of a few bytes would survive a fixed-length cut)
        f = max((p for p in (store / "state").rglob("*") if p.is_file() and "c" in p.relative_to(store).parts),
                key=lambda p: p.stat().st_size)
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        return "training state is unreadable"
    raise ValueError(kind)


DAMAGES = ["deleted chunk", "truncated chunk", "truncated progress", "garbled progress", "deleted array",
           "truncated array metadata", "truncated root metadata"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_store_is_one_line_for_every_reader(tmp_path, small_stores, kind):
    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    needle = _damage(kind, store)
    for args in (["check", str(store)], ["info", str(store)], ["analyze", str(store)],
                 ["train", "--resume", str(store)], ["figures", "training", str(store), "--out", str(tmp_path / "f")]):
        res = runner.invoke(app, args)
        _one_line_exit_2(res, needle)
    with pytest.raises(loopdyn.StoreError, match=needle.replace("'", ".").replace("(", ".").replace(")", ".")):
        loopdyn.check_store(store)


def test_truncated_training_state_refuses_resume(tmp_path, small_stores):
    store = tmp_path / "p.zarr"
    shutil.copytree(small_stores[1], store)
    needle = _damage("truncated state", store)
    _one_line_exit_2(runner.invoke(app, ["train", "--resume", str(store)]), needle)
    _one_line_exit_2(runner.invoke(app, ["check", str(store)]), needle)


def test_check_passes_on_good_stores_and_debug_shows_the_cause(tmp_path, small_stores):
    for store in small_stores:
        res = runner.invoke(app, ["check", str(store)])
        assert res.exit_code == 0 and ": ok (" in res.output, res.output
    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    _damage("truncated chunk", store)
    res = runner.invoke(app, ["--debug", "check", str(store)])
    assert res.exit_code == 2 and "Traceback" in res.output


def _with_root_attribute(src: Path, store: Path, key: str, value) -> Path:
    """A copy of the store `src` at `store` whose root attribute `key` is set to `value`, as an editor would."""
    shutil.copytree(src, store)
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"][key] = value
    (store / "zarr.json").write_text(json.dumps(meta))
    return store


def test_old_format_store_is_refused_with_the_version(tmp_path, small_stores):
    store = _with_root_attribute(small_stores[0], tmp_path / "old.zarr", "loopdyn_format", "loopdyn-store-1")
    _one_line_exit_2(runner.invoke(app, ["info", str(store)]), "loopdyn 0.1", "loopdyn-store-1", "train it again")


def test_divergent_sweep_keeps_the_healthy_runs(tmp_path):
    """The reproduction of issue #8: a float32 clip sweep whose unclipped run overflows."""
    cfg = loopdyn.load_config("linear-rank1", ["epochs=300", "agent.N=20", "task.batch=20", "record.chunk=100"], "0..1")
    cfg = loopdyn.config.with_values(cfg, {}, sweep={"train.clip": [1.0, 0.0]})
    ds = loopdyn.open_run(loopdyn.train(cfg, tmp_path / "d.zarr", progress=False))
    healthy = ds["clip"].values == 1.0
    assert np.all(np.isfinite(ds.train_loss.values[healthy])) and np.all(ds.diverged_epoch.values[healthy] == -1)
    for r in np.nonzero(~healthy)[0]:
        e = int(ds.diverged_epoch.values[r])
        if e >= 0:
            assert np.all(np.isnan(ds.spectral_radius.values[r, e + 1:]))


# ------------------------------------------------------------------------------------------ issue #18
LIVE = LONG.replace("epochs = 3000", "epochs = 1000000").replace("chunk = 100", "chunk = 20").replace(
    'checkpoint = "every:50"', 'checkpoint = "log"')


def test_a_store_being_trained_reads_as_busy_not_damaged(tmp_path):
    """Issue #18.1: while `loopdyn train` commits a chunk every few milliseconds (and deletes the previous
    training state), `check` and `info` (and so `figures` and `report`) read its committed epochs, `analyze` and a second
    `--resume` name the trainer's PID; nothing says the store is damaged."""
    cfg = tmp_path / "live.toml"
    cfg.write_text(LIVE)
    store = tmp_path / "o" / "long.zarr"
    proc = subprocess.Popen([str(LOOPDYN), "train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(_committed(store), proc)
        seen = set()
        for _ in range(6):
            res = loopdyn.check_store(store)
            assert res["holder"] == f"PID {proc.pid} (train)", res
            seen.add(res["epochs_done"])
        res = runner.invoke(app, ["check", str(store)])
        assert res.exit_code == 0 and f"being trained now by PID {proc.pid}" in res.output, res.output
        res = runner.invoke(app, ["info", str(store)])
        assert res.exit_code == 0 and "incomplete" in res.output, res.output
        for args in (["analyze", str(store)], ["train", "--resume", str(store)]):
            _one_line_exit_2(runner.invoke(app, args), f"in use by PID {proc.pid} (train)", "wait for it")
        assert len(seen) > 1, seen  # the checks above met several commits
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert runner.invoke(app, ["check", str(store)]).exit_code == 0


def test_check_looks_again_when_a_commit_lands_during_it(tmp_path, small_stores, monkeypatch):
    """Issue #18.1, deterministically: the trainer commits the next chunk (and deletes the state that
    `check` was about to read) between check's reading of the progress marker and of the state."""
    from loopdyn.store import _files

    store = tmp_path / "p.zarr"
    shutil.copytree(small_stores[1], store)  # 40 of 60 epochs committed: make it the store at epoch 20
    (store / "state" / "phase0_epoch40").rename(store / "state" / "phase0_epoch20")
    _files.write_progress(store, 0, 20, 1, False)
    real = _files.load_state
    calls = []

    def commit_meanwhile(path, phase, done):
        calls.append(done)
        if len(calls) == 1:  # what a trainer does: new state, progress marker, prune
            _files.save_state(path, phase, 40, real(path, phase, done))
            _files.write_progress(path, phase, 40, 1, False)
            _files.prune_states(path, phase, 40)
        return real(path, phase, done)

    monkeypatch.setattr(_files, "load_state", commit_meanwhile)
    res = loopdyn.check_store(store)
    assert calls == [20, 40] and res["epochs_done"] == 40 and res["holder"] is None


def _tamper_shape(store: Path):
    meta = json.loads((store / "train_loss" / "zarr.json").read_text())
    meta["shape"] = [meta["shape"][0], meta["shape"][1] - 10]
    (store / "train_loss" / "zarr.json").write_text(json.dumps(meta))
    return "'train_loss' has dims ('run', 'epoch'), shape (2, 50)"


def _tamper_dtype(store: Path):
    import zarr

    g = zarr.open_group(str(store), mode="r+", zarr_format=3)
    old = g["test_loss"]
    values = np.round(old[...] * 1000).astype(np.int64)  # what an rewrite as integers keeps
    new = g.create_array("test_loss", shape=old.shape, chunks=old.chunks, dtype=np.int64, fill_value=-1,
                         dimension_names=list(old.metadata.dimension_names), overwrite=True)
    new[...] = values
    return "'test_loss' has dims ('run', 'epoch'), shape (2, 60), dtype int64"


def _tamper_chunks(store: Path):
    import zarr

    g = zarr.open_group(str(store), mode="r+", zarr_format=3)
    old = g["spectral_radius"]
    values = old[...]
    new = g.create_array("spectral_radius", shape=old.shape, chunks=(1, 60), dtype=old.dtype, fill_value=np.nan,
                         dimension_names=list(old.metadata.dimension_names), overwrite=True)
    new[...] = values
    return "chunks (1, 60) where the store's layout has"


@pytest.mark.parametrize("tamper", [_tamper_shape, _tamper_dtype, _tamper_chunks])
def test_check_verifies_every_arrays_shape_dtype_and_chunks(tmp_path, small_stores, tamper):
    """Issue #18.4: an array whose metadata disagrees with the store's layout is damage for `check` and,
    with the same line, for every reader (`--resume` too); `loopdyn.open_run` refuses it as well."""
    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    needle = tamper(store)
    for args in (["check", str(store)], ["info", str(store)], ["analyze", str(store)],
                 ["train", "--resume", str(store)], ["figures", "training", str(store), "--out", str(tmp_path / "f")],
                 ["report", str(store), "--out", str(tmp_path / "r")]):
        _one_line_exit_2(runner.invoke(app, args), needle, "the store is damaged")
    with pytest.raises(loopdyn.StoreError, match="the store is damaged"):
        loopdyn.open_run(store)


def test_a_store_without_a_layout_record_is_verified_against_its_phases(tmp_path, small_stores):
    """Stores written before the layout was recorded are checked against the layout their phases give."""
    import zarr

    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    g = zarr.open_group(str(store), mode="r+", zarr_format=3)
    del g.attrs["layout"]
    assert runner.invoke(app, ["check", str(store)]).exit_code == 0
    needle = _tamper_shape(store)
    _one_line_exit_2(runner.invoke(app, ["check", str(store)]), needle)


HUGE = [
    ({"seeds": "0..1000000000"}, None, "1000000001 runs"),
    ({"seeds": "0..99999"}, 10_000, "1000000000 runs"),  # 100 000 seeds x a sweep of 10 000 learning rates
    ({"seeds": list(range(100_000))}, 10_000, "1000000000 runs"),
]


@pytest.mark.parametrize("top,n_sweep,needle", HUGE)
def test_huge_ensembles_are_refused_from_their_size(top, n_sweep, needle):
    """Issue #18.2: the size of an ensemble is computed from its ranges and list lengths, before any of it
    is expanded; a billion runs is refused in one line with the count and the limit, in little memory."""
    import tracemalloc

    tables = {"name": "huge", **top}
    if n_sweep:
        tables["sweep"] = {"train.lr": [1e-3 + i * 1e-7 for i in range(n_sweep)]}
    tracemalloc.start()
    try:
        with pytest.raises(loopdyn.ConfigError) as e:
            loopdyn.config_from_dict(tables, source="huge.toml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert needle in msg and "at most" in msg and "fewer runs" in msg and len(msg) < 300, msg
    assert peak < 200e6, peak


def test_a_billion_seeds_on_the_command_line_is_one_line(tmp_path):
    out = tmp_path / "o"
    _one_line_exit_2(runner.invoke(app, ["train", "linear-rank1", "--seeds", "0..1000000000", "--out", str(out)]),
                     "1000000001 runs", "at most")
    cfg = tmp_path / "c.toml"
    cfg.write_text('seeds = "0..1000000000"\n')
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(out)]), "1000000001 runs", "at most")
    _nothing_written(out)


def test_a_seed_range_stays_a_range_and_round_trips():
    cfg = loopdyn.load_config("linear-rank1", seeds="3..6")
    assert cfg.seeds == range(3, 7) and loopdyn.config.n_runs(cfg) == 4
    assert [r["seed"] for r in loopdyn.config.runs(cfg)] == [3, 4, 5, 6]
    assert loopdyn.config.to_dict(cfg)["seeds"] == "3..6"
    assert loopdyn.config_from_dict(loopdyn.config.to_dict(cfg), source=cfg.source) == cfg


def test_a_repeated_sweep_value_or_seed_is_named_not_listed(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY + '[sweep]\n"train.lr" = [' + ", ".join(["0.01"] * 2000) + "]\n")
    line = _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o")]),
                            "sweep.train.lr", "0.01 twice", "2000 values")
    assert len(line) < 200, len(line)
    line = _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--seeds", ",".join(["5"] * 2000),
                                                "--out", str(tmp_path / "o")]), "seed 5 twice")
    assert len(line) < 200, len(line)


# ---- faults of the file system (issue #18.6): one line, exit 2, nothing partial left behind
class _DiskFull:
    """Every file opened for writing under `root` fails with ENOSPC once `when()` is true: a full disk
    injected where Python opens files (builtins.open, io.open: Zarr, NumPy's savez, Matplotlib)."""

    def __init__(self, root: Path, when=lambda: True, match: str = "", errno: int = 28):
        self.root, self.when, self.match, self.errno, self.hits = str(root), when, match, errno, 0

    def install(self, monkeypatch):
        import builtins
        import io

        real = io.open

        def fake_open(file, mode="r", *a, **kw):
            fh = real(file, mode, *a, **kw)
            if any(c in mode for c in "wax+") and isinstance(file, (str, os.PathLike)) and \
                    os.path.abspath(os.fspath(file)).startswith(self.root) and self.match in os.fspath(file) and \
                    self.when():
                return _FullFile(fh, os.fspath(file), self)
            return fh

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        return self


class _FullFile:
    def __init__(self, fh, name, owner):
        self._fh, self._name, self._owner = fh, name, owner

    def write(self, data):
        self._owner.hits += 1
        raise OSError(self._owner.errno, os.strerror(self._owner.errno), self._name)

    def __getattr__(self, attr):
        return getattr(self._fh, attr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _leftovers(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".partial" in p.name or ".tmp-" in p.name)


def test_disk_full_while_training_keeps_the_last_commit(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY.replace("epochs = 12", "epochs = 30"))
    store = tmp_path / "o" / "tiny.zarr"
    full = _DiskFull(tmp_path / "o", when=_committed(store)).install(monkeypatch)
    line = _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]),
                            "no space left on device", "free space", f"loopdyn train --resume {store}")
    assert full.hits and "last commit is intact" in line
    monkeypatch.undo()
    assert _leftovers(tmp_path / "o") == []
    assert loopdyn.check_store(store)["epochs_done"] == 6
    assert runner.invoke(app, ["train", "--resume", str(store), "--quiet"]).exit_code == 0
    assert loopdyn.open_run(store).attrs["complete"]


def test_disk_full_while_analysing_or_drawing_leaves_nothing(tmp_path, small_stores, monkeypatch):
    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    before = sorted(p.name for p in store.iterdir())
    _DiskFull(tmp_path, match="/analysis-").install(monkeypatch)  # the new analysis group's files
    _one_line_exit_2(runner.invoke(app, ["analyze", str(store)]), "no space left on device", "loopdyn analyze")
    monkeypatch.undo()
    _DiskFull(tmp_path).install(monkeypatch)
    _one_line_exit_2(runner.invoke(app, ["figures", "training", str(store)]), "no space left on device",
                     "no figure was written")
    monkeypatch.undo()
    assert sorted(p.name for p in store.iterdir()) == before  # no orphan analysis-* group, no analysis link
    assert not (tmp_path / "figures").exists() and _leftovers(tmp_path) == []


def test_a_path_component_longer_than_the_file_system_allows(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / ("a" * 256) / "b")]),
                     "too long", "use a shorter path")
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    _one_line_exit_2(runner.invoke(app, ["report", str(tmp_path / "o" / "tiny.zarr"), "--out",
                                         str(tmp_path / ("r" * 256))]), "too long", "use a shorter path")
    _one_line_exit_2(runner.invoke(app, ["figures", "training", str(tmp_path / "o" / "tiny.zarr"), "--out",
                                         str(tmp_path / ("f" * 256))]), "too long", "use a shorter path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.toml", "o"]


def test_a_symlink_loop_as_report_out(tmp_path, small_stores):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for out in (tmp_path / "a", tmp_path / "a" / "sub"):
        _one_line_exit_2(runner.invoke(app, ["report", str(small_stores[0]), "--out", str(out)]), "symbolic link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_deeply_nested_toml_is_one_line(tmp_path):
    deep = "x = " + "{a = " * 10_000 + "1" + "}" * 10_000 + "\n"
    cfg = tmp_path / "deep.toml"
    cfg.write_text(deep)
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o")]), "nests", "too deeply")
    cfg.write_text(TINY)
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--set", "train.lr=" + "[" * 10_000 + "]" * 10_000,
                                         "--out", str(tmp_path / "o")]), "--set train.lr", "too deeply")
    _nothing_written(tmp_path / "o")


def test_a_config_attribute_that_is_not_json(tmp_path, small_stores):
    store = _with_root_attribute(small_stores[0], tmp_path / "s.zarr", "config", "{not json")
    for args in (["check", str(store)], ["info", str(store)], ["report", str(store), "--out", str(tmp_path / "r")]):
        _one_line_exit_2(runner.invoke(app, args), "'config' is not valid JSON", "train it again")


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_store_moved_or_deleted_while_training(tmp_path, monkeypatch, how):
    """The trainer stops with one line and leaves nothing at the old path (Zarr would re-create chunk
    folders there); a renamed store continues from its new path."""
    from loopdyn.store import StoreSink

    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY.replace("epochs = 12", "epochs = 30"))
    store, moved = tmp_path / "o" / "tiny.zarr", tmp_path / "o" / "moved.zarr"
    real = StoreSink.commit

    def commit_then_move(self, *args, **kw):  # the user's mv or rm -r, between two chunks
        real(self, *args, **kw)
        if self.path.exists():
            store.rename(moved) if how == "renamed" else shutil.rmtree(store)

    monkeypatch.setattr(StoreSink, "commit", commit_then_move)
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]),
                     "moved or deleted while it was being trained", "loopdyn train --resume NEW_PATH")
    monkeypatch.undo()
    assert not store.exists()
    if how == "renamed":
        assert loopdyn.check_store(moved)["epochs_done"] == 6
        assert runner.invoke(app, ["train", "--resume", str(moved), "--quiet"]).exit_code == 0
        assert loopdyn.open_run(moved).attrs["complete"]


def test_a_file_system_that_turns_read_only_while_training(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY.replace("epochs = 12", "epochs = 30"))
    store = tmp_path / "o" / "tiny.zarr"
    _DiskFull(tmp_path / "o", when=_committed(store), errno=30).install(monkeypatch)
    _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]),
                     "read-only file system", "make the file system writable", f"loopdyn train --resume {store}")
    monkeypatch.undo()
    assert _leftovers(tmp_path / "o") == [] and loopdyn.check_store(store)["epochs_done"] == 6


def test_more_workers_than_the_machine_holds_are_refused(tmp_path):
    """Issue #18.5: `--workers 1000` is refused with the cores and memory before any process starts."""
    from loopdyn.experiments._units import check_workers, usable_cores

    cfg = tmp_path / "cfg.toml"
    cfg.write_text(TINY)
    cores = usable_cores()
    line = _one_line_exit_2(runner.invoke(app, ["train", str(cfg), "--workers", "1000", "--out", str(tmp_path / "o")]),
                            "--workers 1000", f"{cores} cores", f"at most {cores} worker", "GB of memory")
    assert f"use --workers {cores}" in line
    _nothing_written(tmp_path / "o")
    with pytest.raises(loopdyn.ConfigError, match=r"--workers 2: .* \(1000\.60 GB per worker\), room for at most 1 worker;"):
        check_workers(2, unit_memory=1e12)  # memory, not cores, is the limit
    check_workers(1)


def test_a_dangling_analysis_pointer_says_analyse_again(tmp_path, small_stores):
    """Issue #18.8: analysis.json naming a group that is gone is not 'run loopdyn check' (check is what
    says it) but 'run loopdyn analyze again'."""
    store = tmp_path / "s.zarr"
    shutil.copytree(small_stores[0], store)
    (store / "analysis.json").write_text(json.dumps({"group": "analysis-0123456789ab", "numbers": {}}))
    for args in (["check", str(store)], ["info", str(store)]):
        line = _one_line_exit_2(runner.invoke(app, args), "'analysis-0123456789ab', which is missing",
                                f"run 'loopdyn analyze {store}' again")
        assert "loopdyn check" not in line
    assert runner.invoke(app, ["analyze", str(store)]).exit_code == 0  # what the line advises repairs it
    assert runner.invoke(app, ["check", str(store)]).exit_code == 0


SLOW_C_CALL = """
import sys
import numpy as np
from loopdyn.cli import _StopAfterChunk
with _StopAfterChunk():
    a = np.random.default_rng(0).standard_normal((3000, 3000))
    print("ready", flush=True)
    np.linalg.eigvals(a); np.linalg.eigvals(a); np.linalg.eigvals(a)  # seconds in C, as XLA compiling
    print("returned", flush=True)
"""


def test_second_ctrl_c_during_a_long_call_into_c_leaves_at_once():
    """Issue #18.8: Python runs signal handlers only between bytecodes; the second Ctrl-C must not wait for
    a call into C (XLA compiling) to return: the process leaves with 130 before the call returns."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_C_CALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # inside the call
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "returned" not in out, out
    assert [ln for ln in err.splitlines() if ln.strip()][-1].startswith("loopdyn: interrupted"), err
