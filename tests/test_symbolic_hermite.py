"""Hermite expansions (symbolic/hermite.py): Parseval, pointwise reconstruction, exact
coefficients against quadrature, and the errors for bad inputs."""

import math

import numpy as np
import pytest
import scipy.special
import sympy as sp

import reducedflow  # noqa: F401  (float64)
from reducedflow.symbolic._activations import ACTIVATION_NAMES, Z
from reducedflow.symbolic.hermite import hermite_expansion, hermite_functions


def test_hermite_functions_are_orthonormal():
    z, w = np.polynomial.hermite_e.hermegauss(80)
    h = hermite_functions(z, 30)
    gram = (h * w) @ h.T / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(gram, np.eye(31), atol=1e-12)


@pytest.mark.parametrize("name", ["exp", "erf", "erf_sqrt2", "tanh", "sigmoid", "softplus", "relu", "abs"])
def test_parseval_tail_mass_decreases_to_zero(name):
    """sum c_k^2 -> E f^2: the reported tail mass is >= 0, non-increasing in the degree and small."""
    tails = [hermite_expansion(name, k).tail_mass for k in (5, 20, 60)]
    norm2 = hermite_expansion(name, 0).norm2
    assert all(t >= -1e-12 for t in tails)
    assert tails[0] >= tails[1] >= tails[2]
    assert tails[2] < 2e-3 * norm2


def test_parseval_exact_norms_against_quadrature():
    """The exact norms (erf: (2/pi) asin(2a^2/(1+2a^2)), exp: e^2, relu: 1/2) equal quadrature of f^2."""
    for name, f in [("erf", scipy.special.erf), ("exp", np.exp), ("relu", lambda z: np.maximum(z, 0.0)),
                    ("sign", np.sign), ("abs", np.abs)]:
        exact = hermite_expansion(name, 3)
        numerical = hermite_expansion(f, 3)
        assert exact.exact is not None and numerical.exact is None
        assert exact.norm2 == pytest.approx(numerical.norm2, rel=1e-12)
    assert hermite_expansion("erf", 0).norm2 == pytest.approx(2 / math.pi * math.asin(2 / 3), rel=1e-15)
    assert hermite_expansion("exp", 0).norm2 == pytest.approx(math.e**2, rel=1e-15)


@pytest.mark.parametrize("name,f", [
    ("relu", lambda z: np.maximum(z, 0.0)),
    ("exp", np.exp),
    ("erf", scipy.special.erf),
    ("abs", np.abs),
    ("sign", np.sign),
    ("step", lambda z: (z > 0).astype(float)),
    ("cubic", lambda z: z**3),
])
def test_exact_coefficients_equal_quadrature(name, f):
    exact = hermite_expansion(name, 25)
    numerical = hermite_expansion(f, 25)
    np.testing.assert_allclose(exact.coefficients, numerical.coefficients, rtol=0, atol=1e-12)


def test_known_closed_form_coefficients():
    relu = hermite_expansion("relu", 6).exact
    assert relu[0] == 1 / sp.sqrt(2 * sp.pi)
    assert relu[1] == sp.Rational(1, 2)
    assert sp.simplify(relu[2] - 1 / sp.sqrt(4 * sp.pi)) == 0
    assert relu[3] == 0 and relu[5] == 0
    exp = hermite_expansion(2 * sp.exp(3 * Z), 4)
    for k, c in enumerate(exp.exact):
        assert sp.simplify(c - 2 * 3**k * sp.exp(sp.Rational(9, 2)) / sp.sqrt(sp.factorial(k))) == 0
    # Mehler: sum_k sigma_k^2 r^k = U(r) = e^{1 + r} for sigma = exp.
    c = hermite_expansion("exp", 40).coefficients
    for r in (-0.7, 0.3, 0.9):
        assert np.sum(c**2 * r ** np.arange(41)) == pytest.approx(math.exp(1 + r), rel=1e-12)
    # Polynomial: z^3 = He_3 + 3 He_1.
    assert hermite_expansion("cubic", 4).exact == (0, 3, 0, sp.sqrt(6), 0)


@pytest.mark.parametrize("name,f,degree,tol", [
    ("exp", np.exp, 30, 1e-9),
    ("erf", scipy.special.erf, 60, 1e-4),
    ("sigmoid", scipy.special.expit, 60, 1e-3),
    ("cubic", lambda z: z**3, 3, 1e-12),
])
def test_pointwise_reconstruction_of_smooth_functions(name, f, degree, tol):
    z = np.linspace(-2.0, 2.0, 41)
    approx = hermite_expansion(name, degree).evaluate(z)
    assert np.max(np.abs(approx - f(z))) < tol


def test_truncated_polynomial_matches_series():
    expansion = hermite_expansion("erf_sqrt2", 7)
    poly = sp.lambdify(Z, expansion.polynomial())
    z = np.linspace(-1.5, 1.5, 7)
    np.testing.assert_allclose(poly(z), expansion.evaluate(z), atol=1e-14)


def test_bad_inputs_raise_value_errors_with_choices():
    with pytest.raises(ValueError, match="degree"):
        hermite_expansion("relu", -1)
    with pytest.raises(ValueError, match="relu") as err:
        hermite_expansion("rellu", 3)
    assert all(name in str(err.value) for name in ACTIVATION_NAMES)
    with pytest.raises(ValueError, match="second moment"):
        hermite_expansion(sp.exp(Z**2), 3)
    with pytest.raises(ValueError, match="second moment"):
        hermite_expansion(lambda z: np.exp(z**2 / 3), 3)
    with pytest.raises(ValueError, match="one variable"):
        hermite_expansion(sp.Symbol("x") * sp.Symbol("y"), 3)
