r"""Optimisers as parts: `train.optimizer` names one (`"sgd"`, `"adam"`, or `"package.module:Class"`).

An :class:`Optimizer` is a part without a table of its own: its settings are its class's (write a
subclass for other ones). It gives `transform(learning_rate)`, an `optax.GradientTransformation` of the clipped
gradient (global-norm clipping, `train.clip`, comes before it, see :func:`loopdyn.optim.make_optimizer`).
The learning rate is injected per run (`optax.inject_hyperparams`), so one compiled optimiser serves an
ensemble of learning rates: `transform` must accept a traced scalar. Any optax transformation fits:

    class AdamW(Optimizer):
        def transform(self, learning_rate):
            return optax.adamw(learning_rate, weight_decay=1e-4)

The overlap representation trains the Gram matrix of the vectors exactly under SGD only (`overlap_exact`).
"""

from __future__ import annotations

import abc

import optax

from ..config import Part, declare_family


class Optimizer(Part):
    """An optimiser: `transform(learning_rate)` (module docstring)."""

    overlap_exact = False
    """Whether the overlap representation can train with it (its step maps the Gram matrix exactly)."""

    state_size = 2
    """Floats of optimiser state per trained parameter (for the memory estimate)."""

    @abc.abstractmethod
    def transform(self, learning_rate) -> optax.GradientTransformation:
        """The update rule for a (traced) learning rate."""


class SGD(Optimizer):
    """Plain stochastic gradient descent, `p' = p - lr g`."""

    overlap_exact = True
    state_size = 0

    def transform(self, learning_rate):
        return optax.sgd(learning_rate)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with optax's defaults (b1 0.9, b2 0.999, eps 1e-8)."""

    def transform(self, learning_rate):
        return optax.adam(learning_rate)


OPTIMIZERS = declare_family("optimizer", Optimizer, "loopdyn.optimizers", default="sgd")
"""The optimiser family: `train.optimizer = NAME` (:mod:`loopdyn.config._parts`)."""
