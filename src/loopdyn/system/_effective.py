r"""The 4-D effective system of a rank-1 linear agent on the double integrator (spec §4.2, §4.4).

With $h_t = \kappa_{m,t}\, m + \kappa_{u,t}\, u$ the joint dynamics reduce to
$s_{t+1} = P_{\rm eff} s_t$, $s = (x, v, \kappa_m, \kappa_u)$ (see
:func:`loopdyn.system.effective_matrix`), whose characteristic polynomial is

$$\chi(\lambda) = \lambda\big[\lambda^3 - (\sigma_{vu}+2)\lambda^2 + (2\sigma_{vu} - \sigma_{zm} + 1)\lambda
+ (\sigma_{vu}\sigma_{zm} - \sigma_{vu} - \sigma_{vm}\sigma_{zu})\big].$$

The spectrum of the full joint matrix $P$ is the three roots of the cubic and $N - 1$ zeros.

Functions here accept NumPy or JAX arrays and answer in the same library (JAX inside `jit`,
`grad`, `vmap`; NumPy in float64 for host-side analysis of stored runs), except
:func:`cubic_roots` and :func:`effective_spectrum_discrepancy`, which are host-side NumPy.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._joint import array_namespace, spectrum, unstack_overlaps


def characteristic_cubic(sigma_zm, sigma_zu, sigma_vm, sigma_vu):
    r"""Coefficients of the cubic factor of $\chi(\lambda)$ (spec §4.2), highest power first.

    $$\big[1,\; -\sigma_{vu}-2,\; 2\sigma_{vu}-\sigma_{zm}+1,\;
    \sigma_{vu}\sigma_{zm}-\sigma_{vu}-\sigma_{vm}\sigma_{zu}\big]$$

    **Arguments:** the four overlaps, broadcastable arrays of any shape `S`.

    **Returns:** an array `S + (4,)`, same library as the inputs.
    """
    xp = array_namespace(sigma_zm, sigma_zu, sigma_vm, sigma_vu)
    szm, szu, svm, svu = xp.broadcast_arrays(*(xp.asarray(s) for s in (sigma_zm, sigma_zu, sigma_vm, sigma_vu)))
    return xp.stack(
        [xp.ones_like(szm), -svu - 2, 2 * svu - szm + 1, svu * szm - svu - svm * szu], axis=-1
    )


def cubic_roots(coeffs) -> np.ndarray:
    r"""Roots of batched cubics $a\lambda^3 + b\lambda^2 + c\lambda + d$ (host-side, float64).

    The roots are the eigenvalues of the companion matrices (what `np.roots` does), sorted like
    :func:`loopdyn.system.spectrum`: decreasing modulus, positive imaginary part first on ties.
    So `cubic_roots(...)[..., 0]` is the dominant root.

    **Arguments:** `coeffs`, shape `(..., 4)`, highest power first, $a \neq 0$.

    **Returns:** complex array `(..., 3)`.
    """
    c = np.asarray(coeffs, dtype=np.float64)
    if c.shape[-1] != 4:
        raise ValueError(f"cubic coefficients must have a last axis of size 4, got shape {c.shape}")
    monic = c[..., 1:] / c[..., :1]
    companion = np.zeros(c.shape[:-1] + (3, 3))
    companion[..., 0, :] = -monic
    companion[..., 1, 0] = companion[..., 2, 1] = 1.0
    return spectrum(companion)


def lambda3_perturbative(sigma_zm, sigma_zu, sigma_vm, sigma_vu):
    r"""First-order third eigenvalue (spec §4.4):

    $$\lambda_3 \approx \sigma_{vu} + \frac{\sigma_{vm}\sigma_{zu}}{\sigma_{vu}^2 - 2\sigma_{vu} - \sigma_{zm} + 1},$$

    the root of $(\lambda-\sigma_{vu})(\lambda^2-2\lambda+1-\sigma_{zm}) = \sigma_{vm}\sigma_{zu}$ near
    $\lambda = \sigma_{vu}$, to first order in $\sigma_{vm}\sigma_{zu}$.
    """
    return sigma_vu + sigma_vm * sigma_zu / (sigma_vu**2 - 2 * sigma_vu - sigma_zm + 1)


def dominant_modulus_sq_approx(sigma_zm, sigma_zu, sigma_vm, sigma_vu):
    r"""$|\lambda_1|^2 \approx c + b\lambda_3 + \lambda_3^2$ (spec §4.4) with $b = -\sigma_{vu}-2$,
    $c = 2\sigma_{vu}-\sigma_{zm}+1$ and $\lambda_3$ from :func:`lambda3_perturbative`.

    Dividing the cubic by $(\lambda - \lambda_3)$ leaves $\lambda^2 + (b+\lambda_3)\lambda
    + (c + b\lambda_3 + \lambda_3^2)$; the constant term is the product of the two remaining roots,
    i.e. $|\lambda_1|^2$ when they are a complex-conjugate pair.
    """
    lam3 = lambda3_perturbative(sigma_zm, sigma_zu, sigma_vm, sigma_vu)
    b = -sigma_vu - 2
    c = 2 * sigma_vu - sigma_zm + 1
    return c + b * lam3 + lam3**2


def effective_spectrum_discrepancy(overlaps, eigenvalues) -> np.ndarray:
    r"""How far the stored spectrum of $P$ is from the roots of the effective cubic (spec §9 item 3).

    Compares the three cubic roots with the three largest-modulus stored eigenvalues (the others
    are exact zeros of $P$ for a rank-1 agent with $g = 0$). Both triples are sorted by decreasing
    modulus; to be insensitive to near-ties in modulus, the pairing is the best of the 6
    permutations (it is the sorted pairing whenever the moduli are distinct).

    **Arguments:**
    - `overlaps`: dict keyed by :data:`OVERLAP_NAMES` (as :func:`loopdyn.system.overlaps` returns)
      or an array `(..., 4)` in that order.
    - `eigenvalues`: complex array `(..., n_eig)`, `n_eig >= 3`, e.g. the store's `eigenvalues`.

    **Returns:** float64 array `(...)`: $\max_i |\lambda_i^{\rm cubic} - \lambda_i^{\rm stored}|$.
    """
    sigma = tuple(np.asarray(s, dtype=np.float64) for s in unstack_overlaps(overlaps))
    roots = cubic_roots(characteristic_cubic(*sigma))
    stored = _largest_modulus(np.asarray(eigenvalues), 3)
    errors = [np.max(np.abs(roots[..., list(p)] - stored), axis=-1) for p in itertools.permutations(range(3))]
    return np.min(np.stack(errors, axis=-1), axis=-1)


def _largest_modulus(eigenvalues, n: int) -> np.ndarray:
    """The `n` largest-modulus eigenvalues (positive imaginary part first on ties), `(..., n)`."""
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    order = np.lexsort((-lam.imag, -np.round(np.abs(lam), 12)), axis=-1)
    return np.take_along_axis(lam, order, axis=-1)[..., :n]
