"""Stochastic-collapse models and SGD as an SDE, against their derived closed forms and against
the discrete SGD maps."""

import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow.models.collapse import LabelNoiseModes, TanhNeuron
from reducedflow.models.sgd_flow import StochasticGradientFlow, sgd_paths


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32)
    return x, x + 0.1 * rng.standard_normal(32)


def test_tanh_neuron_collapses_iff_learning_rate_exceeds_threshold(data):
    x, y = data
    eta_c = float(TanhNeuron(x, y, 1.0).critical_learning_rate())
    np.testing.assert_allclose(eta_c, 2 * abs(np.sum(x * y)) / np.sum(x**2), rtol=1e-14)
    fractions = []
    for ratio in (0.5, 1.6):
        system = TanhNeuron(x, y, ratio * eta_c)
        assert (float(system.lyapunov_exponent()) < 0) == (ratio > 1)
        traj = rf.euler_maruyama(system, np.array([1e-3, -2e-3]), 80.0, dt=0.02, key=0, n_paths=60, saveat=[80.0])
        fractions.append(np.mean(np.linalg.norm(traj.ys[:, -1], axis=-1) < 1e-2))
    assert fractions[0] == 0.0 and fractions[1] > 0.9
    # flipping the labels' sign leaves the threshold unchanged (|sum x y|)
    assert float(TanhNeuron(x, -y, 1.0).critical_learning_rate()) == pytest.approx(eta_c, rel=1e-14)


def test_tanh_neuron_origin_is_invariant_exactly(data):
    x, y = data
    traj = rf.euler_maruyama(TanhNeuron(x, y, 3.0), np.zeros(2), 5.0, dt=0.01, key=1, n_paths=4)
    assert np.all(traj.ys == 0.0)


def test_label_noise_modes_threshold_and_stationary_law():
    system = LabelNoiseModes([0.2, 0.6, 1.0], learning_rate=0.01, label_noise=10.0)  # threshold 0.5
    y0 = np.concatenate([np.ones(3), 0.5 * np.ones(3)])
    traj = rf.euler_maruyama(system, y0, 100.0, dt=0.01, key=1, n_paths=200, saveat=np.linspace(50, 100, 11))
    strengths = traj.observables["mode_strength"]  # (paths, times, modes)
    per_path = strengths.mean(axis=1)
    mean, se = per_path.mean(axis=0), per_path.std(axis=0) / np.sqrt(per_path.shape[0])
    expected = np.asarray(system.stationary_mean())  # [0, 0.1, 0.5]: soft-thresholding
    assert mean[0] < 1e-3
    assert np.all(np.abs(mean[1:] - expected[1:]) < 4 * se[1:] + 0.01)
    variance = strengths[:, :, 1:].var(axis=(0, 1))
    np.testing.assert_allclose(variance, np.asarray(system.stationary_variance())[1:], rtol=0.2)


def test_label_noise_modes_imbalance_decays_at_rate_eta_sigma_squared():
    system = LabelNoiseModes([0.3, 0.8], learning_rate=0.01, label_noise=5.0)  # eta sigma^2 = 0.25
    y0 = np.array([1.0, 0.4, 0.2, 0.9])
    traj = rf.euler_maruyama(system, y0, 4.0, dt=1e-3, key=2, n_paths=50, saveat=[4.0])
    imbalance = traj.observables["imbalance"][:, -1]  # the SDE's is deterministic; EM's spreads ~2%
    exact = (y0[:2] ** 2 - y0[2:] ** 2) * np.exp(-0.25 * 4.0)
    np.testing.assert_allclose(imbalance.mean(axis=0), exact, rtol=0.01)
    np.testing.assert_allclose(imbalance, np.broadcast_to(exact, imbalance.shape), rtol=0.12)
    assert np.all(np.abs(imbalance.mean(axis=0) / (y0[:2] ** 2 - y0[2:] ** 2) - 1) > 0.5)  # it did decay
    # the exact discrete map multiplies it by (1 - eta^2 r^2) per step
    xi = np.array([0.7, -1.3])
    y1 = np.asarray(system.discrete_step(jnp.asarray(y0), jnp.asarray(xi)))
    r = y0[:2] * y0[2:] - np.array([0.3, 0.8]) + 5.0 * xi
    np.testing.assert_allclose(y1[:2] ** 2 - y1[2:] ** 2, (1 - 0.01**2 * r**2) * (y0[:2] ** 2 - y0[2:] ** 2), rtol=1e-12)


def _sgd_problem(lr=0.1, batch=2):
    rng = np.random.default_rng(3)
    loss = lambda th, xi, yi: 0.5 * (jnp.dot(th, xi) - yi) ** 2 + 0.1 * jnp.sum(th**4)
    return StochasticGradientFlow(loss, rng.standard_normal((20, 3)), rng.standard_normal(20), lr, batch, dimension=3)


def test_one_sgd_step_has_the_moments_of_one_euler_maruyama_step():
    flow = _sgd_problem()
    theta0 = np.array([0.3, -0.2, 0.5])
    _, thetas = sgd_paths(flow, theta0, 1, key=0, n_paths=20000)
    steps = thetas[:, 1] - theta0
    drift = 0.1 * np.asarray(flow.vector_field(0.0, jnp.asarray(theta0), None))
    se = steps.std(axis=0) / np.sqrt(steps.shape[0])
    assert np.all(np.abs(steps.mean(axis=0) - drift) < 4 * se)
    cov_theory = 0.1 * np.asarray(flow.diffusion_covariance(0.0, jnp.asarray(theta0)))  # h * G G^T
    np.testing.assert_allclose(cov_theory, 0.1**2 * np.asarray(flow.gradient_covariance(jnp.asarray(theta0))) / 2, rtol=1e-12)
    np.testing.assert_allclose(np.cov(steps.T), cov_theory, rtol=0.05, atol=0.05 * np.abs(cov_theory).max())


def test_bad_collapse_inputs_raise():
    with pytest.raises(ValueError, match="`learning_rate`"):
        LabelNoiseModes([1.0], -0.1, 1.0)
    with pytest.raises(ValueError, match="`x` and `y`"):
        TanhNeuron(np.ones(3), np.ones(4), 1.0)
    with pytest.raises(ValueError, match="`inputs` and `targets`"):
        StochasticGradientFlow(lambda th, x, y: 0.0, np.ones((3, 2)), np.ones(4), 0.1, dimension=2)
    with pytest.raises(ValueError, match="`batch_size`"):
        StochasticGradientFlow(lambda th, x, y: 0.0, np.ones((3, 2)), np.ones(3), 0.1, 0, dimension=2)
