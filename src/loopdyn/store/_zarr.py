"""Results stores: one Zarr (v3) group per experiment, read back as an xarray Dataset.

Layout. Every array carries `dimension_names` and CF-style attributes (`long_name`, `units` where there is
one, `description`), and the root attribute `coordinates` names the per-run settings (seed, phase, the
swept keys), so `xarray.open_zarr` reads the store without loopdyn, settings as coordinates. Nothing but
Zarr nodes lies in the hierarchy (see :mod:`loopdyn.store._files`).
Per-epoch arrays are pre-allocated over the whole run (fill value NaN) and chunked along `epoch` in the
same blocks the trainer writes, so a write never touches another block. Analyses live in their own
subgroup, reached through the link `analysis` (`xarray.open_zarr(store, group="analysis")`), and are
replaced atomically.

Atomicity. A store is built in a temporary directory and renamed into place when its layout is complete.
After all arrays of a chunk are written, the trainer marks the chunk's epochs in `committed`, saves its
state, and only then replaces the progress marker (the root attributes `progress`, `epochs_done`);
readers trust nothing beyond it, and `--resume` restarts from there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from ..errors import StoreError
from . import _files

FORMAT = "loopdyn-store-4"
FORMATS_REFUSED = {"loopdyn-store-1": "loopdyn 0.1"}
FORMATS_MIGRATED = ("loopdyn-store-2", "loopdyn-store-3")
"""Formats read by migrating them in memory (:func:`_migrate_dataset`), and rewritten in place as the
current format when loopdyn writes into them (:func:`upgrade`). loopdyn 0.2 (`-2`) stored every part table
with the keys of every kind (`[plant]` with `order` for the double integrator); read back, each table keeps
the keys of its own kind (:func:`_migrate_configs`). Formats `-2` and `-3` kept the progress marker, the
training state, the lock and the analysis pointer in files that are not Zarr nodes (`progress.json`,
`state/*.npz`, `lock`, `analysis.json`), had no attributes on their arrays, no `committed` mask and no
`coordinates` attribute."""


@contextlib.contextmanager
def _quiet():
    """Zarr's own notes about loopdyn's files, and asyncio's reports of failed reads that we turn into
    one-line errors, are not for the user."""
    log = logging.getLogger("asyncio")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), zarr.config.set({"array.write_empty_chunks": True}):
            # every committed chunk is written, also one that equals the fill value, so that a missing
            # chunk file always means damage (loopdyn check)
            warnings.filterwarnings("ignore", message=".*not recognized as a component")
            yield
    finally:
        log.setLevel(level)


def fill_value(dtype: np.dtype):
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return complex(np.nan, np.nan)
    if np.issubdtype(dtype, np.floating):
        return np.nan
    if np.issubdtype(dtype, np.bool_):
        return False
    if np.issubdtype(dtype, np.integer):
        return -1
    return ""


def write_arrays(group: zarr.Group, arrays: dict[str, tuple[tuple[str, ...], Any]], *, chunks: dict | None = None,
                 descriptions: dict | None = None) -> None:
    """Write whole arrays `name -> (dims, values)` into `group` (strings as variable-length UTF-8)."""
    for name, (dims, values) in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind == "U":
            arr = group.create_array(name, shape=values.shape, dtype=str, dimension_names=list(dims), overwrite=True)
        else:
            c = (chunks or {}).get(name, values.shape or None)
            arr = group.create_array(name, shape=values.shape, chunks=c, dtype=values.dtype, dimension_names=list(dims),
                                     fill_value=fill_value(values.dtype), overwrite=True)
        arr[...] = values
        if descriptions and name in descriptions:
            arr.attrs["description"] = descriptions[name]


def run_coordinates(attrs: dict) -> list[str]:
    coords = attrs.get("run_coords", "[]")
    return list(json.loads(coords) if isinstance(coords, str) else coords)


def describe(group: zarr.Group, key_docs: dict | None = None) -> None:
    """Give every array of `group` its CF-style attributes, and the root the attribute `coordinates`."""
    from ._layout import variable_attrs

    attrs = dict(group.attrs)
    for name, arr in group.arrays():
        arr.attrs.update(variable_attrs(name, attrs, key_docs))
    group.attrs["coordinates"] = " ".join(c for c in run_coordinates(attrs) if c in group)


def create(tmp: Path, attrs: dict[str, Any], coords: dict[str, tuple[tuple[str, ...], np.ndarray]],
           variables: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any, tuple[int, ...]]],
           key_docs: dict | None = None) -> zarr.Group:
    """Create an empty store in the directory `tmp` (see :func:`loopdyn.store._files.creation_dir`).

    `coords`: name -> (dims, values), written at once. `variables`: name -> (dims, shape, dtype, chunks),
    allocated with fill value NaN (-1 for integers).
    """
    with _quiet():
        group = zarr.open_group(str(tmp), mode="w-", zarr_format=3, use_consolidated=False)
        group.attrs.update({"loopdyn_format": FORMAT, "epochs_done": 0, "complete": False, **attrs})
        write_arrays(group, coords)
        for name, (dims, shape, dtype, chunks) in variables.items():
            group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, dimension_names=list(dims),
                               fill_value=fill_value(np.dtype(dtype)))
        describe(group, key_docs)
        group.create_group("state", attributes={"description": "loopdyn's training state after the last committed chunk"})
        group.attrs["layout"] = json.dumps({name: _array_layout(arr) for name, arr in group.arrays()})
    consolidate(tmp)
    return group


def _array_layout(arr) -> dict:
    return {"dims": list(arr.metadata.dimension_names or []), "shape": list(arr.shape), "dtype": str(arr.dtype),
            "chunks": list(arr.chunks)}


def _fmt_layout(d: dict) -> str:
    return f"dims {tuple(d['dims'])}, shape {tuple(d['shape'])}, dtype {d['dtype']}, chunks {tuple(d['chunks'])}"


def store_layout(path: Path, group: zarr.Group) -> dict[str, dict]:
    """What every array of the store must look like: `name -> {dims, shape, dtype, chunks}`, recorded when
    the store was created (`attrs["layout"]`)."""
    try:
        recorded = json.loads(group.attrs.get("layout", "null"))
    except (TypeError, ValueError):
        recorded = "unreadable"
    if recorded is None:  # a store written before the layout was recorded: derive it from its phases
        return derived_layout(path, group)
    if not isinstance(recorded, dict):
        raise StoreError(f"{path}: the store's layout record (attrs['layout']) is unreadable; the store cannot be "
                         f"verified — train it again")
    return recorded


def derived_layout(path: Path, group) -> dict[str, dict]:
    """The layout (`name -> {dims, shape, dtype, chunks}`) that :func:`create_store` gives the phases stored
    in `group`'s attributes and its checkpoint epochs: for stores that do not record theirs."""
    from .. import config as cfg_mod
    from ..training import make_groups
    from ._layout import layout

    try:
        attrs = _decode_attrs(dict(group.attrs))
        source = str(attrs.get("config_source", path))
        phases = [(cfg_mod.from_dict(d, source=source, phase=i > 0), label) for i, (label, d) in enumerate(attrs["phases"])]
        with _quiet():
            ckpts = np.asarray(group["checkpoint"][...])
    except Exception as e:
        raise StoreError(f"{path}: the stored configuration is unreadable ({type(e).__name__}); the store cannot be "
                         f"verified — train it again") from e
    coords, variables = layout(phases, make_groups(phases), ckpts)
    out = {}
    for name, (dims, values) in coords.items():
        values = np.asarray(values)
        out[name] = {"dims": list(dims), "shape": list(values.shape),
                     "dtype": "StringDType()" if values.dtype.kind == "U" else str(values.dtype),
                     "chunks": list(values.shape)}
    for name, (dims, shape, dtype, chunks) in variables.items():
        if name == "committed" and name not in group:  # a store of a format before the mask
            continue
        out[name] = {"dims": list(dims), "shape": list(shape), "dtype": str(np.dtype(dtype)), "chunks": list(chunks)}
    return out


