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
from .collapse import (
    GeometricBrownianMotion as GeometricBrownianMotion,
    IsotropicMultiplicativeNoise as IsotropicMultiplicativeNoise,
    LabelNoiseModes as LabelNoiseModes,
    QuarticWell as QuarticWell,
    TanhNeuron as TanhNeuron,
)
from .relu_neuron import (
    EventDrivenSolution as EventDrivenSolution,
    ReluNeuron as ReluNeuron,
    SwitchEvent as SwitchEvent,
    projection_limit as projection_limit,
    solve_event_driven as solve_event_driven,
    switching_crossing as switching_crossing,
    vardi_shamir_data as vardi_shamir_data,
)
from .sgd_flow import StochasticGradientFlow as StochasticGradientFlow, sgd_paths as sgd_paths
