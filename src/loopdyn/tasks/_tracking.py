r"""Tracking a sum of sinusoids with the 2-D point mass (Ger & Barak 2025, Fig 6; spec §1.3, §3.4, §4.7).

The reference of axis $d \in \{x, y\}$ at sample $n$ ($t_n = n\,dt$, $n = 0..T-1$) is

$$r_d(t_n) = \mathrm{ramp}(t_n) \sum_{j \in d} a_j \cos(2\pi f_j t_n + \varphi_j),\qquad
\mathrm{ramp}(t) = \mathrm{clip}(t / t_{\rm ramp}, 0, 1),$$

with phases $\varphi_j \sim U(-\pi, \pi)$ drawn per episode and component (fresh every epoch). The plant
starts at rest at the origin, the agent sees $(x_n, y_n, r_x[n], r_y[n])$ and is called at $n = 0$
(timing `"immediate"` of :func:`loopdyn.system.rollout`); the loss is

$$\mathcal L = \frac1T \sum_{n<T} dt\,\Big[\operatorname{mean}_b (x_{n+1} - r_x[n])^2
+ \operatorname{mean}_b (y_{n+1} - r_y[n])^2\Big].$$

Components are numbered by increasing frequency ($\omega_1 < \omega_2 < \dots$, $\omega = 2\pi f$). The
*probe* of component $j$ is the episode whose reference is that component alone, on its axis, with a
fixed phase drawn once from `probe_seed`; its loss is $\frac1T\sum_n \|p_{n+1} - r[n]\|^2$ (no $dt$, spec §4.7).
That single-phase probe is the authors' convention (`probe_loss`); its value depends on the drawn phase. The
*phase-averaged* probe loss (`probe_loss_phase_avg`) is its mean over `phase_probes` = $M$ phases spread evenly
over the circle, $\varphi_j + 2\pi m/M$, $m = 0..M-1$. For a linear loop started at rest the error is linear in
the reference, $e(\varphi) = \cos\varphi\,e_{\cos} - \sin\varphi\,e_{\sin}$, so
$L(\varphi) = L_{\cos}\cos^2\varphi + L_{\sin}\sin^2\varphi - 2\langle e_{\cos}, e_{\sin}\rangle\sin\varphi\cos\varphi$
and the mean over any $M \ge 3$ (or the pair $\varphi, \varphi + \pi/2$ of $M = 4$) is exactly the average over
all phases, $(L_{\cos} + L_{\sin})/2$; for a nonlinear loop it is a sample of $M$ phases (raise `phase_probes`).

Superposition. Since $\cos(\omega t + \varphi) = \cos\varphi\cos\omega t - \sin\varphi\sin\omega t$, every
episode's reference is $\sum_k c_k\,e_k(t)$ over $2K$ *basis* references ($e_{2j} = \mathrm{ramp}\;a_j\cos\omega_j t$,
$e_{2j+1} = -\mathrm{ramp}\;a_j\sin\omega_j t$ on the axis of $j$) with coordinates
$c = (\cos\varphi_1, \sin\varphi_1, \dots)$ (`Episode.coef`). For a linear agent and plant (no clamp binding,
no noise) every error is the same superposition of the basis episodes' errors, which the trainer uses
(:mod:`loopdyn.training`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..config import NON_NEGATIVE, POSITIVE, InvalidParameter, param
from ._base import Task
from ._episode import Episode

AXES = ("x", "y")
TRAIN_LOSS_DEFINITION = ("tracking loss (1/T) sum_n dt [mean_b (x_{n+1} - r_x[n])^2 + mean_b (y_{n+1} - r_y[n])^2], "
                         "fresh random phases every epoch")
TEST_LOSS_DEFINITION = ("closed-loop tracking loss (the training loss of the closed loop) on a fresh batch of "
                        "task.test_batch random-phase references every epoch")
PROBE_LOSS_DEFINITION = ("probe loss of each frequency: mean_n [(x_{n+1} - r_x[n])^2 + (y_{n+1} - r_y[n])^2] on its "
                         "single-sinusoid probe (its axis only, amplitude a_j, phase fixed by task.test_seed), "
                         "closed loop, parameters of the epoch")
PHASE_AVG_DEFINITION = ("phase-averaged probe loss of each frequency: the probe loss averaged over task.phase_probes "
                        "phases phi_j + 2 pi m / M (exact average over all phases, (L_cos + L_sin)/2, for a linear loop)")


@dataclass(frozen=True)
class Tracking:
    """The multi-frequency tracking task (module docstring).

    **Fields:** `freqs_x`, `freqs_y` (Hz) and `amps_x`, `amps_y` per axis; `T` samples of `dt` s; `ramp` (s,
    0 = none); `batch` training and `test_batch` test episodes per epoch; `probe_seed` fixes the probes'
    phases; `positions`: the plant-state coordinates of x and y; `n_states`, `n_controls` of the plant.
    """

    freqs_x: tuple[float, ...] = (0.1, 0.3)
    freqs_y: tuple[float, ...] = (0.2, 0.4)
    amps_x: tuple[float, ...] = (2.31, 2.31)
    amps_y: tuple[float, ...] = (2.31, 2.31)
    T: int = 300
    dt: float = 0.1
    ramp: float = 1.0
    batch: int = 100
    test_batch: int = 10
    probe_seed: int = 12345
    positions: tuple[int, ...] = (0, 2)
    n_states: int = 4
    n_controls: int = 2
    phase_probes: int = 4
    effector: object = None  # a plant with `effector(x) -> (..., 2)`: the tracked point is that, not x[positions]
    timing: str = "immediate"  # no u_0 = 0 convention: the agent acts at n = 0 (spec §3.4)

    n_exo = 2  # the reference (r_x, r_y) follows the observation in the agent's input
    superposable = True  # every episode is a superposition of the basis episodes (module docstring)
    gains = False  # effective gains u ~ K x describe regulation only
    emit = ("x_next",)
    train_loss_definition = TRAIN_LOSS_DEFINITION
    test_loss_definition = TEST_LOSS_DEFINITION
    imitation_loss_definition = "(1/T) sum_n dt mean_{b,j} (u_student - u_teacher)^2, teacher-driven episodes"

    # ---------------------------------------------------------------- the reference
    @functools.cached_property
    def components(self) -> tuple[tuple[float, int, float], ...]:
        """`(frequency, axis index, amplitude)` of every component, by increasing frequency (x before y)."""
        comps = [(float(f), 0, float(a)) for f, a in zip(self.freqs_x, self.amps_x)]
        comps += [(float(f), 1, float(a)) for f, a in zip(self.freqs_y, self.amps_y)]
        return tuple(sorted(comps))

    @property
    def n_components(self) -> int:
        return len(self.components)

    @property
    def frequencies(self) -> np.ndarray:
        return np.array([c[0] for c in self.components])

    @property
    def omegas(self) -> np.ndarray:
        """Angular frequencies $2\\pi f$ (rad/s) of the components."""
        return 2 * np.pi * self.frequencies

    @property
    def axes(self) -> np.ndarray:
        return np.array([AXES[c[1]] for c in self.components])

    def envelope(self) -> np.ndarray:
        """`ramp(t_n)`, `(T,)` float64."""
        t = np.arange(self.T) * self.dt
        return np.clip(t / self.ramp, 0.0, 1.0) if self.ramp > 0 else np.ones(self.T)

    def _tables(self):
        omega = np.array([2 * math.pi * c[0] for c in self.components])
        amp = np.array([c[2] for c in self.components])
        onehot = np.zeros((self.n_components, 2))
        onehot[np.arange(self.n_components), [c[1] for c in self.components]] = 1.0
        return omega, amp, onehot

    def references(self, phases, mask=None, dtype=jnp.float32):
        """Closed-form references `(T, batch, 2)` for `phases (batch, K)`; `mask (batch, K)` scales each
        component (1 = present)."""
        omega, amp, onehot = self._tables()
        t = jnp.asarray(np.arange(self.T) * self.dt, dtype)
        env = jnp.asarray(self.envelope(), dtype)
        weights = jnp.asarray(amp, dtype) * (1.0 if mask is None else mask)
        waves = weights * jnp.cos(jnp.asarray(omega, dtype) * t[:, None, None] + phases[None])  # (T, B, K)
        return env[:, None, None] * (waves @ jnp.asarray(onehot, dtype))

    def basis_references(self) -> np.ndarray:
        """The $2K$ basis references `(T, 2K, 2)` float64 (module docstring)."""
        omega, amp, onehot = self._tables()
        t = np.arange(self.T) * self.dt
        env = self.envelope()[:, None]
        cos = env * amp * np.cos(omega * t[:, None])
        sin = -env * amp * np.sin(omega * t[:, None])
        waves = np.stack([cos, sin], axis=-1).reshape(self.T, 2 * self.n_components)
        return waves[:, :, None] * np.repeat(onehot, 2, axis=0)[None]

    @staticmethod
    def coefficients(phases):
        """Coordinates `(batch, 2K)` $(\\cos\\varphi_1, \\sin\\varphi_1, \\dots)$ on the basis episodes."""
        return jnp.stack([jnp.cos(phases), jnp.sin(phases)], axis=-1).reshape(phases.shape[0], -1)

    def probe_phases(self) -> np.ndarray:
        """The probes' fixed phases `(K,)`, drawn once from `probe_seed`."""
        return np.random.default_rng(self.probe_seed).uniform(-np.pi, np.pi, self.n_components)

    # ---------------------------------------------------------------- episodes
    def _episode(self, phases, mask=None, dtype=jnp.float32) -> Episode:
        """Episodes of `phases`; the references are built as the superposition `coef @ basis` of the basis
        references (equal to :meth:`references` to round-off, and a small matrix product instead of
        `T x batch x K` cosines)."""
        coef = self.coefficients(phases)
        if mask is not None:
            coef = coef * jnp.repeat(mask, 2, axis=1)
        x0 = jnp.zeros((phases.shape[0], self.n_states), dtype)
        exo = jnp.einsum("bk,tkd->tbd", coef, jnp.asarray(self.basis_references(), dtype))
        return Episode(x0, exo, coef)

    def train_episode(self, key, dtype=jnp.float32) -> Episode:
        """The episodes of a training epoch: `batch` fresh ones."""
        return self.sample_episode(key, self.batch, dtype)

    def sample_episode(self, key, batch: int, dtype=jnp.float32) -> Episode:
        """`batch` episodes with phases $U(-\\pi, \\pi)$ per component, from `key`."""
        phases = jax.random.uniform(key, (batch, self.n_components), dtype, -jnp.pi, jnp.pi)
        return self._episode(phases, dtype=dtype)

    def test_set(self, key, dtype=jnp.float32):
        """Nothing is fixed: every epoch tests on fresh references (:meth:`test_episode`)."""
        return None

    def test_episode(self, test_set, key, dtype=jnp.float32) -> Episode:
        return self.sample_episode(key, self.test_batch, dtype)

    def probe_episode(self, dtype=jnp.float32) -> Episode:
        r"""The $K$ probes (module docstring), in component order, then the $K(M-1)$ further phases of the
        phase average (component-major: $\varphi_j + 2\pi m/M$, $m = 1..M-1$)."""
        K, M = self.n_components, self.phase_probes
        phi = self.probe_phases()
        shifted = (phi[:, None] + 2 * np.pi * np.arange(1, M)[None, :] / M).reshape(-1)  # (K (M-1),)
        phases = np.concatenate([phi, shifted])
        mask = np.concatenate([np.eye(K), np.repeat(np.eye(K), M - 1, axis=0)])
        phases = jnp.broadcast_to(jnp.asarray(phases, dtype)[:, None], (phases.size, K))
        return self._episode(phases, jnp.asarray(mask, dtype), dtype)

    def basis_episode(self, dtype=jnp.float32) -> Episode:
        """The $2K$ basis episodes (`coef` = identity)."""
        n = 2 * self.n_components
        return Episode(jnp.zeros((n, self.n_states), dtype), jnp.asarray(self.basis_references(), dtype),
                       jnp.eye(n, dtype=dtype))

    # ---------------------------------------------------------------- losses
    @property
    def loss_scale(self) -> float:
        """Loss and test metric = `loss_scale * mean_b q_b`, $q_b = \\sum_{n,d} e_{n,b,d}^2$ (:meth:`errors`)."""
        return self.dt / self.T

    @property
    def imitation_scale(self) -> float:
        """Imitation loss = `imitation_scale * mean_b sum_{n,j} (u^S - u^T)^2`."""
        return self.dt / (self.T * self.n_controls)

    @property
    def probe_scale(self) -> float:
        """Probe loss = `probe_scale * q` of the probe episode."""
        return 1.0 / self.T

    def errors(self, traj, episode: Episode):
        """Tracking errors `(T, batch, 2)`: $p_{n+1} - r[n]$, positions after each step minus the reference (the
        plant's `effector(x)` where it declares one: the two-link arm's hand)."""
        if self.effector is not None:
            return self.effector.effector(traj.x_next) - episode.exo
        return traj.x_next[..., list(self.positions)] - episode.exo

    def episode_loss(self, traj, episode: Episode, beta=0.0):
        return self.loss_scale * jnp.sum(jnp.mean(self.errors(traj, episode) ** 2, axis=1))

    def episode_metric(self, traj, episode: Episode):
        return self.episode_loss(traj, episode)

    def imitation_loss(self, u_student, u_teacher):
        """$\\frac1T\\sum_n dt\\,\\operatorname{mean}_{b,j}(u^S - u^T)^2$ (spec §3.4)."""
        return self.imitation_scale * jnp.sum(jnp.mean(jnp.sum((u_student - u_teacher) ** 2, axis=-1), axis=1))

    def probe_losses(self, traj, episode: Episode):
        """Probe losses `(batch,)` of closed-loop probe trajectories."""
        return self.probe_scale * jnp.sum(self.errors(traj, episode) ** 2, axis=(0, 2))

    def probe_metrics(self, traj, probe: Episode) -> dict:
        """The per-epoch records of closed-loop probe trajectories (:meth:`epoch_metrics`)."""
        return self._split(self.probe_losses(traj, probe))

    def probe_metrics_of_sq(self, q) -> dict:
        """The same from the probes' squared-error sums $q$ (superposition)."""
        return self._split(self.probe_scale * q)

    def _split(self, losses) -> dict:
        K, M = self.n_components, self.phase_probes
        single = losses[:K]
        avg = (single + jnp.sum(losses[K:].reshape(K, M - 1), axis=1)) / M
        return {"probe_loss": single, "probe_loss_phase_avg": avg}

    def epoch_metrics(self) -> dict:
        """Per-epoch records beyond the losses: `name -> (extra dims, definition)`."""
        return {"probe_loss": (("frequency",), PROBE_LOSS_DEFINITION),
                "probe_loss_phase_avg": (("frequency",), PHASE_AVG_DEFINITION)}

    def metric_coords(self) -> dict:
        return {"frequency": (("frequency",), self.frequencies),
                "omega": (("frequency",), self.omegas),
                "frequency_axis": (("frequency",), self.axes)}


