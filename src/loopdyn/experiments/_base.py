"""What an experiment is, and the registry `loopdyn train/analyze/figures NAME` look experiments up in.

An experiment owns, in one module: its config table (`table`: a frozen dataclass whose fields, declared with
:func:`loopdyn.config.param`, give each key's type, default, documentation and check; the loader checks a
configuration's table field by field), its training phases, its analyses and theory runs (hooks of :func:`loopdyn.analysis.analyze_store`),
its lines of the analysis summary, and its figures. Adding one is one module plus its shipped TOML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import config as cfg_mod
from ..errors import ConfigError, StoreError

REGISTRY: dict[str, "Experiment"] = {}

POSITIVE_INTEGERS = ("a non-empty list of positive integers", lambda v: len(v) > 0 and all(x > 0 for x in v))
"""The check of a table's list of episode lengths or epochs (`param(..., check=POSITIVE_INTEGERS)`)."""


@dataclass(frozen=True)
class Reproduce:
    """How `loopdyn reproduce` runs an experiment (declared as the class attribute `reproduce`).

    - `config`: the shipped config it trains;
    - `quick`, `quick_seeds`: `--set` overrides and seeds of the shortened protocol of `reproduce --quick`;
    - `full`, `full_seeds`: the same for the full run (default: the shipped config as it is);
    - `order`: experiments run in increasing order;
    - `claims`: figure name -> the paper's claim that the figure tests (the report's caption starts with it;
      :meth:`Experiment.captions` adds the measured numbers).
    """

    config: str
    quick: tuple[str, ...] = ()
    quick_seeds: str | None = None
    full: tuple[str, ...] = ()
    full_seeds: str | None = None
    order: int = 100
    claims: dict[str, str] = field(default_factory=dict)


class _Defaults:
    """`Experiment.defaults`: the default values of the experiment's table, key -> plain value (lists), derived
    from its typed `table`. An experiment may instead declare `defaults = {...}` itself (the older way, still
    accepted): its keys are then typed by their defaults (:func:`loopdyn.config.table_type`)."""

    def __get__(self, obj, cls) -> dict[str, Any]:
        return cfg_mod.table_defaults(cfg_mod.table_type(cls))


class Experiment:
    """Base class: override what the experiment needs. Subclasses are registered with :func:`register`.

    `table`: the experiment's table `[name]` (with `-` as `_`), a frozen dataclass whose fields are declared with
    :func:`loopdyn.config.param` (default, `doc`, `check`, `choices`); a configuration's table is checked field by
    field when it is loaded and its resolved values are `cfg.table` (key -> value, lists as tuples). Checks that
    involve several keys or the rest of the configuration belong in :meth:`validate`."""

    name: str = ""
    description: str = ""
    table: type | None = None
    defaults: dict[str, Any] = _Defaults()  # type: ignore[assignment]
    figure_names: tuple[str, ...] = ()
    reproduce: Reproduce | None = None  # set to take part in `loopdyn reproduce`

    def validate(self, cfg: cfg_mod.Config) -> None:
        """Raise :class:`ConfigError` for settings that are wrong together (checked at load time)."""

    def require_closed_first(self, cfg: cfg_mod.Config, then: str) -> None:
        """The checks of an experiment that trains in closed loop first and then sets up its later phases'
        `[teacher]` and `[start]` itself; `then`: what its later phases are (named in the error)."""
        if cfg.train.mode != "closed_loop":
            raise ConfigError(f"{cfg.source}: train.mode = {cfg.train.mode!r}; the {self.name} experiment trains "
                              f"closed_loop first ({then})")
        if cfg.teacher.store or cfg.start.store:
            raise ConfigError(f"{cfg.source}: [teacher] and [start] are set by the {self.name} experiment; remove them")

    def phases(self, cfg: cfg_mod.Config) -> list[tuple[cfg_mod.Config, str]]:
        """The training phases, `(config, label)` in order (default: the config itself, one phase)."""
        return [(cfg, self.name)]

    def analyse(self, ds, runs, result) -> None:
        """Add the experiment's analyses to `result` (a :class:`loopdyn.analysis.Analysis`)."""

    def summary_lines(self, numbers: dict) -> list[str]:
        """Lines of the `loopdyn analyze` summary for the experiment's own numbers."""
        return []

    def figures(self, ds) -> dict:
        """`name -> matplotlib Figure` from an (analysed) store; raise :class:`StoreError` if unsuitable."""
        raise StoreError(f"the {self.name} experiment has no figures")

    def captions(self, ds) -> dict[str, str]:
        """`figure name -> measured numbers` for the report's captions, from an analysed store (default none)."""
        return {}

    def tables(self, ds) -> list[dict]:
        """Tables of the report beyond the stage boundaries per condition, `{"title", "columns", "rows"}` (e.g.
        acquisition epochs per frequency with their spread over seeds), from an analysed store (default none)."""
        return []

    def variant(self, cfg: cfg_mod.Config, values: dict, *, sweep: dict | None = None, epochs: int | None = None,
                label: str | None = None) -> cfg_mod.Config:
        """A phase's configuration: `cfg` with dotted `values`, its own `sweep` (replacing cfg's) and `epochs`."""
        d = cfg_mod.to_dict(cfg)
        for dotted, v in values.items():
            section, key = dotted.split(".")
            d[section][key] = v
        d.pop("sweep", None)
        if sweep:  # a Config's sweep holds tuples; the loader reads TOML's lists
            d["sweep"] = {k: list(v) for k, v in dict(sweep).items()}
        if epochs is not None:
            d["epochs"] = epochs
        return cfg_mod.from_dict(d, source=cfg.source, phase=True)


EXPERIMENTS = cfg_mod.declare_family("experiment", Experiment, "loopdyn.experiments", default="ensemble")
"""The experiment family: `experiment = NAME` names a registered experiment, one announced through the
`loopdyn.experiments` entry points, or a user's class by import path (`package.module:Class`)."""


def register(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator: make an experiment known by its `name` in this process (shipped experiments; a
    package announces its own through the `loopdyn.experiments` entry points, a script names it by import path)."""
    exp = cls()
    REGISTRY[exp.name] = exp
    EXPERIMENTS.register(exp.name, cls)
    return cls


def get(name: str) -> Experiment:
    """The experiment `name`: a registered name, an entry point or an import path (`package.module:Class`)."""
    if name not in REGISTRY:
        try:
            cls = EXPERIMENTS.resolve(name)
        except ConfigError as e:
            raise ConfigError(str(e).replace("experiment.kind = ", "experiment ", 1)) from None
        REGISTRY[name] = cls()
    return REGISTRY[name]


def names() -> list[str]:
    return EXPERIMENTS.names()
