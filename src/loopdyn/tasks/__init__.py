"""Tasks on top of plants: episodes (initial states, exogenous references), horizon, losses (spec §1.3-1.4, §3);
the open-loop impulse response of the follow-up (spec §7.1); further loss terms. Each task is a part
(:class:`Task`, `[task] kind = ...`), each loss term too (:class:`LossTerm`, `[[loss]] kind = ...`)."""

from ._base import LOSSES as LOSSES
from ._base import TASKS as TASKS
from ._base import LossTerm as LossTerm
from ._base import Task as Task
from ._episode import Episode as Episode
from ._episode import concat_episodes as concat_episodes
from ._impulse import ImpulseTarget as ImpulseTarget
from ._impulse import ImpulseTask as ImpulseTask
from ._regulation import TEST_LOSS_LABELS as TEST_LOSS_LABELS
from ._regulation import TRAIN_LOSS_LABELS as TRAIN_LOSS_LABELS
from ._regulation import Regulation as Regulation
from ._regulation import RegulationTask as RegulationTask
from ._terms import ControlPenalty as ControlPenalty
from ._terms import StatePenalty as StatePenalty
from ._tracking import Tracking as Tracking
from ._tracking import TrackingTask as TrackingTask
