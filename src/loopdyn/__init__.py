"""loopdyn: learning dynamics of RNNs trained in closed loop with linear plants.

The public API is re-exported here; everything else is private to its sub-package.

Importing loopdyn enables JAX's 64-bit mode: every array loopdyn creates carries the dtype
of its configuration (`dtype = "float32"` by default), and the analyses of the joint
matrix, whose stability boundary sits within 1e-3 of the unit circle, run in float64.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._config import Config as Config  # noqa: E402
from ._config import ConfigError as ConfigError  # noqa: E402
from ._config import from_dict as config_from_dict  # noqa: E402
from ._config import load as load_config  # noqa: E402
from .store import StoreError as StoreError  # noqa: E402
from .store import open_run as open_run  # noqa: E402
from .training import resume as resume  # noqa: E402
from .training import train as train  # noqa: E402

__all__ = ["Config", "ConfigError", "StoreError", "config_from_dict", "load_config", "open_run", "resume", "train"]
