"""Teachers of open-loop students and start parameters of continuations, read from stores and checked
against the student before any training starts (spec §3.3)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import config as cfg_mod
from ..agents import EXTRA, AgentParams
from ..analysis import stabilisation_epoch
from ..errors import ConfigError, StoreError
from ..store import raw_dataset, read_progress
from ..training import Sources

ARCHITECTURE = ("N", "rank", "activation", "alpha")


def _open_source(store: str, path_self: Path, src: str, what: str, phase: int = 0):
    own = store == "self"
    path = Path(path_self) if own else Path(store)
    try:
        ds = raw_dataset(path)
        progress = read_progress(path)
    except StoreError as e:
        raise ConfigError(f"{src}: {what}.store: {e}") from e
    phases = ds.attrs.get("phases", [])
    if own:
        done = int(phases[phase][1]["epochs"])  # an earlier phase is complete before a later one starts
    elif progress["complete"]:
        done = int(phases[-1][1]["epochs"]) if len(phases) == 1 else int(ds.sizes["epoch"])
    elif progress["phase"] == 0:
        done = progress["epochs_done"]
    else:
        done = int(phases[0][1]["epochs"])
    return path, ds, own, done


def _describe(plant) -> str:
    settings = ", ".join(f"{k} = {v!r}" for k, v in cfg_mod.part_to_dict(plant).items() if k not in ("kind", "noise", "clamp"))
    return f"{plant.kind!r} ({settings}; {plant.n_states} states, {plant.n_observed} observed, {plant.n_controls} controls)"


def _check_architecture(cfg, ds, path, src, what, phase: int | None = None):
    tcfg = ds.attrs.get("config") if phase is None else ds.attrs.get("phases", [])[phase][1]  # 'self': that phase's
    if not isinstance(tcfg, dict) or not isinstance(tcfg.get("agent"), dict) or not isinstance(tcfg.get("plant"), dict):
        raise ConfigError(f"{src}: {what}.store = {str(path)!r} does not hold a controller of a plant "
                          f"(no agent and plant configuration in the store)")
    ours = cfg_mod.part_to_dict(cfg.agent)
    for key in ("kind", *ARCHITECTURE):
        if tcfg["agent"].get(key) != ours.get(key):
            raise ConfigError(f"{src}: {what}.store = {str(path)!r} has agent.{key} = {tcfg['agent'].get(key)!r} but this run "
                              f"has {ours.get(key)!r}; {what} and student need the same architecture")
    try:
        tplant = cfg_mod.build_part(str(path), "plant", tcfg["plant"], lenient=True)
    except ConfigError as e:
        raise ConfigError(f"{src}: {what}.store = {str(path)!r} has an unreadable plant configuration ({e})") from e
    same = dataclasses.replace(cfg.plant, noise=tplant.noise, clamp=tplant.clamp)  # the same plant, noise aside
    if type(tplant) is not type(cfg.plant) or tplant != same:
        raise ConfigError(f"{src}: {what}.store = {str(path)!r} controls plant {_describe(tplant)}, not this run's "
                          f"{_describe(cfg.plant)}; the {what} must be a controller of the same plant")


def _rows(group, groups, ds, own, run_index, path, src, what, phase: int = 0) -> list[int]:
    n = len(group.runs)
    if own:
        phase0 = [r for gr in groups if gr.phase == phase for r in gr.runs]
        if run_index >= 0:
            return [phase0[run_index]] * n
        # the run of that phase with the same seed and the same values of the keys both phases sweep
        values0 = [v for gr in groups if gr.phase == phase for v in gr.values]
        rows = []
        for v in group.values:
            same = [i for i, v0 in enumerate(values0) if all(v0[k] == v[k] for k in v.keys() & v0.keys())]
            if not same:
                shared = ", ".join(f"{k} = {v[k]!r}" for k in sorted(v.keys() & values0[0].keys()))
                raise ConfigError(f"{src}: {what}.store = 'self': no run of phase {phase} has {shared}; a phase "
                                  f"that continues another must sweep the keys they share over the same values")
            rows.append(phase0[same[0]])
        return rows
    if run_index >= 0:
        if run_index >= ds.sizes["run"]:
            raise ConfigError(f"{src}: {what}.run = {run_index} but {path} has runs 0..{ds.sizes['run'] - 1}")
        return [run_index] * n
    seeds = [int(s) for s in ds.seed.values]
    missing = [int(s) for s in group.seeds if int(s) not in seeds]
    if missing:
        raise ConfigError(f"{src}: {what}.run = -1 matches runs by seed, but {path} has no run with seed {missing[0]} "
                          f"(seeds there: {sorted(set(seeds))}); set {what}.run to a run index")
    return [seeds.index(int(s)) for s in group.seeds]


def _params_at(ds, rows, epochs, N, path, src, what, names=None) -> AgentParams:
    ckpts = [int(c) for c in ds.checkpoint.values]
    cis = []
    for e in epochs:
        if e not in ckpts:
            shown = ckpts if len(ckpts) <= 8 else ckpts[:4] + ["..."] + ckpts[-3:]
            raise ConfigError(f"{src}: {what}.epoch = {e} is not a stored checkpoint of {path}; available: {shown}")
        cis.append(ckpts.index(e))

    def stored(var):
        if "checkpoint" in var.dims:
            return np.stack([var.isel(run=r, checkpoint=c).values for r, c in zip(rows, cis)])
        return var.isel(run=rows).values

    if "G" in ds:  # runs of the overlap representation hold a Gram matrix, NaN for runs of vectors
        G = stored(ds["G"])
        if np.all(np.isfinite(G)):
            return AgentParams(G=G)
    out = {}
    for name in ("m", "z", "U", "V", "W", "J", *sorted(k for k in ds.data_vars if str(k).startswith(EXTRA))):
        if name not in ds or (names is not None and name not in names):  # another phase's agent's parameter
            continue
        a = stored(ds[name])
        a = a[:, :N]
        if name in ("W", "J"):
            a = a[:, :, :N]
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{src}: {what} parameters {name!r} at epoch {epochs[0]} of {path} are not finite (diverged or "
                              f"padded run?); choose another {what}.run or {what}.epoch")
        out[name] = a
    return AgentParams.of(out)


def _teacher(group, groups, path_self):
    cfg, t, src = group.cfg, group.cfg.teacher, group.cfg.source
    if cfg.train.mode == "open_loop_gain":
        K = np.asarray(t.K, dtype=np.float64)
        return np.broadcast_to(K, (len(group.runs),) + K.shape).copy()
    if t.store == "self" and t.phase >= group.phase:
        raise ConfigError(f"{src}: teacher.phase = {t.phase} must name an earlier phase than this one ({group.phase})")
    path, ds, own, done = _open_source(t.store, path_self, src, "teacher", t.phase if t.store == "self" else 0)
    _check_architecture(cfg, ds, path, src, "teacher", t.phase if own else None)
    rows = _rows(group, groups, ds, own, t.run, path, src, "teacher", t.phase if own else 0)
    available = [int(c) for c in ds.checkpoint.values if c < done]
    if not available:
        raise ConfigError(f"{src}: teacher.store = {str(path)!r} has no complete epoch yet")
    epoch = available[-1] if t.epoch < 0 else t.epoch
    if epoch >= done:
        raise ConfigError(f"{src}: teacher.epoch = {epoch} is beyond the {done} complete epochs of {path}")
    params = _params_at(ds, rows, [epoch] * len(rows), cfg.agent.N, path, src, "teacher",
                        group.problem.spec.parameter_names if own else None)
    return params


def _start(group, groups, path_self):
    cfg, st, src = group.cfg, group.cfg.start, group.cfg.source
    if st.store == "self" and st.phase >= group.phase:
        raise ConfigError(f"{src}: start.phase = {st.phase} must name an earlier phase than this one ({group.phase})")
    path, ds, own, done = _open_source(st.store, path_self, src, "start", st.phase if st.store == "self" else 0)
    _check_architecture(cfg, ds, path, src, "start", st.phase if own else None)
    rows = _rows(group, groups, ds, own, st.run, path, src, "start", st.phase if own else 0)
    if st.epoch == "last":
        epochs = [max(int(c) for c in ds.checkpoint.values if c < done)] * len(rows)
    elif st.epoch == "stabilisation":
        if "spectral_radius" not in ds:
            raise ConfigError(f"{src}: start.epoch = 'stabilisation' needs a linear agent with stored spectra in {path}")
        stab = stabilisation_epoch(ds.spectral_radius.values[:, :done])
        epochs = []
        for r in rows:
            if stab[r] < 0:
                raise ConfigError(f"{src}: start.epoch = 'stabilisation' but run {r} of {path} never stabilises in its "
                                  f"{done} epochs; give an integer start.epoch or train the first phase longer")
            epochs.append(int(stab[r]))
    else:
        epochs = [int(st.epoch)] * len(rows)
        if epochs[0] >= done:
            raise ConfigError(f"{src}: start.epoch = {epochs[0]} is beyond the {done} complete epochs of {path}")
    params = _params_at(ds, rows, epochs, cfg.agent.N, path, src, "start", group.problem.spec.parameter_names if own else None)
    if params.G is not None and getattr(cfg.agent, "representation", "vectors") != "overlaps":
        raise ConfigError(f"{src}: start.store = {str(path)!r} holds overlap-space runs (Gram matrices), which cannot start "
                          f"a run with agent.representation = 'vectors'; use representation = 'overlaps'")
    return params, np.asarray(epochs)


def sources_for(path_self: Path, groups):
    """The `sources(group)` callable of a trainer writing `path_self` (teachers and starts of its groups)."""

    def sources(group) -> Sources:
        cfg = group.cfg
        teacher = _teacher(group, groups, path_self) if cfg.train.mode not in ("closed_loop", "open_loop_target") else None
        start, epochs = _start(group, groups, path_self) if cfg.start.store else (None, None)
        return Sources(teacher, start, epochs)

    return sources


def validate_sources(path_self: Path, groups) -> None:
    """Load every teacher and start that lives outside the store being written, raising a one-line
    :class:`ConfigError` for a bad one, before anything is created. Sources inside the same store
    (`store = "self"`) are written by an earlier phase; their architecture and plant are the experiment's."""
    for group in groups:
        cfg = group.cfg
        if cfg.train.mode == "open_loop_gain" or (cfg.train.mode not in ("closed_loop", "open_loop_target")
                                                  and cfg.teacher.store != "self"):
            _teacher(group, groups, path_self)
        if cfg.start.store and cfg.start.store != "self":
            _start(group, groups, path_self)
