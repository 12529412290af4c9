"""Soft committee machine ODEs (Saad & Solla 1995; Goldt et al. 2019) against independent
witnesses: Monte Carlo of the generalisation error and of the SGD increments, the symbolically
derived population gradient flow, and the closed forms of shared/theory/committee.md."""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import reducedflow.derive
from reducedflow.models.committee import (
    SoftCommittee,
    committee_generalisation_error,
    max_learning_rate,
    plateau_escape_rate,
    plateau_fixed_point,
    plateau_generalisation_error,
)


@eqx.filter_jit
def _rhs(system, y):
    return system.vector_field(0.0, y, None)


@eqx.filter_jit
def _jacobian(system, y):
    return system.jacobian(y)


def _g(z):
    return scipy.special.erf(z / math.sqrt(2.0))


def _g_prime(z):
    return math.sqrt(2.0 / math.pi) * np.exp(-0.5 * z**2)


def _random_weights(rng, k, m, n):
    """Actual weight vectors in dimension n and their order parameters."""
    w = rng.normal(size=(k, n)) * rng.uniform(0.5, 1.5, size=(k, 1))
    w_star = rng.normal(size=(m, n))
    return w, w_star, w @ w.T / n, w @ w_star.T / n, w_star @ w_star.T / n


def test_generalisation_error_matches_monte_carlo():
    rng = np.random.default_rng(3)
    k, m, n = 3, 2, 20
    w, w_star, q, r, t = _random_weights(rng, k, m, n)
    v, a = rng.normal(size=k), rng.normal(size=m)
    exact = float(committee_generalisation_error(jnp.asarray(q), jnp.asarray(r), jnp.asarray(t), jnp.asarray(v), jnp.asarray(a)))
    samples = []
    for _ in range(5):  # 1e6 inputs x ~ N(0, I_n), in chunks
        x = rng.normal(size=(200_000, n))
        student = _g(x @ w.T / math.sqrt(n)) @ v
        teacher = _g(x @ w_star.T / math.sqrt(n)) @ a
        samples.append(0.5 * (student - teacher) ** 2)
    samples = np.concatenate(samples)
    estimate, stderr = samples.mean(), samples.std() / math.sqrt(samples.size)
    assert abs(estimate - exact) < 4 * stderr, (estimate, exact, stderr)
    assert stderr < 2e-3 * exact  # the check can see a wrong term


def test_vector_field_matches_monte_carlo_sgd_increments():
    r"""Every term, including the eta^2 SGD noise, sigma^2 J2 and weight decay, against Monte
    Carlo averages of the per-step increments times N (fields sampled from C)."""
    rng = np.random.default_rng(5)
    k, m, n = 2, 2, 30
    _, _, q, r, t = _random_weights(rng, k, m, n)
    v, a = rng.normal(size=k), rng.normal(size=m)
    eta, eta_v, sigma, kappa = 0.8, 0.6, 0.3, 0.05
    system = SoftCommittee(t, k, teacher_second_layer=a, learning_rate=eta, second_layer_rate=eta_v,
                           noise=sigma, weight_decay=kappa, train_second_layer=True)
    y = system.initial_state(q, r, v)
    rhs = {key: np.asarray(val) for key, val in _rhs(system, y).items()}

    cov = np.block([[q, r], [r.T, t]])
    fields = rng.multivariate_normal(np.zeros(k + m), cov, size=1_000_000)
    lam, rho = fields[:, :k], fields[:, k:]
    delta = _g(rho) @ a + sigma * rng.normal(size=lam.shape[0]) - _g(lam) @ v
    drive = v * _g_prime(lam) * delta[:, None]  # (S, K): v_i g'(lam_i) Delta
    increments = {
        "R": eta * drive[:, :, None] * rho[:, None, :] - kappa * r,
        "Q": eta * (drive[:, :, None] * lam[:, None, :] + drive[:, None, :] * lam[:, :, None])
        + eta**2 * drive[:, :, None] * drive[:, None, :] - 2 * kappa * q,
        "v": eta_v * _g(lam) * delta[:, None] - kappa * v,
    }
    for key, samples in increments.items():
        mean = samples.mean(axis=0)
        stderr = samples.std(axis=0) / math.sqrt(samples.shape[0])
        z = np.abs(mean - rhs[key]) / stderr
        assert np.all(z < 4.5), (key, mean, rhs[key], z)
    # and the eta^2 part is resolved: dropping it would be detected
    no_noise = SoftCommittee(t, k, teacher_second_layer=a, learning_rate=eta, second_layer_rate=eta_v,
                             noise=sigma, weight_decay=kappa, train_second_layer=True, sgd_noise_terms=False)
    gap = np.abs(rhs["Q"] - np.asarray(_rhs(no_noise, y)["Q"]))
    stderr_q = increments["Q"].std(axis=0) / math.sqrt(fields.shape[0])
    assert np.all(gap > 10 * stderr_q)


