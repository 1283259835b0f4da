"""The default experiment: one phase, an ensemble of runs (seeds x sweep) in any training mode."""

from __future__ import annotations

from .. import config as cfg_mod
from ..plots import training_figure
from ._base import Experiment, register


@register
class Ensemble(Experiment):
    name = "ensemble"
    description = "one phase: the runs of the config's seeds and sweep, trained in its train.mode"
    figure_names = ("training",)

    def validate(self, cfg) -> None:
        cfg_mod.check_single_phase_sources(cfg)

    def figures(self, ds) -> dict:
        return {"training": training_figure(ds)}
