# %% [markdown]
# # Closed vs open loop
#
# The `closed-vs-open` experiment trains the tanh network in closed loop (gradients through the plant), then
# an open-loop student from the same initial weights that imitates the final closed-loop network on white-noise
# inputs. Its test loss is measured in closed loop: imitation does not pass through the plant's feedback.
# (The quick setting shrinks the network and the epochs.)

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("LOOPDYN_EXAMPLE_QUICK"))
OVERRIDES = ["epochs=20", "agent.N=16", "task.batch=16", "task.T=20"] if QUICK else []
OUT = os.environ.get("LOOPDYN_EXAMPLE_OUT", "results/examples")

# %%
import loopdyn

cfg = loopdyn.load_config("closed-vs-open", OVERRIDES, seeds="0")
store = loopdyn.train(cfg, f"{OUT}/closed-vs-open.zarr", progress=False)
ds = loopdyn.open_run(store)
print(ds.phase.values, ds.training_mode.values)

# %%
ds.test_loss.plot.line(x="epoch", hue="phase", yscale="log")
for i, phase in enumerate(ds.phase.values):
    print(phase, "final closed-loop test loss:", float(ds.test_loss[i, -1]))
