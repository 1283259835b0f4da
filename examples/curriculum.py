r"""A user's experiment: a curriculum over the episode length T (loopdyn `Experiment`).

Phase 1 trains with the first episode length for its epochs; each later phase starts from the end of the
one before (the same runs, the optimiser restarted) with the next, longer episode length. The paper asks
whether "episode-length scheduling" could ease the competition between short-term improvement and
long-term stability; this experiment is the simplest form of it.

Its table, `[curriculum]` (the class `CurriculumTable`: each key's type, default, documentation and check,
checked key by key when a configuration is loaded):

- `T_values`: the episode lengths, one phase each, e.g. `[10, 25, 50]`;
- `phase_epochs`: the epochs of each phase (as many as `T_values`: checked in `validate`, as it involves two keys).

    experiment = "examples.curriculum:Curriculum"
"""

from dataclasses import dataclass

from loopdyn.config import ConfigError, each, param
from loopdyn.experiments import Experiment
from loopdyn.plots import training_figure


@dataclass(frozen=True)
class CurriculumTable:
    T_values: tuple[int, ...] = param((10, 25, 50), doc="the episode lengths, one phase each",
                                      check=each("> 0", lambda T: T > 0))
    phase_epochs: tuple[int, ...] = param((100, 100, 100), doc="the epochs of each phase",
                                          check=each("> 0", lambda e: e > 0))


class Curriculum(Experiment):
    name = "curriculum"
    description = "phases of growing episode length T, each starting where the last ended"
    table = CurriculumTable
    figure_names = ("training",)

    def validate(self, cfg) -> None:
        t = cfg.table
        if len(t["phase_epochs"]) != len(t["T_values"]):
            raise ConfigError(f"{cfg.source}: curriculum.phase_epochs must give one number of epochs per entry of "
                              f"curriculum.T_values ({len(t['T_values'])})")
        if cfg.start.store or cfg.teacher.store:
            raise ConfigError(f"{cfg.source}: [start] and [teacher] are set by the curriculum; remove them")

    def phases(self, cfg):
        t = cfg.table
        out = []
        for i, (T, epochs) in enumerate(zip(t["T_values"], t["phase_epochs"])):
            values = {"task.T": T}
            if i:
                values.update({"start.store": "self", "start.phase": i - 1, "start.epoch": "last"})
            out.append((self.variant(cfg, values, sweep=dict(cfg.sweep), epochs=epochs), f"T={T}"))
        return out

    def figures(self, ds) -> dict:
        return {"training": training_figure(ds)}
