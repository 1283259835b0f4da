"""Tasks on top of plants: initial states, horizon, losses (spec §1.4, §3); the open-loop impulse response
of the follow-up (spec §7.1)."""

from ._impulse import ImpulseTarget as ImpulseTarget
from ._impulse import loss_labels as loss_labels
from ._impulse import task_from_config as task_from_config
from ._regulation import Regulation as Regulation
from ._regulation import regulation_from_config as regulation_from_config
from ._regulation import TEST_LOSS_LABELS as TEST_LOSS_LABELS
from ._regulation import TRAIN_LOSS_LABELS as TRAIN_LOSS_LABELS
