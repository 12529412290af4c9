"""Symbolic derivation of reduced gradient-flow equations (public entry point).

``reducedflow.derive.two_layer(activation="relu", target=..., width=m, second_layer="trained",
epsilon=...)`` derives the population gradient flow of a two-layer teacher–student network in
its order parameters and returns a ``DerivedSystem`` that ``reducedflow.solve`` takes directly;
``derive(ReducedRisk(...))`` does the same for any risk written in overlaps. See
``reducedflow.symbolic``.
"""

from .symbolic.derive import (
    DerivedSystem as DerivedSystem,
    ReducedRisk as ReducedRisk,
    VectorMotion as VectorMotion,
    derive as derive,
)
from .symbolic.two_layer import two_layer as two_layer, two_layer_risk as two_layer_risk
