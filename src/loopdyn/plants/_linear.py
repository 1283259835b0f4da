"""The linear plants loopdyn ships (spec §1.1-1.2), each a part written as a user would write one.

Arrays use row-vector batches: a state batch `x` has shape `(batch, k)`, controls `(batch, m)`,
observations `(batch, c)`; the maths in the docstrings is column-vector, `x' = A x + B u + w`.
"""

from __future__ import annotations

import numpy as np

from ..config import POSITIVE, InvalidParameter, param
from ._base import LinearPlant


class DoubleIntegrator(LinearPlant):
    """Position and velocity, dt = 1, position observed only: `A = [[1,1],[0,1]]`, `B = e_2`, `C = e_1^T` (spec §1.1)."""

    dt: float = param(1.0, doc="plant time step (the double integrator of the paper has dt = 1)",
                      check=("= 1 (use kind = 'integrator' for another dt)", lambda v: v == 1.0))

    def matrices(self):
        return _integrator(2, 1.0, 1, 1)


class Integrator(LinearPlant):
    """The k-th order integrator of spec §1.1: `A = I + dt·J` (J the superdiagonal), the last `min(k, m)`
    states driven with gain `dt`, the first `c` states observed."""

    order: int = param(2, doc="integrator order k", check=POSITIVE)
    n_inputs: int = param(1, doc="number of control inputs m", check=POSITIVE, key="n_controls")
    n_outputs: int = param(1, doc="number of observed state coordinates c (the first c)", check=POSITIVE,
                           key="n_observed")

    def check(self, cfg) -> None:
        if self.n_outputs > self.order:
            raise InvalidParameter("plant.n_observed", f"= {self.n_outputs} must be <= plant.order = {self.order}")

    def matrices(self):
        return _integrator(self.order, self.dt, self.n_inputs, self.n_outputs)


class PointMass2D(LinearPlant):
    """2-D point mass, state `(x, v_x, y, v_y)`, controls `(a_x, a_y)` (spec §1.2); `n_outputs = 2` observes the
    positions, 4 the full state."""

    dt: float = param(0.1, doc="plant time step (s)", check=POSITIVE)
    n_outputs: int = param(2, doc="2: the positions (x, y) are observed; 4: the full state", choices=(2, 4),
                           key="n_observed")

    positions = (0, 2)  # the state coordinates of the positions (what a tracking task compares to its reference)

    def matrices(self):
        dt = self.dt
        A = np.kron(np.eye(2), np.array([[1.0, dt], [0.0, 1.0]]))
        B = np.zeros((4, 2))
        B[1, 0] = B[3, 1] = dt
        C = np.eye(4)[[0, 2]] if self.n_outputs == 2 else np.eye(4)
        return A, B, C


class Linear(LinearPlant):
    r"""Any linear plant given by its matrices: $x' = A x + B u + w$, $y = C x$ (keys `A`, `B`, `C` of the
    `[plant]` table; in Python :func:`linear`)."""

    A_: tuple[tuple[float, ...], ...] = param(((1.0,),), doc="state matrix A (k x k, rows)", key="A")
    B_: tuple[tuple[float, ...], ...] = param(((1.0,),), doc="input matrix B (k x m, rows)", key="B")
    C_: tuple[tuple[float, ...], ...] = param(((1.0,),), doc="observation matrix C (c x k, rows)", key="C")

    def matrices(self):
        return np.asarray(self.A_, float), np.asarray(self.B_, float), np.asarray(self.C_, float)

    def check(self, cfg) -> None:
        A, B, C = self.matrices()
        k = A.shape[0]
        if A.shape != (k, k):
            raise InvalidParameter("plant.A", f"is {A.shape[0]} x {A.shape[1]}; A must be square (states x states)")
        if B.shape[0] != k:
            raise InvalidParameter("plant.B", f"has {B.shape[0]} rows; B must have one row per state ({k})")
        if C.shape[1] != k:
            raise InvalidParameter("plant.C", f"has {C.shape[1]} columns; C must have one column per state ({k})")


def _integrator(k: int, dt: float, m: int, c: int):
    A = np.eye(k) + dt * np.eye(k, k=1)
    B = np.zeros((k, m))
    for i in range(1, min(k, m) + 1):
        B[k - i, m - i] = dt
    return A, B, np.eye(c, k)


def integrator(order: int = 2, dt: float = 1.0, n_controls: int = 1, n_observed: int = 1,
               noise: float = 0.0, clamp: float = 0.0) -> Integrator:
    """An :class:`Integrator` (spec §1.1)."""
    return Integrator(dt=float(dt), noise=float(noise), clamp=float(clamp), order=order, n_inputs=n_controls,
                      n_outputs=n_observed)


def double_integrator(noise: float = 0.0, clamp: float = 0.0) -> DoubleIntegrator:
    """The :class:`DoubleIntegrator` (spec §1.1)."""
    return DoubleIntegrator(noise=float(noise), clamp=float(clamp))


def point_mass_2d(dt: float = 0.1, n_observed: int = 2, noise: float = 0.0, clamp: float = 0.0) -> PointMass2D:
    """The :class:`PointMass2D` (spec §1.2)."""
    return PointMass2D(dt=float(dt), noise=float(noise), clamp=float(clamp), n_outputs=n_observed)


def linear(A, B, C, dt: float = 1.0, noise: float = 0.0, clamp: float = 0.0) -> Linear:
    """A :class:`Linear` plant from arrays."""
    def rows(M):
        return tuple(tuple(float(v) for v in r) for r in np.atleast_2d(np.asarray(M, float)))

    return Linear(dt=float(dt), noise=float(noise), clamp=float(clamp), A_=rows(A), B_=rows(B), C_=rows(C))
