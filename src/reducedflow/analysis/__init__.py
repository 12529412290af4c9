"""Dynamics toolkit: fixed points and their stability, continuation, plane slices and
nullclines, slow manifolds, parameter sweeps and Lyapunov exponents, for any
``reducedflow.AbstractSystem``."""

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
from .slow_manifold import (
    ReducedSlowFlow as ReducedSlowFlow,
    SlowManifold as SlowManifold,
    critical_manifold as critical_manifold,
    reduced_slow_flow as reduced_slow_flow,
    slow_flow_gap as slow_flow_gap,
)
from .sweep import sweep as sweep
