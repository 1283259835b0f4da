# %% [markdown]
# # A plant of your own
#
# A plant is one class: `examples/oscillator.py` defines a damped oscillator by its matrices (a
# `LinearPlant`, so loopdyn records the joint matrix $P$ of the loop). A config names it by import path;
# here the config is built in Python with `with_parts`. The joint matrix that the store records is checked
# against the one built by hand from the plant's matrices.

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("LOOPDYN_EXAMPLE_QUICK"))
EPOCHS = 30 if QUICK else 400
OUT = os.environ.get("LOOPDYN_EXAMPLE_OUT", "results/examples")

# %%
import sys

import numpy as np

import loopdyn
from loopdyn.config import with_parts

sys.path.insert(0, os.environ.get("LOOPDYN_EXAMPLES", "examples"))  # the folder of oscillator.py
from oscillator import DampedOscillator  # noqa: E402

plant = DampedOscillator(omega=0.5, zeta=0.05)
A, B, C = plant.matrices()
print("A =", np.round(np.asarray(A), 4).tolist(), " B =", np.round(np.asarray(B), 4).tolist())

cfg = loopdyn.load_config("linear-rank1", [f"epochs={EPOCHS}", "agent.N=50"], seeds="0..1")
cfg = with_parts(cfg, plant=plant)
store = loopdyn.train(cfg, f"{OUT}/oscillator.zarr", progress=False)
ds = loopdyn.open_run(store)
ds.spectral_radius.plot.line(x="epoch", hue="seed")

# %% [markdown]
# The trained agent's joint matrix, from its stored parameters, has the spectrum the store recorded:

# %%
from loopdyn.system import agent_joint_matrix, spectrum

agent = loopdyn.load_agent(store, run=0)
P = agent_joint_matrix(agent.run.problem.spec, plant, agent.params, agent.run.cfg.get("agent.g", 0.0))
lam = np.sort_complex(np.asarray(spectrum(P)))
stored = ds.eigenvalues.values[0, int(ds.checkpoint[-1])]
print(np.max(np.abs(np.sort(np.abs(lam))[::-1][:4] - np.abs(stored[:4]))))
