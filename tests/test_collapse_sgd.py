"""Discrete SGD maps of stochastic collapse against their SDEs: exponents by quadrature vs
simulation, collapse thresholds in the learning rate, stationary means with the map's O(eta)
correction, the teacher-student soft-thresholding, and input validation."""

import math

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from reducedflow.models.collapse import LabelNoiseModes, TanhNeuron
from reducedflow.models.collapse_sgd import (
    MinibatchSGD,
    ModeLabelNoiseSGD,
    TanhNeuronLabelNoiseGD,
    aligned_teacher_student,
    collapse_fraction_vs_learning_rate,
    discrete_multiplier_exponent,
    discrete_sgd_paths,
    gaussian_log_moment,
    linearised_sgd_exponents,
    tanh_neuron_minibatch_exponents,
    tanh_neuron_minibatch_sgd,
)


@pytest.fixture(scope="module")
def weak_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32)
    return x, 0.3 * x + rng.standard_normal(32)


def test_gaussian_log_moment_against_monte_carlo_and_small_step_expansion():
    xi = np.random.default_rng(1).standard_normal(2_000_000)
    for mean, std in [(1.0, 0.3), (0.2, 1.0), (-0.5, 2.0), (3.0, 0.01)]:
        mc = np.log(np.abs(mean + std * xi))
        assert abs(gaussian_log_moment(mean, std) - mc.mean()) < 4 * mc.std() / math.sqrt(xi.size)
    assert gaussian_log_moment(-2.0, 0.0) == pytest.approx(math.log(2.0))
    # lambda_h = a - b^2/2 + h (-a^2/2 + a b^2 - 3 b^4/4) + O(h^2) (theory note, section 13)
    a, b = 1.5, math.sqrt(3.0)
    slope = -a**2 / 2 + a * b**2 - 0.75 * b**4
    gap = lambda h: (discrete_multiplier_exponent(a, b, h) - (a - b**2 / 2)) / h
    assert 2 * gap(1e-3) - gap(2e-3) == pytest.approx(slope, rel=0.01)  # Richardson removes the O(h^2) term
    assert gap(1e-3) == pytest.approx(slope, rel=0.05)


def test_label_noise_gd_step_is_euler_maruyama_of_the_neuron_sde():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(8)
    neuron = TanhNeuron(x, x + 0.1 * rng.standard_normal(8), 0.05, label_noise=2.0)
    sgd = TanhNeuronLabelNoiseGD(neuron)
    w = jnp.array([0.3, -0.7])
    key = jr.PRNGKey(3)
    xi = jr.normal(key, (8,))
    em = w + 0.05 * neuron.vector_field(0.0, w, None) + neuron.diffusion(0.0, w, None) @ (math.sqrt(0.05) * xi)
    np.testing.assert_allclose(np.asarray(sgd.step(w, key)), np.asarray(em), rtol=1e-13, atol=1e-15)


def test_map_exponent_of_label_noise_gd_matches_simulation_not_the_sde():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32)
    sgd = TanhNeuronLabelNoiseGD(TanhNeuron(x, x + 0.1 * rng.standard_normal(32), 0.01, label_noise=5.0))
    eta = 1.6 * float(sgd.neuron.critical_learning_rate())
    sgd = sgd.with_learning_rate(eta)
    # start at 1e-100: tanh is linear there to 1e-200, and nothing underflows within t = 60
    w0 = 1e-100 * np.array([1.0, 0.3])
    n_steps = int(round(60.0 / eta))
    times, states = discrete_sgd_paths(sgd, w0, n_steps, key=4, n_paths=400, n_saves=2)
    rates = (np.log(np.linalg.norm(states[:, 2], axis=1)) - np.log(np.linalg.norm(states[:, 1], axis=1))) / (times[2] - times[1])
    se = rates.std() / math.sqrt(rates.size)
    assert abs(rates.mean() - sgd.map_exponent()) < 4 * se
    assert abs(rates.mean() - sgd.sde_exponent()) > 10 * se  # the O(eta) gap is resolved
    # the map's threshold sits below the SDE's by O(eta): 1 - eta_map/eta_c ~ 1.5 c eta_c
    ratio = sgd.map_critical_learning_rate() / float(sgd.neuron.critical_learning_rate())
    assert 0.8 < ratio < 1.0


