r"""The figure of the invisible-memory experiment (spec §7.2-7.3), drawn from a store that experiment trained
and analysed (:mod:`loopdyn.experiments.invisible_memory`): the training losses of the paired runs A and B over
their detours and the new task, their visible and invisible overlaps, and the chimeras' losses."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..store import read_analysis
from ..system import INVISIBLE_NAMES, OVERLAP_NAMES
from ._style import CLOSED_BLUE, FIGURE_WIDTH, OPEN_RED, label_panels


def _history(ds, labels: list[str], seed: int, name: str) -> np.ndarray:
    """A variable along a history: the phases in `labels` concatenated (each continuation starts at the previous
    phase's last epoch, so that epoch is kept once)."""
    phases = [str(p) for p in ds["phase"].values]
    seeds = ds.seed.values
    epochs = {label: int(cfg["epochs"]) for label, cfg in ds.attrs["phases"]}
    parts = []
    for k, label in enumerate(labels):
        i = next(j for j, (p, s) in enumerate(zip(phases, seeds)) if p == label and int(s) == seed)
        v = ds[name].values[i, : epochs[label]]
        parts.append(v if k == 0 else v[1:])
    return np.concatenate(parts)


def _run_index(ds, label: str, seed: int) -> int:
    return next(i for i, (p, s) in enumerate(zip(ds["phase"].values, ds.seed.values)) if str(p) == label and int(s) == seed)


def figure_memory(ds) -> Figure:
    """a) loss along the two histories; b) visible and c) invisible overlaps along them; d) learning the new
    target: A, B and the chimeras C (A's visible, B's invisible) and D (B's visible, A's invisible); e) the
    same losses relative to A's."""
    numbers = read_analysis(ds)["numbers"]["memory"][0]
    seed = numbers["seed"]
    labels = [label for label, _ in ds.attrs["phases"]]
    b_labels = [lab for lab in labels if lab.startswith("B:") and lab != "B:new"] + ["B"]
    first = int(dict(ds.attrs["phases"])["B:detour-1"]["start"]["epoch"])
    fig = Figure(figsize=(FIGURE_WIDTH, 6.6), layout="constrained")  # two rows at a page's width: readable in print
    grid = fig.subplots(2, 3).ravel()
    fig.delaxes(grid[5])
    ax = grid[:5]
    a_loss = _history(ds, ["A"], seed, "train_loss")
    b_loss = np.concatenate([a_loss[:first], _history(ds, b_labels, seed, "train_loss")])
    ax[0].semilogy(a_loss, color=CLOSED_BLUE, lw=1.0, label="A")
    ax[0].semilogy(b_loss, color=OPEN_RED, lw=0.8, alpha=0.8, label="B")
    ax[0].set(xlabel="epoch", ylabel="training loss", title="histories")
    ax[0].legend(fontsize=7.5)
    colors = colormaps["tab10"](np.arange(6))
    for panel, names, title in ((ax[1], OVERLAP_NAMES, "visible overlaps"), (ax[2], INVISIBLE_NAMES, "invisible overlaps")):
        for name, color in zip(names, colors):
            a = _history(ds, ["A"], seed, name)
            b = np.concatenate([a[:first], _history(ds, b_labels, seed, name)])
            panel.plot(a, color=color, lw=1.2, label=name.replace("sigma_", ""))
            panel.plot(b, color=color, lw=0.8, ls="--")
        panel.set(xlabel="epoch", title=f"{title} (A solid, B dashed)")
        panel.legend(fontsize=7.5, ncol=3, loc="lower right")
    b_new = _run_index(ds, "B:new", seed)
    n = int(dict(ds.attrs["phases"])["A:new"]["epochs"])
    x = np.arange(n) + 1.0
    curves = {"A": ds.train_loss.values[_run_index(ds, "A:new", seed), :n], "B": ds.train_loss.values[b_new, :n],
              "C": ds.chimera_train_loss.values[b_new, 0, :n], "D": ds.chimera_train_loss.values[b_new, 1, :n]}
    styles = {"A": dict(color=CLOSED_BLUE, lw=2.0), "B": dict(color=OPEN_RED, lw=2.0),
              "C": dict(color="k", ls="--", lw=1.0), "D": dict(color="0.5", ls=":", lw=1.4)}
    names = {"A": "A", "B": "B", "C": "C: visible A, invisible B", "D": "D: visible B, invisible A"}
    for k, c in curves.items():
        ax[3].loglog(x, c, label=names[k], **styles[k])
        ax[4].semilogx(x, c / curves["A"], label=names[k], **styles[k])
    ax[3].set(xlabel="epoch + 1", ylabel="loss", title=f"new target c = {numbers['new_decay']:g}")
    ax[4].set(xlabel="epoch + 1", ylabel="loss / loss of A", title="the invisible overlaps set the difference")
    ax[3].legend(fontsize=7.5)
    label_panels(ax)
    fig.suptitle("Invisible overlaps remember the training history (Ger & Barak 2026)", fontsize=10)
    return fig
