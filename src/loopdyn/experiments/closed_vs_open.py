r"""The closed-vs-open experiment (Ger & Barak 2025, Figs 1c and 2; spec §3.3, §6.6).

The same network trained in closed loop (phase `closed`: through the plant), then an open-loop student
(phase `open`) that starts from the same initial weights and imitates the closed run's final weights
(white-noise inputs, or the teacher's observations with `open_mode = "open_loop_teacher"`). Every run
carries its training loss, its closed-loop test loss and its effective gains $(k_1, k_2)$ per epoch
(spec §4.6, code sign convention $u = k_1 x + k_2 v$, stabilising gains negative).

- **Fig 1c** — one row per seed: the closed run (left) and the open run (right), each with its
  closed-loop test loss (left axis, colour) and its training loss (right axis, dashed black), log-log,
  the closed run's three stages shaded.
- **Fig 2** — one row per seed: (a) both test losses with the stage markers (silver: end of stage 1,
  gold: stabilisation) and the open run's peak; (b) both gain paths over the landscape
  $\log(\mathcal L/50)$ of static feedback, with the boundaries of the stability map and the LQR gain;
  (c) a zoom on stages 1 and 2 with $k_1 = 0$ and $k_2 = k_1$ drawn thick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis import UNSTABLE_OSCILLATORY, closed_open_pairs, closed_stages, rebound_peak, stability_region, store_config
from ..config import param
from ..errors import StoreError
from ..plots import figure_1c, figure_2, gain_path
from ._base import Experiment, Reproduce, register

OPEN_MODES = ("open_loop_noise", "open_loop_teacher")


@dataclass(frozen=True)
class ClosedVsOpenTable:
    """The table `[closed_vs_open]` (and `[closed_vs_open_seeds]`)."""

    open_mode: str = param("open_loop_noise", doc="train.mode of the open-loop student (phase `open`)",
                           choices=OPEN_MODES)


@register
class ClosedVsOpen(Experiment):
    name = "closed-vs-open"
    description = "closed loop, then an open-loop student of the final closed-loop network from the same initial weights"
    table = ClosedVsOpenTable
    figure_names = ("fig_1c", "fig_2")
    reproduce = Reproduce(
        "closed-vs-open", quick=("epochs=100",), quick_seeds="0", order=10,
        claims={"fig_1c": "Fig 1c / spec §5: two identical networks trained in closed and in open loop follow different "
                          "learning trajectories yet converge to the same solution: the open-loop student's training "
                          "loss falls monotonically while its closed-loop test loss first falls (to ≈644 at epoch 31), "
                          "then blows up (peak 5.1e5 at epoch 221), then collapses to the closed run's final ≈6.3; the "
                          "closed run's stages end at epochs 12 and 110.",
                "fig_2": "Fig 2 / spec §4.6, §5: in gain space the closed run moves along k2 ≈ 0 in stage 1 (to "
                         "≈(-0.020, 0) at epoch 24), zig-zags down at k1 ≈ -0.021 in stage 2, crosses k2 = k1 into the "
                         "stable triangle at stabilisation (epoch 110) and ends at (-0.365, -1.003), not at the LQR "
                         "gain; the open run wanders deep into the unstable oscillatory region and ends at the same "
                         "point (-0.340, -1.012)."})

    def validate(self, cfg) -> None:
        self.require_closed_first(cfg, "the open phase's mode is closed_vs_open.open_mode")

    def phases(self, cfg):
        open_cfg = self.variant(cfg, {"train.mode": cfg.table["open_mode"], "teacher.store": "self"}, sweep=dict(cfg.sweep))
        return [(cfg, "closed"), (open_cfg, "open")]

    def figures(self, ds) -> dict:
        if not ds.attrs.get("complete", False):
            raise StoreError("the closed-vs-open figures need a complete store (both phases); continue it with "
                             "'loopdyn train --resume STORE'")
        closed_open_pairs(ds)
        cfg = store_config(ds)
        if not cfg.plant.is_double_integrator:
            raise StoreError(f"Fig 2's gain space and stability map are those of the double integrator "
                             f"(A = [[1, 1], [0, 1]], B = [0, 1]^T); this store's plant is {cfg.plant.kind!r}")
        return {"fig_1c": figure_1c(ds), "fig_2": figure_2(ds)}

    def captions(self, ds) -> dict:
        one_c, two = [], []
        for seed, c, o in closed_open_pairs(ds):
            closed, open_ = ds.isel(run=c), ds.isel(run=o)
            st = closed_stages(closed)
            tc, to = closed.test_loss.values, open_.test_loss.values
            imit = open_.train_loss.values
            rises = int(np.sum(np.diff(imit[np.isfinite(imit)]) > 0))
            peak = rebound_peak(to)
            lo = int(np.nanargmin(to[: peak[0] + 1])) if peak else 0
            one_c.append(f"seed {seed}: closed test loss {tc[0]:.3g} -> {tc[-1]:.3g}, stages end at epochs "
                         f"{int(st.stage1_end)} and {int(st.stage2_end)} (gains; -1 = never); open imitation loss "
                         f"{imit[0]:.3g} -> {imit[-1]:.3g} (rises in {rises} of {imit.size - 1} epochs), its closed-loop "
                         f"test loss falls to {to[lo]:.3g} at epoch {lo}, peaks at {peak[1]:.3g} at epoch {peak[0]} "
                         f"({peak[2]:.3g}x) and ends at {to[-1]:.3g}" if peak else f"seed {seed}: no finite test loss")
            (c1, c2), (o1, o2) = gain_path(closed), gain_path(open_)
            osc = int(np.sum(stability_region(o1[np.isfinite(o1)], o2[np.isfinite(o2)]) == UNSTABLE_OSCILLATORY))
            two.append(f"seed {seed}: closed gains end at ({c1[-1]:.3f}, {c2[-1]:.3f}), open at ({o1[-1]:.3f}, "
                       f"{o2[-1]:.3f}) (distance {np.hypot(c1[-1] - o1[-1], c2[-1] - o2[-1]):.3g}); at the end of stage 1 "
                       f"the closed gains are ({c1[max(int(st.stage1_end), 0)]:.4f}, {c2[max(int(st.stage1_end), 0)]:.4f}); "
                       f"the open run spends {osc} epochs in the unstable oscillatory region")
        return {"fig_1c": "; ".join(one_c) + ".", "fig_2": "; ".join(two) + "."}
