"""Reduced systems, one module per family."""

from .fast_slow import (
    CurvedFastSlowGradientFlow as CurvedFastSlowGradientFlow,
    FastSlowGradientFlow as FastSlowGradientFlow,
)
from .linear_modes import (
    BalancedModes as BalancedModes,
    DeepLinearFlow as DeepLinearFlow,
    DeepModes as DeepModes,
    TwoLayerLinearFlow as TwoLayerLinearFlow,
    UnbalancedModes as UnbalancedModes,
)
from .separable import SeparableLinearFlow as SeparableLinearFlow