def verify_layout(path: Path, group: zarr.Group | None = None) -> int:
    """Every array's dims, shape, dtype and chunks equal the store's layout (metadata only, no chunk is
    read); a one-line :class:`StoreError` naming the array and both layouts otherwise. Returns the count."""
    path = Path(path)
    group = open_group(path, mode="r") if group is None else group
    layout = store_layout(path, group)
    with _quiet():
        for name, want in layout.items():
            try:
                arr = group[name]
                have = _array_layout(arr)
            except Exception as e:
                raise StoreError(f"{path}: the array {name!r} is missing or its metadata is unreadable "
                                 f"({type(e).__name__}); the store is damaged — train it again") from e
            if have != want:
                raise StoreError(f"{path}: the array {name!r} has {_fmt_layout(have)} where the store's layout has "
                                 f"{_fmt_layout(want)}; the store is damaged — train it again")
    return len(layout)


def open_group(path: Path, mode: str = "r+") -> zarr.Group:
    """The store's root group; a one-line :class:`StoreError` for anything that is not a usable store."""
    path = Path(path)
    if not path.exists():
        creating = _files.stale_creations(path)
        hint = f" (a creation of it was interrupted: {creating[0].name}; delete that and train again)" if creating else ""
        raise StoreError(f"{path}: no such store{hint}")
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not a loopdyn store (no zarr.json); pass the directory that 'loopdyn train' wrote")
    try:
        with _quiet():
            group = zarr.open_group(str(path), mode=mode, zarr_format=3, use_consolidated=False)
            fmt = group.attrs.get("loopdyn_format")
    except Exception as e:  # corrupt metadata
        raise StoreError(f"{path}: the store's metadata is unreadable ({type(e).__name__}); the store is corrupt — "
                         f"train it again") from e
    if fmt in FORMATS_REFUSED:
        raise StoreError(f"{path}: written by {FORMATS_REFUSED[fmt]} (store format {fmt}); this loopdyn reads {FORMAT} — "
                         f"train it again (its arrays stay readable with xarray.open_zarr)")
    if fmt != FORMAT and fmt not in FORMATS_MIGRATED:
        raise StoreError(f"{path}: a Zarr group but not a loopdyn store (attrs['loopdyn_format'] is {fmt!r}, not {FORMAT!r})")
    return group


