"""loopdyn: learning dynamics of RNNs trained in closed loop with an environment (Ger & Barak, NeurIPS 2025).

The public API is re-exported here; every sub-package has its own small public face. Citations "spec §N"
in docstrings refer to `docs/paper-spec.md`, our section-by-section specification of the paper.

Importing loopdyn turns on JAX's 64-bit mode (`jax_enable_x64`), as the README says: every array loopdyn
creates carries the dtype of its configuration (`dtype = "float32"` by default), and the spectra of the
joint matrix, whose stability boundary sits within 1e-3 of the unit circle, are computed in float64.
"""

from importlib import metadata as _metadata

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import experiments as _experiments  # noqa: E402  (registers the experiments' config tables)
from .analysis import load_agent as load_agent  # noqa: E402
from .analysis import store_runs as store_runs  # noqa: E402
from .analysis import TrainedAgent as TrainedAgent  # noqa: E402
from .config import Config as Config  # noqa: E402
from .config import from_dict as config_from_dict  # noqa: E402
from .config import load as load_config  # noqa: E402
from .errors import ConfigError as ConfigError  # noqa: E402
from .errors import Interrupted as Interrupted  # noqa: E402
from .errors import StoreError as StoreError  # noqa: E402
from .experiments import analyze as analyze  # noqa: E402
from .experiments import figures as figures  # noqa: E402
from .experiments import resume as resume  # noqa: E402
from .experiments import train as train  # noqa: E402
from .store import check as check_store  # noqa: E402
from .store import open_run as open_run  # noqa: E402
from .store import unstack_runs as unstack_runs  # noqa: E402

try:
    __version__ = _metadata.version("loopdyn")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Config", "ConfigError", "Interrupted", "StoreError", "TrainedAgent", "analyze", "check_store",
           "config_from_dict", "figures", "load_agent", "load_config", "open_run", "resume", "store_runs", "train", "unstack_runs",
           "__version__"]
