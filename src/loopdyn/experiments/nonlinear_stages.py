r"""The nonlinear-stages experiment (issue #19): do the three learning stages appear on a nonlinear plant?

A rank-1 linear agent and a full-rank tanh agent ($N = 100$), each trained in closed loop on the inverted
pendulum (`nonlinear-stages`) or the cart-pole (`nonlinear-stages-cartpole`), then an open-loop student of
the same architecture from the same initial weights imitating the closed run's final network (white-noise
inputs, as in closed-vs-open: the student then learns the very controller the closed run found, so its
closed-loop test loss is comparable with the closed run's and with Fig 1c; an LQR teacher, `open_loop_gain`,
would compare two different controllers). Four phases: `closed-linear`, `open-linear` (teacher: phase 0),
`closed-tanh`, `open-tanh` (teacher: phase 2).

The loop is nonlinear, so the analysis records at every checkpoint the Newton fixed point of the closed-loop
map, the spectrum of $P(\theta)$ there, its spectral radius and the basin (:mod:`loopdyn.analysis`); the
stages are detected on the spectra of $P(\theta)$ as for linear loops (stage 1 ends when the dominant pair
turns complex, stage 2 when $\rho(P(\theta))$ falls below 1 for good), at checkpoint resolution. A run
*shows the three stages* when $0 < s_1 < s_2$ (a first stage, a plateau of at least one checkpoint with
$\rho \ge 1$, then stabilisation). Per condition: median and IQR over seeds of the stage boundaries, the
stabilisation epoch, the final losses and basin; for the open-loop students the rise of their closed-loop
test loss above its running minimum (:func:`loopdyn.analysis.rebound_peak`).
"""

from __future__ import annotations

import re

from dataclasses import dataclass

import numpy as np

from ..analysis import fmt_spread, rebound_peak, spread
from ..config import param
from ..errors import ConfigError, StoreError
from ..plots import figure_nonlinear_stages
from ._base import Experiment, Reproduce, register

OPEN_MODES = ("open_loop_noise", "open_loop_teacher")
AGENTS = ("linear", "tanh")
TANH_AGENT = {"agent.rank": 0, "agent.activation": "tanh", "agent.g": 0.1, "agent.init": "rnn",
              "agent.trainable": ["m", "W", "z"], "train.skip_first_update": True}
"""The tanh agent's settings (those of `tanh-closed`), over the configuration's rank-1 linear agent."""
RISE = 2.0
"""An open-loop student's closed-loop test loss *rises* when its peak is more than twice its running minimum."""


@dataclass(frozen=True)
class NonlinearStagesTable:
    """The table `[nonlinear_stages]`."""

    open_mode: str = param("open_loop_noise", doc="train.mode of the open-loop students", choices=OPEN_MODES)
    agents: tuple[str, ...] = param(AGENTS, doc="which agents: the configuration's rank-1 linear one, the tanh one",
                                    check=("a non-empty subset of linear, tanh",
                                           lambda v: len(v) > 0 and set(v) <= set(AGENTS)))


def condition_statistics(phase, s1, s2, stab, train, test, basin, epochs: int) -> dict:
    """Per phase label: stage boundaries, stabilisation epoch, final losses and basin (median/IQR over seeds), the
    count of runs with three stages; for open phases the rise of the closed-loop test loss. Arrays per run
    (`train`, `test`: `(run, epoch)`; `basin`: `(run, checkpoint)`, NaN where not measured)."""
    out = {}
    for label in dict.fromkeys(str(p) for p in phase):
        r = np.nonzero(np.asarray(phase) == label)[0]
        a, b = np.asarray(s1)[r], np.asarray(s2)[r]
        last = [row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in np.asarray(basin)[r]]
        d = {"n": int(r.size), "three_stages": int(np.sum((a > 0) & (b > a))),
             "stage1_end": spread(a, epochs=True), "stage2_end": spread(b, epochs=True),
             "stabilisation_epoch": spread(np.asarray(stab)[r], epochs=True),
             "final_train_loss": spread(np.asarray(train)[r, epochs - 1]),
             "final_test_loss": spread(np.asarray(test)[r, epochs - 1]), "final_basin": spread(last)}
        if label.startswith("open"):
            peaks = [rebound_peak(np.asarray(test)[i, :epochs]) for i in r]
            rise = np.asarray([p[2] if p else np.nan for p in peaks])
            d["test_rise"] = spread(rise)
            d["rises"] = int(np.sum(rise > RISE))
        out[label] = d
    return out


def answer(stats: dict, plant: str) -> str:
    """The measured answer to "do the three stages appear?", one sentence per agent, from :func:`condition_statistics`."""
    parts = []
    for agent in AGENTS:
        c, o = stats.get(f"closed-{agent}"), stats.get(f"open-{agent}")
        if c is None:
            continue
        text = (f"{plant}, {agent} agent, closed loop: three stages in {c['three_stages']}/{c['n']} seeds; stage 1 ends "
                f"at epoch {fmt_spread(c['stage1_end'], epochs=True)}, rho(P) < 1 from "
                f"{fmt_spread(c['stabilisation_epoch'], epochs=True)} (median [IQR]); final test loss "
                f"{fmt_spread(c['final_test_loss'], '{:.3g}')}, basin {fmt_spread(c['final_basin'], '{:.2f}')}")
        if o is not None:
            text += (f"; open-loop student: closed-loop test loss rises {fmt_spread(o['test_rise'], '{:.3g}')}x above its "
                     f"running minimum (> {RISE:g}x in {o['rises']}/{o['n']}), final "
                     f"{fmt_spread(o['final_test_loss'], '{:.3g}')}, stabilises at "
                     f"{fmt_spread(o['stabilisation_epoch'], epochs=True)}")
        parts.append(text)
    return ". ".join(parts) + "." if parts else "no closed-loop runs"


