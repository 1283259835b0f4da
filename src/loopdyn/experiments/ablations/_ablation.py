"""The base class of the ablations: one phase per condition, statistics over seeds per condition (computed
by :mod:`loopdyn.analysis`), one figure of :mod:`loopdyn.plots` panels."""

from __future__ import annotations

import textwrap

import numpy as np

from matplotlib.figure import Figure

from ... import config as cfg_mod
from ...analysis import METRICS, SHORT, condition_statistics, run_metrics, statistics_lines
from ...errors import ConfigError, StoreError
from ...plots import (FIGURE_WIDTH, condition_colors, gains_panel, label_panels, loss_bands_panel,
                      mathtext, strip_panel, vertical_ticks)
from ...store import read_analysis
from .._base import Experiment


class Ablation(Experiment):
    """One phase per condition, statistics over seeds per condition, one figure.

    Subclasses give `conditions(cfg) -> [(label, {dotted key: value})]`, optionally a first phase
    `base(cfg)` labelled `"base"` that the conditions continue from (not a condition), `extra_metrics`
    (names of :data:`loopdyn.analysis.METRIC_VARIABLES` shown beside the common ones), and `n_panels` panels of their own
    (`panels`).
    """

    extra_metrics: tuple[str, ...] = ()
    figure_names = ()
    n_panels = 0

    def conditions(self, cfg) -> list[tuple[str, dict]]:
        raise NotImplementedError

    def base(self, cfg) -> tuple[cfg_mod.Config, str] | None:
        return None

    def palette(self, n: int):
        """One colour per condition."""
        return condition_colors(n)

    def validate(self, cfg) -> None:
        s = cfg.source
        if cfg.teacher.store or cfg.start.store or cfg.train.mode != "closed_loop":
            raise ConfigError(f"{s}: the {self.name} experiment trains closed_loop and sets [teacher] and [start] itself; "
                              f"remove them")
        labels = [label for label, _ in self.conditions(cfg)]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{s}: the {self.name} experiment's conditions {labels} repeat a value")

    def phases(self, cfg):
        first = self.base(cfg)
        sweep = dict(cfg.sweep) or None
        return ([first] if first else []) + [(self.variant(cfg, values, sweep=sweep), label)
                                              for label, values in self.conditions(cfg)]

    def analyse(self, ds, runs, result) -> None:
        run_metrics(ds, runs, result)
        self.more_metrics(ds, runs, result)
        arrays = {name: values for name, (_, values) in result.arrays.items() if name in (*METRICS, *self.extra_metrics,
                                                                                              "final_gains")}
        result.numbers["conditions"] = condition_statistics(ds, arrays, self.extra_metrics)
        result.numbers["metric_descriptions"] = {**METRICS, **{k: SHORT[k] for k in self.extra_metrics}}

    def more_metrics(self, ds, runs, result) -> None:
        """Per-run arrays of the experiment's own (added to `result`)."""

    def summary_lines(self, numbers: dict) -> list[str]:
        return statistics_lines(self.name, numbers)

    def figures(self, ds) -> dict:
        numbers = ablation_numbers(ds)
        return {self.figure_names[0]: self.figure(in_memory(ds), numbers)}

    def panels(self, ds, axes, numbers) -> None:
        """Draw the experiment's own `n_panels` panels into `axes` (default: none)."""

    def figure(self, ds, numbers) -> Figure:
        """Two rows: the experiment's panels, test loss (median and IQR per condition), final gains; then
        one strip per statistic (every run a dot, the median and IQR as a bar, the numbers written out)."""
        rows = numbers["conditions"]
        # up to three of the experiment's own statistics, leaving out those no run has (e.g. the gain-based stages
        # off the double integrator)
        extra = [m for m in self.extra_metrics[:3] if m not in ds or np.any(np.isfinite(ds[m].values))]
        strips = ("stage1_end", "stage2_end", "final_test_loss", "final_train_loss", *extra)
        n_axes = self.n_panels + 2 + len(strips)
        # per panel: the strips' tick labels need room per condition (less when they stand vertically)
        width = max(2.7, (0.5 if vertical_ticks(rows) else 0.8) * len(rows))
        ncols = max(2, min(4, int(FIGURE_WIDTH // width)))  # a grid of about a page's width: readable in print
        nrows = -(-n_axes // ncols)
        fig = Figure(figsize=(width * ncols, 2.9 * nrows + 0.4), layout="constrained")
        axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
        for ax in axes[n_axes:]:
            fig.delaxes(ax)
        axes = axes[:n_axes]
        self.panels(ds, axes[: self.n_panels], numbers)
        colors = self.palette(len(rows))
        loss_bands_panel(ds, axes[self.n_panels], rows, colors)
        gains_panel(ds, axes[self.n_panels + 1], rows, colors)
        for ax, name in zip(axes[self.n_panels + 2:], strips):
            strip_panel(ds, ax, rows, name, colors, mathtext(numbers["metric_descriptions"].get(name, name)))
        label_panels(axes, "abcdefghijkl")
        n = max(r["runs"] for r in rows)
        title = f"{self.description} — {n} seeds per condition; dots: runs, bars: median and IQR"
        fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 12)), fontsize=9)  # ~12 characters per inch
        return fig


PARAMETERS = ("m", "z", "U", "V", "W", "J")


def in_memory(ds):
    """`ds` with every array but the parameter checkpoints loaded (figures index the arrays run by run; a
    lazily opened store would read each array from disk again at every index)."""
    for name in [*ds.data_vars, *ds.coords]:
        if name not in PARAMETERS:
            ds[name].load()
    return ds


def ablation_numbers(ds) -> dict:
    try:
        numbers = read_analysis(ds)["numbers"]
    except StoreError:
        numbers = {}
    if "conditions" not in numbers:
        raise StoreError("the ablation figures need the store's analysis; run 'loopdyn analyze STORE' first")
    return numbers
