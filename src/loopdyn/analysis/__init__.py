"""Analyses of recorded learning trajectories (paper-spec §4)."""

from ._joint import effective_matrix as effective_matrix
from ._joint import joint_matrix as joint_matrix
from ._joint import overlaps as overlaps
from ._joint import reduced_joint_matrix as reduced_joint_matrix
from ._joint import spectral_radius as spectral_radius
from ._joint import spectrum as spectrum
from ._effective import OVERLAP_NAMES as OVERLAP_NAMES
from ._effective import characteristic_cubic as characteristic_cubic
from ._effective import cubic_roots as cubic_roots
from ._effective import dominant_modulus_sq_approx as dominant_modulus_sq_approx
from ._effective import effective_spectrum_discrepancy as effective_spectrum_discrepancy
from ._effective import lambda3_perturbative as lambda3_perturbative
from ._gains import effective_gains as effective_gains
from ._gains import gain_loss_landscape as gain_loss_landscape
from ._gains import lqr_gain as lqr_gain
from ._gains import stability_boundaries as stability_boundaries
from ._gains import stability_region as stability_region
from ._stages import Stages as Stages
from ._stages import detect_stages_gains as detect_stages_gains
from ._stages import detect_stages_linear as detect_stages_linear
from ._stages import dominant_pair as dominant_pair
from ._stages import stabilisation_epoch as stabilisation_epoch
from ._stages import third_eigenvalue as third_eigenvalue
