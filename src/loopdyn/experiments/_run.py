"""Dispatch a configuration to the phases its experiment needs, and train them into one store."""

from __future__ import annotations

from pathlib import Path

from .. import _config
from .._config import Config, ConfigError
from ..training import _runner

STAGES_DEFAULTS = {
    "T_start_epoch": 10, "T_values": [10, 20, 50, 100, 120], "T_epochs": 150,
    "beta_start": "stabilisation", "beta_values": [0.0, 0.5, 2.0, 5.0], "beta_epochs": 1000,
    "alphas": [0.0, 0.48, 0.52, 0.55, 1.0], "surrogate_T": 10, "surrogate_steps": 240,
}


def stages_settings(cfg: Config) -> dict:
    table = cfg.experiment("stages")
    unknown = set(table) - set(STAGES_DEFAULTS)
    if unknown:
        raise ConfigError(f"{cfg.source}: stages.{sorted(unknown)[0]} is not a known key; allowed: {', '.join(STAGES_DEFAULTS)}")
    return {**STAGES_DEFAULTS, **table}


def _variant(cfg: Config, values: dict, sweep: dict | None = None, epochs: int | None = None) -> Config:
    d = cfg.to_dict()
    for dotted, v in values.items():
        section, key = dotted.split(".")
        d[section][key] = v
    d.pop("sweep", None)
    if sweep:
        d["sweep"] = sweep
    if epochs is not None:
        d["epochs"] = epochs
    return _config.from_dict(d, source=cfg.source)


def phases_for(cfg: Config) -> list[tuple[Config, str]]:
    """The training phases of an experiment: `(config, mode label)` in order."""
    extra = dict(cfg.extra)
    if "closed_vs_open" in extra:
        table = extra["closed_vs_open"]
        unknown = set(table) - {"open_mode"}
        if unknown:
            raise ConfigError(f"{cfg.source}: closed_vs_open.{sorted(unknown)[0]} is not a known key; allowed: open_mode")
        mode = table.get("open_mode", "open_loop_noise")
        if mode not in ("open_loop_noise", "open_loop_teacher"):
            raise ConfigError(f"{cfg.source}: closed_vs_open.open_mode = {mode!r}; choose open_loop_noise or open_loop_teacher")
        if cfg.train.mode != "closed_loop":
            raise ConfigError(f"{cfg.source}: train.mode must be closed_loop for the closed-vs-open experiment")
        return [(cfg, "closed"), (_variant(cfg, {"train.mode": mode, "teacher.store": "self"}, dict(cfg.sweep)), "open")]
    if "stages" in extra:
        st = stages_settings(cfg)
        t_cont = _variant(cfg, {"start.store": "self", "start.epoch": str(st["T_start_epoch"])},
                          {"task.T": list(st["T_values"])}, st["T_epochs"])
        b_cont = _variant(cfg, {"start.store": "self", "start.epoch": str(st["beta_start"])},
                          {"task.beta": list(st["beta_values"])}, st["beta_epochs"])
        return [(cfg, "closed"), (t_cont, "T-continuation"), (b_cont, "beta-continuation")]
    return [(cfg, cfg.train.mode)]


def run_experiment(cfg: Config | None, *, out: Path = Path("results"), resume: Path | None = None,
                   progress: bool = True, stop_after: int | None = None) -> Path:
    """Train `cfg` into `out/<name>.zarr`, or continue the store `resume`; returns the store path."""
    if resume is not None:
        return _runner.resume(resume, progress=progress)
    return _runner.train(cfg, Path(out) / f"{cfg.name}.zarr", progress=progress, phases=phases_for(cfg),
                         stop_after=stop_after)
