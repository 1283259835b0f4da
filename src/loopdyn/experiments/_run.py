"""Dispatch a configuration to the training chain its mode needs."""

from __future__ import annotations

from pathlib import Path

from .._config import Config
from ..train import _runner


def run_experiment(cfg: Config | None, *, out: Path = Path("results"), resume: Path | None = None,
                   progress: bool = True) -> Path:
    """Train `cfg` into `out/<name>.zarr`, or continue the store `resume`; returns the store path."""
    if resume is not None:
        return _runner.resume(resume, progress=progress)
    return _runner.train(cfg, Path(out) / f"{cfg.name}.zarr", progress=progress)
