"""Teachers of open-loop students, read from a store (or given as a static gain) and checked
against the student before any training starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._config import ConfigError
from ..store import _zarr as zs

ARCHITECTURE = ("N", "rank", "activation", "alpha")


def load_teacher(group, trainer) -> dict[str, np.ndarray]:
    """Teacher constants for the runs of `group`, with a leading run axis.

    `teacher.store = "self"` reads phase 0 of the experiment being trained (run i of this phase
    learns from run i of phase 0); otherwise the teacher run is `teacher.run`, or the run with the
    student's seed when `teacher.run = -1`.
    """
    cfg = group.cfg
    t = cfg.teacher
    n = len(group.runs)
    src = cfg.source
    if cfg.train.mode == "open_loop_gain":
        K = np.asarray(t.K, dtype=np.float64)
        return {"K": np.broadcast_to(K, (n,) + K.shape).copy()}

    own = t.store == "self"
    path = Path(trainer.path) if own else Path(t.store)
    try:
        ds = zs.raw_dataset(path)
    except zs.StoreError as e:
        raise ConfigError(f"{src}: teacher.store: {e}") from None
    tcfg = ds.attrs["config"]
    for key in ARCHITECTURE:
        if tcfg["agent"][key] != getattr(cfg.agent, key):
            raise ConfigError(f"{src}: teacher.store = {str(path)!r} has agent.{key} = {tcfg['agent'][key]!r} but the "
                              f"student has {getattr(cfg.agent, key)!r}; teacher and student need the same architecture")
    tplant = tcfg["plant"]
    if (tplant["kind"], tplant["n_observed"], tplant["n_controls"]) != (cfg.plant.kind, cfg.plant.n_observed, cfg.plant.n_controls):
        raise ConfigError(f"{src}: teacher.store = {str(path)!r} controls plant {tplant['kind']!r} "
                          f"({tplant['n_observed']} observed, {tplant['n_controls']} controls), not the student's "
                          f"{cfg.plant.kind!r}; the teacher must be a controller of the same plant")
    if own:
        offset = min(gr.runs[0] for gr in trainer.groups if gr.phase == group.phase)
        rows = [r - offset for r in group.runs]
    elif t.run >= 0:
        if t.run >= ds.sizes["run"]:
            raise ConfigError(f"{src}: teacher.run = {t.run} but {path} has runs 0..{ds.sizes['run'] - 1}")
        rows = [t.run] * n
    else:
        seeds = list(ds.seed.values)
        missing = [int(s) for s in group.seeds if int(s) not in seeds]
        if missing:
            raise ConfigError(f"{src}: teacher.run = -1 matches runs by seed, but {path} has no run with seed {missing[0]} "
                              f"(seeds there: {sorted(set(int(s) for s in seeds))}); set teacher.run to a run index")
        rows = [seeds.index(int(s)) for s in group.seeds]

    ckpts = list(ds.checkpoint.values)
    if own:
        done = tcfg["epochs"]  # phase 0 is complete before a later phase starts
    else:
        phase, done = zs.read_progress(path)
        if phase < len(ds.attrs.get("phases", [None])) - 1:
            done = 0
    available = [c for c in ckpts if c < done]
    epoch = available[-1] if t.epoch < 0 and available else t.epoch
    if epoch not in available:
        shown = available if len(available) <= 8 else available[:4] + ["..."] + available[-3:]
        raise ConfigError(f"{src}: teacher.epoch = {t.epoch} is not a stored checkpoint of {path}; available: {shown}")
    ci = ckpts.index(epoch)
    N = cfg.agent.N
    out = {}
    for name in ("m", "z", "U", "V", "W", "J"):
        if name not in ds:
            continue
        var = ds[name]
        a = var.isel(run=rows, checkpoint=ci).values if "checkpoint" in var.dims else var.isel(run=rows).values
        a = a[:, :N]
        if name in ("W", "J"):
            a = a[:, :, :N]
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{src}: teacher parameters {name!r} at epoch {epoch} of {path} are not finite (diverged run?)")
        out[name] = a
    return out
