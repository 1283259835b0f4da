r"""Invisible overlaps as a memory of the training history (Ger & Barak 2026, "Learning reveals invisible
structure in low-rank RNNs"; spec §7.1-7.2).

A rank-1 linear network without plant learns the impulse response $e^{-c t}$ (:class:`loopdyn.tasks.ImpulseTarget`,
mode `open_loop_target`; the follow-up's conventions: unit-norm vectors, dt = 0.05, $t_{\max} = 20$, every
vector trained). Its loss depends on the visible overlaps $\sigma_{zm}, \sigma_{zu}, \sigma_{vm}, \sigma_{vu}$
only; the invisible ones ($\sigma_{mu}$, $\sigma_{zv}$, the squared norms) enter the learning dynamics as the
metric of gradient descent in overlap space (spec §7.2). Two histories from the same initialisation:

- `A`: the target $c$ = `task.decay` throughout;
- `B`: the same until `first_epochs`, then detours to other targets (`detours`, `detour_epochs` each), a
  phase on $c$ with target noise and a larger learning rate (the follow-up's memory protocol), and a
  noise-free phase on $c$ again (`settle_epochs`), so that both end at the same function;

then both learn a new target (`new_decay`, phases `A:new`, `B:new`). The analysis measures how far apart
the visible and the invisible overlaps of A and B are at the switch, and trains, exactly in overlap space
(:func:`loopdyn.theory.overlap_descent`, the trainer's own step), two *chimeras* on the new target:
C with A's visible and B's invisible overlaps, D with B's visible and A's invisible ones. C computes the same
function as A (same visible overlaps: same output, loss and gradient with respect to the overlaps) yet learns
like B: the difference is carried by the invisible overlaps alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..agents import RANK1_INDEX, AgentParams, gram_core
from ..config import NON_NEGATIVE, POSITIVE, each, param
from ..errors import ConfigError, StoreError
from ..plots import figure_memory
from ..store import read_analysis
from ..system import INVISIBLE_NAMES, OVERLAP_NAMES, all_overlaps, rollout
from ..tasks import ImpulseTarget
from ..theory import RANK1, overlap_descent
from ._base import Experiment, Reproduce, register

CHIMERAS = ("C: visible of A, invisible of B", "D: visible of B, invisible of A")
VISIBLE_PAIRS = (("z", "m"), ("z", "u"), ("v", "m"), ("v", "u"))
THRESHOLDS = (1e-3, 1e-4, 1e-5)

VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "chimera": (("chimera",), "the chimeras: Gram matrices mixing the visible overlaps of one history with the "
                "invisible overlaps of the other"),
    "chimera_train_loss": (("run", "chimera", "epoch"),
        "loss on the new target of the chimeras, trained exactly in overlap space with the B:new run's settings "
        "(stored at B:new's runs)"),
    "chimera_gram": (("run", "chimera", "gram_row", "gram_col"), "the chimeras' Gram matrices at the switch"),
    "theory_check_loss": (("run", "epoch"),
        "loss of A:new recomputed by overlap_descent from A:new's start (a check that the theory run is the "
        "trainer's step; stored at A:new's runs)"),
}


@dataclass(frozen=True)
class InvisibleMemoryTable:
    """The table `[invisible_memory]`."""

    first_epochs: int = param(3000, doc="epochs of both histories on the first target before B's detours",
                              check=POSITIVE)
    detours: tuple[float, ...] = param((0.4, 0.2, 0.4), doc="task.decay of each of B's detour targets",
                                       check=each(">= 0", lambda c: c >= 0))
    detour_epochs: int = param(1000, doc="epochs of each detour", check=POSITIVE)
    noise: float = param(0.1, doc="task.target_noise of B's noisy phase", check=NON_NEGATIVE)
    noise_lr_factor: float = param(2.0, doc="train.lr of B's noisy phase, as a multiple of train.lr", check=POSITIVE)
    noise_epochs: int = param(4000, doc="epochs of B's noisy phase", check=POSITIVE)
    settle_epochs: int = param(1000, doc="epochs of B's noise-free phase back on the first target", check=POSITIVE)
    new_decay: float = param(0.4, doc="task.decay of the new target both histories learn", check=NON_NEGATIVE)
    new_epochs: int = param(1000, doc="epochs on the new target", check=POSITIVE)


@register
class InvisibleMemory(Experiment):
    name = "invisible-memory"
    description = ("Ger & Barak 2026: two training histories reach the same function; their invisible overlaps differ "
                   "and make them learn a new target differently")
    table = InvisibleMemoryTable
    figure_names = ("memory",)
    reproduce = Reproduce(
        "invisible-memory", quick=("invisible_memory.first_epochs=1000", "invisible_memory.detour_epochs=300",
                                   "invisible_memory.noise_epochs=1000", "invisible_memory.settle_epochs=500",
                                   "invisible_memory.new_epochs=500"), order=60,
        claims={"memory": "Ger & Barak 2026 / spec §7.1-7.2 (beyond the 2025 paper): gradient descent on a rank-1 "
                          "linear network moves its loss-invisible overlaps (sigma_mu, sigma_zv, the squared norms) "
                          "too; two training histories that end at the same function (same visible overlaps) keep "
                          "different invisible overlaps, and those make them learn a new target differently: a "
                          "chimera with A's visible and B's invisible overlaps learns like B, not like A."})

    def captions(self, ds) -> dict:
        rows = read_analysis(ds)["numbers"].get("memory", [])
        parts = []
        for r in rows:
            ratio = r["max_abs_log_ratio"]
            parts.append(f"seed {r['seed']}: at the switch max |visible A − B| {r['visible_max_abs_diff']:.1e}, max "
                         f"|output A − B| {r['output_max_abs_diff']:.1e}, but max |invisible A − B| "
                         f"{r['invisible_max_abs_diff']:.2f}; on the new target (c = {r['new_decay']:g}) the chimera C "
                         f"(A's visible, B's invisible) departs from A by max |log L_C/L_A| = {ratio['C/A']:.2f} and "
                         f"from B by {ratio['C/B']:.2f}; D departs from B by {ratio['D/B']:.2f}, from A by "
                         f"{ratio['D/A']:.2f}; overlap-space theory vs the trainer: max relative deviation "
                         f"{r['theory_vs_trainer_max_rel_dev']:.1e}.")
        return {"memory": " ".join(parts)} if parts else {}

    def validate(self, cfg) -> None:
        s, a = cfg.source, cfg.agent
        if cfg.task.kind != "impulse" or not (a.rank == 1 and a.activation == "linear" and a.g == 0):
            raise ConfigError(f"{s}: the invisible-memory experiment needs task.kind = 'impulse' and a linear rank-1 agent "
                              f"with g = 0; start from the shipped 'invisible-memory' config")
        if cfg.start.store or cfg.teacher.store or cfg.sweep:
            raise ConfigError(f"{s}: the invisible-memory experiment builds its own phases; remove [start], [teacher] and "
                              f"[sweep]")

    def phases(self, cfg):
        t = cfg.table
        total = t["first_epochs"] + len(t["detours"]) * t["detour_epochs"] + t["noise_epochs"] + t["settle_epochs"]
        out = [(self.variant(cfg, {}, epochs=total), "A")]

        def after(prev: int, values: dict, epochs: int, label: str, epoch: str = "last"):
            start = {"start.store": "self", "start.phase": prev, "start.epoch": epoch}
            out.append((self.variant(cfg, {**start, **values}, epochs=epochs), label))

        after(0, {"task.decay": t["detours"][0]}, t["detour_epochs"], "B:detour-1", str(t["first_epochs"]))
        for i, c in enumerate(t["detours"][1:], start=2):
            after(len(out) - 1, {"task.decay": c}, t["detour_epochs"], f"B:detour-{i}")
        after(len(out) - 1, {"task.target_noise": t["noise"], "train.lr": cfg.train.lr * t["noise_lr_factor"]},
              t["noise_epochs"], "B:noise")
        after(len(out) - 1, {}, t["settle_epochs"], "B")
        settled = len(out) - 1
        after(0, {"task.decay": t["new_decay"]}, t["new_epochs"], "A:new")
        after(settled, {"task.decay": t["new_decay"]}, t["new_epochs"], "B:new")
        return out

    def analyse(self, ds, runs, result) -> None:
        R, E = ds.sizes["run"], ds.sizes["epoch"]
        by = {(r.phase, r.seed): r for r in runs}
        rows = []
        for seed in sorted({r.seed for r in runs}):
            a_new, b_new = by[("A:new", seed)], by[("B:new", seed)]
            n = a_new.epochs
            GA, GB = _gram(ds, a_new, 0), _gram(ds, b_new, 0)
            chimeras = np.stack([_mix(GA, GB), _mix(GB, GA)])
            cfg = b_new.cfg
            task = ImpulseTarget(2, cfg.task.T, cfg.agent.alpha, cfg.task.decay)
            mask = RANK1.mask(cfg.agent.trainable)
            starts = jnp.asarray(np.stack([*chimeras, GA]))
            losses = np.asarray(jax.vmap(lambda G: overlap_descent(
                _impulse_loss(task, cfg.agent.alpha), G, mask, lr=cfg.train.lr, clip=cfg.train.clip,
                clip_eps=cfg.train.clip_eps, steps=n)[1])(starts))
            _full(result, "chimera_train_loss", (R, len(CHIMERAS), E))[b_new.index, :, :n] = np.stack(losses[:2])
            _full(result, "chimera_gram", (R, len(CHIMERAS), 4, 4))[b_new.index] = chimeras
            _full(result, "theory_check_loss", (R, E))[a_new.index, :n] = losses[2]
            result.put("chimera", np.array(CHIMERAS), *VARIABLES["chimera"])
            curves = {"A": ds.train_loss.values[a_new.index, :n], "B": ds.train_loss.values[b_new.index, :n],
                      "C": losses[0], "D": losses[1]}
            check = float(np.max(np.abs(losses[2] - curves["A"]) / curves["A"]))
            rows.append(_numbers(ds, by, seed, GA, GB, chimeras, curves, task, check))
        result.numbers["memory"] = rows

    def summary_lines(self, numbers: dict) -> list[str]:
        lines = []
        for r in numbers.get("memory", []):
            lines.append(f"invisible memory, seed {r['seed']}: at the switch (both on c = {r['decay']:g}, loss A "
                         f"{r['loss_at_switch']['A']:.2e}, B {r['loss_at_switch']['B']:.2e}): max |visible A - B| "
                         f"{r['visible_max_abs_diff']:.2e}, max |invisible A - B| {r['invisible_max_abs_diff']:.2e}, "
                         f"max |output A - B| {r['output_max_abs_diff']:.2e}")
            lines.append("  overlaps A / B: " + ", ".join(f"{k[6:]} {r['overlaps_A'][k]:+.4f}/{r['overlaps_B'][k]:+.4f}"
                                                        for k in (*OVERLAP_NAMES, *INVISIBLE_NAMES)))
            lines.append(f"  new target c = {r['new_decay']:g}, loss at epochs {r['epochs']}:")
            for k in ("A", "B", "C", "D"):
                reach = ", ".join(f"<{th:g}: {e}" for th, e in zip(THRESHOLDS, r["epochs_to"][k]))
                lines.append(f"    {k} {' '.join(f'{v:.3e}' for v in r['losses'][k])}  (first epoch {reach})")
            lines.append(f"  C (A's visible, B's invisible) vs A: max |log(L_C / L_A)| {r['max_abs_log_ratio']['C/A']:.3f}, "
                         f"vs B: {r['max_abs_log_ratio']['C/B']:.3f}; D vs B: {r['max_abs_log_ratio']['D/B']:.3f}, "
                         f"vs A: {r['max_abs_log_ratio']['D/A']:.3f}; overlap-space theory vs trainer on A:new: max "
                         f"relative loss deviation {r['theory_vs_trainer_max_rel_dev']:.1e}")
        return lines

    def figures(self, ds) -> dict:
        analysis = ds.attrs.get("analysis")
        if analysis is None or "memory" not in analysis.get("numbers", {}):
            raise StoreError("the invisible-memory figure needs the store's analysis; run 'loopdyn analyze STORE' first")
        return {"memory": figure_memory(ds)}


# ------------------------------------------------------------------------------------------ analysis
def _full(result, name, shape):
    return result.full(name, shape, np.float64, *VARIABLES[name])


def _gram(ds, run, epoch: int) -> np.ndarray:
    """The run's Gram matrix at a checkpoint epoch of its phase (the overlap representation stores it; for vectors
    it is computed from m, z, U, V)."""
    if "G" in ds and np.all(np.isfinite(ds.G.values[run.index, 0])):
        return np.asarray(ds.G.sel(checkpoint=epoch).values[run.index], np.float64)
    vec = {k: (ds[k].sel(checkpoint=epoch) if "checkpoint" in ds[k].dims else ds[k]).values[run.index, : run.spec.N]
           for k in ("m", "z", "U", "V")}
    X = np.concatenate([vec[k] for k in ("m", "z", "U", "V")], axis=-1).astype(np.float64)
    return X.T @ X


def _mix(visible_of: np.ndarray, invisible_of: np.ndarray) -> np.ndarray:
    """The Gram matrix with the visible overlaps of one and the invisible overlaps (the rest) of the other."""
    G = invisible_of.copy()
    for a, b in VISIBLE_PAIRS:
        i, j = RANK1_INDEX[a], RANK1_INDEX[b]
        G[i, j] = G[j, i] = visible_of[i, j]
    if np.linalg.eigvalsh(G).min() <= 0:
        raise StoreError("the chimera Gram matrix is not positive definite: no vectors have these overlaps; the two "
                         "histories ended too far apart")
    return G


def _impulse_loss(task: ImpulseTarget, alpha: float):
    def loss(G):
        traj = rollout(gram_core(G, RANK1, alpha), None, exo=task.inputs(1, jnp.float64), timing="immediate", emit=("u",))
        return task.train_loss(traj.u)

    return loss


def _output(G, task: ImpulseTarget, alpha: float) -> np.ndarray:
    traj = rollout(gram_core(jnp.asarray(G), RANK1, alpha), None, exo=task.inputs(1, jnp.float64), timing="immediate",
                   emit=("u",))
    return np.asarray(traj.u[:, 0, 0])


def _numbers(ds, by, seed, GA, GB, chimeras, curves, task, check: float) -> dict:
    ova = {k: float(v) for k, v in all_overlaps(AgentParams(G=GA)).items()}
    ovb = {k: float(v) for k, v in all_overlaps(AgentParams(G=GB)).items()}
    a, b = by[("A", seed)], by[("B", seed)]
    old = ImpulseTarget(2, task.T, task.dt, float(a.cfg.task.decay))
    n = len(curves["A"])
    marks = [e for e in (0, 1, 10, 100, 300, n - 1) if e < n]

    def log_ratio(x, y):
        return float(np.max(np.abs(np.log(curves[x] / curves[y]))))

    def first_below(c, th):
        below = curves[c] < th
        return int(np.argmax(below)) if below.any() else -1

    return {"seed": seed, "decay": float(a.cfg.task.decay), "new_decay": float(task.decay),
            "loss_at_switch": {"A": float(ds.train_loss.values[a.index, a.epochs - 1]),
                               "B": float(ds.train_loss.values[b.index, b.epochs - 1])},
            "overlaps_A": ova, "overlaps_B": ovb,
            "visible_max_abs_diff": max(abs(ova[k] - ovb[k]) for k in OVERLAP_NAMES),
            "invisible_max_abs_diff": max(abs(ova[k] - ovb[k]) for k in INVISIBLE_NAMES),
            "output_max_abs_diff": float(np.max(np.abs(_output(GA, old, task.dt) - _output(GB, old, task.dt)))),
            "chimera_min_eigenvalue": [float(np.linalg.eigvalsh(G).min()) for G in chimeras],
            "epochs": marks, "losses": {k: [float(v[e]) for e in marks] for k, v in curves.items()},
            "epochs_to": {k: [first_below(k, th) for th in THRESHOLDS] for k in curves},
            "max_abs_log_ratio": {"C/A": log_ratio("C", "A"), "C/B": log_ratio("C", "B"), "D/B": log_ratio("D", "B"),
                                  "D/A": log_ratio("D", "A"), "B/A": log_ratio("B", "A")},
            "theory_vs_trainer_max_rel_dev": check}
