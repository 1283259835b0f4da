r"""The three stages of closed-loop learning, detected from recorded runs (spec §4.1, §4.3-4.6, §8 row 5).

- **Stage 1** (negative-position policy): the joint system diverges monotonically, the dominant
  eigenvalues are the real pair $1 \pm \sqrt{\sigma_{zm}}$, $\sigma_{zm} > 0$; it ends when the pair
  becomes complex ($\sigma_{zm} < 0$). In gain space: $k_1$ decreases along the $k_2 \approx 0$ axis.
- **Stage 2** (building a world model): the loss plateaus while the complex pair creeps towards the
  unit circle; it ends at the stabilisation epoch `ep_of_stab`.
- **Stage 3** (policy refinement): the joint system is stable for the rest of the run.

All detectors here are host-side NumPy, vectorised over any leading (run, seed, ...) axes with the
epoch axis last but one for spectra `(..., epoch, eig)` and last for scalar series `(..., epoch)`.
Spectra are expected as the store holds them: sorted by decreasing modulus. "None" is always `-1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


NONE = -1


@dataclass(frozen=True)
class Stages:
    """Stage boundaries of one run (ints) or of a batch of runs (int arrays of equal shape).

    Stage 1 is the epochs `[0, stage1_end)`, stage 2 `[stage1_end, stage2_end)`, stage 3
    `[stage2_end, end)`. `stage1_end = 0` means there is no stage 1 (the run starts on the plateau);
    `stage1_end = -1` means stage 1 never ended; `stage2_end = -1` means the run never stabilised
    for good, so there is no stage 3. Whenever both are set, `stage1_end <= stage2_end`.
    """

    stage1_end: int | np.ndarray
    stage2_end: int | np.ndarray

    def spans(self, n_epochs: int) -> dict[int, tuple[int, int]]:
        """Half-open epoch ranges `{stage: (start, stop)}` of a single run, empty stages left out."""
        s1, s2 = int(self.stage1_end), int(self.stage2_end)
        if s1 == NONE:
            return {1: (0, n_epochs)}
        stop2 = n_epochs if s2 == NONE else s2
        spans = {1: (0, s1), 2: (s1, stop2), 3: (stop2, n_epochs)}
        return {k: v for k, v in spans.items() if v[1] > v[0]}


def _as_result(a: np.ndarray):
    return int(a) if np.ndim(a) == 0 else a.astype(np.int64)


def _settled_epoch(ok) -> np.ndarray:
    """First index `e` along the last axis with `ok[e:]` all true; -1 if `ok[-1]` is false."""
    ok = np.asarray(ok, dtype=bool)
    bad_from_here = np.flip(np.cumsum(np.flip(~ok, -1), -1), -1)  # number of False at index >= e
    settled = bad_from_here == 0
    first = np.argmax(settled, axis=-1)
    return np.where(settled[..., -1], first, NONE)


def _first_true(mask) -> np.ndarray:
    """First index along the last axis where `mask` is true; -1 if never."""
    mask = np.asarray(mask, dtype=bool)
    return np.where(mask.any(-1), np.argmax(mask, axis=-1), NONE)


def stabilisation_epoch(rho):
    r"""`ep_of_stab` (spec §4.1): the first epoch $e$ with $\rho(P_{e'}) < 1$ for every $e' \geq e$.

    **Arguments:** `rho`: spectral radii, shape `(..., epoch)`. NaN (a diverged run) counts as unstable.

    **Returns:** int (or int array `(...)`); `-1` if the last epoch is unstable (the reference's
    fallback `num_epochs + 1`, spec §8 row 19, is `-1` here).
    """
    return _as_result(_settled_epoch(np.asarray(rho) < 1))


def _pair_indices(lam: np.ndarray, imag_tol: float):
    mod = np.abs(lam)
    is_complex = np.abs(lam.imag) > imag_tol
    # Largest-modulus eigenvalue with positive imaginary part, and its conjugate partner.
    upper = np.where(is_complex & (lam.imag > 0), mod, -np.inf)
    i_up = np.argmax(upper, axis=-1)
    has_pair = np.take_along_axis(upper, i_up[..., None], -1)[..., 0] > -np.inf
    partner = np.abs(lam - np.conj(np.take_along_axis(lam, i_up[..., None], -1)))
    i_conj = np.argmin(np.where(lam.imag < 0, partner, np.inf), axis=-1)
    # Without a complex pair: the two largest-modulus eigenvalues.
    order = np.argsort(-mod, axis=-1, kind="stable")
    i1 = np.where(has_pair, i_up, order[..., 0])
    i2 = np.where(has_pair, i_conj, order[..., 1])
    return i1, i2, has_pair


def dominant_pair(eigenvalues, imag_tol: float = 1e-6) -> np.ndarray:
    r"""The pair $(\lambda_1, \lambda_2)$ born from the double eigenvalue at 1 (spec §4.3-4.5).

    If the spectrum holds a complex-conjugate pair ($|\operatorname{Im}\lambda| >$ `imag_tol`), the
    one of largest modulus, positive imaginary part first; otherwise the two eigenvalues of largest
    modulus. This follows the pair in every stage, also late in stage 3 when the real $\lambda_3$
    has outgrown it in modulus.

    **Arguments:** `eigenvalues` `(..., eig)`, `eig >= 3`; `imag_tol`: imaginary parts below it are
    numerical noise (e.g. of the $N-1$-fold zero eigenvalue of $P$).

    **Returns:** complex array `(..., 2)`.
    """
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    i1, i2, _ = _pair_indices(lam, imag_tol)
    return np.stack([np.take_along_axis(lam, i[..., None], -1)[..., 0] for i in (i1, i2)], axis=-1)


def third_eigenvalue(eigenvalues, imag_tol: float = 1e-6) -> np.ndarray:
    r"""$\lambda_3$: the largest-modulus eigenvalue outside :func:`dominant_pair` (spec §4.4-4.5).

    **Returns:** complex array `(...)` (real up to rounding for the rank-1 model).
    """
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    i1, i2, _ = _pair_indices(lam, imag_tol)
    idx = np.arange(lam.shape[-1])
    rest = (idx != i1[..., None]) & (idx != i2[..., None])
    i3 = np.argmax(np.where(rest, np.abs(lam), -np.inf), axis=-1)
    return np.take_along_axis(lam, i3[..., None], -1)[..., 0]


def detect_stages_linear(eigenvalues, imag_tol: float = 1e-6) -> Stages:
    r"""Stage boundaries of a linear run from its joint spectra over epochs (spec §8 row 5).

    - `stage1_end`: the first epoch at which :func:`dominant_pair` is complex — the real pair
      $1 \pm \sqrt{\sigma_{zm}}$ has merged at 1 and split into $1 \pm i\sqrt{|\sigma_{zm}|}$. A run that
      starts complex ($\sigma_{zm}(0) < 0$) has no stage 1: `0`. If the pair never becomes complex,
      `-1`; stage 1 (an unstable phase) cannot outlast stabilisation, so it is capped at `stage2_end`.
    - `stage2_end`: :func:`stabilisation_epoch` of the spectral radius; `-1` (no stage 3) if never.

    **Arguments:** `eigenvalues` `(..., epoch, eig)`, e.g. the store's `eigenvalues` variable.

    **Returns:** :class:`Stages`.
    """
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    pair = dominant_pair(lam, imag_tol)
    s1 = _first_true(np.abs(pair[..., 0].imag) > imag_tol)
    s2 = _settled_epoch(np.max(np.abs(lam), axis=-1) < 1)
    s1 = np.where((s2 != NONE) & ((s1 == NONE) | (s1 > s2)), s2, s1)
    return Stages(_as_result(s1), _as_result(s2))


def detect_stages_gains(k1, k2, tol: float = 1.0, window: int = 4) -> Stages:
    r"""Stage boundaries of a (nonlinear) run from its effective-gain path $(k_1, k_2)$ (spec §4.6, Fig 2).

    In stage 1 the gains move along the $k_2 \approx 0$ axis towards negative $k_1$ at the speed of
    the clipped gradient; in stage 2 they turn and creep down in $k_2$ at nearly constant $k_1$
    (zig-zagging); stage 2 ends when they enter the stable triangle for good. Precisely, with the
    displacement over `window` epochs $\Delta(e) = (k_1, k_2)(e + w) - (k_1, k_2)(e)$, epoch $e$
    *moves along the axis* when

    $$\Delta k_1(e) < 0 \quad\text{and}\quad |\Delta k_2(e)| \leq \mathrm{tol}\,|\Delta k_1(e)| .$$

    - `stage1_end`: the first epoch after the first along-the-axis epoch (the *onset*; it skips the
      initial transient in which $k_2$ relaxes to 0) that no longer moves along the axis. This is the
      turn of the path; it is independent of the path's scale, and an even `window` averages out the
      period-2 zig-zag. `0` if the path never moves along the axis (it starts on the plateau, as a
      linear run with $\sigma_{zm}(0) < 0$), `-1` if it still does at the end, capped at `stage2_end`.
    - `stage2_end`: the first epoch from which :func:`stability_region` is `2` (stable) for the rest
      of the run, i.e. the gains have crossed the diagonal $k_2 = k_1$; `-1` if never.

    In the reference nonlinear run (spec §5 Fig 2) the turn is at epoch ≈24 and stabilisation at 110;
    the result does not change for any `tol` between ≈0.1 and ≈10, since stage-1 motion is almost pure
    $k_1$ and stage-2 motion almost pure $k_2$.

    **Arguments:** `k1`, `k2`: gain paths `(..., epoch)`; `tol`: cone half-width (tan of the angle)
    around the $-k_1$ direction; `window`: epochs per displacement (≥ 1).

    **Returns:** :class:`Stages`.
    """
    if window < 1:
        raise ValueError(f"window = {window} must be >= 1")
    k1, k2 = np.broadcast_arrays(np.asarray(k1, dtype=np.float64), np.asarray(k2, dtype=np.float64))
    if k1.shape[-1] <= window:
        raise ValueError(f"need more than window = {window} epochs, got {k1.shape[-1]}")
    from ._gains import STABLE, stability_region  # JAX: imported here, so that the stage detectors load without it

    s2 = _settled_epoch(stability_region(k1, k2) == STABLE)
    d1 = k1[..., window:] - k1[..., :-window]
    d2 = k2[..., window:] - k2[..., :-window]
    along = (d1 < 0) & (np.abs(d2) <= tol * np.abs(d1))
    onset = _first_true(along)
    idx = np.arange(along.shape[-1])
    turned = ~along & (idx > onset[..., None])
    s1 = np.where(onset == NONE, 0, _first_true(turned & (onset[..., None] != NONE)))
    s1 = np.where((s2 != NONE) & ((s1 == NONE) | (s1 > s2)), s2, s1)
    return Stages(_as_result(s1), _as_result(s2))
