# %% [markdown]
# # The three stages of closed-loop learning (Fig 3)
#
# The paper's linear rank-1 network on the double integrator, from seed 9: the loss, the spectral radius of
# the joint matrix $P$ and the overlap $\sigma_{zm}$ over training, with the stage boundaries found from the
# recorded spectra (stage 1 ends when the dominant pair of $P$ turns complex, stage 2 at the stabilisation
# epoch; `loopdyn analyze` writes the same into the store). `LOOPDYN_EXAMPLE_QUICK=1` shortens it for the
# test suite.

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("LOOPDYN_EXAMPLE_QUICK"))
EPOCHS = 150 if QUICK else 1000
OUT = os.environ.get("LOOPDYN_EXAMPLE_OUT", "results/examples")

# %%
import matplotlib.pyplot as plt

import loopdyn
from loopdyn.analysis import detect_stages_linear

cfg = loopdyn.load_config("linear-rank1", [f"epochs={EPOCHS}", 'dtype="float64"'], seeds="9")
ds = loopdyn.open_run(loopdyn.train(cfg, f"{OUT}/fig3.zarr", progress=False)).isel(run=0)
stages = detect_stages_linear(ds.eigenvalues.values)

fig, axes = plt.subplots(3, 1, sharex=True, figsize=(6, 6))
ds.train_loss.plot(ax=axes[0], yscale="log")
ds.spectral_radius.plot(ax=axes[1])
axes[1].axhline(1, color="k", lw=0.5)
ds.sigma_zm.plot(ax=axes[2])
for ax in axes:
    for end in (int(stages.stage1_end), int(stages.stage2_end)):
        if end >= 0:
            ax.axvline(end, color="grey", ls="--")
    ax.set_title("")
print("stage 1 ends at epoch", int(stages.stage1_end), "- stage 2 ends at epoch", int(stages.stage2_end))
