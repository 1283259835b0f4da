"""Results stores: one Zarr (v3) group per experiment, read back as an xarray Dataset.

Layout. Every array carries `dimension_names`, so `xarray.open_zarr` reads the store without
loopdyn. Per-epoch arrays are pre-allocated over the whole run (fill value NaN) and chunked
along `epoch` in the same blocks the trainer writes, so a write never touches another block.

Atomicity. After all arrays of a chunk are written, the trainer writes the optimiser state to
`state/epoch_<E>.npz` and only then replaces `progress.json` (`os.replace`, atomic on POSIX)
with `{"phase": p, "epochs_done": E}`. Readers trust nothing beyond it; `--resume` restarts from
there, overwriting any half-written block.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

FORMAT = "loopdyn-store-1"
PROGRESS = "progress.json"


class StoreError(RuntimeError):
    """A path is not a loopdyn store, or the store is incomplete or corrupt."""


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def create(path: Path, attrs: dict[str, Any], coords: dict[str, tuple[tuple[str, ...], np.ndarray]],
           variables: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, tuple[int, ...]]]) -> zarr.Group:
    """Create an empty store.

    `coords`: name -> (dims, values), written at once. `variables`: name -> (dims, shape, dtype,
    chunks), allocated with fill value NaN (0 for integers).
    """
    path = Path(path)
    if path.exists():
        raise StoreError(f"{path}: already exists; choose another --out, delete it, or continue it with --resume {path}")
    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    group.attrs.update({"loopdyn_format": FORMAT, **attrs})
    for name, (dims, values) in coords.items():
        values = np.asarray(values)
        if values.dtype.kind == "U":  # variable-length UTF-8, the string type of the Zarr v3 spec
            arr = group.create_array(name, shape=values.shape, dtype=str, dimension_names=list(dims))
            arr[...] = values
            continue
        arr = group.create_array(name, shape=values.shape, chunks=values.shape or None, dtype=values.dtype,
                                 dimension_names=list(dims), fill_value=_fill(values.dtype))
        arr[...] = values
    for name, (dims, shape, dtype, chunks) in variables.items():
        group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, dimension_names=list(dims),
                           fill_value=_fill(np.dtype(dtype)))
    return group


def _fill(dtype: np.dtype):
    if np.issubdtype(dtype, np.complexfloating):
        return complex(np.nan, np.nan)
    if np.issubdtype(dtype, np.floating):
        return np.nan
    if np.issubdtype(dtype, np.bool_):
        return False
    if np.issubdtype(dtype, np.integer):
        return -1
    return ""


def open_group(path: Path, mode: str = "r+") -> zarr.Group:
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not a loopdyn store (no zarr.json); pass the directory that 'loopdyn train' wrote")
    try:
        with warnings.catch_warnings():  # progress.json and state/ are ours, not Zarr nodes
            warnings.filterwarnings("ignore", message=".*not recognized as a component")
            group = zarr.open_group(str(path), mode=mode, zarr_format=3)
    except Exception as e:  # corrupt metadata
        raise StoreError(f"{path}: store metadata is unreadable ({type(e).__name__}); the store is corrupt, train again") from None
    if group.attrs.get("loopdyn_format") != FORMAT:
        raise StoreError(f"{path}: a Zarr group but not a loopdyn store (missing attrs['loopdyn_format'] = {FORMAT!r})")
    return group


def read_progress(path: Path) -> tuple[int, int]:
    """`(phase, epochs_done)` of the last complete chunk; `(0, 0)` before the first."""
    p = Path(path) / PROGRESS
    if not p.is_file():
        return 0, 0
    try:
        data = json.loads(p.read_text())
        return int(data["phase"]), int(data["epochs_done"])
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{p}: unreadable progress marker; the store is corrupt, train again") from None


def epochs_done(path: Path) -> int:
    """Epochs visible to readers: those of the current phase (all of them once the store is complete)."""
    return read_progress(path)[1]


def write_progress(path: Path, phase: int, done: int, n_phases: int = 1, complete: bool = False) -> None:
    _atomic_write(Path(path) / PROGRESS, json.dumps({"phase": int(phase), "epochs_done": int(done),
                                                      "phases": int(n_phases), "complete": bool(complete)}).encode())


def is_complete(path: Path) -> bool:
    p = Path(path) / PROGRESS
    return p.is_file() and bool(json.loads(p.read_text()).get("complete", False))


def _state_file(path: Path, phase: int, done: int) -> Path:
    return Path(path) / "state" / f"phase{phase}_epoch{done}.npz"


def save_state(path: Path, phase: int, done: int, arrays: dict[str, np.ndarray]) -> None:
    """Save the training state after `done` epochs of `phase` (written before the progress marker)."""
    target = _state_file(path, phase, done)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(target.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, target)


def prune_states(path: Path, phase: int, keep: int) -> None:
    for f in (Path(path) / "state").glob("*.npz"):
        if f != _state_file(path, phase, keep):
            f.unlink()


def load_state(path: Path, phase: int, done: int) -> dict[str, np.ndarray]:
    f = _state_file(path, phase, done)
    if not f.is_file():
        raise StoreError(f"{path}: training state for epoch {done} is missing; the store cannot be resumed, train again")
    try:
        with np.load(f) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise StoreError(f"{f}: unreadable training state ({e}); the store cannot be resumed, train again") from None


def raw_dataset(path: Path) -> xr.Dataset:
    """The whole store as written, without cutting incomplete epochs (for internal readers that
    know which parts are complete, e.g. a teacher from an earlier phase)."""
    open_group(path, mode="r")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        ds = xr.open_zarr(str(path), consolidated=False, zarr_format=3)
    for key in ("config", "versions", "phases"):
        if isinstance(ds.attrs.get(key), str):
            ds.attrs[key] = json.loads(ds.attrs[key])
    return ds


def open_run(path: str | Path) -> xr.Dataset:
    """Open a store as an `xarray.Dataset`; epochs not yet completed are cut off.

    Raises :class:`StoreError` with a one-line explanation for anything that is not a complete
    loopdyn store.
    """
    path = Path(path)
    open_group(path, mode="r")
    done = epochs_done(path)
    complete = is_complete(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not recognized as a component")
            ds = xr.open_zarr(str(path), consolidated=False, zarr_format=3)
    except Exception as e:
        raise StoreError(f"{path}: cannot be read as a dataset ({type(e).__name__}: {e}); the store is corrupt") from None
    if done == 0:
        raise StoreError(f"{path}: no epoch has completed yet; continue it with 'loopdyn train --resume {path}'")
    if not complete:
        ds = ds.isel(epoch=slice(0, done))
        if "diverged_epoch" in ds:  # a divergence found in a chunk that was never committed
            ds["diverged_epoch"] = ds.diverged_epoch.where(ds.diverged_epoch < done, -1)
        if "checkpoint" in ds.dims:
            ds = ds.sel(checkpoint=ds.checkpoint < done)
    run_coords = json.loads(ds.attrs.get("run_coords", "[]"))
    ds = ds.set_coords([c for c in run_coords if c in ds.data_vars])
    ds.attrs["epochs_done"] = ds.sizes["epoch"]
    ds.attrs["complete"] = complete
    for key in ("config", "versions", "phases"):
        if isinstance(ds.attrs.get(key), str):
            ds.attrs[key] = json.loads(ds.attrs[key])
    return ds
