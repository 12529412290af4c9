"""Finite-width networks (the counterparts of the reduced systems in ``reducedflow.models``)
and the maps from their weights to the order parameters of the reduced systems."""

from .deep_linear import (
    DeepLinearNetwork as DeepLinearNetwork,
    GDTrajectory as GDTrajectory,
    SyntheticTask as SyntheticTask,
    empirical_loss as empirical_loss,
    init_deep_linear as init_deep_linear,
    mode_matrix as mode_matrix,
    mode_strengths as mode_strengths,
    population_loss as population_loss,
    synthetic_task as synthetic_task,
    train_gd as train_gd,
)
from .relu_neuron import ReluGDTrajectory as ReluGDTrajectory, train_relu_gd as train_relu_gd
from .ntk_mlp import (
    init_ntk_mlp as init_ntk_mlp,
    ntk_mlp_jacobian as ntk_mlp_jacobian,
    ntk_mlp_outputs as ntk_mlp_outputs,
    train_linearised as train_linearised,
    train_ntk_mlp as train_ntk_mlp,
    validate_linearised_flow as validate_linearised_flow,
    validate_two_moons as validate_two_moons,
)
from .two_moons import (
    decision_grid as decision_grid,
    plot_decision_boundary as plot_decision_boundary,
    starved_boundary_fraction as starved_boundary_fraction,
    two_moons as two_moons,
)
from .committee import (
    CommitteeSGDTrajectory as CommitteeSGDTrajectory,
    sample_committee as sample_committee,
    train_committee_sgd as train_committee_sgd,
)
from .two_layer_mlp import (
    TwoLayerLayout as TwoLayerLayout,
    TwoLayerMLP as TwoLayerMLP,
    label_noise_sgd_paths as label_noise_sgd_paths,
)
from .two_layer import (
    HermiteSeries as HermiteSeries,
    MeanFieldGap as MeanFieldGap,
    MonteCarloRisk as MonteCarloRisk,
    SingleIndexConvergence as SingleIndexConvergence,
    SingleIndexSGDTrajectory as SingleIndexSGDTrajectory,
    TwoLayerWeights as TwoLayerWeights,
    WeightSpaceFlow as WeightSpaceFlow,
    mean_field_gap as mean_field_gap,
    monte_carlo_risk as monte_carlo_risk,
    online_sgd as online_sgd,
    population_gradient_flow as population_gradient_flow,
    population_risk as population_risk,
    sample_weights as sample_weights,
    validate_single_index as validate_single_index,
)
