"""Analyses of recorded learning trajectories (spec §4): the one reader of a store's runs (`store_runs`, each
run's resolved configuration and problem; `load_agent`, a trained controller), stages, stability map, LQR,
acquisition and interference of learning curves, statistics over seeds per condition (spec §6), and
`analyze`, which writes a store's analysis group."""

from typing import TYPE_CHECKING

from .._lazy import lazy_face

if TYPE_CHECKING:  # imported on first use (loopdyn._lazy): `loopdyn info` needs the stage detectors, not JAX
    from ._acquisition import NEVER as NEVER
    from ._acquisition import Interference as Interference
    from ._acquisition import acquisition_epochs as acquisition_epochs
    from ._acquisition import interference as interference
    from ._acquisition import trailing_mean as trailing_mean
    from ._analyze import VARIABLES as VARIABLES
    from ._analyze import Analysis as Analysis
    from ._analyze import analyze_store as analyze_store
    from ._analyze import complex_pair as complex_pair
    from ._analyze import effective_exact as effective_exact
    from ._analyze import n_eig as n_eig
    from ._analyze import overlaps_of as overlaps_of
    from ._analyze import summary_lines as summary_lines
    from ._runs import TrainedAgent as TrainedAgent
    from ._runs import Run as Run
    from ._runs import checkpoint_params as checkpoint_params
    from ._runs import closed_loop_trajectory as closed_loop_trajectory
    from ._runs import load_agent as load_agent
    from ._runs import phase_runs as phase_runs
    from ._runs import store_config as store_config
    from ._runs import store_phases as store_phases
    from ._runs import store_runs as store_runs
    from ._closed_open import closed_open_pairs as closed_open_pairs
    from ._closed_open import closed_stages as closed_stages
    from ._closed_open import training_cost_lqr_weights as training_cost_lqr_weights
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
    from ._statistics import BASE as BASE
    from ._statistics import METRIC_VARIABLES as METRIC_VARIABLES
    from ._statistics import METRICS as METRICS
    from ._statistics import SHORT as SHORT
    from ._statistics import condition_statistics as condition_statistics
    from ._statistics import conditions_of as conditions_of
    from ._statistics import epochs_of as epochs_of
    from ._statistics import fmt_spread as fmt_spread
    from ._statistics import gain_names as gain_names
    from ._statistics import rebound_peak as rebound_peak
    from ._statistics import run_metrics as run_metrics
    from ._statistics import spread as spread
    from ._statistics import statistics_lines as statistics_lines
    from ._statistics import store_statistics as store_statistics
    from ._statistics import zigzag as zigzag

__getattr__, __dir__ = lazy_face(globals())
