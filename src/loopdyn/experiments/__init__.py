"""Named experiments: each owns its config table, phases, analyses and theory runs, and figures, and
registers itself; `loopdyn train/analyze/figures NAME` look it up here. The functions below run them."""

from . import ablations as ablations
from . import closed_vs_open as closed_vs_open
from . import ensemble as ensemble
from . import invisible_memory as invisible_memory
from . import learning_rules as learning_rules
from . import nonlinear_stages as nonlinear_stages
from . import stages as stages
from . import tracking as tracking
from ._base import REGISTRY as REGISTRY
from ._base import Experiment as Experiment
from ._base import Reproduce as Reproduce
from ._base import get as get
from ._base import names as names
from ._base import register as register
from ..analysis import spread as spread  # statistics over seeds live in loopdyn.analysis; kept here for old imports
from ..analysis import store_statistics as store_statistics
from ..analysis import zigzag as zigzag
from ._run import analyze as analyze
from ._run import figures as figures
from ._run import extend as extend
from ._run import resume as resume
from ._run import view as view
from ._run import train as train
