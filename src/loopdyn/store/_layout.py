"""The layout of a store's arrays: which arrays a store of given phases and groups holds, with their dims,
shapes, dtypes and chunks (:func:`layout`). Used to create a store (:mod:`loopdyn.store._sink`) and to verify
one written before stores recorded their layout (:func:`loopdyn.store._zarr.derived_layout`)."""

from __future__ import annotations

import numpy as np

from .. import config as cfg_mod


def _ckpt_block(chunk: int, epochs: int, ckpts: np.ndarray) -> int:
    """Checkpoints per Zarr block, chosen so that no block spans two training chunks."""
    if len(ckpts) > 1:
        step = int(ckpts[1] - ckpts[0])
        regular = np.all(np.diff(ckpts[:-1]) == step) if len(ckpts) > 2 else True
        if regular and chunk % step == 0 and ckpts[-1] - ckpts[-2] in (step, 0) and epochs % chunk == 0:
            return max(chunk // step, 1)
    return 1


def layout(phases, groups, ckpts: np.ndarray):
    """`(coords, variables)` of a store for the trainer's `groups` (see :func:`loopdyn.store._zarr.create`)."""
    layout_cfg = max((c for c, _ in phases), key=lambda c: c.epochs)
    R, E = sum(len(g.runs) for g in groups), layout_cfg.epochs
    K = min(c.record.chunk for c, _ in phases)
    specs = [g.problem.spec for g in groups]
    plant = groups[0].problem.plant
    n_max, r_max = max(s.N for s in specs), max(s.rank for s in specs)
    spectra = [g.problem.spec for g in groups if g.problem.joint_spectra]
    n_eig = max(plant.n_states + s.hidden_dim for s in spectra) if spectra else 0
    task = groups[0].problem.task
    block = _ckpt_block(K, E, ckpts)
    per_run = lambda f: np.concatenate([[f(g, i) for i in range(len(g.runs))] for g in groups])  # noqa: E731
    coords: dict[str, tuple] = {
        "run": (("run",), np.arange(R)),
        "epoch": (("epoch",), np.arange(E)),
        "checkpoint": (("checkpoint",), np.asarray(ckpts)),
        "seed": (("run",), per_run(lambda g, i: int(g.seeds[i]))),
        "group": (("run",), per_run(lambda g, i: g.index)),
        "phase": (("run",), per_run(lambda g, i: g.label)),
        "training_mode": (("run",), per_run(lambda g, i: g.cfg.train.mode)),
    }
    for name in cfg_mod.HYPERPARAMETERS:
        coords[name] = (("run",), per_run(lambda g, i, n=name: g.hyper[n][i]))
    static = dict.fromkeys(k for c, _ in phases for k, _ in c.sweep if k not in cfg_mod.HYPERPARAMETERS.values())
    for dotted in static:
        coords[dotted.split(".")[1]] = (("run",), per_run(lambda g, i, d=dotted: g.values[i].get(d, g.cfg.get(d))))
    if n_eig:
        coords["eig"] = (("eig",), np.arange(n_eig))
    coords.update(task.metric_coords())
    f = np.float64 if layout_cfg.dtype == "float64" else np.float32
    k, m = plant.n_states, plant.n_controls
    variables: dict[str, tuple] = {
        "train_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "test_loss": (("run", "epoch"), (R, E), f, (R, K)),
        "diverged_epoch": (("run",), (R,), np.int64, (R,)),
        "start_epoch": (("run",), (R,), np.int64, (R,)),
        "committed": (("run", "epoch"), (R, E), np.bool_, (R, K)),
    }
    if any(g.problem.records_gains for g in groups):
        variables["gains"] = (("run", "epoch", "control", "state"), (R, E, m, k), f, (R, K, m, k))
    for name, (dims, _) in task.epoch_metrics().items():
        shape = tuple(len(coords[d][1]) for d in dims)
        variables[name] = (("run", "epoch", *dims), (R, E, *shape), f, (R, K, *shape))
    for name in dict.fromkeys(n for g in groups for n in g.problem.records):  # learning rules, schedules
        variables[name] = (("run", "epoch"), (R, E), f, (R, K))
    if n_eig:
        variables["eigenvalues"] = (("run", "epoch", "eig"), (R, E, n_eig), np.complex128, (R, K, n_eig))
        variables["spectral_radius"] = (("run", "epoch"), (R, E), np.float64, (R, K))
    if any(s.rank1_overlaps for s in specs):  # visible, then invisible overlaps (spec §7.2)
        for s in ("sigma_zm", "sigma_zu", "sigma_vm", "sigma_vu", "sigma_mu", "sigma_zv", "sigma_mm", "sigma_zz",
                  "sigma_uu", "sigma_vv"):
            variables[s] = (("run", "epoch"), (R, E), np.float64, (R, K))
    spec0 = specs[0]
    columns = {"m": ("in", spec0.n_in), "z": ("out", spec0.n_out), "U": ("rank", r_max), "V": ("rank", r_max),
               "W": ("neuron_in", n_max), "J": ("neuron_in", n_max)}
    for name in sorted({p for s in specs for p in s.parameter_names}):
        if name == "G":  # the overlap representation: the Gram matrix of m, z, U, V (spec §7)
            d = max(s.n_in + s.n_out + 2 * s.rank for s in specs if s.representation == "overlaps")
            variables["G"] = (("run", "checkpoint", "gram_row", "gram_col"), (R, len(ckpts), d, d), f, (R, block, d, d))
            continue
        if name.startswith("extra_"):  # an agent's further parameters (AgentParams.extra): it names their dims
            widths = [s.part.extra_parameters(s)[name[6:]] for s in specs if name in s.parameter_names]
            col, width = widths[0][1], max(w for w, _ in widths)
            trained = any("extra" in s.trainable for s in specs)
        else:
            col, width = columns[name]
            trained = any(name in s.trainable for s in specs)
        if trained:
            variables[name] = (("run", "checkpoint", "neuron", col), (R, len(ckpts), n_max, width), f, (R, block, n_max, width))
        else:
            variables[name] = (("run", "neuron", col), (R, n_max, width), f, (R, n_max, width))
    return coords, variables


# ------------------------------------------------------------------------------------------ CF attributes
# name -> (long_name, units or None, description or the root attribute `<x>_definition` that describes it)
_PARAMETER = "agent parameter {} (spec §2): {}, one row per neuron (padded with NaN to the largest N of the store)"
VARIABLE_ATTRS: dict[str, tuple[str, str | None, str]] = {
    "run": ("run index", None, "one trained network of the ensemble; its settings are the coordinates along run"),
    "epoch": ("training epoch", None, "@record_definition"),
    "checkpoint": ("checkpoint epoch", None, "the epochs whose parameters are stored (record.checkpoint)"),
    "eig": ("eigenvalue index", None, "eigenvalues sorted by decreasing modulus"),
    "seed": ("random seed", None, "the run's seed: initial parameters, training batches and noise"),
    "group": ("compiled group", None, "runs trained by one compiled program share a group"),
    "phase": ("training phase", None, "the label of the phase (configuration) the run belongs to"),
    "training_mode": ("training mode", None, "train.mode of the run: closed_loop, open_loop, ..."),
    "lr": ("learning rate", "1", "train.lr of the run"),
    "clip": ("gradient clip", "1", "train.clip: global-norm gradient clip of the run (0 = off)"),
    "beta": ("control cost weight beta", "1", "task.beta of the run"),
    "over": ("overlap scale", "1", "agent.over of the run"),
    "g": ("recurrent gain g", "1", "agent.g of the run: scale of the random connectivity"),
    "noise": ("plant noise", "1", "plant.noise of the run"),
    "train_loss": ("training loss", "1", "@train_loss_definition"),
    "test_loss": ("test loss", "1", "@test_loss_definition"),
    "diverged_epoch": ("divergence epoch", None, "@diverged_definition"),
    "start_epoch": ("start epoch", None, "the epoch of the earlier phase whose parameters started this run (-1: none)"),
    "committed": ("epoch committed", None, "True where the run's values at this epoch are written and committed; "
                  "False: not yet trained (NaN there means not written, not diverged; see the attribute epochs_done)"),
    "gains": ("feedback gains K", "1", "@gains_definition"),
    "eigenvalues": ("eigenvalues of the joint matrix P", "1", "@eigenvalues_definition"),
    "spectral_radius": ("spectral radius rho(P)", "1", "largest modulus of the eigenvalues of the joint matrix P"),
    "G": ("Gram matrix of m, z, U, V", "1", "@gram_definition"),
    "m": ("input vectors m", "1", _PARAMETER.format("m", "input weights")),
    "z": ("readout vectors z", "1", _PARAMETER.format("z", "readout weights")),
    "U": ("left low-rank vectors U", "1", _PARAMETER.format("U", "output side of the low-rank connectivity U V^T / N")),
    "V": ("right low-rank vectors V", "1", _PARAMETER.format("V", "input side of the low-rank connectivity U V^T / N")),
    "W": ("full-rank connectivity W", "1", _PARAMETER.format("W", "trainable full-rank connectivity")),
    "J": ("random connectivity J", "1", _PARAMETER.format("J", "the fixed random connectivity, scaled by g")),
}
for _a, _b in ("zm", "zu", "vm", "vu", "mu", "zv", "mm", "zz", "uu", "vv"):
    VARIABLE_ATTRS[f"sigma_{_a}{_b}"] = (f"overlap sigma_{_a}{_b}", "1", "@gram_definition")


def variable_attrs(name: str, root_attrs: dict, key_docs: dict | None = None) -> dict:
    """The CF-style attributes (`long_name`, `units` where there is one, `description`) of the store's array
    `name`, descriptions taken from the root attributes `<x>_definition` (which name the task's losses)."""
    if name in VARIABLE_ATTRS:
        long_name, units, description = VARIABLE_ATTRS[name]
    elif name.startswith("extra_"):
        long_name, units, description = f"agent parameter {name[6:]}", "1", "a further parameter of the agent"
    elif f"{name}_definition" in root_attrs:  # a task's per-epoch metric
        long_name, units, description = name.replace("_", " "), "1", f"@{name}_definition"
    else:  # a swept setting or a task's metric coordinate
        doc = (key_docs or {}).get(name)
        long_name, units, description = (doc or name.replace("_", " ")), None, doc or ""
    if description.startswith("@"):
        description = str(root_attrs.get(description[1:], ""))
    out = {"long_name": long_name}
    if units is not None:
        out["units"] = units
    if description:
        out["description"] = description
    return out
