"""Training: modes, learning rules and schedules (`[gradient]`, `[schedule]`), the one optimisation loop, compiled vmapped/sharded ensembles and the chunked host loop.

Nothing here reads or writes files: results go to a :class:`Sink` (the store implements one) and
teachers or start parameters come from a `sources` callable supplied by the caller.
"""

from ._epoch import DTYPES as DTYPES
from ._epoch import RUN_AXIS as RUN_AXIS
from ._epoch import Problem as Problem
from ._epoch import build_problem as build_problem
from ._epoch import compile_chunk as compile_chunk
from ._epoch import device_layout as device_layout
from ._epoch import init_run as init_run
from ._epoch import make_chunk as make_chunk
from ._epoch import make_epoch as make_epoch
from ._epoch import make_evaluation as make_evaluation
from ._modes import MODES as MODES
from ._modes import ClosedLoop as ClosedLoop
from ._modes import LossAux as LossAux
from ._modes import OpenLoopGain as OpenLoopGain
from ._modes import OpenLoopNoise as OpenLoopNoise
from ._modes import OpenLoopTeacher as OpenLoopTeacher
from ._modes import imitation_loss as imitation_loss
from ._netmodel import NetworkPlant as NetworkPlant
from ._rules import BPTT as BPTT
from ._rules import RULES as RULES
from ._rules import GradientRule as GradientRule
from ._rules import Model as Model
from ._rules import Reinforce as Reinforce
from ._rules import RuleStep as RuleStep
from ._rules import Settings as Settings
from ._rules import fit_linear_model as fit_linear_model
from ._rules import schedule_value as schedule_value
from ._rules import transition_statistics as transition_statistics
from ._state import EpochRecord as EpochRecord
from ._state import HyperParams as HyperParams
from ._state import RunConstants as RunConstants
from ._state import RunState as RunState
from ._superpose import GUARD as GUARD
from ._superpose import Basis as Basis
from ._superpose import capacities as superposition_capacities
from ._superpose import closed_basis as closed_basis
from ._superpose import fits as superposition_fits
from ._superpose import teacher_drive as teacher_drive
from ._trainer import Group as Group
from ._trainer import Sink as Sink
from ._trainer import Sources as Sources
from ._trainer import Trainer as Trainer
from ._trainer import chunk_summaries as chunk_summaries
from ._trainer import make_groups as make_groups
