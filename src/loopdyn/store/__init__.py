"""Zarr results stores read back as xarray Datasets."""

from ._zarr import StoreError as StoreError
from ._zarr import epochs_done as epochs_done
from ._zarr import open_run as open_run