def test_gradient_terms_equal_symbolic_two_layer_flow():
    """The O(eta) part equals the population gradient flow derived by sympy from the risk
    (reducedflow.derive.two_layer, "sum" normalisation, free first layer, erf(z/sqrt2))."""
    rng = np.random.default_rng(7)
    k = m = 2
    _, _, q, r, t = _random_weights(rng, k, m, 40)
    v, a = rng.normal(size=k), rng.normal(size=m)
    derived = reducedflow.derive.two_layer("erf_sqrt2", width=k, teacher_width=m, second_layer="trained",
                                           first_layer="free", normalisation="sum", epsilon=1.0,
                                           teacher_second_layer=a, teacher_overlaps=t)
    values = {f"a_{i + 1}": v[i] for i in range(k)}
    values.update({f"Q_{i + 1}{j + 1}": q[i, j] for i in range(k) for j in range(i, k)})
    values.update({f"R_{i + 1}{n + 1}": r[i, n] for i in range(k) for n in range(m)})
    x = jnp.asarray([values[name] for name in derived.state_names])
    expected = np.asarray(derived.vector_field(0.0, x, None))

    eta, eta_v = 0.7, 0.3  # the O(eta) flow is eta times the unit-rate flow (eta_v for v)
    system = SoftCommittee(t, k, teacher_second_layer=a, learning_rate=eta, second_layer_rate=eta_v,
                           train_second_layer=True, sgd_noise_terms=False)
    y = system.initial_state(q, r, v)
    f = _rhs(system, y)
    got = {f"a_{i + 1}": f["v"][i] / eta_v for i in range(k)}
    got.update({f"Q_{i + 1}{j + 1}": f["Q"][i, j] / eta for i in range(k) for j in range(i, k)})
    got.update({f"R_{i + 1}{n + 1}": f["R"][i, n] / eta for i in range(k) for n in range(m)})
    got = np.array([float(got[name]) for name in derived.state_names])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert np.abs(expected).min() > 1e-3  # a generic point: no component vanishes trivially
    assert abs(float(system.generalisation_error(y)) - float(derived.risk(x))) < 1e-12
    # fixed second layer: same first-layer flow, v constant
    fixed = SoftCommittee(t, k, teacher_second_layer=a, learning_rate=eta, sgd_noise_terms=False)
    g = _rhs(fixed, y)
    np.testing.assert_allclose(g["Q"], f["Q"], rtol=0, atol=1e-14)
    assert np.all(np.asarray(g["v"]) == 0)


@pytest.mark.parametrize("k", [2, 3])
def test_symmetric_plateau_fixed_point_and_height(k):
    system = SoftCommittee(np.eye(k), k, learning_rate=1.0, sgd_noise_terms=False)
    point = {key: jnp.asarray(val) for key, val in plateau_fixed_point(k).items()}
    residual = _rhs(system, point)
    assert max(float(jnp.abs(residual[key]).max()) for key in ("Q", "R")) < 1e-14
    height = float(system.generalisation_error(point))
    assert abs(height - plateau_generalisation_error(k)) < 1e-14
    # a nearby symmetric point is not a fixed point (the residual test can fail)
    shifted = dict(point, R=point["R"] * 1.01)
    assert float(jnp.abs(_rhs(system, shifted)["R"]).max()) > 1e-4


