"""loopdyn: learning dynamics of RNNs trained in closed loop with an environment (Ger & Barak, NeurIPS 2025).

The public API is re-exported here; every sub-package has its own small public face. Citations "spec §N"
in docstrings refer to `docs/paper-spec.md`, our section-by-section specification of the paper.

Importing loopdyn turns on JAX's 64-bit mode (`jax_enable_x64`), as the README says: every array loopdyn
creates carries the dtype of its configuration (`dtype = "float32"` by default), and the spectra of the
joint matrix, whose stability boundary sits within 1e-3 of the unit circle, are computed in float64.

The names below are imported when first used (PEP 562), so that `import loopdyn` and the command line start
without JAX; the first one used declares every shipped part (plants, tasks, agents, experiments).
"""

import importlib as _importlib
import os as _os
import sys as _sys
from importlib import metadata as _metadata

if "jax" in _sys.modules:
    _sys.modules["jax"].config.update("jax_enable_x64", True)
else:  # read by JAX when it is imported (jax.config's default for jax_enable_x64)
    _os.environ["JAX_ENABLE_X64"] = "1"

_EXPORTS = {
    "Config": ("config", "Config"),
    "ConfigError": ("errors", "ConfigError"),
    "Interrupted": ("errors", "Interrupted"),
    "StoreError": ("errors", "StoreError"),
    "TrainedAgent": ("analysis", "TrainedAgent"),
    "analyze": ("experiments", "analyze"),
    "check_store": ("store", "check"),
    "config_from_dict": ("config", "from_dict"),
    "figures": ("experiments", "figures"),
    "load_agent": ("analysis", "load_agent"),
    "load_config": ("config", "load"),
    "open_run": ("store", "open_run"),
    "resume": ("experiments", "resume"),
    "store_runs": ("analysis", "store_runs"),
    "train": ("experiments", "train"),
    "unstack_runs": ("store", "unstack_runs"),
}
_PARTS = ("agents", "analysis", "config", "errors", "experiments", "optim", "plants", "plots", "report", "reproduce",
          "store", "system", "tasks", "theory", "training")

try:
    __version__ = _metadata.version("loopdyn")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def _declare_parts() -> None:
    """Declare every shipped family of parts (the experiments package imports the plants, tasks, agents and
    optimisers and registers the experiments); :func:`loopdyn.config.family` calls it for a family not yet
    declared."""
    _importlib.import_module(".experiments", __name__)


def __getattr__(name: str):
    if name in _EXPORTS:
        part, attr = _EXPORTS[name]
        _declare_parts()
        value = getattr(_importlib.import_module(f".{part}", __name__), attr)
    elif name in _PARTS:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'loopdyn' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_PARTS])


__all__ = ["Config", "ConfigError", "Interrupted", "StoreError", "TrainedAgent", "analyze", "check_store",
           "config_from_dict", "figures", "load_agent", "load_config", "open_run", "resume", "store_runs", "train",
           "unstack_runs", "__version__"]
