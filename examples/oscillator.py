r"""A user's plant: a damped linear oscillator, given by its matrices A, B, C (loopdyn `LinearPlant`).

$$\ddot q = -\omega^2 q - 2\zeta\omega\,\dot q + u,$$

state $x = (q, \dot q)$, control $u$ (an acceleration), observed position $y = q$; discretised exactly
(zero-order hold on $u$ over a step `dt`, via the matrix exponential). Because it declares itself linear
(it derives from `LinearPlant` and gives `matrices()`), loopdyn records the joint matrix P of the loop
and its spectrum every epoch, as for the double integrator.

Use it in a configuration (with this folder's parent on `PYTHONPATH`):

    [plant]
    kind = "examples.oscillator:DampedOscillator"
    omega = 0.5
    zeta = 0.05
"""

import numpy as np
from scipy.linalg import expm

from loopdyn.config import NON_NEGATIVE, POSITIVE, param
from loopdyn.plants import LinearPlant


class DampedOscillator(LinearPlant):
    """A damped oscillator $\\ddot q = -\\omega^2 q - 2\\zeta\\omega \\dot q + u$, position observed."""

    omega: float = param(0.5, doc="natural frequency omega (rad per unit time)", check=POSITIVE)
    zeta: float = param(0.05, doc="damping ratio zeta", check=NON_NEGATIVE)

    def matrices(self):
        Ac = np.array([[0.0, 1.0], [-self.omega**2, -2 * self.zeta * self.omega]])
        Bc = np.array([[0.0], [1.0]])
        # zero-order hold: expm([[Ac, Bc], [0, 0]] dt) = [[A, B], [0, I]]
        M = expm(np.block([[Ac, Bc], [np.zeros((1, 3))]]) * self.dt)
        return M[:2, :2], M[:2, 2:], np.array([[1.0, 0.0]])
