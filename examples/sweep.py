# %% [markdown]
# # A sweep and its xarray plot
#
# Learning rates × seeds in one compiled ensemble (`train.lr` is vmapped: one compilation for all runs).
# The store's `run` dimension carries every swept value as a coordinate; a MultiIndex over them turns it
# into one dimension per swept key.

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("LOOPDYN_EXAMPLE_QUICK"))
EPOCHS = 40 if QUICK else 1000
OUT = os.environ.get("LOOPDYN_EXAMPLE_OUT", "results/examples")

# %%
import loopdyn

cfg = loopdyn.load_config("linear-rank1", [f"epochs={EPOCHS}", "sweep.train.lr=[0.003, 0.01, 0.03]"], seeds="0..1")
store = loopdyn.train(cfg, f"{OUT}/sweep.zarr", progress=False)
ds = loopdyn.open_run(store)
print("runs:", ds.sizes["run"], "learning rates:", sorted(set(ds.lr.values.tolist())))

# %%
rho = ds.spectral_radius.load().set_index(run=["lr", "seed"]).unstack("run")
rho.mean("seed").plot.line(x="epoch", hue="lr")
print(rho.isel(epoch=-1).to_pandas())
