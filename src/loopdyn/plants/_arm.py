r"""A planar two-link arm (shoulder and elbow) in the horizontal plane, driven by joint torques.

The rigid-body equations of the motor-control literature (Li & Todorov 2004; the arms of MotorNet and
Feedbax) with joint angles $q = (q_1, q_2)$ (shoulder from the x-axis, elbow relative to the upper arm, rad):

$$M(q)\,\ddot q + c(q, \dot q) + B_v\,\dot q = \operatorname{sat}(\tau),$$

$$M(q) = \begin{pmatrix} a_1 + 2a_2\cos q_2 & a_3 + a_2\cos q_2 \\ a_3 + a_2\cos q_2 & a_3\end{pmatrix},\quad
c(q, \dot q) = a_2 \sin q_2 \begin{pmatrix} -\dot q_2 (2\dot q_1 + \dot q_2) \\ \dot q_1^2\end{pmatrix},$$

$a_1 = I_1 + I_2 + m_1 s_1^2 + m_2(l_1^2 + s_2^2)$, $a_2 = m_2 l_1 s_2$, $a_3 = I_2 + m_2 s_2^2$, with link masses
$m_i$, lengths $l_i$, centre-of-mass distances $s_i$ from the proximal joint and moments of inertia $I_i$ about
the centres of mass; $B_v$ the (symmetric, positive semi-definite) joint viscosity matrix, $\tau$ the two
torques (N m), clipped to $\pm\tau_{\max}$ when `max_torque > 0`. No gravity acts in the horizontal plane.

State: the deviation from a resting posture $q^*$ (`rest_shoulder`, `rest_elbow`), $x = (q - q^*, \dot q)$,
so $f(0, 0) = 0$ for every posture. Observed (`observed`): the joint-angle deviations `"angles"` (default),
the hand's displacement from its resting position `"hand"`, $p(q) - p(q^*)$ with $p(q) = (l_1\cos q_1 +
l_2\cos(q_1+q_2),\; l_1\sin q_1 + l_2\sin(q_1+q_2))$ (m), or the full state `"state"`. Without viscosity
and torque the kinetic energy $\tfrac12\dot q^\top M(q)\dot q$ is conserved. Linearised at the origin:
$A_c = \begin{pmatrix} 0 & I \\ 0 & -M(q^*)^{-1}B_v\end{pmatrix}$, $B_c = \begin{pmatrix} 0 \\ M(q^*)^{-1}\end{pmatrix}$.

One step of `dt` is one RK4 step with the torques held (:mod:`loopdyn.plants._rk4`). Defaults: the arm of
Li & Todorov (2004) (masses 1.4 and 1 kg, lengths 0.30 and 0.33 m, centres of mass at 0.11 and 0.16 m,
inertias 0.025 and 0.045 kg m^2 — taken here about the centres of mass — and their viscosity matrix
[[0.05, 0.025], [0.025, 0.05]] N m s), at rest with the shoulder at 45 deg and the elbow at 90 deg.

    [plant]
    kind = "two_link_arm"
    dt = 0.01
    observed = "hand"
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..config import NON_NEGATIVE, POSITIVE, InvalidParameter, param
from ._rk4 import RK4Plant, second_order_tangent


class TwoLinkArm(RK4Plant):
    """The planar two-link arm of the module docstring (RK4 steps of `dt`)."""

    dt: float = param(0.01, doc="time step of one RK4 step (s)", check=POSITIVE)
    mass1: float = param(1.4, doc="upper-arm mass m_1 (kg)", check=POSITIVE)
    mass2: float = param(1.0, doc="forearm mass m_2 (kg)", check=POSITIVE)
    length1: float = param(0.30, doc="upper-arm length l_1 (m)", check=POSITIVE)
    length2: float = param(0.33, doc="forearm length l_2, elbow to hand (m)", check=POSITIVE)
    com1: float = param(0.11, doc="shoulder to the upper arm's centre of mass s_1 (m)", check=POSITIVE)
    com2: float = param(0.16, doc="elbow to the forearm's centre of mass s_2 (m)", check=POSITIVE)
    inertia1: float = param(0.025, doc="upper arm's moment of inertia about its centre of mass I_1 (kg m^2)",
                            check=NON_NEGATIVE)
    inertia2: float = param(0.045, doc="forearm's moment of inertia about its centre of mass I_2 (kg m^2)",
                            check=NON_NEGATIVE)
    viscosity_shoulder: float = param(0.05, doc="joint viscosity B_v[0, 0] (N m s)", check=NON_NEGATIVE)
    viscosity_elbow: float = param(0.05, doc="joint viscosity B_v[1, 1] (N m s)", check=NON_NEGATIVE)
    viscosity_coupling: float = param(0.025, doc="joint viscosity B_v[0, 1] = B_v[1, 0] (N m s)")
    rest_shoulder: float = param(math.pi / 4, doc="shoulder angle q*_1 of the resting posture (rad)")
    rest_elbow: float = param(math.pi / 2, doc="elbow angle q*_2 of the resting posture (rad)")
    max_torque: float = param(0.0, doc="torque limit tau_max (N m) on each joint; 0 = none", check=NON_NEGATIVE)
    shoulder_limits: tuple[float, ...] = param((-math.pi / 2, math.pi), doc="valid range [min, max] of the absolute "
                                               "shoulder angle q_1 (rad); leaving it is recorded, not prevented")
    elbow_limits: tuple[float, ...] = param((0.0, math.pi), doc="valid range [min, max] of the absolute elbow angle "
                                            "q_2 (rad): straight to fully folded")
    observed: str = param("angles", doc="what the agent sees: joint-angle deviations, hand displacement, or the state",
                          choices=("angles", "hand", "state"))

    def check(self, cfg) -> None:
        for i, (s, l) in enumerate(((self.com1, self.length1), (self.com2, self.length2)), start=1):
            if s > l:
                raise InvalidParameter(f"plant.com{i}", f"= {s:g} must be <= plant.length{i} = {l:g} (the centre of "
                                       "mass lies on the link)")
        for name in ("shoulder_limits", "elbow_limits"):
            lim = tuple(getattr(self, name))
            if len(lim) != 2 or not lim[0] < lim[1]:
                raise InvalidParameter(f"plant.{name}", f"= {list(lim)!r} must be [min, max] with min < max (rad)")
        rest = {"shoulder_limits": self.rest_shoulder, "elbow_limits": self.rest_elbow}
        for name, q in rest.items():
            lo, hi = getattr(self, name)
            if not lo <= q <= hi:
                raise InvalidParameter(f"plant.{name}", f"= [{lo:g}, {hi:g}] excludes the resting posture {q:g} rad; "
                                       f"widen it or move plant.rest_{name.split('_')[0]}")
        b11, b22, b12 = self.viscosity_shoulder, self.viscosity_elbow, self.viscosity_coupling
        if b12 * b12 > b11 * b22:
            raise InvalidParameter("plant.viscosity_coupling", f"= {b12:g} makes the viscosity matrix indefinite (it "
                                   f"would feed energy in): need |coupling| <= sqrt(shoulder * elbow) = "
                                   f"{math.sqrt(b11 * b22):.4g}")
        super().check(cfg)

    @property
    def n_states(self) -> int:
        return 4

    @property
    def n_controls(self) -> int:
        return 2

    @property
    def n_observed(self) -> int:
        return 4 if self.observed == "state" else 2

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """$(a_1, a_2, a_3)$ of the inertia matrix (module docstring)."""
        m1, m2, l1, s1, s2 = self.mass1, self.mass2, self.length1, self.com1, self.com2
        a1 = self.inertia1 + self.inertia2 + m1 * s1**2 + m2 * (l1**2 + s2**2)
        return a1, m2 * l1 * s2, self.inertia2 + m2 * s2**2

    def inertia(self, q):
        r"""$M(q)$ of a batch of joint angles `(B, 2)` (absolute, not deviations) -> `(B, 2, 2)`."""
        a1, a2, a3 = self.coefficients
        c2 = jnp.cos(q[..., 1])
        m11, m12 = a1 + 2 * a2 * c2, a3 + a2 * c2
        m22 = jnp.full_like(c2, a3)
        return jnp.stack([jnp.stack([m11, m12], -1), jnp.stack([m12, m22], -1)], -2)

    def _field(self, x, u):
        """The vector field (elementwise throughout, no 2 x 2 matmul or solve; the dynamics depend on the elbow
        angle alone) and the intermediates its derivative reuses."""
        c2, s2 = jnp.cos(x[..., 1] + self.rest_elbow), jnp.sin(x[..., 1] + self.rest_elbow)
        w1, w2 = x[..., 2], x[..., 3]
        tau = jnp.clip(u, -self.max_torque, self.max_torque) if self.max_torque > 0 else u
        a1, a2, a3 = self.coefficients
        b11, b22, b12 = self.viscosity_shoulder, self.viscosity_elbow, self.viscosity_coupling
        h = a2 * s2  # Coriolis and centripetal terms c(q, dq)
        r1 = tau[..., 0] + h * w2 * (2 * w1 + w2) - (b11 * w1 + b12 * w2)
        r2 = tau[..., 1] - h * w1 * w1 - (b12 * w1 + b22 * w2)
        m11, m12 = a1 + 2 * a2 * c2, a3 + a2 * c2
        # M(q) ddq = r in closed form: det M = a3 m11 - m12^2 = a1 a3 - a3^2 - (a2 cos q2)^2 > 0
        inv = 1.0 / ((a1 * a3 - a3 * a3) - (a2 * c2) ** 2)
        na, nb = a3 * r1 - m12 * r2, m11 * r2 - m12 * r1
        field = jnp.stack([w1, w2, na * inv, nb * inv], axis=-1)
        return field, (c2, s2, w1, w2, h, r1, r2, m11, m12, inv, na, nb)

    def vector_field(self, x, u):
        return self._field(x, u)[0]

    def vector_field_jvp(self, x, u, dx, du):
        r"""The field and its derivative by hand (the accelerations' rows of $\partial F/\partial(x, \tau)$,
        from $\ddot q = M^{-1} r$: $\partial\ddot q = M^{-1}(\partial r - \partial M\,\ddot q)$ written on the
        closed-form inverse), the tangent one product with those rows (:mod:`loopdyn.plants._rk4`)."""
        field, (c2, s2, w1, w2, h, r1, r2, m11, m12, inv, na, nb) = self._field(x, u)
        a1, a2, a3 = self.coefficients
        b11, b22, b12 = self.viscosity_shoulder, self.viscosity_elbow, self.viscosity_coupling
        zero, one = jnp.zeros_like(c2), jnp.ones_like(c2)
        # partial derivatives of r1, r2 in (q1, q2, dq1, dq2, tau1, tau2); tau = sat(u) passes 1 inside the limit
        t1, t2 = one, one
        if self.max_torque > 0:
            inside = (jnp.abs(u) < self.max_torque).astype(c2.dtype)
            t1, t2 = inside[..., 0], inside[..., 1]
        dr1 = (zero, a2 * c2 * w2 * (2 * w1 + w2), 2 * h * w2 - b11, 2 * h * (w1 + w2) - b12, t1, zero)
        dr2 = (zero, -a2 * c2 * w1 * w1, -2 * h * w1 - b12, zero - b22, zero, t2)
        d_acc1 = [(a3 * p - m12 * q) * inv for p, q in zip(dr1, dr2)]
        d_acc2 = [(m11 * q - m12 * p) * inv for p, q in zip(dr1, dr2)]
        # the elbow angle also moves M: dm11 = -2 a2 sin q2, dm12 = -a2 sin q2, d(1/det) = -2 a2^2 cos sin / det^2
        dinv = -2 * a2 * a2 * c2 * s2 * inv * inv
        d_acc1[1] = d_acc1[1] + a2 * s2 * r2 * inv + na * dinv
        d_acc2[1] = d_acc2[1] + a2 * s2 * (r1 - 2 * r2) * inv + nb * dinv
        rows = jnp.stack([jnp.stack(d_acc1, -1), jnp.stack(d_acc2, -1)], -2)  # (B, 2, 6)
        return field, second_order_tangent(rows, dx, du)

    def hand(self, q):
        r"""Hand position $p(q)$ (m) of a batch of absolute joint angles `(B, 2)` -> `(B, 2)`."""
        l1, l2 = self.length1, self.length2
        q12 = q[..., 0] + q[..., 1]
        return jnp.stack([l1 * jnp.cos(q[..., 0]) + l2 * jnp.cos(q12), l1 * jnp.sin(q[..., 0]) + l2 * jnp.sin(q12)], -1)

    def observe(self, x):
        if self.observed == "state":
            return x
        if self.observed == "angles":
            return x[..., :2]
        rest = jnp.asarray([self.rest_shoulder, self.rest_elbow], x.dtype)
        return self.hand(x[..., :2] + rest) - self.hand(rest)

    def effector(self, x):
        r"""The hand's displacement from its resting position, $p(q) - p(q^*)$ `(..., 2)` (m): the point a tracking
        task moves along its reference (:mod:`loopdyn.tasks._tracking`)."""
        rest = jnp.asarray([self.rest_shoulder, self.rest_elbow], x.dtype)
        return self.hand(x[..., :2] + rest) - self.hand(rest)

    def in_range(self, x):
        """Both absolute joint angles within `shoulder_limits` and `elbow_limits` (the arm's joint limits)."""
        q1, q2 = x[..., 0] + self.rest_shoulder, x[..., 1] + self.rest_elbow
        (a, b), (c, d) = self.shoulder_limits, self.elbow_limits
        return (q1 >= a) & (q1 <= b) & (q2 >= c) & (q2 <= d)

    def kinetic_energy(self, x):
        r"""$\tfrac12\dot q^\top M(q)\dot q$ of a batch of states `(B, 4)` -> `(B,)`."""
        q = x[..., :2] + jnp.asarray([self.rest_shoulder, self.rest_elbow], x.dtype)
        dq = x[..., 2:]
        return 0.5 * jnp.einsum("...i,...ij,...j->...", dq, self.inertia(q), dq)
