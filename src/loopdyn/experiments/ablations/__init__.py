r"""The paper's ablations as experiments with statistics over seeds (Ger & Barak 2025; spec §6).

The paper shows single runs. Each experiment here trains one protocol under several *conditions* — one
training phase per condition, so the store's `phase` coordinate is the condition's label — over many
seeds (64 in the shipped configs), and reports per condition the median and interquartile range (IQR)
over seeds of: the end of stage 1, the end of stage 2 (= stabilisation, spec §8 row 5), the stabilisation
epoch $\rho < 1$ for good, the final training and test losses and the final effective gains $(k_1, k_2)$
(spec §4.6, $u = k_1 x + k_2 v$, stabilising gains negative), plus the experiment's own numbers:

- `ablation-T` (spec §6.2, Fig 4e): every seed's epoch-`start_epoch` model (phase `base`, T = 50) trained
  on with each episode length T; the dominant eigenvalue $\lambda_1$ moves up the imaginary axis for short
  T and down for long T (`imag_change`).
- `ablation-optimizer` (spec §6.3): SGD vs Adam from the same initial weights; the stage-2 zig-zag
  (`zigzag_imag`, `zigzag_k1`, `zigzag_k2`, :func:`zigzag`).
- `ablation-activation` (spec §6.1): the rank-1 network with $\phi$ linear vs tanh, all else equal; stage
  boundaries from the spectra of P (linear) or the gains (tanh), and for both from the gains
  (`gain_stage1_end`, `gain_stage2_end`) so that the two can be compared with one detector.
- `ablation-time` (spec §6.4): the discrete model against the leaky RNN on the continuous-time
  double integrator with dt = dt/τ = `dt`, episodes of the same duration (T/dt steps).
- `ablation-beta` (spec §6.5, Fig 5d): control penalties β, from scratch.
- `closed-vs-open-seeds` (spec §6.6, Figs 1c, 2): the closed-vs-open experiment over seeds; the open-loop
  student's peak closed-loop test loss and its epoch (`peak_test_loss`, `peak_epoch`).

Statistics: :mod:`loopdyn.analysis` (:func:`~loopdyn.analysis.spread` and the per-run metrics); panels:
:mod:`loopdyn.plots`; one module per ablation in this package, :class:`Ablation` their base class.
"""

from ._ablation import Ablation as Ablation
from ._ablation import ablation_numbers as ablation_numbers
from ._ablation import in_memory as in_memory
from .activation import Activation as Activation
from .closed_vs_open_seeds import ClosedVsOpenSeeds as ClosedVsOpenSeeds
from .control_penalty import ControlPenalty as ControlPenalty
from .episode_length import EpisodeLength as EpisodeLength
from .optimizer import Optimizer as Optimizer
from .time_step import TimeStep as TimeStep
from ...analysis import rebound_peak as rebound_peak  # statistics live in loopdyn.analysis; kept for old imports
from ...analysis import spread as spread
from ...analysis import store_statistics as store_statistics
from ...analysis import zigzag as zigzag
