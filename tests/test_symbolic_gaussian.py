"""Gaussian expectations (symbolic/gaussian.py): every two-, three- and four-point formula
against Monte Carlo (10^6 float64 samples, within 4 standard errors) on random valid
covariances drawn by hypothesis, including nearly singular ones."""

import math

import numpy as np
import pytest
import scipy.special
import sympy as sp
from hypothesis import given, settings, strategies as st

import reducedflow  # noqa: F401  (float64)
from reducedflow.symbolic.gaussian import (
    C11,
    C12,
    C22,
    committee_i2,
    committee_i2_expr,
    committee_i3,
    committee_i3_expr,
    committee_i4,
    committee_i4_expr,
    committee_j2,
    committee_j2_expr,
    gaussian_expectation,
    two_point,
)

N_SAMPLES = 1_000_000
SETTINGS = settings(max_examples=8, deadline=None, derandomize=True)

NUMPY = {
    "relu": lambda z: np.maximum(z, 0.0),
    "erf": scipy.special.erf,
    "erf_sqrt2": lambda z: scipy.special.erf(z / math.sqrt(2)),
    "exp": np.exp,
    "sign": np.sign,
    "abs": np.abs,
    "step": lambda z: (z > 0).astype(float),
    "cubic": lambda z: z**3,
    "quadratic": lambda z: z**2,
}
NAMES = list(NUMPY)


def _assert_mc(value, samples, label):
    mean, se = samples.mean(), samples.std() / math.sqrt(samples.size)
    assert abs(value - mean) <= 4 * se + 1e-12 * (1 + abs(mean)), f"{label}: formula {value}, MC {mean} +- {se}"


@st.composite
def covariances(draw, size):
    """Random valid covariances: a Wishart-like part plus, half the time, a nearly singular
    mixture (one direction shrunk by up to 1e-10)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size))
    cov = a @ a.T / size + 0.05 * np.eye(size)
    if draw(st.booleans()):
        shrink = 10.0 ** draw(st.integers(-10, -3))
        u = rng.standard_normal(size)
        u /= np.linalg.norm(u)
        eigval, eigvec = np.linalg.eigh(cov)
        eigval[0] = shrink * eigval[-1]
        cov = (eigvec * eigval) @ eigvec.T
    scale = np.sqrt(np.diag(cov))
    target = draw(st.lists(st.floats(0.3, 2.0), min_size=size, max_size=size))
    cov = cov / np.outer(scale, scale) * np.outer(np.sqrt(target), np.sqrt(target))
    return (cov + cov.T) / 2


def _samples(cov, seed=0):
    rng = np.random.default_rng(seed)
    eigval, eigvec = np.linalg.eigh(cov)
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    return root @ rng.standard_normal((cov.shape[0], N_SAMPLES))


@SETTINGS
@given(covariances(2))
def test_two_point_closed_forms_against_monte_carlo(cov):
    u, v = _samples(cov)
    fu = {name: f(u) for name, f in NUMPY.items()}
    fv = {name: f(v) for name, f in NUMPY.items()}
    for i, f in enumerate(NAMES):
        for g in NAMES[i:]:
            expectation = two_point(f, g)
            assert expectation.exact
            _assert_mc(expectation(cov), fu[f] * fv[g], f"E[{f}(u) {g}(v)] at {cov.tolist()}")


def test_two_point_sympy_expressions():
    """Closed forms as sympy: relu-relu at u = v gives E relu^2 = c/2; erf(z/sqrt2) is I2."""
    relu = two_point("relu", "relu").expr
    assert sp.simplify(relu.subs({C11: 3, C22: 3, C12: 3})) == sp.Rational(3, 2)
    assert sp.simplify(relu.subs({C12: 0}) - sp.sqrt(C11 * C22) / (2 * sp.pi)) == 0
    i2 = two_point("erf_sqrt2", "erf_sqrt2").expr
    assert sp.simplify(i2 - committee_i2_expr(sp.Matrix([[C11, C12], [C12, C22]]))) == 0
    wick = two_point("cubic", "cubic").expr
    assert sp.expand(wick - (9 * C11 * C22 * C12 + 6 * C12**3)) == 0


@pytest.mark.parametrize("f,g", [("tanh", "tanh"), ("tanh", "relu"), ("sigmoid", "softplus"), ("softplus", "exp")])
def test_mehler_series_against_monte_carlo(f, g):
    numpy = {"tanh": np.tanh, "relu": NUMPY["relu"], "sigmoid": scipy.special.expit,
             "softplus": lambda z: np.logaddexp(0.0, z), "exp": np.exp}
    cov = np.array([[1.2, 0.7], [0.7, 0.8]])
    u, v = _samples(cov, seed=3)
    expectation = two_point(f, g, degree=30, variances=(1.2, 0.8))
    assert not expectation.exact and expectation.truncation_bound < 1e-3
    _assert_mc(expectation(cov), numpy[f](u) * numpy[g](v), f"Mehler E[{f} {g}]")


def _rows(c):
    return [[c[i, j] for j in range(c.shape[0])] for i in range(c.shape[0])]


@SETTINGS
@given(covariances(4))
def test_committee_integrals_against_monte_carlo(cov):
    z = _samples(cov, seed=1)
    g = scipy.special.erf(z / math.sqrt(2))
    dg = math.sqrt(2 / math.pi) * np.exp(-(z**2) / 2)
    _assert_mc(float(committee_i2(cov[:2, :2])), g[0] * g[1], "I2")
    _assert_mc(float(committee_j2(cov[:2, :2])), dg[0] * dg[1], "J2")
    _assert_mc(float(committee_i3(cov[:3, :3])), dg[0] * z[1] * g[2], "I3")
    _assert_mc(float(committee_i4(cov)), dg[0] * dg[1] * g[2] * g[3], "I4")
    # The sympy forms are the same formulas.
    for jax_fn, expr_fn, n in [(committee_i2, committee_i2_expr, 2), (committee_j2, committee_j2_expr, 2),
                               (committee_i3, committee_i3_expr, 3), (committee_i4, committee_i4_expr, 4)]:
        sub = cov[:n, :n]
        assert float(expr_fn(sp.Matrix(sub)).evalf(30)) == pytest.approx(float(jax_fn(sub)), rel=1e-12, abs=1e-14)


def test_committee_integral_limits():
    assert float(committee_j2(np.eye(2))) == pytest.approx(1 / math.pi, rel=1e-15)
    assert float(committee_i2(np.eye(2))) == 0.0
    assert float(committee_i2(np.ones((2, 2)))) == pytest.approx(1 / 3, rel=1e-15)  # E g^2 = 1/3
    batch = np.stack([np.eye(3), 0.5 * np.eye(3) + 0.5])
    assert committee_i3(batch).shape == (2,)


def test_bad_covariances_and_names():
    with pytest.raises(ValueError, match="positive semi-definite"):
        gaussian_expectation("relu", "relu", [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_expectation("relu", "relu", [[1.0, 0.2], [0.1, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        gaussian_expectation("relu", "relu", np.eye(3))
    with pytest.raises(ValueError, match="'relu'"):
        two_point("rectifier", "relu")
    with pytest.raises(ValueError, match="degree"):
        two_point("tanh", "relu")
    with pytest.raises(ValueError, match="second moment"):
        two_point(sp.exp(sp.Symbol("z") ** 2), "relu")
    with pytest.raises(ValueError, match="degree"):
        two_point("tanh", "tanh", degree=-2, variances=(1.0, 1.0))
    with pytest.raises(ValueError, match="shape"):
        committee_i4(np.eye(3))
