"""Symbolic layer: Hermite expansions, Gaussian expectations, and the derivation of
gradient-flow ODEs from a risk in order parameters, compiled to JAX."""

from ._activations import ACTIVATION_NAMES as ACTIVATION_NAMES, Activation as Activation, resolve as resolve
from .codegen import to_jax as to_jax
from .derive import (
    DerivedSystem as DerivedSystem,
    ReducedRisk as ReducedRisk,
    VectorMotion as VectorMotion,
    derive as derive,
)
from .gaussian import (
    C11 as C11,
    C12 as C12,
    C22 as C22,
    TwoPointExpectation as TwoPointExpectation,
    check_covariance as check_covariance,
    committee_i2 as committee_i2,
    committee_i2_expr as committee_i2_expr,
    committee_i3 as committee_i3,
    committee_i3_expr as committee_i3_expr,
    committee_i4 as committee_i4,
    committee_i4_expr as committee_i4_expr,
    committee_j2 as committee_j2,
    committee_j2_expr as committee_j2_expr,
    gaussian_expectation as gaussian_expectation,
    two_point as two_point,
)
from .hermite import HermiteExpansion as HermiteExpansion, hermite_expansion as hermite_expansion, hermite_functions as hermite_functions
from .two_layer import two_layer as two_layer, two_layer_risk as two_layer_risk
