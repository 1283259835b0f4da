r"""Acquisition and interference in per-component learning curves (Ger & Barak 2025, Fig 6; spec §4.7).

Pure functions of curves `(epoch, component)` — e.g. the tracking task's per-frequency probe losses.

- **Acquisition epoch** of component $j$: the first epoch $e$ at which the trailing mean of its curve over
  `window` epochs, $\frac1w\sum_{e-w < e' \le e} c_j(e')$, is below its threshold (`-1`: never). With the
  tracking task's thresholds $0.375\,a_j^2/2$ (a fraction of the probe loss of a controller that holds the
  mass still, $a_j^2/2$ up to the ramp) and $w = 20$ this is the authors' "first epoch with the 20-epoch
  smoothed probe loss below 1.0" for $a_j = 2.31$.
- **Interference** of a later acquisition $j$ on an acquired component $i$ ($a_i < a_j$): the largest rise
  of $c_i$ above its value at the start of the window $[\max(a_j - w, a_i), a_j + w]$ around $a_j$
  (`window` $w$), with the epoch of that maximum; NaN where $i$ is not acquired before $j$.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NEVER = -1


def trailing_mean(curves, window: int) -> np.ndarray:
    """Mean over the last `window` epochs (inclusive) along axis 0; NaN for the first `window - 1` epochs."""
    c = np.asarray(curves, np.float64)
    csum = np.cumsum(np.concatenate([np.zeros((1,) + c.shape[1:]), c]), axis=0)
    out = np.full(c.shape, np.nan)
    if c.shape[0] >= window:
        out[window - 1:] = (csum[window:] - csum[:-window]) / window
    return out


def acquisition_epochs(curves, thresholds, window: int = 20) -> np.ndarray:
    """First epoch at which each component's trailing `window`-epoch mean is below its threshold.

    **Arguments:** `curves (epoch, K)`, `thresholds (K,)` (or a scalar); `window >= 1`.
    **Returns:** `(K,)` int64, `-1` where never.
    """
    smooth = trailing_mean(curves, window)
    below = smooth < np.broadcast_to(np.asarray(thresholds, np.float64), smooth.shape[1:])
    first = np.argmax(below, axis=0)
    return np.where(below.any(axis=0), first, NEVER).astype(np.int64)


class Interference(NamedTuple):
    """`rise[i, j]`: largest rise of curve `i` around the acquisition of `j` (NaN where undefined);
    `epoch[i, j]`: where it peaks (-1); `baseline[i, j]`: the value it rises from."""

    rise: np.ndarray
    epoch: np.ndarray
    baseline: np.ndarray


def interference(curves, acquisitions, window: int = 100) -> Interference:
    """Interference of each later acquisition on the components acquired before it (module docstring).

    **Arguments:** `curves (epoch, K)`, `acquisitions (K,)` (`-1` = never), `window` (epochs each side).
    """
    c = np.asarray(curves, np.float64)
    acq = np.asarray(acquisitions)
    E, K = c.shape
    rise, base = np.full((K, K), np.nan), np.full((K, K), np.nan)
    at = np.full((K, K), NEVER, np.int64)
    for j in range(K):
        if acq[j] < 0:
            continue
        for i in range(K):
            if i == j or acq[i] < 0 or acq[i] >= acq[j]:
                continue
            lo, hi = max(acq[j] - window, acq[i]), min(acq[j] + window, E - 1)
            seg = c[lo: hi + 1, i]
            if not np.any(np.isfinite(seg)):
                continue
            k = int(np.nanargmax(seg))
            base[i, j], rise[i, j], at[i, j] = seg[0], seg[k] - seg[0], lo + k
    return Interference(rise, at, base)
