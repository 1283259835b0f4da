"""Reduced theories of the three learning stages (spec §4.3-4.5) and the exact learning dynamics in overlap
space, discrete and as a gradient flow (spec §7)."""

from ._stage1 import geometric_sum_loss as geometric_sum_loss
from ._stage1 import simulated_stage1_loss as simulated_stage1_loss
from ._stage1 import stage1_eigenvalues as stage1_eigenvalues
from ._stage2 import SurrogatePath as SurrogatePath
from ._stage2 import gradient_angle as gradient_angle
from ._stage2 import long_term_loss as long_term_loss
from ._stage2 import optimise_surrogate as optimise_surrogate
from ._stage2 import short_term_loss as short_term_loss
from ._stage2 import surrogate_loss as surrogate_loss
from ._stage3 import EffectiveTraining as EffectiveTraining
from ._stage3 import effective_episode_loss as effective_episode_loss
from ._stage3 import train_effective_model as train_effective_model
from ._overlaps import RANK1 as RANK1
from ._overlaps import Flow as Flow
from ._overlaps import OverlapTraining as OverlapTraining
from ._overlaps import flow_velocity as flow_velocity
from ._overlaps import gradient_flow as gradient_flow
from ._overlaps import gram_episode_loss as gram_episode_loss
from ._overlaps import overlap_descent as overlap_descent
from ._overlaps import train_overlap_model as train_overlap_model
