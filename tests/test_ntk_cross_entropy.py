"""NTK cross-entropy dynamics and gradient starvation (models/ntk_cross_entropy.py): the reduced
z-flow against the primal flow on theta, Newton against long integrations of the primal and dual
flows, implicit differentiation against finite differences, and the closed forms of the
decoupled cases against root finding and integration.

Sizes are small and shared (Phi is 6 x 40; two-feature systems are 2 x 2) so that each system
type compiles once per save-grid length."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import reducedflow as rf
from reducedflow.models.ntk_cross_entropy import (
    DualAscentFlow,
    FeatureResponseFlow,
    LinearisedPrimalFlow,
    QuadraticResponseFlow,
    binary_entropy,
    decoupled_fixed_point,
    feature_decomposition,
    lambert_w_margin,
    legendre_lower_bound,
    spectral_decoupling_fixed_point,
    spectral_decoupling_margin,
    two_feature_starvation_derivative,
    two_feature_system,
)

# scipy warns that `jac` has no effect for the explicit methods used with backend="scipy".
pytestmark = pytest.mark.filterwarnings("ignore:The following arguments have no effect")

N, P = 6, 40
TIGHT = dict(rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    phi = rng.standard_normal((N, P)) * 0.4
    labels = np.where(rng.standard_normal(N) > 0, 1.0, -1.0)
    offset = 0.3 * rng.standard_normal(N)
    return phi, labels, offset


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


# ----------------------------------------------------------------------------------------------
# The reduction theta -> z


def test_decomposition_conventions(data):
    phi, labels, _ = data
    dec = feature_decomposition(phi, labels)
    assert dec.left.shape == (N, N) and dec.right.shape == (P, N)
    np.testing.assert_allclose((dec.left * dec.singular_values) @ dec.right.T, labels[:, None] * phi, atol=1e-13)
    assert np.all(dec.left.sum(axis=0) >= 0)
    # Both conventions (SVD of Phi or of Y Phi) give the same z: z = U_Phi^T yhat = U_{YPhi}^T Y yhat.
    theta = np.random.default_rng(1).standard_normal(P)
    u_phi, s_phi, vt_phi = np.linalg.svd(phi, full_matrices=False)
    z_phi = (s_phi * (vt_phi @ theta))
    z_yphi = dec.singular_values * (dec.right.T @ theta)
    np.testing.assert_allclose(np.sort(np.abs(z_phi)), np.sort(np.abs(z_yphi)), rtol=1e-12)
    np.testing.assert_allclose(dec.left.T @ (labels * (phi @ theta)), z_yphi, atol=1e-13)


def test_euler_steps_on_theta_equal_euler_steps_on_z(data):
    phi, labels, offset = data
    primal = LinearisedPrimalFlow(phi, labels, weight_decay=0.05, spectral_decoupling=0.02, learning_rate=0.7,
                                  output_offset=offset)
    dec = primal.decomposition()
    flow = primal.response_flow(dec)
    theta, z, step = jnp.zeros(P), jnp.zeros(N), 0.05
    for _ in range(200):
        theta = theta + step * primal.vector_field(0.0, theta, None)
        z = z + step * flow.vector_field(0.0, z, None)
    err = float(np.max(np.abs(np.asarray(primal.responses(theta, dec)) - np.asarray(z))))
    print(f"200 Euler steps: max |z(theta) - z| = {err:.1e}")
    assert err <= 1e-12


def test_z_flow_matches_primal_flow(data):
    phi, labels, offset = data
    primal = LinearisedPrimalFlow(phi, labels, weight_decay=0.1, spectral_decoupling=0.03, learning_rate=1.0,
                                  output_offset=offset)
    dec = primal.decomposition()
    flow = primal.response_flow(dec)
    ts = np.linspace(0.0, 20.0, 41)
    big = rf.solve(primal, np.zeros(P), 20.0, saveat=ts, solver=diffrax.Tsit5(), **TIGHT)
    small = rf.solve(flow, np.zeros(N), 20.0, saveat=ts, solver=diffrax.Tsit5(), **TIGHT)
    z_from_theta = np.asarray(primal.responses(big.ys, dec))
    err = float(np.max(np.abs(z_from_theta - small.ys)))
    margins_err = float(np.max(np.abs(big.observables["margins"] - small.observables["margins"])))
    print(f"primal vs z-flow: max |dz| = {err:.2e}, max |d margins| = {margins_err:.2e}, |z| ~ {np.abs(small.ys).max():.2f}")
    assert np.abs(small.ys).max() > 1.0
    assert err <= 1e-10
    assert margins_err <= 1e-10


# ----------------------------------------------------------------------------------------------
# Fixed points


def test_newton_fixed_point_matches_long_primal_and_dual_integrations(data):
    phi, labels, _ = data
    lam = 0.05
    primal = LinearisedPrimalFlow(phi, labels, weight_decay=lam)
    dec = primal.decomposition()
    flow = primal.response_flow(dec)
    z_star = flow.fixed_point()
    residual = flow.fixed_point_residual(z_star)
    # t1 = 1000 = 50/lambda: every rate is >= lambda, so the flow is within e^-50 of z*
    flow = FeatureResponseFlow(dec.left, dec.singular_values, lam, 0.0, 1.0, np.zeros(N))
    long = rf.solve(flow, np.zeros(N), 1000.0, saveat=np.linspace(0.0, 1000.0, 41), solver=diffrax.Tsit5(), **TIGHT)
    dual = primal.dual_flow(dual_learning_rate=1.0, decomposition=dec)
    w0 = DualAscentFlow.initial_state(1e-8, N)
    dual_traj = rf.solve(dual, w0, 200.0, log_time=True, saveat=rf.LogTimes(20), rtol=1e-10, atol=1e-12,
                         backend="scipy", solver="Radau")
    err_primal = _rel(long.ys[-1], z_star)
    err_dual = _rel(dual_traj.observables["responses"][-1], z_star)
    print(f"Newton residual {residual:.1e}; long primal {err_primal:.1e}; dual {err_dual:.1e}")
    assert residual <= 1e-12
    assert err_primal <= 1e-10
    assert err_dual <= 1e-8


def test_strong_duality_and_legendre_identity(data):
    phi, labels, _ = data
    lam = 0.05
    flow = FeatureResponseFlow.from_features(phi, labels, weight_decay=lam)
    z_star = flow.fixed_point()
    alpha_star = scipy.special.expit(-flow.left_singular_vectors @ z_star)
    dual = DualAscentFlow(flow.left_singular_vectors, flow.singular_values, weight_decay=lam)
    dual_value = float(np.sum(binary_entropy(alpha_star)) - 0.5 * alpha_star @ np.asarray(dual.coupling_matrix()) @ alpha_star)
    primal_value = flow.objective(z_star)  # = min over theta of L(theta) (minimum-norm theta)
    print(f"min L = {primal_value:.15f}, max D = {dual_value:.15f}")
    assert abs(primal_value - dual_value) <= 1e-12 * abs(primal_value)
    # Legendre: log(1 + e^-m) = max_alpha [H(alpha) - alpha m], argmax sigma(-m)
    for m in (-3.0, 0.0, 0.7, 5.0):
        res = scipy.optimize.minimize_scalar(lambda a: -legendre_lower_bound(a, m), bounds=(1e-12, 1 - 1e-12),
                                             method="bounded", options={"xatol": 1e-12})
        assert abs(-res.fun - np.logaddexp(0.0, -m)) <= 1e-12
        assert abs(res.x - scipy.special.expit(-m)) <= 1e-5
        grid = np.linspace(0.001, 0.999, 999)
        assert np.all(legendre_lower_bound(grid, m) <= np.logaddexp(0.0, -m) + 1e-15)
    assert abs(legendre_lower_bound(0.5, 0.0) - np.log(2.0)) <= 1e-15


def test_starvation_matrix_matches_finite_differences(data):
    phi, labels, offset = data
    dec = feature_decomposition(phi, labels)
    for wd, sd, b0 in ((0.05, 0.0, None), (0.05, 0.02, None), (0.05, 0.01, labels * offset)):
        def z_of(s):
            return FeatureResponseFlow(dec.left, s, wd, sd, 1.0, b0).fixed_point()

        s = dec.singular_values
        flow = FeatureResponseFlow(dec.left, s, wd, sd, 1.0, b0)
        matrix = flow.starvation_matrix()
        fd = np.empty_like(matrix)
        for i in range(s.size):
            h = 1e-4 * s[i] ** 2
            up, down = s**2, s**2
            up, down = up.copy(), down.copy()
            up[i] += h
            down[i] -= h
            fd[:, i] = (z_of(np.sqrt(up)) - z_of(np.sqrt(down))) / (2 * h)
        err = _rel(matrix, fd)
        print(f"wd={wd} sd={sd} offset={b0 is not None}: IFT vs central FD rel err {err:.1e}")
        assert err <= 1e-6
        assert np.any(np.abs(matrix - np.diag(np.diag(matrix))) > 1e-3 * np.abs(matrix).max())  # coupled


def test_two_feature_sign_formula_and_starvation_region():
    deltas, s1_values = (0.1, 0.3, 0.5, 0.65), (0.5, 1.0, 1.9, 2.0, 2.1, 3.0, 6.0)
    for delta in deltas:
        for s1 in s1_values:
            system = two_feature_system(s1, 2.0, overlap=delta, weight_decay=0.01)
            z = system.fixed_point()
            formula = two_feature_starvation_derivative(system, z)
            ift = system.starvation_matrix(z)[1, 0]
            assert abs(formula - ift) <= 1e-10 * np.abs(system.starvation_matrix(z)).max()
            if s1 == 2.0:
                assert abs(formula) <= 1e-14  # equal margins: no coupling
            elif s1 > 2.0:
                assert formula < 0 and z[1] > 0  # the stronger feature 1 starves feature 2
            else:
                assert formula > 0
    # first order in delta: the ratio of the exact derivative to the O(delta) formula -> 1 linearly
    s1, s2, lam = 4.0, 2.0, 0.01
    z0 = decoupled_fixed_point([s1, s2], weight_decay=lam)
    dsig = lambda z: scipy.special.expit(z) * scipy.special.expit(-z)  # noqa: E731
    first_order = lambda d: -d * lam * z0[0] * (dsig(z0[1]) - dsig(z0[0])) / (  # noqa: E731
        s1**4 * (lam / s1**2 + dsig(z0[0])) * (lam / s2**2 + dsig(z0[1])))
    gaps = []
    for d in (1e-2, 5e-3, 2.5e-3):
        exact = two_feature_starvation_derivative(two_feature_system(s1, s2, d, lam))
        gaps.append(abs(exact / first_order(d) - 1))
    print(f"first-order-in-delta relative gaps {gaps}")
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.05) and gaps[1] / gaps[2] == pytest.approx(2.0, rel=0.05)


# ----------------------------------------------------------------------------------------------
# Decoupled cases and Spectral Decoupling


def test_decoupled_identity_and_lambert_bounds():
    s, lam = np.array([3.0, 2.0, 0.7]), 0.02
    flow = FeatureResponseFlow(np.eye(3), s, weight_decay=lam)
    z_newton = flow.fixed_point()
    z_roots = decoupled_fixed_point(s, weight_decay=lam)
    np.testing.assert_allclose(z_roots * (1 + np.exp(z_roots)), s**2 / lam, rtol=1e-14)
    assert _rel(z_newton, z_roots) <= 1e-13
    assert np.allclose(flow.starvation_matrix(), np.diag(np.diag(flow.starvation_matrix())), atol=0)
    # Lambert W: exact < W0(1/lambda); refined closer; both gaps -> 0 as lambda -> 0
    previous = None
    for lam in (1e-1, 1e-2, 1e-4, 1e-8):
        exact = spectral_decoupling_margin(lam)
        plain, refined = lambert_w_margin(lam), lambert_w_margin(lam, refined=True)
        assert abs(lam * exact * (1 + np.exp(exact)) - 1) <= 1e-13
        assert exact < plain and abs(refined - exact) < plain - exact
        if previous is not None:
            assert plain - exact < previous
        previous = plain - exact
    assert previous < 1e-6


def test_spectral_decoupling_fixed_point_independent_of_s():
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    u = u * np.where(u.sum(axis=0) < 0, -1, 1)
    lam = 0.002
    points = [FeatureResponseFlow(u, s, spectral_decoupling=lam).fixed_point()
              for s in (np.array([1.0, 1.0, 1.0, 1.0]), np.array([6.0, 2.0, 0.5, 0.1]), np.array([0.3, 5.0, 3.0, 9.0]))]
    closed = spectral_decoupling_fixed_point(u, lam)
    spread = max(_rel(p, closed) for p in points)
    margins = u @ points[1]
    print(f"SD fixed point spread over S: {spread:.1e}; margins {margins} vs m* {spectral_decoupling_margin(lam):.12f}")
    assert spread <= 1e-12
    np.testing.assert_allclose(margins, spectral_decoupling_margin(lam), rtol=1e-12)
    assert np.max(np.abs(FeatureResponseFlow(u, np.array([6.0, 2.0, 0.5, 0.1]), spectral_decoupling=lam).starvation_matrix())) == 0.0
    # adding weight decay restores an S-dependence
    with_wd = [FeatureResponseFlow(u, s, weight_decay=0.01, spectral_decoupling=lam).fixed_point()
               for s in (np.array([1.0, 1.0, 1.0, 1.0]), np.array([6.0, 2.0, 0.5, 0.1]))]
    assert _rel(with_wd[0], with_wd[1]) > 1e-2


def test_spectral_decoupling_times_scale_as_inverse_s_squared():
    # SD with U = I: dz_j/dt = s_j^2 [sigma(-z_j) - lambda z_j], so z_j(t) = zeta(s_j^2 t) for one
    # function zeta: the time to reach any fraction of z_j* is exactly proportional to 1/s_j^2.
    # With s^2 = (1, 2, 4, ...) and a save grid of step 0.5, s_j^2 t lies on the grid too.
    s2 = np.array([1.0, 2.0, 4.0, 1.0, 2.0, 4.0])
    lam = 0.01
    flow = FeatureResponseFlow(np.eye(N), np.sqrt(s2), 0.0, lam, 1.0, np.zeros(N))
    ts = np.linspace(0.0, 20.0, 41)
    traj = rf.solve(flow, np.zeros(N), 20.0, saveat=ts, solver=diffrax.Tsit5(), **TIGHT)
    zeta = traj.ys[:, 0]
    err = 0.0
    for j, factor in ((1, 2), (2, 4)):
        k = np.arange(0, 41 // factor + 1)
        err = max(err, float(np.max(np.abs(traj.ys[k, j] - zeta[factor * k]))))
    z_star = flow.fixed_point()
    assert traj.ys[-1, 2] > 0.9 * z_star[2] and traj.ys[10, 0] < 0.9 * z_star[0]  # the grid spans the rise
    print(f"SD, U = I: max |z_j(t) - zeta(s_j^2 t)| = {err:.1e}")
    assert err <= 1e-10
    np.testing.assert_allclose(z_star, spectral_decoupling_margin(lam), rtol=1e-12)


def test_quadratic_approximation_is_uncoupled_and_solved_exactly(data):
    phi, labels, offset = data
    dec = feature_decomposition(phi, labels)
    quad = QuadraticResponseFlow(dec.left, dec.singular_values, 0.05, 0.02, 0.8, labels * offset)
    ts = np.linspace(0.0, 20.0, 41)
    traj = rf.solve(quad, np.zeros(N), 20.0, saveat=ts, backend="scipy", solver="DOP853", **TIGHT)
    err = float(np.max(np.abs(traj.ys - quad.closed_form(ts, np.zeros(N)))))
    import jax

    jac_quad = np.asarray(jax.jacfwd(lambda z: quad.vector_field(0.0, z, None))(jnp.ones(N)))
    ce = FeatureResponseFlow(dec.left, dec.singular_values, 0.05, 0.02, 0.8, labels * offset)
    jac_ce = np.asarray(jax.jacfwd(lambda z: ce.vector_field(0.0, z, None))(jnp.ones(N)))
    off = lambda j: np.max(np.abs(j - np.diag(np.diag(j))))  # noqa: E731
    print(f"quadratic closed form err {err:.1e}; off-diagonal Jacobian: quadratic {off(jac_quad):.1e}, CE {off(jac_ce):.2f}")
    assert err <= 1e-11
    assert off(jac_quad) <= 1e-15 and off(jac_ce) > 1e-2
    assert np.max(np.abs(quad.starvation_matrix() - np.diag(np.diag(quad.starvation_matrix())))) <= 1e-15


# ----------------------------------------------------------------------------------------------
# Errors


def test_bad_inputs_raise_clear_errors(data):
    phi, labels, _ = data
    with pytest.raises(ValueError, match="labels"):
        LinearisedPrimalFlow(phi, np.where(labels > 0, 1.0, 0.0))
    with pytest.raises(ValueError, match="one row per label"):
        LinearisedPrimalFlow(phi[:4], labels)
    with pytest.raises(ValueError, match="one row per label"):
        feature_decomposition(phi[:4], labels)
    with pytest.raises(ValueError, match="weight_decay"):
        LinearisedPrimalFlow(phi, labels, weight_decay=-0.1)
    with pytest.raises(ValueError, match="spectral_decoupling"):
        FeatureResponseFlow(np.eye(2), [1.0, 2.0], spectral_decoupling=-1.0)
    with pytest.raises(ValueError, match="orthonormal"):
        FeatureResponseFlow(2 * np.eye(2), [1.0, 2.0], weight_decay=0.1)
    with pytest.raises(ValueError, match="fixed point"):
        FeatureResponseFlow(np.eye(2), [1.0, 2.0]).fixed_point()
    with pytest.raises(ValueError, match="overlap"):
        two_feature_system(2.0, 2.0, overlap=1.5)
    with pytest.raises(ValueError, match="output_offset"):
        LinearisedPrimalFlow(phi, labels, output_offset=np.zeros(3))
