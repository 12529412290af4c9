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
