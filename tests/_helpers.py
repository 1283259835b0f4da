"""Small conveniences shared by the tests (not part of loopdyn)."""

from loopdyn.agents import make_core
from loopdyn.system import rollout


def closed_loop(spec, plant, params, x0, T, *, g=0.0, return_hidden=False):
    """`(xs, us[, hs])` of a noise-free regulation episode: one :func:`loopdyn.system.rollout`."""
    traj = rollout(make_core(spec, params, g), plant, x0, T, emit=("x", "u", "h"))
    return (traj.x, traj.u, traj.h) if return_hidden else (traj.x, traj.u)
