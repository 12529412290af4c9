"""Attractivity of invariant sets: Wilson intervals and collapse probabilities, the top Lyapunov
exponent of linearised normal dynamics (Monte Carlo vs closed forms vs certificate), and the
exact 1-D tools (criterion, scale function, stationary density, hitting probability).

Monte-Carlo tolerances: 4 standard errors plus the first-order Euler–Maruyama bias of a GBM
exponent, h (-a^2/2 + a b^2 - 3 b^4/4) (theory note §13). Every Monte-Carlo call uses the same
step and path count so the compiled ensemble is shared between tests of the same dimension."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

import reducedflow as rf
from reducedflow.analysis.attractivity import (
    LinearisedNormalDynamics,
    collapse_probability,
    hitting_probability,
    linearise_at,
    one_dimensional_criterion,
    scale_function_density,
    wilson_interval,
)
from reducedflow.models.collapse import IsotropicMultiplicativeNoise, QuarticWell, TanhNeuron

DT, N_PATHS, T1 = 0.01, 300, 30.0


def em_bias(a, b2, h=DT):
    """First-order EM bias of the exponent of dX = aX dt + bX dB (b2 = b^2)."""
    return h * (-a**2 / 2 + a * b2 - 3 * b2**2 / 4)


def assert_close_mc(estimate, expected, bias=0.0):
    assert abs(estimate.value - (expected + bias)) < 4 * estimate.stderr, (estimate, expected, bias)
    assert estimate.low < estimate.value < estimate.high


# ----------------------------------------------------------------------------------------------
# binomial intervals


def test_wilson_interval_known_values_and_defining_equation():
    low, high = wilson_interval(0, 100)
    z2 = stats.norm.ppf(0.975) ** 2
    assert low == 0.0 and high == pytest.approx(z2 / (100 + z2), rel=1e-12)  # ~0.037
    assert high == pytest.approx(0.0370, abs=1e-4)
    assert wilson_interval(100, 100)[0] == pytest.approx(1 - z2 / (100 + z2), rel=1e-12)
    # the ends solve |k/n - p| = z sqrt(p (1 - p) / n)
    k, n = 7, 30
    for p in wilson_interval(k, n, confidence=0.9):
        assert abs(k / n - p) == pytest.approx(stats.norm.ppf(0.95) * np.sqrt(p * (1 - p) / n), rel=1e-10)
    lows, highs = wilson_interval(np.array([0, 5, 10]), 10)
    assert lows.shape == (3,) and np.all(lows <= np.array([0, 0.5, 1.0])) and np.all(highs >= np.array([0, 0.5, 1.0]))


def test_wilson_interval_coverage_is_about_95_percent():
    n, p, reps = 50, 0.3, 4000
    k = np.random.default_rng(0).binomial(n, p, size=reps)
    low, high = wilson_interval(k, n)
    coverage = np.mean((low <= p) & (p <= high))
    # the exact coverage from the binomial law, and the empirical one, are both ~0.95
    ks = np.arange(n + 1)
    lo_all, hi_all = wilson_interval(ks, n)
    exact = float(np.sum(stats.binom.pmf(ks, n, p) * ((lo_all <= p) & (p <= hi_all))))
    assert 0.93 < exact < 0.97
    assert abs(coverage - exact) < 3 * np.sqrt(exact * (1 - exact) / reps)
    # coverage oscillates with p (lattice effect) but averages to the nominal 95 %
    ps = np.linspace(0.05, 0.95, 91)
    average = np.mean([np.sum(stats.binom.pmf(ks, n, q) * ((lo_all <= q) & (q <= hi_all))) for q in ps])
    assert average == pytest.approx(0.95, abs=0.01)


def test_collapse_probability_counts_paths_below_tolerance():
    d = np.array([[1e-5, 2e-3, 0.5, np.nan], [1e-9, 1e-8, 1e-4, 1e-1]])
    one = collapse_probability(d[0], tol=1e-2)
    assert (one.estimate, one.n) == (0.5, 4)  # nan counts as not collapsed
    assert (one.low, one.high) == wilson_interval(2, 4)
    many = collapse_probability(d, tol=1e-3)
    np.testing.assert_array_equal(many.estimate, [0.25, 0.75])
    assert many.low.shape == (2,) and np.all(many.low < many.estimate) and np.all(many.estimate < many.high)
    with pytest.raises(ValueError, match="`tol`"):
        collapse_probability(d, tol=0.0)


# ----------------------------------------------------------------------------------------------
# linearised normal dynamics: Monte Carlo vs closed forms


def test_gbm_exponent_is_ito_and_the_certificate_fails_where_mean_square_grows():
    a, b = 0.5, 1.5  # a - b^2/2 = -0.625 < 0 < 2a + b^2 = 3.25
    gbm = LinearisedNormalDynamics(-a, b)  # dx = -H x dt + B x dB with H = -a
    np.testing.assert_allclose(gbm.closed_form_exponents(), [a - b**2 / 2], rtol=1e-14)
    assert gbm.mean_square_exponent() == pytest.approx(2 * a + b**2, rel=1e-12)
    mc = gbm.top_exponent_mc(0, N_PATHS, T1, DT)
    assert_close_mc(mc, a - b**2 / 2, em_bias(a, b**2))
    assert mc.high < 0 and abs(mc.value - a) > 20 * mc.stderr  # attractive; not the Stratonovich a
    certificate = gbm.quadratic_certificate()
    assert not certificate.valid and np.isnan(certificate.exponent_bound)
    assert not gbm.quadratic_certificate(P=[[1.0]]).valid
    # mean-square stable GBM: the certificate holds with decay rate -(2a + b^2)
    a, b = -1.0, 0.5
    stable = LinearisedNormalDynamics(-a, b).quadratic_certificate()
    assert stable.valid
    assert stable.decay_rate == pytest.approx(-(2 * a + b**2), rel=1e-12)
    assert stable.exponent_bound >= a - b**2 / 2


def _diagonal_example():
    h = np.array([0.8, -0.4, 1.5])
    b = np.zeros((9, 3))  # 9 Brownian motions (the shape of isotropic noise in 3-D: shared compile)
    b[:4] = [[0.3, 0.5, 0.2], [0.2, 0.6, 0.1], [0.4, 0.0, 0.3], [0.0, 0.3, 0.0]]
    exponents = -h - 0.5 * np.sum(b**2, axis=0)  # [-0.945, 0.05, -1.57]
    return np.diag(h), np.array([np.diag(row) for row in b]), exponents


def test_commuting_closed_form_matches_monte_carlo_and_survives_a_change_of_basis():
    H, B, exponents = _diagonal_example()
    system = LinearisedNormalDynamics(H, B)
    np.testing.assert_allclose(system.closed_form_exponents(), np.sort(exponents)[::-1], rtol=1e-12)
    mc = system.top_exponent_mc(1, N_PATHS, T1, DT)
    assert_close_mc(mc, exponents.max(), em_bias(0.4, 0.7))
    # same dynamics in a non-orthogonal basis: the common eigenbasis is found again
    S = np.array([[1.0, 0.7, 0.0], [-0.2, 1.5, 0.3], [0.1, 0.0, 0.9]])
    Si = np.linalg.inv(S)
    moved = LinearisedNormalDynamics(S @ H @ Si, np.array([S @ b @ Si for b in B]))
    np.testing.assert_allclose(moved.closed_form_exponents(), np.sort(exponents)[::-1], rtol=1e-9)
    # a rotation generator contributes +beta^2/2 (complex eigenvalues +-i beta)
    beta = 0.6
    rotation = LinearisedNormalDynamics(0.5 * np.eye(2), np.array([[[0.0, -beta], [beta, 0.0]]]))
    np.testing.assert_allclose(rotation.closed_form_exponents(), [-0.5 + beta**2 / 2] * 2, rtol=1e-12)


def test_non_commuting_example_agrees_with_sde_lyapunov_exponent_and_the_certificate_bounds_it():
    H = np.array([[1.0, 0.8], [-0.3, 0.5]])
    B = np.array([[[0.2, 1.0], [0.0, 0.3]], [[0.0, 0.0], [0.7, -0.4]], [[0.3, 0.0], [0.0, 0.0]], [[0.0, 0.2], [0.2, 0.0]]])
    system = LinearisedNormalDynamics(H, B)
    with pytest.raises(ValueError, match="commute"):
        system.closed_form_exponents()
    mc = system.top_exponent_mc(2, N_PATHS, T1, DT)
    reference = rf.analysis.sde_lyapunov_exponent(system, y0=np.zeros(2), t1=20.0, dt=DT, key=3, n_paths=200,
                                                  transient=5.0)
    assert abs(mc.value - reference.exponent) < 4 * np.hypot(mc.stderr, reference.standard_error)
    certificate = system.quadratic_certificate()
    assert certificate.valid
    np.testing.assert_allclose(certificate.generator_matrix, -np.eye(2), atol=1e-12)
    assert certificate.exponent_bound > mc.value - 4 * mc.stderr  # an upper bound, never undercut
    assert certificate.decay_rate <= -system.mean_square_exponent() + 1e-12  # no quadratic V beats E|x|^2's rate
    assert 2 * mc.value < system.mean_square_exponent()  # Jensen


def test_tanh_neuron_linearisation_matches_its_closed_form_exponent():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4)
    # 4 data points: 4 Brownian motions, as above; |c| large against the noise, so the direction
    # settles on the u axis well within the transient
    y = 2.0 * x + 0.3 * rng.standard_normal(4)
    neuron = TanhNeuron(x, y, 1.3)
    linear = linearise_at(neuron, np.zeros(2))  # jax Jacobians of the full model at the origin
    c, s2 = np.mean(x * y), np.mean(x**2)
    np.testing.assert_allclose(np.asarray(linear.H), -c * np.array([[0, 1], [1, 0]]), atol=1e-14)
    exponents = linear.closed_form_exponents()  # u, v = w1 +- w2 are GBMs
    np.testing.assert_allclose(exponents, [abs(c) - 0.65 * s2, -abs(c) - 0.65 * s2], rtol=1e-12)
    assert exponents[0] == pytest.approx(float(neuron.lyapunov_exponent()), rel=1e-12)
    mc = linear.top_exponent_mc(4, N_PATHS, T1, DT)
    assert_close_mc(mc, exponents[0], em_bias(abs(c), 1.3 * s2))
    with pytest.raises(ValueError, match="not on an invariant set"):
        linearise_at(neuron, np.array([0.1, 0.2]))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_isotropic_noise_exponent_from_the_linearisation(k):
    a, b = 0.3, 0.8
    model = IsotropicMultiplicativeNoise(a, b, k)
    linear = linearise_at(model, np.zeros(k))
    expected = -a + (k - 2) * b**2 / 2
    assert float(model.lyapunov_exponent()) == pytest.approx(expected, rel=1e-12)
    assert linear.mean_square_exponent() == pytest.approx(-2 * a + k * b**2, rel=1e-12)
    if k > 1:
        with pytest.raises(ValueError, match="commute"):
            linear.closed_form_exponents()
    mc = linear.top_exponent_mc(10 + k, N_PATHS, T1, DT)
    bias = em_bias(-a, b**2) if k == 1 else 0.0
    assert abs(mc.value - expected - bias) < 4 * mc.stderr + 2 * abs(em_bias(-a, b**2))


# ----------------------------------------------------------------------------------------------
# one dimension


@pytest.mark.parametrize("zeta", [1.0, 2.0])
def test_one_dimensional_criterion_for_the_quartic_well(zeta):
    mu = 1.5
    well = QuarticWell(mu, zeta)
    loss = lambda th: th**4 / 4 - mu * th**2 / 2
    diffusion = lambda th: 0.5 * well.diffusion(0.0, jnp.array([th]), None)[0] ** 2  # D = g^2 / 2
    L2 = float(jax.grad(jax.grad(loss))(0.0))
    D2 = float(jax.grad(jax.grad(diffusion))(0.0))
    result = one_dimensional_criterion(L2, D2)
    assert result.alpha == pytest.approx(zeta**2 / 2 - mu, rel=1e-12)
    assert result.exponent == pytest.approx(float(well.lyapunov_exponent()), rel=1e-12)
    assert result.attractive == (zeta > np.sqrt(2 * mu))
    assert one_dimensional_criterion(-1.0, 3.0).attractive  # a maximum made attractive by noise


def test_quartic_stationary_density_from_the_scale_function():
    mu, zeta = 1.5, 1.0
    drift = lambda th: -(th**3 - mu * th)
    x = np.geomspace(1e-7, 7.0, 3001)
    result = scale_function_density(drift, lambda th: zeta**2 * th**2, x, x_ref=1.0)
    beta = 2 * mu / zeta**2 - 2
    exact = x**beta * np.exp(-(x**2) / zeta**2) / (0.5 * zeta ** (beta + 1) * special.gamma((beta + 1) / 2))
    assert result.normalisable
    assert np.max(np.abs(result.stationary_density - exact)) < 1e-3
    assert integrate.simpson(x**2 * result.stationary_density, x=x) == pytest.approx(mu - zeta**2 / 2, abs=1e-6)
    # scale function pieces: s' = theta^(-2 mu/zeta^2) e^(theta^2/zeta^2) up to a constant, s(x_ref) = 0
    log_sp_exact = -2 * mu / zeta**2 * np.log(x) + x**2 / zeta**2 - 1 / zeta**2
    np.testing.assert_allclose(result.log_scale_derivative, log_sp_exact, atol=1e-6)
    for point in (0.01, 0.5, 2.0, 4.0):  # s(x) = int_1^x s', by adaptive quadrature
        i = np.argmin(np.abs(x - point))
        exact_s = integrate.quad(lambda th: np.exp(-2 * mu / zeta**2 * np.log(th) + th**2 / zeta**2 - 1 / zeta**2),
                                 1.0, x[i], epsrel=1e-12)[0]
        assert result.scale[i] == pytest.approx(exact_s, rel=1e-4)  # Simpson on the grid; e^{x^2} is steep at 4
    np.testing.assert_allclose(result.speed_density, 1 / (zeta**2 * x**2 * np.exp(log_sp_exact)), rtol=1e-5)
    # above threshold (zeta^2 > 2 mu) the density is not normalisable: m ~ theta^(2 mu/zeta^2 - 2) near 0
    above = scale_function_density(drift, lambda th: 4.0 * th**2, x, x_ref=1.0)
    assert not above.normalisable and above.stationary_density is None
    assert above.tail_exponents[0] == pytest.approx(2 * mu / 4.0 - 2, abs=1e-4)


def test_hitting_probability_closed_form_and_monte_carlo():
    # GBM: s'(x) = x^(-2a/b^2), P = (R^g - x0^g) / (R^g - eps^g) with g = 1 - 2a/b^2
    a, b, x0, eps, R = 0.3, 1.0, 0.2, 0.01, 1.0
    g = 1 - 2 * a / b**2
    p_gbm = hitting_probability(lambda z: a * z, lambda z: b**2 * z**2, x0, eps, R)
    assert p_gbm == pytest.approx((R**g - x0**g) / (R**g - eps**g), rel=1e-8)
    # quartic well above threshold, against Euler–Maruyama paths monitored at every step
    mu, zeta, x0, eps, R = 1.5, 2.0, 0.3, 0.01, 1.0
    drift = lambda th: -(th**3 - mu * th)
    p = hitting_probability(drift, lambda th: zeta**2 * th**2, x0, eps, R)
    T, h, n = 8.0, 2e-3, 2000
    traj = rf.euler_maruyama(QuarticWell(mu, zeta), np.array([x0]), T, dt=h, key=5, n_paths=n,
                             coordinates="log", saveat=np.arange(0.0, T + h / 2, h))
    z = traj.observables["log_abs_state"][:, :, 0]
    never = z.shape[1]
    first_low = np.where((z <= np.log(eps)).any(1), (z <= np.log(eps)).argmax(1), never)
    first_high = np.where((z >= np.log(R)).any(1), (z >= np.log(R)).argmax(1), never)
    assert np.sum((first_low == never) & (first_high == never)) <= 0.002 * n  # nearly all paths decided
    hits = int(np.sum(first_low < first_high))
    low, high = wilson_interval(hits, n)
    assert low < p < high
    # a factor-2 error in the diffusion would be caught
    wrong = hitting_probability(drift, lambda th: zeta**2 * th**2 / 2, x0, eps, R)
    assert not low < wrong < high
    # eps -> 0: P stays finite iff the origin attracts (s(0+) finite), else it vanishes
    attract = [hitting_probability(drift, lambda th: 4.0 * th**2, 0.3, e, R) for e in (1e-4, 1e-8)]
    repel = [hitting_probability(drift, lambda th: 1.0 * th**2, 0.3, e, R) for e in (1e-4, 1e-8)]
    assert attract[1] > 0.9 * attract[0] > 0.1
    assert repel[1] < 1e-3 * repel[0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="`B`"):
        LinearisedNormalDynamics(np.eye(2), np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="`H`"):
        LinearisedNormalDynamics(np.ones((2, 3)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="`trials`"):
        wilson_interval(1, 0)
    with pytest.raises(ValueError, match="`successes`"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match="`confidence`"):
        wilson_interval(1, 4, confidence=1.5)
    with pytest.raises(ValueError, match="`eps`"):
        hitting_probability(lambda x: x, lambda x: x**2, 0.5, 0.6, 1.0)
    with pytest.raises(ValueError, match="`diffusion_second_derivative`"):
        one_dimensional_criterion(1.0, -1.0)
    with pytest.raises(ValueError, match="diagonalisable"):
        LinearisedNormalDynamics(np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([np.eye(2)])).closed_form_exponents()
