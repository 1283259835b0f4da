"""The runs of a store as a sweep: which per-run settings vary, and the run dimension indexed by them."""

from __future__ import annotations

import numpy as np

from ..errors import StoreError

BOOKKEEPING = ("group", "training_mode")  # per-run coordinates that follow from the others


def _run_coords(ds) -> list[str]:
    return [str(c) for c, v in ds.coords.items() if v.dims == ("run",) and c != "run"]


def swept_keys(ds) -> list[str]:
    """The per-run settings that take more than one value across the store's runs (the phase and the swept
    keys: `lr`, `beta`, ...), seed excluded, in the store's order."""
    return [c for c in _run_coords(ds) if c not in (*BOOKKEEPING, "seed") and len(np.unique(ds[c].values)) > 1]


def unstack_runs(ds, keys: list[str] | None = None):
    """`ds` with its `run` dimension indexed by a `pandas.MultiIndex` of the swept settings and the seed
    (`keys`: those coordinates instead), so that `.sel(lr=0.01)`, `.groupby("lr")` and `.unstack("run")` work:

    >>> loopdyn.unstack_runs(ds).spectral_radius.unstack("run")  # dims (epoch, lr, seed)

    Raises a one-line :class:`StoreError` if `keys` do not tell the runs apart or name no per-run coordinate."""
    keys = [*swept_keys(ds), "seed"] if keys is None else list(keys)
    per_run = _run_coords(ds)
    unknown = [k for k in keys if k not in per_run]
    if unknown:
        raise StoreError(f"{unknown[0]!r} is not a per-run coordinate of the store; choose among {', '.join(per_run)}")
    values = list(zip(*(np.asarray(ds[k].values).tolist() for k in keys)))
    if len(set(values)) < len(values):
        raise StoreError(f"the runs are not told apart by {', '.join(keys)}; add a key (per-run coordinates: "
                         f"{', '.join(per_run)})")
    out = ds.assign_coords({k: ("run", np.asarray(ds[k].values)) for k in keys})
    return out.drop_vars("run").set_index(run=keys)
