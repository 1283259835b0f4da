"""Reduced theories of the three learning stages (spec §4.3-4.5)."""

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
