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
from .classification_modes import (
    ClassificationModes as ClassificationModes,
    DeepChainMode as DeepChainMode,
    FrequencyStarvation as FrequencyStarvation,
    relu_mode_outcome as relu_mode_outcome,
)
from .ntk_cross_entropy import (
    DualAscentFlow as DualAscentFlow,
    FeatureDecomposition as FeatureDecomposition,
    FeatureResponseFlow as FeatureResponseFlow,
    LinearisedPrimalFlow as LinearisedPrimalFlow,
    QuadraticResponseFlow as QuadraticResponseFlow,
    decoupled_fixed_point as decoupled_fixed_point,
    feature_decomposition as feature_decomposition,
    lambert_w_margin as lambert_w_margin,
    spectral_decoupling_fixed_point as spectral_decoupling_fixed_point,
    spectral_decoupling_margin as spectral_decoupling_margin,
    two_feature_starvation_derivative as two_feature_starvation_derivative,
    two_feature_system as two_feature_system,
)
from .committee import (
    EscapeStudy as EscapeStudy,
    SoftCommittee as SoftCommittee,
    SymmetricPlateau as SymmetricPlateau,
    escape_times_from_random_weights as escape_times_from_random_weights,
    noise_floor as noise_floor,
    noise_floor_small_learning_rate as noise_floor_small_learning_rate,
    perfect_solution as perfect_solution,
    random_weight_overlaps as random_weight_overlaps,
    symmetric_plateau as symmetric_plateau,
    committee_generalisation_error as committee_generalisation_error,
    max_learning_rate as max_learning_rate,
    plateau_escape_rate as plateau_escape_rate,
    plateau_fixed_point as plateau_fixed_point,
    plateau_generalisation_error as plateau_generalisation_error,
)
from .classic import (
    DoubleWell as DoubleWell,
    FitzHughNagumo as FitzHughNagumo,
    FoldNormalForm as FoldNormalForm,
    HopfNormalForm as HopfNormalForm,
    LinearSystem as LinearSystem,
    Lorenz as Lorenz,
)
from .single_index import (
    HermiteCoefficients as HermiteCoefficients,
    OneAtom as OneAtom,
    SingleIndexExact as SingleIndexExact,
    SingleIndexMeanField as SingleIndexMeanField,
    StageFlow as StageFlow,
    finite_dimension_initial_state as finite_dimension_initial_state,
    half_learning_times as half_learning_times,
    hermite_coefficients as hermite_coefficients,
    initial_second_layer as initial_second_layer,
    mean_field_initial_state as mean_field_initial_state,
    overlaps_from_weights as overlaps_from_weights,
    phase_one_second_moment as phase_one_second_moment,
    phase_one_time as phase_one_time,
    stage_blow_up_time as stage_blow_up_time,
)
from .collapse_sgd import (
    AbstractDiscreteSGD as AbstractDiscreteSGD,
    AlignedTeacherStudent as AlignedTeacherStudent,
    CollapseSweep as CollapseSweep,
    MinibatchSGD as MinibatchSGD,
    ModeLabelNoiseSGD as ModeLabelNoiseSGD,
    TanhNeuronLabelNoiseGD as TanhNeuronLabelNoiseGD,
    VanishingUnitSweep as VanishingUnitSweep,
    aligned_teacher_student as aligned_teacher_student,
    collapse_fraction_vs_learning_rate as collapse_fraction_vs_learning_rate,
    discrete_multiplier_exponent as discrete_multiplier_exponent,
    discrete_sgd_paths as discrete_sgd_paths,
    gaussian_log_moment as gaussian_log_moment,
    linearised_sgd_exponents as linearised_sgd_exponents,
    tanh_neuron_minibatch_exponents as tanh_neuron_minibatch_exponents,
    tanh_neuron_minibatch_sgd as tanh_neuron_minibatch_sgd,
    vanishing_unit_fractions as vanishing_unit_fractions,
)
