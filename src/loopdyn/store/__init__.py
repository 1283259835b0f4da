"""Zarr results stores: layout, atomic creation and chunks, the lock, resume state, provenance,
the analysis group, checks, and reading back as xarray Datasets."""

from typing import TYPE_CHECKING

from .._lazy import lazy_face
from ..errors import StoreError as StoreError
from ._files import StoreLock as StoreLock
from ._files import analysis_mtime as analysis_mtime
from ._files import load_state as load_state
from ._files import lock_holder as lock_holder
from ._files import os_error_line as os_error_line
from ._files import read_progress as read_progress
from ._files import read_root as read_root
from ._files import refuse_if_held as refuse_if_held
from ._files import save_state as save_state
from ._files import write_progress as write_progress
from ._sweep import swept_keys as swept_keys
from ._sweep import unstack_runs as unstack_runs
from ._zarr import FORMAT as FORMAT
from ._zarr import check as check
from ._zarr import copy_prefix as copy_prefix
from ._zarr import merge_runs as merge_runs
from ._zarr import open_group as open_group
from ._zarr import open_run as open_run
from ._zarr import raw_dataset as raw_dataset
from ._zarr import upgrade as upgrade
from ._zarr import write_analysis as write_analysis


def read_analysis(ds_or_path) -> dict:
    """The analysis record (variables written, summary numbers) of an analysed store (a path or a dataset
    from :func:`open_run`); raises :class:`StoreError` if the store has not been analysed."""
    from pathlib import Path

    from ._files import read_analysis_pointer

    record = ds_or_path.attrs.get("analysis") if hasattr(ds_or_path, "attrs") else read_analysis_pointer(Path(ds_or_path))
    if record is None:
        raise StoreError("the store has not been analysed; run 'loopdyn analyze STORE' first")
    return record

if TYPE_CHECKING:  # imported on first use (loopdyn._lazy): reading a store needs no configuration layer, nor JAX
    from ._sink import StoreSink as StoreSink
    from ._sink import create_store as create_store
    from ._sink import open_sink as open_sink

__getattr__, __dir__ = lazy_face(globals())