@register
class NonlinearStages(Experiment):
    name = "nonlinear-stages"
    description = ("rank-1 linear and tanh agents on a nonlinear plant, closed loop then an open-loop student: "
                   "stages from the spectrum of P at the Newton fixed point, and the basin")
    table = NonlinearStagesTable
    figure_names = ("fig_nonlinear_stages",)
    reproduce = Reproduce(
        "nonlinear-stages", quick=("epochs=60", "record.chunk=20"), quick_seeds="0,1", order=60,
        claims={"fig_nonlinear_stages": "Issue #19: do the three learning stages (a fast first stage, a plateau "
                "while the linearised loop is unstable, refinement after stabilisation) appear on a nonlinear plant, "
                "and does the open-loop student's closed-loop test loss rise as on the double integrator?"})

    def validate(self, cfg) -> None:
        self.require_closed_first(cfg, "the students' mode is nonlinear_stages.open_mode")
        agent = cfg.agent
        if getattr(agent, "activation", None) != "linear" or getattr(agent, "rank", None) != 1:
            raise ConfigError(f"{cfg.source}: agent must be the rank-1 linear RNN (agent.rank = 1, agent.activation = "
                              f"'linear'); the tanh agent is derived from it (TANH_AGENT)")

    def phases(self, cfg):
        out = []
        for agent in cfg.table["agents"]:
            closed = cfg if agent == "linear" else self.variant(cfg, TANH_AGENT, sweep=dict(cfg.sweep))
            teacher = {"train.mode": cfg.table["open_mode"], "teacher.store": "self", "teacher.phase": len(out)}
            base = {} if agent == "linear" else TANH_AGENT
            out += [(closed, f"closed-{agent}"), (self.variant(cfg, {**base, **teacher}, sweep=dict(cfg.sweep)),
                                                  f"open-{agent}")]
        return out

    def _stats(self, ds, s1, s2, stab, basin) -> dict:
        return condition_statistics(ds.phase.values, s1, s2, stab, ds.train_loss.values, ds.test_loss.values, basin,
                                    int(ds.sizes["epoch"]))

    def analyse(self, ds, runs, result) -> None:
        get = lambda k, fill: result.get(k) if k in result.arrays else np.full(ds.sizes["run"], fill)  # noqa: E731
        basin = result.get("basin") if "basin" in result.arrays else np.full((ds.sizes["run"], ds.sizes["checkpoint"]), np.nan)
        stats = self._stats(ds, get("stage1_end", -1), get("stage2_end", -1), get("stabilisation_epoch", -1), basin)
        result.numbers["nonlinear_stages"] = stats
        result.numbers["nonlinear_stages_answer"] = answer(stats, runs[0].plant.kind)

    def summary_lines(self, numbers: dict) -> list[str]:
        return [f"{self.name}: {numbers['nonlinear_stages_answer']}"] if "nonlinear_stages_answer" in numbers else []

    def _answer(self, ds) -> str:
        if "stage1_end" not in ds:
            raise StoreError(f"the {self.name} figure needs an analysed store; run 'loopdyn analyze STORE' first")
        basin = ds.basin.values if "basin" in ds else np.full((ds.sizes["run"], ds.sizes["checkpoint"]), np.nan)
        stats = self._stats(ds, ds.stage1_end.values, ds.stage2_end.values, ds.stabilisation_epoch.values, basin)
        from ..analysis import store_config

        return answer(stats, store_config(ds).plant.kind)

    def figures(self, ds) -> dict:
        return {"fig_nonlinear_stages": figure_nonlinear_stages(ds, self.title(ds))}

    def title(self, ds) -> str:
        """The figure's short title: per agent, how many closed-loop seeds show the three stages (the whole
        answer, with its statistics, is the caption)."""
        found = re.findall(r"(\w+) agent, closed loop: three stages in (\d+/\d+) seeds", self._answer(ds))
        plant = str(ds.attrs["config"]["plant"]["kind"]).replace("_", " ")
        stages = "; ".join(f"{agent} agent: three stages in {k} seeds" for agent, k in found)
        return f"Do the three stages appear on the {plant}? {stages} (median and IQR over seeds; blue closed, red open loop)"

    def captions(self, ds) -> dict:
        return {"fig_nonlinear_stages": self._answer(ds)}


@register
class NonlinearStagesCartpole(NonlinearStages):
    name = "nonlinear-stages-cartpole"
    description = "nonlinear-stages on the cart-pole"
    reproduce = Reproduce("nonlinear-stages-cartpole", quick=NonlinearStages.reproduce.quick,
                          quick_seeds=NonlinearStages.reproduce.quick_seeds, order=61,
                          claims={"fig_nonlinear_stages": NonlinearStages.reproduce.claims["fig_nonlinear_stages"]})