def _decode_attrs(attrs: dict, path=None) -> dict:
    out = dict(attrs)
    for key in ("config", "versions", "phases", "run_coords"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except (ValueError, RecursionError):
                raise StoreError(f"{path or 'the store'}: its attribute {key!r} is not valid JSON; the store is "
                                 f"damaged — train it again") from None
    if out.get("loopdyn_format") in FORMATS_MIGRATED:
        out = _migrate_configs(out)
    return out


def _migrate_configs(attrs: dict) -> dict:
    """The stored configurations of a loopdyn 0.2 store with each part table reduced to its kind's keys."""
    from .. import config as cfg_mod  # the part families (shipped parts only: 0.2 knew no others)

    def migrate(d):
        if not isinstance(d, dict):
            return d
        try:
            return cfg_mod.to_dict(cfg_mod.from_dict(d, source="<store>", phase=True, lenient=True))
        except cfg_mod.ConfigError:
            return d  # left as stored: the reader that needs it names the problem
    out = dict(attrs)
    out["config"] = migrate(out.get("config"))
    if isinstance(out.get("phases"), list):
        out["phases"] = [[label, migrate(d)] for label, d in out["phases"]]
    return out


def _open_dataset(path: Path, group: str | None = None) -> xr.Dataset:
    if group is not None and not (Path(path) / group / "zarr.json").is_file():
        raise StoreError(f"{path}: the analysis record names the analysis group {group!r}, which is missing; run "
                         f"'loopdyn analyze {path}' again")
    try:
        with _quiet():
            ds = xr.open_zarr(str(path), group=group, consolidated=False, zarr_format=3)
    except Exception as e:
        if group is not None:
            raise StoreError(f"{path}: its analysis group {group!r} cannot be read ({type(e).__name__}); run "
                             f"'loopdyn analyze {path}' again") from e
        raise StoreError(f"{path}: cannot be read as a dataset ({type(e).__name__}); the store is corrupt — run "
                         f"'loopdyn check {path}'") from e
    return ds


def raw_dataset(path: Path) -> xr.Dataset:
    """The training arrays as written, without cutting incomplete epochs (for readers that know which parts
    are complete, e.g. a teacher from an earlier phase)."""
    open_group(path, mode="r")
    ds = _open_dataset(path)
    ds.attrs = _decode_attrs(ds.attrs, path)
    return ds


def open_run(path: str | Path, *, analysis: bool = True) -> xr.Dataset:
    """Open a store as an `xarray.Dataset`: the committed epochs of the training arrays, merged with the
    store's analysis (if `loopdyn analyze` ran and `analysis`).

    Raises :class:`StoreError` with a one-line explanation for anything that is not a loopdyn store with
    at least one committed epoch.
    """
    path = Path(path)
    group = open_group(path, mode="r")
    verify_layout(path, group)
    progress = _files.read_progress(path)
    done, complete = progress["epochs_done"], progress["complete"]
    expected = set(json.loads(group.attrs.get("variables", "[]")))
    ds = _open_dataset(path)
    missing = sorted(expected - set(ds.variables))
    if missing:
        raise StoreError(f"{path}: the array {missing[0]!r} is missing; the store is damaged — run 'loopdyn check {path}'")
    if done == 0 and not complete:
        raise StoreError(f"{path}: no epoch has completed yet; continue it with 'loopdyn train --resume {path}'")
    if not complete:
        ds = ds.isel(epoch=slice(0, done))
        if "diverged_epoch" in ds:  # a divergence found in a chunk that was never committed
            ds["diverged_epoch"] = ds.diverged_epoch.where(ds.diverged_epoch < done, -1)
        if "checkpoint" in ds.dims:
            ds = ds.sel(checkpoint=ds.checkpoint < done)
    fmt = ds.attrs.get("loopdyn_format")
    ds.attrs = _decode_attrs(ds.attrs, path)
    if fmt in FORMATS_MIGRATED:
        ds = _migrate_dataset(ds)
    ds = ds.set_coords([c for c in ds.attrs.get("run_coords", []) if c in ds.data_vars])
    for k in ("progress", "lock_holder", "coordinates"):
        ds.attrs.pop(k, None)
    ds.attrs["epochs_done"] = ds.sizes["epoch"]
    ds.attrs["complete"] = complete
    ds.attrs["phase_done"] = progress["phase"]
    pointer = _files.read_analysis_pointer(path) if analysis else None
    if pointer is not None:
        extra = _open_dataset(path, pointer["group"])
        ds = xr.merge([ds, extra], compat="override", join="left" if "epoch" in extra.dims else "outer",
                      combine_attrs="override")
        ds.attrs["analysis"] = {k: v for k, v in pointer.items() if k != "group"}
    return ds


def _migrate_dataset(ds: xr.Dataset) -> xr.Dataset:
    """A dataset of an older format (already cut to its committed epochs) as the current format reads: CF
    attributes on every variable and the `committed` mask (every epoch it holds is committed)."""
    from ._layout import variable_attrs

    if "committed" not in ds and "train_loss" in ds:
        ds["committed"] = xr.ones_like(ds.train_loss, dtype=bool)
    for name in ds.variables:
        for k, v in variable_attrs(str(name), ds.attrs).items():
            ds[name].attrs.setdefault(k, v)
    return ds


def upgrade(path: Path) -> None:
    """Rewrite a store of an older format (:data:`FORMATS_MIGRATED`) in place as the current one, before
    loopdyn writes into it (the caller holds its lock): progress, training state and the analysis move into
    Zarr nodes, every array gets its attributes, the `committed` mask is written. Each step is safe to
    repeat; the format attribute changes last."""
    path = Path(path)
    with _quiet():
        group = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
        if group.attrs.get("loopdyn_format") == FORMAT:
            return
        attrs = _decode_attrs(dict(group.attrs), path)
        progress = _files.read_progress(path)
        if "committed" not in group and "train_loss" in group:
            R, E = group["train_loss"].shape
            done = E if progress["complete"] else progress["epochs_done"]
            arr = group.create_array("committed", shape=(R, E), chunks=group["train_loss"].chunks, dtype=bool,
                                     dimension_names=["run", "epoch"], fill_value=False)
            arr[:, :done] = True
            for key in ("variables", "layout"):
                if key in group.attrs:
                    recorded = json.loads(group.attrs[key])
                    if isinstance(recorded, dict):
                        recorded["committed"] = _array_layout(arr)
                    else:
                        recorded = sorted({*recorded, "committed"})
                    group.attrs[key] = json.dumps(recorded)
        describe(group)
        if attrs.get("loopdyn_format") == "loopdyn-store-2":  # the configurations as read (part tables of one kind)
            group.attrs.update({"config": json.dumps(attrs["config"]),
                                "phases": json.dumps(attrs["phases"])})
        if "state" not in group:
            state = path / "state"
            _files._write_group_meta(state, {"description": "loopdyn's training state after the last committed chunk"})
        for npz in sorted((path / "state").glob("phase*_epoch*.npz")):
            phase, done = (int(x) for x in npz.stem[len("phase"):].split("_epoch"))
            _files.save_state(path, phase, done, _files.load_state(path, phase, done))
            npz.unlink()
    if (path / _files.OLD_PROGRESS).is_file():
        _files.write_progress(path, progress["phase"], progress["epochs_done"], progress["phases"] or len(attrs.get("phases", [])) or 1,
                              progress["complete"])
        (path / _files.OLD_PROGRESS).unlink()
    pointer = path / _files.OLD_ANALYSIS
    if pointer.is_file():
        record = _files.read_analysis_pointer(path)
        name = record.pop("group", None)
        if isinstance(name, str) and (path / name / "zarr.json").is_file():
            with _quiet():
                zarr.open_group(str(path / name), mode="r+", zarr_format=3, use_consolidated=False).attrs["loopdyn_analysis"] = record
            _files.point_analysis(path, name)
        pointer.unlink()
    (path / _files.OLD_LOCK).unlink(missing_ok=True)
    _files.update_root_attrs(path, {"loopdyn_format": FORMAT, "migrated_from": attrs.get("loopdyn_format")})
    consolidate(path)


def write_analysis(path: Path, arrays: dict[str, tuple[tuple[str, ...], np.ndarray]], descriptions: dict[str, str],
                   record: dict) -> None:
    """Replace the store's analysis atomically: write a new subgroup (its attribute `loopdyn_analysis` holds
    the record), point the link `analysis` at it, then delete the previous subgroup (and any left by an
    interrupted analysis)."""
    path = Path(path)
    upgrade(path)
    name = f"analysis-{uuid.uuid4().hex[:12]}"
    try:
        with _quiet():
            root = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
            sub = root.create_group(name)
            chunks = {k: ((1,) + np.shape(v)[1:] if dims and dims[0] == "run" and np.ndim(v) > 1 else np.shape(v) or None)
                      for k, (dims, v) in arrays.items()}
            write_arrays(sub, arrays, chunks=chunks, descriptions=descriptions)
            for k, (dims, v) in arrays.items():
                sub[k].attrs.setdefault("long_name", k.replace("_", " "))
            sub.attrs["loopdyn_analysis"] = json.loads(json.dumps({**record, "variables": sorted(arrays)},
                                                                  default=_files._json_default))
            sub.attrs["description"] = "loopdyn's analysis of the store (loopdyn analyze); open it with " \
                                       "xarray.open_zarr(store, group='analysis')"
        _files.point_analysis(path, name)
    except OSError as e:
        shutil.rmtree(path / name, ignore_errors=True)
        raise StoreError(f"{_files.os_error_line(e, path)}; the analysis of {path} was not written (any previous one "
                         f"is kept), then run 'loopdyn analyze {path}' again") from e
    except BaseException:
        shutil.rmtree(path / name, ignore_errors=True)
        raise
    for old in path.glob("analysis-*"):
        if old.name != name and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    consolidate(path / name)
    consolidate(path)


def consolidate(path: Path) -> None:
    """Write the consolidated metadata of the group at `path` (and below) into its `zarr.json`, so that plain
    `xarray.open_zarr` opens the store (or its analysis group) at once and without a warning. loopdyn itself
    never reads it (every open passes `use_consolidated=False`): it is written when the store's nodes are
    created, when training completes and after an analysis, and may lag between these (the training state's
    group changes at every commit)."""
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "consolidated metadata is not part of the Zarr 3 specification"
        zarr.consolidate_metadata(str(path), zarr_format=3)


CHECK_ATTEMPTS = 20


def check(path: Path, *, analysis: bool = True) -> dict:
    """Verify a store: the metadata, every array's shape, dtype and chunks against the store's layout,
    every committed chunk of every array present and decodable, the progress marker, the training state
    of the last commit, and the analysis. Raises a one-line :class:`StoreError` at the first problem;
    returns counts on success (and `holder`, the process that trains the store now, or `None`).

    A store being trained is checked as of one commit: a problem seen while the trainer committed the
    next chunk (its previous training state is then deleted) is looked at again from the new commit; the
    training state of a store whose lock is held belongs to its holder and is not read. `analysis=False`:
    leave out the analysis group (which `loopdyn analyze` replaces)."""
    path = Path(path)
    for attempt in range(CHECK_ATTEMPTS):
        marker = _marker(path)
        holder = _files.lock_holder(path)
        try:
            res = _check_once(path, live=holder is not None, analysis=analysis)
        except StoreError:
            if attempt + 1 < CHECK_ATTEMPTS and _marker(path) != marker:
                continue  # a trainer committed meanwhile: check the new commit
            raise
        return {**res, "holder": holder}
    raise AssertionError("unreachable")


def _marker(path: Path) -> tuple[bytes | None, ...]:
    out = []
    for name in (_files.PROGRESS, _files.OLD_PROGRESS):
        try:
            out.append((Path(path) / name).read_bytes())
        except OSError:
            out.append(None)
    return tuple(out)


def _check_once(path: Path, live: bool, analysis: bool) -> dict:
    group = open_group(path, mode="r")
    verify_layout(path, group)
    progress = _files.read_progress(path)
    expected = json.loads(group.attrs.get("variables", "[]"))
    attrs = _decode_attrs(dict(group.attrs), path)
    phases = attrs.get("phases", [])
    done = progress["epochs_done"]
    if progress["complete"]:
        epochs_ok = int(attrs.get("epochs", 0))
    else:
        epochs_ok = done
    n_chunks = 0
    with _quiet():
        for name in expected:
            try:
                arr = group[name]
            except Exception as e:
                raise StoreError(f"{path}: the array {name!r} is missing or its metadata is unreadable ({type(e).__name__}); "
                                 f"the store is damaged — train it again") from e
            dims = list(arr.metadata.dimension_names or [])
            if not progress["complete"] and "run" in dims and not any((path / name / "c").glob("*")):
                # an array of runs of a later phase only (a full-rank W after rank-1 phases): nothing to hold yet
                continue
            sel = tuple(slice(0, epochs_ok) if d == "epoch" else slice(None) for d in dims)
            if "checkpoint" in dims:
                ck = np.asarray(group["checkpoint"][...])
                n_ck = int(np.sum(ck < epochs_ok)) if not progress["complete"] else len(ck)
                sel = tuple(slice(0, n_ck) if d == "checkpoint" else s for d, s in zip(dims, sel))
            n_chunks += _check_chunks(path, name, arr, sel, progress["complete"] or done > 0)
    if done > 0 and not progress["complete"] and not live:
        _files.load_state(path, progress["phase"], done)
        if not _files.has_state(path, progress["phase"], done):
            raise StoreError(f"{path}: the training state of the last commit is missing; the store cannot be resumed")
    pointer = _files.read_analysis_pointer(path) if analysis else None
    if pointer is not None:
        group_name = pointer.get("group") if isinstance(pointer, dict) else None
        if not isinstance(group_name, str):
            raise StoreError(f"{path}: the analysis record names no analysis group; run 'loopdyn analyze {path}' again")
        analysis = _open_dataset(path, group_name)
        try:
            with _quiet():
                analysis.load()
        except Exception as e:
            raise StoreError(f"{path}: its analysis group {group_name!r} cannot be decoded ({type(e).__name__}); run "
                             f"'loopdyn analyze {path}' again") from e
    return {"arrays": len(expected), "chunks": n_chunks, "phase": progress["phase"], "epochs_done": done,
            "complete": progress["complete"], "phases": len(phases)}


def _check_chunks(path: Path, name: str, arr, sel, committed: bool) -> int:
    """Every chunk that holds committed data must exist on disk and decode."""
    shape, chunks = arr.shape, arr.chunks
    ranges = []
    for s, n, c in zip(sel, shape, chunks):
        stop = n if s.stop is None else min(s.stop, n)
        ranges.append(range(0, -(-stop // c)) if stop > 0 else range(0))
    if not committed:
        return 0
    import itertools

    count = 0
    for idx in itertools.product(*ranges):
        key = path / name / "c" / "/".join(str(i) for i in idx) if idx else path / name / "c"
        if not key.is_file():
            where = ", ".join(f"{d}={i * c}..{min((i + 1) * c, n) - 1}" for d, i, c, n in
                              zip(arr.metadata.dimension_names, idx, chunks, shape))
            raise StoreError(f"{path}: chunk {'/'.join(map(str, idx))} of {name!r} ({where}) is missing; the store is "
                             f"damaged — train it again")
        block = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(idx, chunks, shape))
        try:
            arr[block]
        except Exception as e:
            raise StoreError(f"{path}: chunk {'/'.join(map(str, idx))} of {name!r} cannot be decoded "
                             f"({type(e).__name__}); the store is damaged — train it again") from e
        count += 1
    return count


def copy_prefix(source: Path, target: Path, epochs: int, checkpoints: list[int]) -> None:
    """Copy the first `epochs` epochs of every array of the store `source` into the store `target` of the
    same runs and more epochs (`checkpoints`: the indices of `source`'s checkpoints that become `target`'s
    first ones); arrays over neither axis are copied whole, the coordinates are the target's own."""
    with _quiet():
        src = open_group(source, mode="r")
        dst = open_group(target, mode="r+")
        coords = set(json.loads(src.attrs.get("run_coords", "[]"))) | {"run", "epoch", "checkpoint", "eig"}
        for name in list(src.array_keys()):
            if name not in dst or name in coords:
                continue
            dims = tuple(src[name].metadata.dimension_names or ())
            sel = tuple(slice(0, epochs) if d == "epoch" else checkpoints if d == "checkpoint" else slice(None)
                        for d in dims)
            value = src[name].get_orthogonal_selection(sel) if dims else src[name][...]
            dst[name][tuple(slice(0, n) for n in np.shape(value))] = value


def merge_runs(source: Path, target: Path, rows: list[int], epochs: int) -> None:
    """Copy every per-run array of the store `source` into run rows `rows` of the store `target` (the first
    `epochs` epochs; narrower arrays into the leading part of wider ones). Used to merge the stores of
    units trained apart (:mod:`loopdyn.experiments`); the caller commits the target's progress."""
    with _quiet():
        src = open_group(source, mode="r")
        dst = open_group(target, mode="r+")
        sel = slice(rows[0], rows[-1] + 1)
        coords = set(json.loads(src.attrs.get("run_coords", "[]"))) | {"run"}  # the target has its own
        for name in list(src.array_keys()):
            dims = tuple(src[name].metadata.dimension_names or ())
            if name not in dst or dims[:1] != ("run",) or name in coords:
                continue
            value = src[name][...]
            if "epoch" in dims:
                value = value[:, :epochs]
            dst[name][(sel,) + tuple(slice(0, n) for n in value.shape[1:])] = value