def test_trajectory_plateaus_at_the_closed_form_height():
    """From a nearly symmetric initialisation (first-order flow) the error lingers at the
    plateau height before escaping."""
    import reducedflow

    k = 2
    system = SoftCommittee(np.eye(k), k, learning_rate=1.0, sgd_noise_terms=False)
    y0 = system.initial_state(np.eye(k), 1e-3 + 1e-8 * np.array([[1.0, 0.3], [-0.5, 0.2]]))
    traj = reducedflow.solve(system, y0, 600.0, saveat=np.linspace(0, 600, 601), rtol=1e-10, atol=1e-13)
    eg = np.asarray(traj.observables["generalisation_error"])
    slope = np.abs(np.gradient(eg, traj.ts))
    middle = np.argmin(slope[50:400]) + 50
    # the plateau is visited at a finite distance (the approach and the escape are both slow)
    assert abs(eg[middle] - plateau_generalisation_error(k)) < 3e-3 * plateau_generalisation_error(k)
    assert eg[0] > 2 * eg[middle]  # it did come down onto the plateau
    assert eg[-1] < 1e-3  # it escapes and learns


@pytest.mark.parametrize("k", [2, 3, 4])
def test_plateau_escape_eigenvalue(k):
    eta = 0.5
    system = SoftCommittee(np.eye(k), k, learning_rate=eta, sgd_noise_terms=False)
    point = {key: jnp.asarray(val) for key, val in plateau_fixed_point(k).items()}
    eigenvalues = np.linalg.eigvals(np.asarray(_jacobian(system, point))).real
    top = eigenvalues.max()
    assert abs(top - plateau_escape_rate(k, eta)) < 1e-9 * top
    assert np.sum(np.abs(eigenvalues - top) < 1e-8) == (k - 1) ** 2


def test_jacobian_at_perfect_solution_matches_sympy_k1():
    """The K = M = 1 Jacobian with the eta^2 terms, (R, Q) order (committee.md section 7)."""
    eta = 1.3
    system = SoftCommittee(np.eye(1), 1, learning_rate=eta)
    y = system.initial_state(np.eye(1), np.eye(1))
    s3, s5, pi = math.sqrt(3), math.sqrt(5), math.pi
    expected = np.array([
        [-8 * s3 * eta / (9 * pi), s3 * eta / (3 * pi)],
        [8 * eta * (5 * s3 * pi - 9 * s5 * eta) / (45 * pi**2), 2 * eta * (6 * s5 * eta - 5 * s3 * pi) / (15 * pi**2)],
    ])
    np.testing.assert_allclose(np.asarray(_jacobian(system, y)), expected, rtol=1e-12, atol=1e-14)


def test_max_learning_rate_k1():
    eta_max = max_learning_rate(1)
    assert abs(eta_max - math.pi * math.sqrt(5.0 / 3.0)) < 1e-9


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="width"):
        SoftCommittee(np.eye(2), 0)
    with pytest.raises(ValueError, match="teacher_overlaps"):
        SoftCommittee(np.zeros((0, 0)), 2)
    with pytest.raises(ValueError, match="learning_rate"):
        SoftCommittee(np.eye(2), 2, learning_rate=-0.1)
    with pytest.raises(ValueError, match="second_layer_rate"):
        SoftCommittee(np.eye(2), 2, second_layer_rate=-1.0)
    with pytest.raises(ValueError, match="teacher_overlaps"):
        SoftCommittee(np.array([[1.0, 2.0], [2.0, 1.0]]), 2)
    system = SoftCommittee(np.eye(2), 2)
    with pytest.raises(ValueError, match="y0"):  # |R| > sqrt(Q T): not a covariance
        system.initial_state(np.eye(2), 1.5 * np.eye(2))
    with pytest.raises(ValueError, match="y0"):
        system.initial_state(np.eye(3), np.eye(2))
