"""Linear plants `x' = A x + B u + w`, `y = C x` (spec §1.1-1.2)."""

from ._linear import LinearPlant as LinearPlant
from ._linear import double_integrator as double_integrator
from ._linear import integrator as integrator
from ._linear import point_mass_2d as point_mass_2d
from ._linear import plant_from_config as plant_from_config
