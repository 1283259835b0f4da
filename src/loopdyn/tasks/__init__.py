"""Tasks on top of plants: initial states, horizon, losses (spec §1.4, §3)."""

from ._regulation import Regulation as Regulation
from ._regulation import regulation_from_config as regulation_from_config
from ._regulation import TEST_LOSS_LABELS as TEST_LOSS_LABELS
from ._regulation import TRAIN_LOSS_LABELS as TRAIN_LOSS_LABELS
