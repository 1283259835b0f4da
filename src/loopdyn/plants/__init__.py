"""Plants: the interface every plant implements (:class:`Plant`; linear ones :class:`LinearPlant`; ones given by
an ODE and stepped by RK4 :class:`RK4Plant`), the linear plants loopdyn ships (spec §1.1-1.2) and its nonlinear
ones (issue #19: :class:`InvertedPendulum`, :class:`CartPole`, :class:`TwoLinkArm`). A plant of one's own
is one file: a subclass named in a configuration as `[plant] kind = "package.module:Class"` (docs/extending.md)."""

from ._base import PLANTS as PLANTS
from ._base import LinearPlant as LinearPlant
from ._base import Plant as Plant
from ._arm import TwoLinkArm as TwoLinkArm
from ._cartpole import CartPole as CartPole
from ._linear import DoubleIntegrator as DoubleIntegrator
from ._linear import Integrator as Integrator
from ._linear import Linear as Linear
from ._linear import PointMass2D as PointMass2D
from ._linear import double_integrator as double_integrator
from ._linear import integrator as integrator
from ._linear import linear as linear
from ._linear import point_mass_2d as point_mass_2d
from ._pendulum import InvertedPendulum as InvertedPendulum
from ._rk4 import RK4Plant as RK4Plant
from ._rk4 import rk4_step as rk4_step
