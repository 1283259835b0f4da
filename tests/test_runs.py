"""The one reader of a store's runs (issue #17, part 4): each run's resolved configuration carries its own
swept values, vmapped hyper-parameters included, into every analysis and theory run; `loopdyn.load_agent`
returns a controller whose rollout reproduces the store's recorded test loss."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import loopdyn
from loopdyn.experiments import stages
from loopdyn.system import rollout
from loopdyn.tasks import Episode


def test_each_run_reads_its_own_swept_values(swept_store):
    ds = loopdyn.open_run(swept_store)
    runs = loopdyn.store_runs(ds)
    assert [r.index for r in runs] == list(range(ds.sizes["run"])) == [0, 1, 2, 3]
    for r in runs:
        assert r.cfg.train.lr == float(ds.lr.values[r.index]) and r.cfg.train.clip == 0.5 == float(ds["clip"].values[r.index])
        assert r.cfg.seeds == (r.seed,) == (int(ds.seed.values[r.index]),) and r.cfg.sweep == ()
        assert r.values == {"train.lr": r.cfg.train.lr, "train.clip": 0.5, "seed": r.seed}
    assert [r.cfg.train.lr for r in runs] == [0.003, 0.003, 0.01, 0.01]
    assert runs[0].problem is runs[1].problem  # built once per distinct configuration


def test_the_loaded_agent_reproduces_the_recorded_test_loss(swept_store):
    ds = loopdyn.open_run(swept_store)
    for run in range(ds.sizes["run"]):
        for epoch in (0, 3, 5):
            agent = loopdyn.load_agent(swept_store, run, epoch)
            task = agent.task
            x0 = task.test_set(jax.random.PRNGKey(agent.run.cfg.task.test_seed), agent.run.problem.dtype)
            x0 = jnp.asarray(x0, jnp.float64)
            traj = rollout(agent.core, agent.plant, x0, task.T, timing=task.timing, emit=task.emit)
            loss = float(task.episode_metric(traj, Episode(x0)))
            np.testing.assert_allclose(loss, ds.test_loss.values[run, epoch], rtol=1e-5)
    assert loopdyn.load_agent(ds, 1).epoch == 5  # default: the last checkpoint


@pytest.mark.parametrize("run,epoch,needle", [(4, 0, "runs 0..3"), (0, 6, "not a stored checkpoint")])
def test_load_agent_refuses_what_the_store_does_not_hold_in_one_line(swept_store, run, epoch, needle):
    with pytest.raises(loopdyn.StoreError) as e:
        loopdyn.load_agent(swept_store, run, epoch)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_swept_lr_and_clip_reach_every_theory_run_of_the_stages_analysis(tmp_path, monkeypatch):
    """Fig 3e's sigma trajectories, Fig 5d's effective and exact overlap models train with each run's own lr
    and clip (before the reader, with the group's: the config's unswept values)."""
    cfg = loopdyn.load_config("stages", [
        "epochs=12", "agent.N=8", "task.batch=16", "record.chunk=12", "stages.T_start_epoch=2", "stages.T_values=[20]",
        "stages.T_epochs=2", "stages.beta_start=\"5\"", "stages.beta_values=[0.0]", "stages.beta_epochs=3",
        "stages.surrogate_steps=5", "sweep.train.lr=[0.003, 0.02]", "sweep.train.clip=[0.5]"], "0")
    seen = []

    def spy(name, fn):
        def wrapped(*args, **kw):
            seen.append((name, kw["lr"], kw["clip"]))
            return fn(*args, **kw)
        monkeypatch.setattr(stages, name, wrapped)

    spy("train_effective_model", stages.train_effective_model)
    spy("train_overlap_model", stages.train_overlap_model)
    over = stages._over_runner

    def over_runner(cfg_json, source):
        c = json.loads(cfg_json)["train"]
        seen.append(("_over_runner", c["lr"], c["clip"]))
        return over(cfg_json, source)

    monkeypatch.setattr(stages, "_over_runner", over_runner)
    path = loopdyn.train(cfg, tmp_path / "stages.zarr", progress=False)
    loopdyn.analyze(path)
    closed = [run for run in loopdyn.store_runs(loopdyn.open_run(path)) if run.phase == "closed"]
    assert seen[0] == ("_over_runner", closed[0].cfg.train.lr, 0.5) == ("_over_runner", 0.003, 0.5)
    assert sorted(seen[1:]) == [("train_effective_model", 0.003, 0.5), ("train_effective_model", 0.02, 0.5),
                                ("train_overlap_model", 0.003, 0.5), ("train_overlap_model", 0.02, 0.5)]


def test_the_loaded_agent_of_the_overlap_representation_keeps_its_whole_gram_matrix(tmp_path):
    # N = 3 neurons, a 4 x 4 Gram matrix of m, z, u, v: nothing of it is cut to N
    cfg = loopdyn.load_config("linear-rank1", ["epochs=5", "agent.N=3", "task.batch=16", "record.chunk=5",
                                               'agent.representation="overlaps"'], "0")
    path = loopdyn.train(cfg, tmp_path / "gram.zarr", progress=False)
    agent = loopdyn.load_agent(path, 0, 4)
    assert agent.params.G.shape == (4, 4)
    task = agent.task
    x0 = jnp.asarray(task.test_set(jax.random.PRNGKey(agent.run.cfg.task.test_seed), agent.run.problem.dtype), jnp.float64)
    traj = rollout(agent.core, agent.plant, x0, task.T, timing=task.timing, emit=task.emit)
    np.testing.assert_allclose(float(task.episode_metric(traj, Episode(x0))),
                               loopdyn.open_run(path).test_loss.values[0, 4], rtol=1e-5)


def test_the_analysis_summary_names_each_runs_swept_values(swept_store, tmp_path):
    import shutil

    from loopdyn.analysis import analyze_store, summary_lines

    store = tmp_path / "swept.zarr"
    shutil.copytree(swept_store, store, symlinks=True)  # the shared store stays unanalysed
    numbers = analyze_store(store).numbers
    ds = loopdyn.open_run(store)
    rows = {r["run"]: r for r in numbers["stages"]}
    for i in range(ds.sizes["run"]):  # only what varies: the learning rate, not the constant clip
        assert rows[i]["swept"] == {"train.lr": float(ds.lr.values[i])}
    lines = [ln for ln in summary_lines(numbers) if ln.lstrip().startswith("run")]
    assert [ln.split()[5] for ln in lines] == [f"train.lr={float(v):g}" for v in ds.lr.values]