class TrackingTask(Task):
    """Tracking a sum of sinusoids (module docstring): `[task] kind = "tracking"`, with a plant that declares
    the state coordinates of its two positions (`positions`, as the 2-D point mass does)."""

    T: int = param(50, doc="samples per episode (duration T plant.dt)", check=POSITIVE)
    batch: int = param(100, doc="random-phase references per training epoch", check=POSITIVE)
    test_batch: int = param(100, doc="random-phase references per test evaluation", check=POSITIVE)
    test_seed: int = param(12345, doc="seed of the probe phases", check=NON_NEGATIVE)
    freqs_x: tuple[float, ...] = param((0.1, 0.3), doc="frequencies (Hz) of the x reference")
    freqs_y: tuple[float, ...] = param((0.2, 0.4), doc="frequencies (Hz) of the y reference")
    amps_x: tuple[float, ...] = param((2.31, 2.31), doc="amplitudes of the x components (one per frequency)")
    amps_y: tuple[float, ...] = param((2.31, 2.31), doc="amplitudes of the y components (one per frequency)")
    ramp: float = param(1.0, doc="the reference is ramped in linearly over this many seconds; 0 = off",
                        check=NON_NEGATIVE)
    phase_probes: int = param(4, doc="phases per frequency of the phase-averaged probe loss (evenly spread; exact "
                              "for a linear loop; a sample for a nonlinear one)", check=(">= 3", lambda v: v >= 3))

    modes = ("closed_loop", "open_loop_noise", "open_loop_teacher")

    def bind(self, plant, agent_alpha: float = 1.0) -> Tracking:
        return Tracking(tuple(self.freqs_x), tuple(self.freqs_y), tuple(self.amps_x), tuple(self.amps_y), self.T,
                        plant.dt, self.ramp, self.batch, self.test_batch, self.test_seed,
                        tuple(getattr(plant, "positions", (0, 1))), plant.n_states, plant.n_controls, self.phase_probes,
                        plant if hasattr(plant, "effector") else None)

    def check(self, cfg) -> None:
        """Frequencies positive, below the plant's Nyquist frequency and distinct per axis, one positive
        amplitude per frequency, a plant with two positions (spec §1.3)."""
        super().check(cfg)
        p = cfg.plant
        if len(getattr(p, "positions", ())) != 2 and not hasattr(p, "effector"):
            raise InvalidParameter("task.kind", f"= 'tracking' needs a plant with two position coordinates "
                                   f"(`positions`, e.g. plant.kind = 'point_mass_2d') or an `effector` (two_link_arm: its hand); "
                                   f"got {p.kind!r}")
        if not self.freqs_x and not self.freqs_y:
            raise InvalidParameter("task.freqs_x", "and task.freqs_y are both empty; give the reference at least one "
                                   "frequency")
        nyquist = 0.5 / p.dt
        for axis in ("x", "y"):
            freqs, amps = getattr(self, f"freqs_{axis}"), getattr(self, f"amps_{axis}")
            for f in freqs:
                if f <= 0:
                    raise InvalidParameter(f"task.freqs_{axis}", f"= {list(freqs)!r} contains {f:g}; frequencies "
                                           f"must be > 0 Hz")
                if f >= nyquist:
                    raise InvalidParameter(f"task.freqs_{axis}", f"= {list(freqs)!r} contains {f:g} Hz, not below the "
                                           f"Nyquist frequency 1/(2 plant.dt) = {nyquist:g} Hz; lower it or the "
                                           f"plant's dt")
            if len(set(freqs)) != len(freqs):
                raise InvalidParameter(f"task.freqs_{axis}", f"= {list(freqs)!r} lists a frequency twice")
            if len(amps) != len(freqs):
                raise InvalidParameter(f"task.amps_{axis}", f"= {list(amps)!r} must give one amplitude per frequency "
                                       f"of task.freqs_{axis} ({len(freqs)})")
            if any(a <= 0 for a in amps):
                raise InvalidParameter(f"task.amps_{axis}", f"= {list(amps)!r} must be > 0")
