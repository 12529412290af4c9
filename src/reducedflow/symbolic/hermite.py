r"""Normalised probabilists' Hermite expansions of activations and targets.

For a standard Gaussian $G$ and $f$ with $E f(G)^2 < \infty$,

$$f(z) = \sum_{k\ge 0} c_k\,\frac{He_k(z)}{\sqrt{k!}},\qquad
  c_k = \frac{E[f(G)\,He_k(G)]}{\sqrt{k!}},\qquad \|f\|^2 = E f(G)^2 = \sum_k c_k^2 ,$$

and for standard Gaussians $(G, G')$ with correlation $\rho$ (Mehler),
$E[f(G) g(G')] = \sum_k f_k g_k \rho^k$. These are the coefficients $\sigma_k$, $\varphi_k$ of
Berthier, Montanari & Zhou, "Learning time-scales in two-layers neural networks",
arXiv:2303.00055 (Eqs. (12)-(13)).

Exact (sympy) coefficients, with $\phi(0) = 1/\sqrt{2\pi}$ and Gaussian integration by parts
$E[f(G)He_k(G)] = E[f^{(k)}(G)]$:

- polynomial $p$: Gaussian moments of $p\,He_k$ ($E G^{2n} = (2n-1)!!$);
- $c\,e^{az}$: $c_k = c\,a^k e^{a^2/2}/\sqrt{k!}$, $\|f\|^2 = c^2 e^{2a^2}$;
- $c\,\mathrm{erf}(az)$: $c_{2n+1} = \frac{2ac}{\sqrt\pi}\frac{(2n)!}{n!}\frac{(-a^2)^n}{(1+2a^2)^{n+1/2}\sqrt{(2n+1)!}}$,
  $\|f\|^2 = \frac{2c^2}{\pi}\arcsin\frac{2a^2}{1+2a^2}$;
- $c\,\mathrm{relu}$: $c_0 = c\phi(0)$, $c_1 = c/2$, $c_k = c\,\phi(0)He_{k-2}(0)/\sqrt{k!}$ ($k\ge2$), $\|f\|^2 = c^2/2$;
- $c\,\mathrm{sign}$: $c_k = 2c\,\phi(0)He_{k-1}(0)/\sqrt{k!}$ ($k\ge1$), $\|f\|^2 = c^2$;
- $c\,|z| = 2c\,\mathrm{relu}(z) - cz$ and $c\,H(z) = c/2 + c\,\mathrm{sign}(z)/2$;

with $He_{2n}(0) = (-1)^n(2n-1)!!$ and $He_{2n+1}(0) = 0$. Other functions (erf is exact;
tanh, sigmoid, softplus, callables) use quadrature in float64: Gauss–Hermite with $n$ and $2n$
nodes, falling back to composite Gauss–Legendre panels split at known kinks when the two
disagree; the disagreement is reported as ``quadrature_error``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import sympy as sp

from .._checks import check_integer
from ._activations import Activation, Z, check_second_moment, resolve

__all__ = ["HermiteExpansion", "hermite_expansion", "hermite_functions"]

_PHI0 = 1 / sp.sqrt(2 * sp.pi)


def hermite_functions(z, degree: int) -> np.ndarray:
    r"""The normalised Hermite polynomials $h_k(z) = He_k(z)/\sqrt{k!}$, $k = 0..$``degree``,
    by the stable recurrence $h_{k+1} = (z h_k - \sqrt k\,h_{k-1})/\sqrt{k+1}$.

    **Returns:** an array of shape ``(degree + 1,) + z.shape``.
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.empty((degree + 1,) + z.shape)
    out[0] = 1.0
    if degree >= 1:
        out[1] = z
    for k in range(1, degree):
        out[k + 1] = (z * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


def _he_at_zero(n: int) -> sp.Integer:
    if n % 2:
        return sp.Integer(0)
    return sp.Integer(-1) ** (n // 2) * sp.factorial2(n - 1)


def _gaussian_mean_of_polynomial(expr: sp.Expr) -> sp.Expr:
    """$E[p(G)]$ for a polynomial $p$ in ``Z``: $E G^{2n} = (2n-1)!!$, odd moments 0."""
    poly = sp.Poly(sp.expand(expr), Z)
    total = sp.Integer(0)
    for (n,), coeff in poly.terms():
        if n % 2 == 0:
            total += coeff * sp.factorial2(n - 1)
    return total


def _exact_coefficient(act: Activation, k: int) -> sp.Expr:
    c, a = act.outer, act.inner
    if act.kind == "polynomial":
        return sp.nsimplify(_gaussian_mean_of_polynomial(act.expr * sp.hermite_prob(k, Z))) / sp.sqrt(sp.factorial(k))
    if act.kind == "exp":
        return c * a**k * sp.exp(a**2 / 2) / sp.sqrt(sp.factorial(k))
    if act.kind == "erf":
        if k % 2 == 0:
            return sp.Integer(0)
        n = (k - 1) // 2
        return (2 * a * c / sp.sqrt(sp.pi) * sp.factorial(2 * n) / sp.factorial(n) * (-(a**2)) ** n
                / (1 + 2 * a**2) ** (sp.Rational(2 * n + 1, 2)) / sp.sqrt(sp.factorial(k)))
    if act.kind == "relu":
        if k == 0:
            return c * _PHI0
        if k == 1:
            return c / 2
        return c * _PHI0 * _he_at_zero(k - 2) / sp.sqrt(sp.factorial(k))
    if act.kind in ("sign", "step"):
        base = sp.Integer(0) if k == 0 else 2 * _PHI0 * _he_at_zero(k - 1) / sp.sqrt(sp.factorial(k))
        if act.kind == "sign":
            return c * base
        return c * (sp.Rational(1, 2) if k == 0 else base / 2)
    if act.kind == "abs":
        relu_k = (_PHI0 if k == 0 else sp.Rational(1, 2) if k == 1
                  else _PHI0 * _he_at_zero(k - 2) / sp.sqrt(sp.factorial(k)))
        return c * (2 * relu_k - (1 if k == 1 else 0))
    raise AssertionError(act.kind)


def _exact_norm2(act: Activation) -> sp.Expr:
    c, a = act.outer, act.inner
    if act.kind == "polynomial":
        return sp.nsimplify(_gaussian_mean_of_polynomial(act.expr**2))
    if act.kind == "exp":
        return c**2 * sp.exp(2 * a**2)
    if act.kind == "erf":
        return 2 * c**2 / sp.pi * sp.asin(2 * a**2 / (1 + 2 * a**2))
    if act.kind in ("relu", "step"):
        return c**2 / 2
    if act.kind in ("sign", "abs"):
        return c**2
    raise AssertionError(act.kind)


# ----------------------------------------------------------------------------------------------
# Quadrature


def _gauss_hermite(act: Activation, degree: int, nodes: int):
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2 * math.pi)
    fz = act(z)
    return hermite_functions(z, degree) @ (w * fz), float(np.sum(w * fz**2))


def _composite_legendre(act: Activation, degree: int, panels: int, half_width: float = 40.0):
    edges = np.linspace(-half_width, half_width, panels + 1)
    edges = np.unique(np.concatenate([edges, [b for b in act.breakpoints if abs(b) < half_width]]))
    x, w = np.polynomial.legendre.leggauss(16)
    left, right = edges[:-1, None], edges[1:, None]
    z = (0.5 * (right - left) * x + 0.5 * (right + left)).ravel()
    weights = (0.5 * (right - left) * w).ravel() * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    fz = act(z)
    return hermite_functions(z, degree) @ (weights * fz), float(np.sum(weights * fz**2))


def _numerical(act: Activation, degree: int, tol: float):
    nodes = min(max(100, 2 * degree + 20), 150)  # 2 * 150 nodes: hermegauss overflows beyond ~340
    c1, n1 = _gauss_hermite(act, degree, nodes)
    c2, n2 = _gauss_hermite(act, degree, 2 * nodes)
    scale = math.sqrt(max(n2, 1e-300))
    err = max(float(np.max(np.abs(c1 - c2))), abs(n1 - n2) / scale)
    if err <= tol * scale and np.all(np.isfinite(c2)):
        return c2, n2, err
    panels = 400
    c1, n1 = _composite_legendre(act, degree, panels)
    c2, n2 = _composite_legendre(act, degree, 2 * panels)
    err = max(float(np.max(np.abs(c1 - c2))), abs(n1 - n2) / math.sqrt(max(n2, 1e-300)))
    if not err <= 1e3 * tol * math.sqrt(max(n2, 1e-300)):
        warnings.warn(
            f"Hermite coefficients of {act.name!r}: quadrature did not converge (estimated error "
            f"{err:.2e}); pass the activation as a sympy expression so that kinks are known.",
            stacklevel=3,
        )
    return c2, n2, err


@dataclasses.dataclass(frozen=True)
class HermiteExpansion:
    r"""A truncated expansion $f \approx \sum_{k\le K} c_k He_k/\sqrt{k!}$.

    **Fields:**

    - ``name``: the function's name.
    - ``coefficients``: $c_0, \dots, c_K$ (float64 array).
    - ``exact``: the same coefficients as sympy expressions, or ``None`` when computed by quadrature.
    - ``norm2``: $\|f\|^2 = E f(G)^2$ (exact when ``exact`` is set).
    - ``quadrature_error``: estimated absolute error of the coefficients (0 when exact).

    ``tail_mass`` $= \|f\|^2 - \sum_{k\le K} c_k^2$ is what the truncation drops (the squared
    $L^2(\gamma)$ distance between $f$ and its truncation).
    """

    name: str
    coefficients: np.ndarray
    exact: tuple | None
    norm2: float
    quadrature_error: float = 0.0

    @property
    def degree(self) -> int:
        return len(self.coefficients) - 1

    @property
    def tail_mass(self) -> float:
        return float(self.norm2 - np.sum(self.coefficients**2))

    def evaluate(self, z) -> np.ndarray:
        """The truncated series at ``z`` (any shape)."""
        return np.tensordot(self.coefficients, hermite_functions(z, self.degree), axes=1)

    def polynomial(self, variable: sp.Symbol = Z) -> sp.Expr:
        """The truncated series as a sympy polynomial (exact coefficients when available)."""
        coeffs = self.exact if self.exact is not None else [sp.Float(c, 17) for c in self.coefficients]
        return sp.expand(sum(c * sp.hermite_prob(k, variable) / sp.sqrt(sp.factorial(k)) for k, c in enumerate(coeffs)))


def hermite_expansion(activation, degree: int, *, tol: float = 1e-11) -> HermiteExpansion:
    r"""The normalised Hermite coefficients $c_0..c_K$ of ``activation`` ($K$ = ``degree``).

    **Arguments:**

    - ``activation``: a name (``reducedflow.symbolic.ACTIVATION_NAMES``), a sympy expression in
      one variable, a callable on NumPy arrays, or an ``Activation``.
    - ``degree``: the truncation degree $K \ge 0$.
    - ``tol``: relative tolerance of the quadrature convergence check (numerical kinds only).

    **Returns:** a ``HermiteExpansion``; exact (sympy) for polynomials, $e^{az}$,
    $\mathrm{erf}(az)$, ReLU, $|z|$, sign and step (times constants), numerical otherwise.

    Raises ``ValueError`` for a negative degree, an unknown name, or a function without finite
    second moment under the standard Gaussian.
    """
    degree = check_integer("degree", degree, minimum=0)
    act = resolve(activation)
    check_second_moment(act)
    if act.exact:
        exact = tuple(_exact_coefficient(act, k) for k in range(degree + 1))
        norm2 = _exact_norm2(act)
        return HermiteExpansion(act.name, np.array([float(c) for c in exact]), exact, float(norm2))
    coeffs, norm2, err = _numerical(act, degree, tol)
    if not math.isfinite(norm2):
        raise ValueError(f"`activation` {act.name!r} has no finite second moment E f(G)^2.")
    return HermiteExpansion(act.name, coeffs, None, norm2, err)