def test_minibatch_collapse_probability_crosses_where_the_sde_says(weak_data):
    x, y = weak_data
    z = x * y
    eta_c = 2 * abs(z.mean()) / z.var()
    map_root = _root(lambda eta: tanh_neuron_minibatch_exponents(x, y, eta)[0], 0.3 * eta_c, 3 * eta_c)
    assert abs(map_root / eta_c - 1) < 0.1  # map and SDE thresholds agree to O(eta c)
    sgd = tanh_neuron_minibatch_sgd(x, y, 0.1)
    ratios = np.array([0.4, 0.75, 1.35, 2.0])
    rng = np.random.default_rng(5)
    sweep = collapse_fraction_vs_learning_rate(sgd, ratios * eta_c, 600.0, state0=1e-3 * rng.standard_normal((400, 2)),
                                               tol=1e-2, key=6, n_paths=400)
    assert np.all(np.sign(sweep.sde_exponent) == np.array([1, 1, -1, -1]))
    assert np.all(np.sign(sweep.map_exponent) == np.array([1, 1, -1, -1]))
    assert sweep.high[0] < 0.1 and sweep.high[1] < 0.5
    assert sweep.low[2] > 0.5 and sweep.low[3] > 0.9
    assert np.all(np.diff(sweep.estimate) >= -0.05)
    ds = sweep.to_xarray()
    assert ds["estimate"].shape == (4,) and ds.attrs["n_paths"] == 400


def _root(fn, lo, hi):
    from scipy.optimize import brentq

    return brentq(fn, lo, hi)


def test_linearised_exponents_match_the_neuron_closed_forms(weak_data):
    x, y = weak_data
    z = x * y
    eta = 0.6 * 2 * abs(z.mean()) / z.var()
    flow = tanh_neuron_minibatch_sgd(x, y, eta).flow
    (map_mc, map_se), (sde_mc, sde_se) = linearised_sgd_exponents(flow, np.zeros(2), 200.0, key=7, n_paths=150,
                                                                  sde_step=eta / 4, burn_in=0.5)
    map_exact, sde_exact = tanh_neuron_minibatch_exponents(x, y, eta)
    assert map_exact > 0 and sde_exact > 0
    assert abs(map_mc - map_exact) < 4 * map_se + 0.005
    assert abs(sde_mc - sde_exact) < 4 * sde_se + 0.005


@pytest.mark.parametrize("eta", [0.05, 0.1])
def test_mode_stationary_means_carry_the_map_correction(eta):
    s = np.array([0.1, 0.6, 1.0])
    kappa2 = 0.4  # eta sigma^2 fixed: the SDE is the same for both eta
    sgd = ModeLabelNoiseSGD(LabelNoiseModes(s, eta, math.sqrt(kappa2 / eta)))
    n_steps = int(round(100.0 / eta))
    _, states = discrete_sgd_paths(sgd, np.ones(6), n_steps, key=8, n_paths=400, n_saves=100)
    strengths = states[:, 31:, :3] * states[:, 31:, 3:]  # t in [30, 100]
    per_path = strengths.mean(axis=1)
    mean, se = per_path.mean(axis=0), per_path.std(axis=0) / math.sqrt(per_path.shape[0])
    corrected = sgd.stationary_mean()
    sde = np.asarray(sgd.modes.stationary_mean())
    np.testing.assert_allclose(sde, [0.0, 0.4, 0.8], atol=1e-12)
    assert corrected[0] == 0.0 and sgd.map_exponents()[0] < 0
    assert np.all(np.abs(mean[1:] - corrected[1:]) < 4 * se[1:])
    # the correction -eta (s kappa^2/2 + kappa^4/8) is resolved at eta = 0.1
    if eta == 0.1:
        assert np.all(np.abs(mean[1:] - sde[1:]) > 4 * se[1:])
    assert np.mean(np.abs(strengths[:, -1, 0]) < 1e-3) > 0.95  # the s = 0.1 mode has collapsed


