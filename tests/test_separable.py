"""SeparableLinearFlow (Soudry et al. 2018, arXiv:1710.10345) against independent witnesses:
exact one-point solutions, a hard-margin SVM solved by SLSQP on the primal QP (not the NNLS
route of ``max_margin``), and the long-time asymptotics w(t) = w_hat ln(t/tau) + w_tilde.

Long solves run in log time (``solve(..., log_time=True)``) to t = 1e8. All solves of the 7-point data
sets share one save grid and one tolerance so that each loss compiles once."""

import functools

import numpy as np
import pytest
import scipy.optimize

import reducedflow as rf
from reducedflow.models.separable import (
    SeparableLinearFlow,
    asymptotic_offset,
    max_margin,
    offset_convergence_rate,
)

LOSSES = ("exponential", "logistic")
TIMES = 10.0 ** np.arange(1, 9)  # 1e1 ... 1e8, shared by every long solve
LONG_RTOL, LONG_ATOL = 1e-10, 1e-12


# ----------------------------------------------------------------------------------------------
# Data sets and independent witnesses


def svm_by_slsqp(z):
    """Hard-margin SVM through the origin by SLSQP on the primal QP min |w|^2/2, z w >= 1.
    Returns (w_hat, multipliers)."""
    res = scipy.optimize.minimize(
        lambda w: 0.5 * w @ w,
        np.ones(z.shape[1]),
        jac=lambda w: w,
        constraints=[{"type": "ineq", "fun": lambda w: z @ w - 1.0, "jac": lambda w: z}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert res.success, res.message
    multipliers = res.multipliers
    return res.x, np.asarray(multipliers["ineq"] if isinstance(multipliers, dict) else multipliers)


def spanning_data():
    """7 points in 3-d built so that the 3 support vectors span R^3 (all alpha > 0) and every
    other point has margin z.w_hat in [2, 3.5]. Returns (inputs, labels, w_hat, alpha)."""
    rng = np.random.default_rng(4)
    support = rng.normal(size=(3, 3))
    w_hat = np.linalg.solve(support, np.ones(3))  # margin exactly 1 on the support vectors
    alpha = np.linalg.solve(support @ support.T, np.ones(3))  # KKT: w_hat = support^T alpha
    others = []
    while len(others) < 4:
        q = rng.normal(size=3)
        if q @ w_hat > 0.3:
            others.append(q * rng.uniform(2.0, 3.5) / (q @ w_hat))
    z = np.vstack([support, others])
    labels = rng.choice([-1.0, 1.0], size=7)
    return z * labels[:, None], labels, w_hat, alpha


def generic_data():
    """7 random Gaussian points in 3-d labelled by a teacher with a margin (no construction)."""
    rng = np.random.default_rng(11)
    teacher = np.array([1.0, -0.5, 0.8])
    x = rng.normal(size=(40, 3))
    x = x[np.abs(x @ teacher) > 0.3][:7]
    return x, np.sign(x @ teacher)


def dependent_support_data():
    """Four support vectors (1, +-1, 0), (1, 0, +-1) on the margin of w_hat = (1, 0, 0):
    linearly dependent, so alpha is not unique; by symmetry the flow's offset is
    (ln 4, 0, 0). Three more points with margins 2, 2.5, 3."""
    z = np.array(
        [[1, 1, 0], [1, -1, 0], [1, 0, 1], [1, 0, -1], [2, 0.5, -0.3], [2.5, -1, 1], [3, 2, 0.7]],
        dtype=float,
    )
    labels = np.array([1, -1, 1, -1, 1, 1, -1], dtype=float)
    return z * labels[:, None], labels


def nonspanning_data():
    """Two support vectors in 3-d (their span is a plane) and five points with margins in
    [2, 3]."""
    support = np.array([[1.0, 0.5, 0.2], [0.8, -0.6, 0.1]])
    w_hat = support.T @ np.linalg.solve(support @ support.T, np.ones(2))
    rng = np.random.default_rng(1)
    others = []
    while len(others) < 5:
        q = rng.normal(size=3)
        if q @ w_hat > 0.3:
            others.append(q * rng.uniform(2.0, 3.0) / (q @ w_hat))
    return np.vstack([support, others]), np.ones(7)


def near_margin_data():
    """Orthogonal support vectors (1, 0), (0, 1) (so M = I, lambda_min = 1) and a non-support
    point with margin 1.4: the offset converges only like t^(-0.4)."""
    return np.array([[1.0, 0.0], [0.0, 1.0], [0.65, 0.75]]), np.ones(3)


DATA = {
    "spanning": lambda: spanning_data()[:2],
    "generic": generic_data,
    "dependent": dependent_support_data,
    "nonspanning": nonspanning_data,
    "near_margin": near_margin_data,
}


@functools.lru_cache(maxsize=None)
def long_solve(data: str, loss: str, tau: float = 1.0):
    """w(t) at TIMES from w(0) = 0 for one of the 7-point data sets, in log time."""
    inputs, labels = DATA[data]()
    system = SeparableLinearFlow(inputs, labels, loss=loss, tau=tau)
    traj = rf.solve(
        system, np.zeros(inputs.shape[1]), TIMES[-1], saveat=TIMES, log_time=True,
        rtol=LONG_RTOL, atol=LONG_ATOL,
    )
    return system, traj


# ----------------------------------------------------------------------------------------------
# Exact one-point solutions


@pytest.mark.parametrize("loss", LOSSES)
def test_one_point_closed_form(loss):
    # A misclassified start (u0 = z.w0 < 0) and tau != 1; from t = 0 to 1e8 in log time.
    system = SeparableLinearFlow([[0.7, -1.2, 0.4]], [-1.0], loss=loss, tau=0.7)
    w0 = np.array([0.3, -0.4, -0.2])
    assert float(system.signed_inputs[0] @ w0) < 0
    times = np.concatenate([[0.0], np.geomspace(1e-3, 1e8, 23)])
    traj = rf.solve(system, w0, times[-1], saveat=times, log_time=True, rtol=1e-12, atol=1e-14)
    exact = system.closed_form(times, w0)
    rel = np.max(np.linalg.norm(traj.ys - exact, axis=1) / np.linalg.norm(exact, axis=1))
    print(f"one-point {loss}: max relative error {rel:.2e}, {traj.stats.steps} steps")
    assert rel <= 1e-10
    # w moves along z, and the exponential solution is exactly logarithmic in t.
    z = np.asarray(system.signed_inputs[0])
    drift = exact - w0
    assert np.allclose(drift - np.outer(drift @ z / (z @ z), z), 0.0, atol=1e-12)
    if loss == "exponential":
        u = exact @ z
        assert np.allclose(u, np.log(np.exp(w0 @ z) + (z @ z) * times / 0.7), rtol=1e-14)


@pytest.mark.parametrize("loss", LOSSES)
def test_closed_form_extreme_margins(loss):
    # The implicit logistic solution must not overflow for huge t or huge / very negative u0
    # (e^{u0} and e^c overflow float64 there). Reference: u + e^u = c (or e^u = e^{u0} + r^2 t)
    # solved with 60 digits by mpmath.
    import mpmath  # installed with sympy

    with mpmath.workdps(60):  # local precision: sympy shares mpmath's global context
        system = SeparableLinearFlow([[2.0]], [1.0], loss=loss)  # r^2 = 4, u = 2 w
        cases = [(0.0, 1e300), (200.0, 1e3), (-300.0, 1e-200), (-300.0, 1e5), (600.0, 1e10), (5, 1e-7)]
        for w0, t in cases:
            w = float(system.closed_form(t, np.array([w0]))[0])
            u0, s = mpmath.mpf(2 * w0), 4 * mpmath.mpf(t)
            if loss == "exponential":
                u_ref = mpmath.log(mpmath.exp(u0) + s)
            else:
                c = u0 + mpmath.exp(u0) + s
                # Residual scaled by the derivative 1 + e^u, so that it measures the error in u.
                u_ref = mpmath.findroot(
                    lambda u: (u + mpmath.exp(u) - c) / (1 + mpmath.exp(u)),
                    mpmath.log(mpmath.exp(u0) + s) if c > 1 else c,
                )
            w_ref = float(u_ref / 2)
            assert np.isfinite(w), (w0, t)
            assert abs(w - w_ref) <= 4e-16 * max(abs(w_ref), 1e-300), (w0, t, w, w_ref)


def test_closed_form_needs_one_point():
    inputs, labels = generic_data()
    with pytest.raises(NotImplementedError, match="one data point"):
        SeparableLinearFlow(inputs, labels).closed_form(1.0, np.zeros(3))


# ----------------------------------------------------------------------------------------------
# The SVM direction


@pytest.mark.parametrize("data", ["spanning", "generic", "dependent"])
def test_max_margin_matches_independent_qp(data):
    inputs, labels = DATA[data]()
    z = labels[:, None] * inputs
    w_ref, multipliers = svm_by_slsqp(z)
    w_hat, alpha, support = max_margin(inputs, labels)
    err = np.linalg.norm(w_hat - w_ref) / np.linalg.norm(w_ref)
    print(f"max_margin {data}: |w_hat - w_slsqp|/|w_slsqp| = {err:.2e}, support {support}")
    assert err <= 1e-6
    # Dual feasibility and the KKT conditions.
    assert np.all(alpha >= 0) and np.all(alpha[np.setdiff1d(np.arange(7), support)] == 0)
    assert np.allclose(z.T @ alpha, w_hat, atol=1e-12)
    assert np.allclose(z[support] @ w_hat, 1.0, atol=1e-12)
    assert np.min(z @ w_hat) >= 1.0 - 1e-12
    if data == "spanning":  # alpha is unique here: compare with the SLSQP multipliers
        _, _, w_built, alpha_built = spanning_data()
        assert np.allclose(w_hat, w_built, atol=1e-12)
        assert np.allclose(alpha[:3], alpha_built, atol=1e-12)
        assert np.allclose(alpha, multipliers, atol=1e-6)
        assert np.min(z[3:] @ w_hat) >= 2.0  # the non-support margins of the construction


@pytest.mark.parametrize("loss", LOSSES)
def test_direction_approaches_svm(loss):
    inputs, labels = generic_data()
    w_ref, _ = svm_by_slsqp(labels[:, None] * inputs)
    _, traj = long_solve("generic", loss)
    w = traj.ys
    gap = 1.0 - w @ w_ref / (np.linalg.norm(w, axis=1) * np.linalg.norm(w_ref))
    at = np.isin(TIMES, [1e2, 1e4, 1e6, 1e8])
    print(f"direction {loss}: 1 - cos at t = 1e2, 1e4, 1e6, 1e8: {gap[at]}")
    assert np.all(np.diff(gap[at]) < 0)
    assert gap[-1] < 1e-3
    # The normalised margin observable rises towards the SVM margin 1/|w_hat|.
    margin = traj.observables["margin"] * np.linalg.norm(w_ref)
    assert np.all(np.diff(margin[at]) > 0) and 0.97 < margin[-1] < 1.0


@pytest.mark.parametrize("loss", LOSSES)
def test_direction_gap_matches_asymptote(loss):
    # 1 - cos(w, w_hat) = O(1/ln^2 t) with the constant fixed by the offset: compare with the
    # gap of the asymptote w_hat ln t + w_tilde.
    system, traj = long_solve("spanning", loss)
    w_hat, _, _ = system.max_margin()
    asym = system.asymptote(TIMES)

    def gap(w):
        return 1.0 - w @ w_hat / (np.linalg.norm(w, axis=1) * np.linalg.norm(w_hat))

    ratio = gap(traj.ys) / gap(asym)
    print(f"direction gap / asymptote's gap {loss}: {ratio[[1, 3, 5, 7]]}")
    assert abs(ratio[-1] - 1.0) < 1e-4
    assert np.all(np.diff(np.abs(ratio[3:] - 1.0)) < 0)


# ----------------------------------------------------------------------------------------------
# Norm, loss and offset


@pytest.mark.parametrize("loss", LOSSES)
def test_norm_grows_like_log_t_and_loss_like_one_over_t(loss):
    system, traj = long_solve("spanning", loss)
    w_hat, alpha, _ = system.max_margin()
    norm_ratio = traj.observables["norm"] / (np.log(TIMES) * np.linalg.norm(w_hat))
    loss_ratio = traj.observables["loss"] * TIMES / np.sum(alpha)  # -> tau sum(alpha) = |w_hat|^2
    print(f"{loss}: |w|/(|w_hat| ln t) = {norm_ratio[[1, 3, 5, 7]]}")
    print(f"{loss}: loss t / |w_hat|^2 - 1 = {loss_ratio[[1, 3, 5, 7]] - 1}")
    assert np.all(np.diff(norm_ratio[2:]) > 0) and abs(norm_ratio[-1] - 1.0) < 0.03
    assert np.isclose(np.sum(alpha), w_hat @ w_hat, rtol=1e-12)
    assert np.all(np.diff(np.abs(loss_ratio[2:] - 1.0)) < 0) and abs(loss_ratio[-1] - 1.0) < 1e-5


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_offset_spanning_support(loss, tau):
    system, traj = long_solve("spanning", loss, tau)
    inputs, labels = spanning_data()[:2]
    w_hat, alpha, support = max_margin(inputs, labels)
    w_tilde = asymptotic_offset(inputs, labels, tau=tau)
    z = labels[:, None] * inputs
    assert np.allclose(z[support] @ w_tilde, -np.log(tau * alpha[support]), atol=1e-12)
    err = np.linalg.norm(traj.ys - np.log(TIMES)[:, None] * w_hat - w_tilde, axis=1)
    print(f"offset {loss} tau={tau}: |w - w_hat ln t - w_tilde| at 1e2..1e8 = {err[[1, 3, 5, 7]]}")
    assert np.all(np.diff(err[1:]) < 0)
    assert err[-1] < 1e-6
    assert np.isclose(offset_convergence_rate(inputs, labels), 1.0, atol=1e-12)  # err ~ ln(t)/t
    if tau != 1.0:  # the tau = 1 offset is wrong by w_hat ln(tau)
        wrong = traj.ys[-1] - np.log(TIMES[-1]) * w_hat - asymptotic_offset(inputs, labels)
        assert np.isclose(np.linalg.norm(wrong), np.linalg.norm(w_hat) * np.log(tau), rtol=1e-5)


def test_offset_dependent_support_vectors():
    # alpha is not unique (NNLS returns a vertex with zeros on the margin); the flow picks
    # alpha_n = exp(-z_n.w_tilde) = 1/4 on all four margin points.
    inputs, labels = dependent_support_data()
    w_tilde = asymptotic_offset(inputs, labels)
    assert np.allclose(w_tilde, [np.log(4.0), 0.0, 0.0], atol=1e-12)
    system, traj = long_solve("dependent", "logistic")
    err = np.linalg.norm(traj.ys - system.asymptote(TIMES), axis=1)
    fitted = -np.log(err[-1] / err[-3]) / np.log(TIMES[-1] / TIMES[-3])
    # M = sum_n (1/4) z_n z_n^T = diag(1, 1/2, 1/2): kappa = 1/2.
    kappa = offset_convergence_rate(inputs, labels)
    print(f"offset, dependent support vectors: error at 1e2,1e4,1e6,1e8 = {err[[1, 3, 5, 7]]}; "
          f"rate {fitted:.5f} vs {kappa:.5f}")
    assert np.all(np.diff(err[1:]) < 0) and err[-1] < 1e-4
    assert np.isclose(kappa, 0.5, atol=1e-12) and abs(fitted - kappa) < 0.01


def test_offset_slow_with_point_near_margin():
    # kappa = theta_min - 1 = 0.4 < lambda_min(M) = 1: the near-margin point sets the rate.
    inputs, labels = near_margin_data()
    kappa = offset_convergence_rate(inputs, labels)
    assert np.isclose(kappa, 0.4, atol=1e-12)
    system, traj = long_solve("near_margin", "logistic")
    err = np.linalg.norm(traj.ys - system.asymptote(TIMES), axis=1)
    fitted = -np.log(err[-1] / err[-3]) / np.log(TIMES[-1] / TIMES[-3])
    print(f"near-margin point: error at 1e2,1e4,1e6,1e8 = {err[[1, 3, 5, 7]]}; rate {fitted:.5f}")
    assert np.all(np.diff(err) < 0) and abs(fitted - kappa) < 0.01


def test_offset_nonspanning_projection_and_rate():
    # Only the projection onto span(support) converges to w_tilde, at the rate
    # t^(-lambda_min(M)) with M = sum_S alpha_n z_n z_n^T restricted to that span.
    inputs, labels = nonspanning_data()
    w_hat, alpha, support = max_margin(inputs, labels)
    assert list(support) == [0, 1]
    w_tilde = asymptotic_offset(inputs, labels)
    basis = np.linalg.qr(inputs[support].T)[0]
    assert np.allclose(w_tilde, basis @ (basis.T @ w_tilde), atol=1e-12)  # least norm: in span
    m = (inputs[support] * alpha[support, None]).T @ inputs[support]
    rate = np.min(np.linalg.eigvalsh(basis.T @ m @ basis))
    _, traj = long_solve("nonspanning", "logistic")
    residual = traj.ys - np.log(TIMES)[:, None] * w_hat
    err = np.linalg.norm((residual - w_tilde) @ basis, axis=1)
    fitted = -np.log(err[-1] / err[-3]) / np.log(TIMES[-1] / TIMES[-3])
    print(f"nonspanning: projected error {err[[1, 3, 5, 7]]}; rate {fitted:.5f} vs {rate:.5f}")
    assert np.all(np.diff(err[2:]) < 0)
    assert abs(fitted - rate) < 0.01
    assert np.isclose(offset_convergence_rate(inputs, labels), rate, atol=1e-12)
    # The component orthogonal to the support span settles, but not at w_tilde's (zero) one.
    normal = np.cross(*inputs[support])
    normal /= np.linalg.norm(normal)
    assert abs(residual[-1] @ normal - residual[-2] @ normal) < 1e-5
    assert abs(residual[-1] @ normal) > 0.01


# ----------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(inputs=[[1.0, 0.0]], labels=[0.5]), "labels"),
        (dict(inputs=[[1.0, 0.0]], labels=[0.0]), "labels"),
        (dict(inputs=[[1.0, 0.0]], labels=[1.0, -1.0]), "labels"),
        (dict(inputs=[[1.0, np.nan]], labels=[1.0]), "inputs"),
        (dict(inputs=[1.0, 0.0], labels=[1.0]), "inputs"),
        (dict(inputs=[[1.0, 0.0]], labels=[np.inf]), "labels"),
        (dict(inputs=[[1.0, 0.0]], labels=[1.0], loss="hinge"), "loss"),
        (dict(inputs=[[1.0, 0.0]], labels=[1.0], tau=0.0), "tau"),
        (dict(inputs=[[1.0, 0.0]], labels=[1.0], tau=np.nan), "tau"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        SeparableLinearFlow(**kwargs)
    if name == "loss":
        assert "'logistic', 'exponential'" in str(info.value)


def test_bad_state_and_nonseparable_data():
    system = SeparableLinearFlow([[1.0, 0.0, 2.0]], [1.0])
    with pytest.raises(ValueError, match=r"`y0`.*shape \(3,\)"):
        rf.solve(system, np.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"`y0`.*shape \(3,\)"):
        system.closed_form(1.0, np.zeros(2))
    with pytest.raises(ValueError, match="`y0`.*finite"):
        rf.solve(system, np.array([0.0, np.nan, 0.0]), 1.0)
    # Opposite labels on collinear points, a zero input, XOR: no separator through the origin.
    for inputs, labels in [
        ([[1.0, 0.0], [2.0, 0.0]], [1.0, -1.0]),
        ([[1.0, 1.0], [0.0, 0.0]], [1.0, 1.0]),
        ([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]], [1.0, 1.0, -1.0, -1.0]),
    ]:
        with pytest.raises(ValueError, match="`inputs`.*not linearly separable"):
            max_margin(inputs, labels)
        with pytest.raises(ValueError, match="`inputs`.*not linearly separable"):
            asymptotic_offset(inputs, labels)
    with pytest.raises(ValueError, match="`labels`"):
        max_margin([[1.0, 0.0]], [2.0])
    # (1, 1) is on the margin of w_hat = (1, 0) with zero dual weight: no finite offset.
    with pytest.raises(ValueError, match="`inputs`.*degenerate.*index \\[1\\]"):
        asymptotic_offset([[1.0, 0.0], [1.0, 1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="`tau`"):
        asymptotic_offset([[1.0, 0.0]], [1.0], tau=-1.0)
