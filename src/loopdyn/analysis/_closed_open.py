r"""The closed-vs-open experiment's pairs of runs (spec §5): the closed run and its open-loop student per seed
and swept values, the closed run's stages from its gain path, and the LQR weight of the training cost."""

from __future__ import annotations

import numpy as np

from ..errors import StoreError
from ._stages import Stages, detect_stages_gains


def closed_open_pairs(ds) -> list[tuple[int, int, int]]:
    """`(seed, closed run, open run)` for every seed (and swept values) with a run of each phase, in seed order.

    **Raises:** `StoreError` if the store holds no such pair (not a closed-vs-open store).
    """
    phases = [str(m) for m in ds["phase"].values]
    seeds = [int(s) for s in ds["seed"].values]
    # both phases expand the same seeds x sweep in the same order: the k-th run of a seed in one phase is
    # the k-th of that seed in the other (the same swept values)
    closed = {s: [i for i, (t, m) in enumerate(zip(seeds, phases)) if t == s and m == "closed"] for s in set(seeds)}
    opened = {s: [i for i, (t, m) in enumerate(zip(seeds, phases)) if t == s and m == "open"] for s in set(seeds)}
    pairs = [(s, c, o) for s in sorted(closed) for c, o in zip(closed[s], opened[s])]
    if not pairs:
        raise StoreError(f"not a store of the closed-vs-open experiment: no seed has both a 'closed' and an 'open' run "
                         f"(phases: {sorted(set(phases))})")
    return pairs


def closed_stages(closed_run) -> Stages:
    """Stage boundaries of a closed run from its gain path (:func:`loopdyn.analysis.detect_stages_gains`)."""
    g = np.asarray(closed_run["gains"].values, dtype=np.float64)  # (epoch, control, state): k1, k2 of u = K x
    return detect_stages_gains(g[:, 0, 0], g[:, 0, 1])


def training_cost_lqr_weights(cfg, n_states: int) -> float:
    r"""$R$ of the training cost written per sample as $\sum_t \|x_t\|^2 + R\,u_t^2$ (i.e. $Q = I$).

    The `sum` convention charges $\operatorname{mean}_i x_i^2 + \beta\sum_b u^2$ per step, so per sample
    $\frac1k\|x\|^2 + \beta B u^2$ and $R = \beta B k$ ($B$ the batch, $k$ the number of states); the `mean`
    convention charges $\frac1{Tk}\sum_t\|x_t\|^2 + \beta\sum_t u_t^2$ per sample, so $R = \beta T k$.
    For the closed-vs-open experiment ($\beta = 0.005$, $B = 100$, $k = 2$) $R = 1$.
    """
    scale = cfg.task.batch if cfg.task.loss == "sum" else cfg.task.T
    return float(cfg.task.beta * scale * n_states)