def test_teacher_student_soft_threshold_and_gradient_flow_loss():
    problem = aligned_teacher_student([3.0, 1.0], (6, 5), 40, 0.1, key=0)
    np.testing.assert_allclose(problem.network(problem.singular_values), problem.target, atol=1e-12)
    # gradient flow's limit is the noisy least-squares fit: its loss is the noise's
    noise = problem.target - problem.teacher
    assert float(problem.test_loss(problem.singular_values)) == pytest.approx(np.mean(noise**2), rel=1e-12)
    np.testing.assert_allclose(problem.soft_threshold(0.5), np.maximum(problem.singular_values - 0.5, 0.0))
    assert np.linalg.matrix_rank(problem.teacher) == 2


def test_bad_inputs_raise():
    x = np.linspace(-1, 1, 5)
    sgd = tanh_neuron_minibatch_sgd(x, x, 0.1)
    with pytest.raises(ValueError, match="`learning_rates`"):
        collapse_fraction_vs_learning_rate(sgd, [0.1, -0.2], 1.0, state0=np.ones(2), tol=0.1, key=0)
    with pytest.raises(ValueError, match="`tol`"):
        collapse_fraction_vs_learning_rate(sgd, [0.1], 1.0, state0=np.ones(2), tol=0.0, key=0)
    with pytest.raises(ValueError, match="`state0`"):
        discrete_sgd_paths(sgd, np.ones(3), 10, key=0)
    with pytest.raises(ValueError, match="`n_saves`"):
        discrete_sgd_paths(sgd, np.ones(2), 3, key=0, n_saves=5)
    with pytest.raises(ValueError, match="`flow`"):
        MinibatchSGD(TanhNeuron(x, x, 0.1))
    with pytest.raises(ValueError, match="`std`"):
        gaussian_log_moment(1.0, -1.0)
    with pytest.raises(ValueError, match="`step`"):
        discrete_multiplier_exponent(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="invariant point"):
        linearised_sgd_exponents(sgd.flow, np.ones(2), 1.0, key=0)
    with pytest.raises(ValueError, match="`burn_in`"):
        linearised_sgd_exponents(sgd.flow, np.zeros(2), 1.0, key=0, burn_in=1.5)
    with pytest.raises(ValueError, match="`x` and `y`"):
        tanh_neuron_minibatch_sgd(np.ones(3), np.ones(4), 0.1)
    with pytest.raises(ValueError, match="`teacher_singular_values`"):
        aligned_teacher_student([1.0, 2.0, 3.0], (2, 2), 10, 0.1, key=0)
    with pytest.raises(ValueError, match="threshold"):
        TanhNeuronLabelNoiseGD(TanhNeuron(x, x, 0.1, label_noise=1.0)).map_critical_learning_rate()


def test_two_layer_network_vanishing_units_grow_with_learning_rate_for_sgd_and_its_sde():
    from reducedflow.models.collapse_sgd import vanishing_unit_fractions
    from reducedflow.networks.two_layer_mlp import TwoLayerLayout, TwoLayerMLP

    net = TwoLayerMLP(TwoLayerLayout(1, 4))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1))
    y = np.tanh(1.5 * x[:, 0]) + 0.5 * rng.standard_normal(16)
    theta0 = np.stack([np.asarray(net.init(i)) for i in range(40)])
    sweep = vanishing_unit_fractions(net, x, y, [0.05, 0.5], 40.0, theta0=theta0, key=7, n_paths=40)
    # small eta: SGD and its SDE agree and almost no unit vanishes; large eta: many more vanish in both
    assert sweep.sgd_high[0] < 0.1 and sweep.sde_high[0] < 0.1
    assert sweep.sgd_low[1] > sweep.sgd_high[0] and sweep.sde_low[1] > sweep.sde_high[0]
    assert sweep.to_xarray()["sgd_estimate"].shape == (2,)
    with pytest.raises(ValueError, match="`sde_step_fraction`"):
        vanishing_unit_fractions(net, x, y, [0.1], 1.0, theta0=theta0, key=0, n_paths=40, sde_step_fraction=2.0)
