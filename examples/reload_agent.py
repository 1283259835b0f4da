# %% [markdown]
# # Reload a trained agent and roll it out
#
# Every run of a store comes back with its own configuration (swept values applied) and its plant, task and
# agent; `load_agent` gives the controller at a stored checkpoint, ready for `loopdyn.system.rollout`. Rolled
# out on the task's fixed test batch, it reproduces the test loss the trainer recorded for that epoch.

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("LOOPDYN_EXAMPLE_QUICK"))
EPOCHS = 30 if QUICK else 300
OUT = os.environ.get("LOOPDYN_EXAMPLE_OUT", "results/examples")

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import loopdyn

cfg = loopdyn.load_config("linear-rank1", [f"epochs={EPOCHS}"], seeds="0..3")
store = loopdyn.train(cfg, f"{OUT}/reload.zarr", progress=False)
ds = loopdyn.open_run(store)
epoch = int(ds.checkpoint[-1])
agent = loopdyn.load_agent(store, run=3, epoch=epoch)

x0 = agent.task.test_set(jax.random.PRNGKey(agent.run.cfg.task.test_seed), jnp.float32).astype(jnp.float64)
traj = loopdyn.system.rollout(agent.core, agent.plant, x0, agent.task.T, timing=agent.task.timing)
metric = float(agent.task.episode_metric(traj, loopdyn.tasks.Episode(x0)))
print(f"rolled out: {metric:.6g}   recorded: {float(ds.test_loss[3, epoch]):.6g}")

# %%
plt.plot(traj.x[:, :, 0])
plt.xlabel("t")
plt.ylabel("position")
