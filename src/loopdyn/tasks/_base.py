r"""The task and loss-term interfaces.

A :class:`Task` is a part whose fields are the task's parameters (`[task] kind = ...`); :meth:`Task.bind`
returns what the trainer steps: an object with the task interface of :class:`loopdyn.tasks.Regulation`
(episodes, losses, timing; :mod:`loopdyn.training`). A :class:`LossTerm` is a further term of the
closed-loop training loss (`[[loss]] kind = ..., weight = ...`), a function of the simulated states and
controls.
"""

from __future__ import annotations

import abc

from ..config import NON_NEGATIVE, POSITIVE, InvalidParameter, Part, declare_family, param


class Task(Part):
    """A task: the episodes an agent is trained and tested on, and their losses."""

    T: int = param(50, doc="episode length (steps in the loss)", check=POSITIVE)

    modes = ("closed_loop", "open_loop_noise", "open_loop_teacher", "open_loop_gain")
    """The training modes (`train.mode`) this task can be trained in."""

    @abc.abstractmethod
    def bind(self, plant, agent_alpha: float = 1.0):
        """The trainer's task object for `plant` (`agent_alpha`: the agent's leak, for tasks timed by it)."""

    def check(self, cfg) -> None:
        if cfg.train.mode not in self.modes:
            raise InvalidParameter("train.mode", f"= {cfg.train.mode!r} cannot train task.kind = {self.kind!r}; "
                                   f"choose one of {', '.join(self.modes)}")


class LossTerm(Part):
    r"""A term added to the closed-loop training loss: `weight * value(x, u)`.

    `value(x, u)` takes the simulated states `x` `(T, batch, k)` ($x_0..x_{T-1}$) and controls `u`
    `(T, batch, m)` and returns a scalar. A term that is a quadratic form of $(x, u)$ sets
    `quadratic = True`: the batch of a linear loop may then be compressed to its second moment
    (exact for quadratic forms); other terms keep the whole batch.
    """

    weight: float = param(1.0, doc="the term's weight in the training loss", check=NON_NEGATIVE)

    quadratic = False

    @abc.abstractmethod
    def value(self, x, u):
        """The term's value (before `weight`) on states `(T, batch, k)` and controls `(T, batch, m)`."""

    def __call__(self, x, u):
        return self.weight * self.value(x, u)


TASKS = declare_family("task", Task, "loopdyn.tasks", default="regulation")
LOSSES = declare_family("loss", LossTerm, "loopdyn.losses", many=True)
