"""The joint agent-environment system: the one rollout, the joint matrix P and its reduced forms,
spectra, overlaps, the effective cubic, the Jacobian at the origin and the effective gains
(Ger & Barak 2025; spec §3-4); fixed points of nonlinear loops, P there, and the basin of the target
(issue #19). Part of the model, below training."""

from ._effective import characteristic_cubic as characteristic_cubic
from ._effective import cubic_roots as cubic_roots
from ._effective import dominant_modulus_sq_approx as dominant_modulus_sq_approx
from ._effective import effective_spectrum_discrepancy as effective_spectrum_discrepancy
from ._effective import lambda3_perturbative as lambda3_perturbative
from ._fixed_point import BASIN_SCALES as BASIN_SCALES
from ._fixed_point import FIXED_POINT_STATUS as FIXED_POINT_STATUS
from ._fixed_point import Basin as Basin
from ._fixed_point import FixedPoint as FixedPoint
from ._fixed_point import basin as basin
from ._fixed_point import basin_fractions as basin_fractions
from ._fixed_point import basin_test_set as basin_test_set
from ._fixed_point import fixed_point as fixed_point
from ._fixed_point import fixed_points as fixed_points
from ._fixed_point import loop_step as loop_step
from ._fixed_point import newton_fixed_point as newton_fixed_point
from ._fixed_point import origin_residuals as origin_residuals
from ._fixed_point import range_exits as range_exits
from ._gains import effective_gains as effective_gains
from ._gains import gain_moments as gain_moments
from ._gains import gains_from_moments as gains_from_moments
from ._jacobian import ACTIVATION_SLOPES as ACTIVATION_SLOPES
from ._jacobian import activation_slope as activation_slope
from ._jacobian import jacobian_at_origin as jacobian_at_origin
from ._jacobian import jacobian_spectra as jacobian_spectra
from ._jacobian import joint_jacobian as joint_jacobian
from ._jacobian import joint_step as joint_step
from ._joint import INVISIBLE_NAMES as INVISIBLE_NAMES
from ._joint import OVERLAP_NAMES as OVERLAP_NAMES
from ._joint import agent_joint_matrix as agent_joint_matrix
from ._joint import all_overlaps as all_overlaps
from ._joint import array_namespace as array_namespace
from ._joint import effective_matrix as effective_matrix
from ._joint import joint_matrix as joint_matrix
from ._joint import overlap_joint_matrix as overlap_joint_matrix
from ._joint import overlaps as overlaps
from ._joint import reduced_joint_matrix as reduced_joint_matrix
from ._joint import spectral_radius as spectral_radius
from ._joint import spectrum as spectrum
from ._joint import state_covariances as state_covariances
from ._joint import unstack_overlaps as unstack_overlaps
from ._rollout import Trajectory as Trajectory
from ._rollout import log_sum_sq as log_sum_sq
from ._rollout import rollout as rollout
