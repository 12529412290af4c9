"""Dynamics toolkit: fixed points and their stability, continuation, plane slices and
nullclines, slow manifolds, plateaus and timescale fits, parameter sweeps, Lyapunov exponents, invariant sets and their stochastic attractivity, for any
``reducedflow.AbstractSystem``."""

from .attractivity import (
    CollapseProbability as CollapseProbability,
    ExponentEstimate as ExponentEstimate,
    LinearisedNormalDynamics as LinearisedNormalDynamics,
    QuadraticCertificate as QuadraticCertificate,
    ScaleDensity as ScaleDensity,
    collapse_probability as collapse_probability,
    hitting_probability as hitting_probability,
    linearise_at as linearise_at,
    one_dimensional_criterion as one_dimensional_criterion,
    scale_function_density as scale_function_density,
    wilson_interval as wilson_interval,
)
from .continuation import (
    BifurcationPoint as BifurcationPoint,
    Branch as Branch,
    continuation as continuation,
)
from .fixed_points import (
    FixedPoint as FixedPoint,
    FixedPoints as FixedPoints,
    classify as classify,
    find_fixed_points as find_fixed_points,
    jacobian as jacobian,
)
from .invariant_sets import (
    CollapseReport as CollapseReport,
    InvariantSubspace as InvariantSubspace,
    check_invariance as check_invariance,
    collapse_report as collapse_report,
    distance_to_subspace as distance_to_subspace,
    effective_rank as effective_rank,
    identical_unit_groups as identical_unit_groups,
    intersect_subspaces as intersect_subspaces,
    permutation_invariant_subspace as permutation_invariant_subspace,
    sign_invariant_subspace as sign_invariant_subspace,
    unit_distance_matrix as unit_distance_matrix,
    vanishing_units as vanishing_units,
)
from .lyapunov import (
    LyapunovSpectrum as LyapunovSpectrum,
    SDEGrowthRate as SDEGrowthRate,
    largest_lyapunov_exponent as largest_lyapunov_exponent,
    lyapunov_spectrum as lyapunov_spectrum,
    sde_lyapunov_exponent as sde_lyapunov_exponent,
)
from .nullclines import (
    Nullclines as Nullclines,
    PlaneSlice as PlaneSlice,
    nullclines as nullclines,
    plane_slice as plane_slice,
)
from .plateaus import (
    Plateau as Plateau,
    PlateauAnalysis as PlateauAnalysis,
    ScalingFit as ScalingFit,
    Transition as Transition,
    detect_plateaus as detect_plateaus,
    fit_scaling as fit_scaling,
    transition_time as transition_time,
)
from .slow_manifold import (
    ReducedSlowFlow as ReducedSlowFlow,
    SlowManifold as SlowManifold,
    critical_manifold as critical_manifold,
    reduced_slow_flow as reduced_slow_flow,
    slow_flow_gap as slow_flow_gap,
)
from .sweep import sweep as sweep
