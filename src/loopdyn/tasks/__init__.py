"""Tasks on top of plants: episodes (initial states, exogenous references), horizon, losses (spec §1.3-1.4, §3);
the open-loop impulse response of the follow-up (spec §7.1)."""

from ._episode import Episode as Episode
from ._episode import concat_episodes as concat_episodes
from ._impulse import ImpulseTarget as ImpulseTarget
from ._impulse import impulse_from_config as impulse_from_config
from ._regulation import Regulation as Regulation
from ._regulation import regulation_from_config as regulation_from_config
from ._regulation import TEST_LOSS_LABELS as TEST_LOSS_LABELS
from ._regulation import TRAIN_LOSS_LABELS as TRAIN_LOSS_LABELS
from ._tracking import Tracking as Tracking
from ._tracking import tracking_from_config as tracking_from_config


def task_from_config(task_cfg, plant, alpha: float = 1.0):
    """The task of a configuration's `[task]` table (`kind`), on `plant`; `alpha`, the agent's leak, is the
    impulse task's time step."""
    if task_cfg.kind == "tracking":
        return tracking_from_config(task_cfg, plant)
    if task_cfg.kind == "impulse":
        return impulse_from_config(task_cfg, plant, alpha)
    return regulation_from_config(task_cfg, plant)
