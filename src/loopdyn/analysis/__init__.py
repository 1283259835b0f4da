"""Analyses of recorded learning trajectories (spec §4): stages, stability map, LQR, acquisition and
interference of learning curves, and `analyze`, which writes a store's analysis group."""

from ._acquisition import NEVER as NEVER
from ._acquisition import Interference as Interference
from ._acquisition import acquisition_epochs as acquisition_epochs
from ._acquisition import interference as interference
from ._acquisition import trailing_mean as trailing_mean
from ._analyze import VARIABLES as VARIABLES
from ._analyze import Analysis as Analysis
from ._analyze import Run as Run
from ._analyze import analyze_store as analyze_store
from ._analyze import checkpoint_params as checkpoint_params
from ._analyze import complex_pair as complex_pair
from ._analyze import effective_exact as effective_exact
from ._analyze import n_eig as n_eig
from ._analyze import overlaps_of as overlaps_of
from ._analyze import store_runs as store_runs
from ._analyze import summary_lines as summary_lines
from ._gains import STABLE as STABLE
from ._gains import UNSTABLE_OSCILLATORY as UNSTABLE_OSCILLATORY
from ._gains import UNSTABLE_REAL as UNSTABLE_REAL
from ._gains import gain_loss_landscape as gain_loss_landscape
from ._gains import lqr_gain as lqr_gain
from ._gains import stability_boundaries as stability_boundaries
from ._gains import stability_region as stability_region
from ._stages import NONE as NONE
from ._stages import Stages as Stages
from ._stages import detect_stages_gains as detect_stages_gains
from ._stages import detect_stages_linear as detect_stages_linear
from ._stages import dominant_pair as dominant_pair
from ._stages import stabilisation_epoch as stabilisation_epoch
from ._stages import third_eigenvalue as third_eigenvalue
