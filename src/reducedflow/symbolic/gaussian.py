r"""Gaussian expectations of activations: two-point kernels $E[f(u)g(v)]$ and the three- and
four-point integrals of the soft-committee-machine ODEs.

Two-point expectations, $(u, v)$ centred jointly Gaussian with covariance
$\begin{bmatrix}c_{11}&c_{12}\\c_{12}&c_{22}\end{bmatrix}$ (sympy symbols ``C11, C12, C22``):

- polynomials (Isserlis/Wick): $E[u^pv^q] = \sum_j \binom pj\binom qj j!\,(p-j-1)!!\,(q-j-1)!!\,
  c_{12}^j c_{11}^{(p-j)/2} c_{22}^{(q-j)/2}$ (sum over $j \equiv p \equiv q$ mod 2);
- $\mathrm{erf}(au)\,\mathrm{erf}(bv)$: $\frac2\pi\arcsin\frac{2ab\,c_{12}}{\sqrt{(1+2a^2c_{11})(1+2b^2c_{22})}}$
  (the arcsine kernel; Williams 1997);
- $\mathrm{relu}(u)\,\mathrm{relu}(v)$: $\frac{1}{2\pi}\big(\sqrt\Delta + c_{12}(\frac\pi2 + \operatorname{atan2}(c_{12}, \sqrt\Delta))\big)$,
  $\Delta = c_{11}c_{22} - c_{12}^2$ (the arc-cosine kernel; Cho & Saul 2009);
- $\mathrm{erf}(au)\,\mathrm{relu}(v)$: $\frac{a\,c_{12}}{\sqrt{\pi(1 + 2a^2c_{11})}}$;
- $\mathrm{sign}(u)\,\mathrm{sign}(v)$: $\frac2\pi\arcsin\frac{c_{12}}{\sqrt{c_{11}c_{22}}}$; $\mathrm{erf}(au)\mathrm{sign}(v)$:
  $\frac2\pi\arcsin\frac{\sqrt2 a c_{12}}{\sqrt{c_{22}(1+2a^2c_{11})}}$; $\mathrm{relu}(u)\mathrm{sign}(v)$: $\frac{c_{12}}{\sqrt{2\pi c_{22}}}$;
- $e^{au}\,g(v)$: $e^{a^2c_{11}/2}\,E[g(v + a c_{12})]$ (Cameron–Martin), with the one-point means
  $E[g(\mu + \sigma G)]$ of polynomials, $e^{b z}$, erf, ReLU and sign in closed form;
- a polynomial against an exactly expandable function: the (finite) Mehler series;
- any other pair: the Mehler series $\sum_{k\le K} f_k g_k \rho^k$, $\rho = c_{12}/\sqrt{c_{11}c_{22}}$,
  with the Hermite coefficients of $z\mapsto f(\sqrt{c_{11}}z)$, $z\mapsto g(\sqrt{c_{22}}z)$, which needs
  numerical variances and a degree $K$.

$|z|$ and the step function are reduced to ReLU/sign plus polynomials. Every result is a sympy
expression and a JAX function.

Committee-machine integrals for $g(z) = \mathrm{erf}(z/\sqrt2)$ (Saad & Solla, PRE 52, 4225
(1995); the conventions of Goldt et al., NeurIPS 2019, arXiv:1906.08632): with $C$ the
covariance of the arguments in order,
$I_2 = E[g g] = \frac2\pi\arcsin\frac{C_{12}}{\sqrt{(1+C_{11})(1+C_{22})}}$,
$J_2 = E[g'g'] = \frac2\pi(1+C_{11}+C_{22}+C_{11}C_{22}-C_{12}^2)^{-1/2}$,
$I_3 = E[g'(z_1)\,z_2\,g(z_3)] = \frac{2}{\pi\sqrt{\Lambda_3}}\frac{C_{23}(1+C_{11})-C_{12}C_{13}}{1+C_{11}}$,
$I_4 = E[g'g'gg] = \frac{4}{\pi^2\sqrt{\Lambda_4}}\arcsin\frac{\Lambda_0}{\sqrt{\Lambda_1\Lambda_2}}$
(see ``committee_i4`` for $\Lambda_{0..4}$).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._checks import check_integer
from ._activations import Activation, Z, check_second_moment, resolve
from .hermite import _exact_coefficient, hermite_expansion
from .codegen import to_jax

__all__ = [
    "C11", "C12", "C22",
    "TwoPointExpectation",
    "two_point",
    "gaussian_expectation",
    "check_covariance",
    "committee_i2", "committee_j2", "committee_i3", "committee_i4",
    "committee_i2_expr", "committee_j2_expr", "committee_i3_expr", "committee_i4_expr",
]

#: Covariance entries of the pair $(u, v)$: variances ``C11``, ``C22`` (positive) and covariance ``C12``.
C11 = sp.Symbol("c11", positive=True)
C22 = sp.Symbol("c22", positive=True)
C12 = sp.Symbol("c12", real=True)


# ----------------------------------------------------------------------------------------------
# Covariance validation


def check_covariance(name: str, covariance, size: int | None = None, *, tol: float = 1e-12) -> np.ndarray:
    """Return ``covariance`` as a float64 array, raising ``ValueError`` unless it is a finite,
    symmetric, positive semi-definite square matrix (of side ``size`` when given)."""
    c = np.asarray(covariance, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or (size is not None and c.shape[0] != size):
        want = f"({size}, {size})" if size is not None else "(n, n)"
        raise ValueError(f"`{name}` must be a covariance matrix of shape {want}; got shape {c.shape}.")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"`{name}` must be finite; got {c}.")
    if not np.allclose(c, c.T, rtol=0, atol=tol * max(1.0, np.max(np.abs(c)))):
        raise ValueError(f"`{name}` must be symmetric; got {c}.")
    lowest = np.min(np.linalg.eigvalsh(c))
    if lowest < -tol * max(1.0, np.max(np.abs(np.diag(c)))):
        raise ValueError(
            f"`{name}` must be positive semi-definite (all eigenvalues >= 0); got the smallest "
            f"eigenvalue {lowest:.3e} for {c.tolist()}."
        )
    return c


# ----------------------------------------------------------------------------------------------
# Atom table


def _wick_monomial(p: int, q: int, c11, c12, c22) -> sp.Expr:
    total = sp.Integer(0)
    for j in range(min(p, q) + 1):
        if (p - j) % 2 or (q - j) % 2:
            continue
        total += (sp.binomial(p, j) * sp.binomial(q, j) * sp.factorial(j) * sp.factorial2(p - j - 1)
                  * sp.factorial2(q - j - 1) * c12**j * c11 ** sp.Rational(p - j, 2) * c22 ** sp.Rational(q - j, 2))
    return total


def _wick(p_expr, q_expr, c11, c12, c22) -> sp.Expr:
    pp, qq = sp.Poly(p_expr, Z), sp.Poly(q_expr, Z)
    return sp.Add(*[
        a * b * _wick_monomial(i, j, c11, c12, c22) for (i,), a in pp.terms() for (j,), b in qq.terms()
    ])


def _one_point_mean(atom, mu, var) -> sp.Expr:
    """$E[b(\\mu + \\sigma G)]$ for an atom $b$ with $\\sigma^2$ = ``var``."""
    kind = atom[0]
    sigma = sp.sqrt(var)
    if kind == "poly":
        poly = sp.Poly(sp.expand(atom[1].subs(Z, mu + sigma * Z)), Z)
        return sp.Add(*[c * (sp.factorial2(n - 1) if n % 2 == 0 else 0) for (n,), c in poly.terms()])
    if kind == "exp":
        return sp.exp(atom[1] * mu + atom[1] ** 2 * var / 2)
    if kind == "erf":
        b = atom[1]
        return sp.erf(b * mu / sp.sqrt(1 + 2 * b**2 * var))
    if kind == "relu":
        return mu * (1 + sp.erf(mu / sp.sqrt(2 * var))) / 2 + sigma / sp.sqrt(2 * sp.pi) * sp.exp(-mu**2 / (2 * var))
    if kind == "sign":
        return sp.erf(mu / sp.sqrt(2 * var))
    raise AssertionError(kind)


def _scaled_coefficients(atom, std, degree):
    """Exact Hermite coefficients of $z \\mapsto b(\\mathrm{std}\\,z)$ for an atom $b$."""
    kind = atom[0]
    if kind == "poly":
        act = Activation("p", "polynomial", sp.expand(atom[1].subs(Z, std * Z)), None)
    elif kind in ("exp", "erf"):
        act = Activation(kind, kind, None, None, inner=atom[1] * std)
    elif kind == "relu":
        act = Activation(kind, kind, None, None, outer=std)
    else:
        act = Activation(kind, kind, None, None)
    return [_exact_coefficient(act, k) for k in range(degree + 1)]


def _atom_pair(fa, ga, c11, c12, c22) -> sp.Expr | None:
    """Closed form of $E[f_a(u) g_a(v)]$ for two atoms, or None."""
    kf, kg = fa[0], ga[0]
    if kf == "poly" and kg == "poly":
        return _wick(fa[1], ga[1], c11, c12, c22)
    if kf == "exp":
        a = fa[1]
        return sp.exp(a**2 * c11 / 2) * _one_point_mean(ga, a * c12, c22)
    if kg == "exp":
        return _atom_pair(ga, fa, c22, c12, c11)
    if kf == "erf" and kg == "erf":
        a, b = fa[1], ga[1]
        return 2 / sp.pi * sp.asin(2 * a * b * c12 / sp.sqrt((1 + 2 * a**2 * c11) * (1 + 2 * b**2 * c22)))
    if kf == "erf" and kg == "relu":
        a = fa[1]
        return a * c12 / sp.sqrt(sp.pi * (1 + 2 * a**2 * c11))
    if kf == "relu" and kg == "relu":
        delta = sp.sqrt(sp.Max(c11 * c22 - c12**2, 0))
        return (delta + c12 * (sp.pi / 2 + sp.atan2(c12, delta))) / (2 * sp.pi)
    if kf == "sign" and kg == "sign":
        return 2 / sp.pi * sp.asin(c12 / sp.sqrt(c11 * c22))
    if kf == "erf" and kg == "sign":
        a = fa[1]
        return 2 / sp.pi * sp.asin(sp.sqrt(2) * a * c12 / sp.sqrt(c22 * (1 + 2 * a**2 * c11)))
    if kf == "relu" and kg == "sign":
        return c12 / sp.sqrt(2 * sp.pi * c22)
    if kf == "poly" or kg == "poly":  # finite Mehler series, exact coefficients
        poly_atom, other, cp, co = (fa, ga, c11, c22) if kf == "poly" else (ga, fa, c22, c11)
        degree = sp.degree(poly_atom[1], Z)
        sp_, so = sp.sqrt(cp), sp.sqrt(co)
        pk = _scaled_coefficients(poly_atom, sp_, degree)
        ok = _scaled_coefficients(other, so, degree)
        return sp.Add(*[pk[k] * ok[k] * (c12 / (sp_ * so)) ** k for k in range(degree + 1)])
    if kf in ("relu", "sign") and kg == "erf" or (kf, kg) == ("sign", "relu"):
        return _atom_pair(ga, fa, c22, c12, c11)
    return None


# ----------------------------------------------------------------------------------------------
# Two-point expectations


@dataclasses.dataclass(frozen=True, eq=False)
class TwoPointExpectation:
    r"""$E[f(u)g(v)]$ as a function of the covariance $(c_{11}, c_{12}, c_{22})$ of $(u, v)$.

    **Fields:**

    - ``expr``: the sympy expression in ``C11, C12, C22`` (with numbers in place of the
      variances when the pair needed the Mehler series at fixed variances).
    - ``exact``: ``True`` for a closed form, ``False`` for a truncated Mehler series.
    - ``degree``: the Mehler truncation degree (``None`` when exact).
    - ``truncation_bound``: for a series, $|\rho|^{K+1}\sqrt{\mathrm{tail}_f\,\mathrm{tail}_g}$ at $|\rho| = 1$,
      a bound on the dropped terms (Cauchy–Schwarz).

    ``function(c11, c12, c22)`` is the jitted JAX version; calling the object with a 2x2
    covariance matrix evaluates it (after checking the matrix is PSD).
    """

    f: Activation
    g: Activation
    expr: sp.Expr
    exact: bool
    degree: int | None = None
    truncation_bound: float = 0.0

    @property
    def function(self) -> Callable:
        return _jax_function(self.expr)

    def __call__(self, covariance) -> float:
        c = check_covariance("covariance", covariance, 2)
        return float(self.function(c[0, 0], c[0, 1], c[1, 1]))


_JAX_CACHE: dict = {}


def _jax_function(expr):
    key = sp.srepr(expr)
    if key not in _JAX_CACHE:
        _JAX_CACHE[key] = jax.jit(to_jax([C11, C12, C22], expr))
    return _JAX_CACHE[key]


def two_point(f, g, *, degree: int | None = None, variances=None) -> TwoPointExpectation:
    r"""The Gaussian expectation $E[f(u)g(v)]$, closed form when known, else a Mehler series.

    **Arguments:**

    - ``f``, ``g``: activations (names, sympy expressions, callables, ``Activation``).
    - ``degree``: Mehler truncation degree, required when no closed form exists.
    - ``variances``: ``(c11, c22)`` as numbers, required for the Mehler series (its
      coefficients are those of $f(\sqrt{c_{11}}\,\cdot)$, computed at these variances).

    **Returns:** a ``TwoPointExpectation``.
    """
    fa, ga = resolve(f, "f"), resolve(g, "g")
    check_second_moment(fa, "f")
    check_second_moment(ga, "g")
    f_atoms, g_atoms = fa.atoms(), ga.atoms()
    if f_atoms is not None and g_atoms is not None:
        terms = []
        for cf, af in f_atoms:
            for cg, ag in g_atoms:
                value = _atom_pair(af, ag, C11, C12, C22)
                if value is None:
                    break
                terms.append(cf * cg * value)
            else:
                continue
            break
        else:
            return TwoPointExpectation(fa, ga, sp.Add(*terms), True)
    if degree is None or variances is None:
        raise ValueError(
            f"E[f(u) g(v)] for f = {fa.name!r}, g = {ga.name!r} has no closed form here; pass "
            "`degree` (the Mehler truncation degree, an integer >= 0) and `variances` = (c11, c22) "
            "(positive numbers) to use the Hermite/Mehler series. Closed forms exist for pairs of "
            "polynomials, exp, erf, ReLU, |z|, sign and step."
        )
    degree = check_integer("degree", degree, minimum=0)
    v1, v2 = (float(v) for v in variances)
    if not (v1 > 0 and v2 > 0 and math.isfinite(v1) and math.isfinite(v2)):
        raise ValueError(f"`variances` must be two finite positive numbers; got {variances!r}.")
    ef = hermite_expansion(fa.scaled(math.sqrt(v1)), degree)
    eg = hermite_expansion(ga.scaled(math.sqrt(v2)), degree)
    rho = C12 / sp.sqrt(sp.Float(v1, 17) * sp.Float(v2, 17))
    products = ef.coefficients * eg.coefficients
    # Drop products at the level of quadrature noise (e.g. the even coefficients of an odd f).
    noise = 10 * (ef.quadrature_error * math.sqrt(eg.norm2) + eg.quadrature_error * math.sqrt(ef.norm2)) + 1e-15
    expr = sp.Add(*[sp.Float(p, 17) * rho**k for k, p in enumerate(products) if abs(p) > noise])
    bound = math.sqrt(max(ef.tail_mass, 0.0) * max(eg.tail_mass, 0.0))
    return TwoPointExpectation(fa, ga, expr, False, degree, bound)


def gaussian_expectation(f, g, covariance, *, degree: int | None = None) -> float:
    r"""$E[f(u)g(v)]$ for $(u, v) \sim N(0, \Sigma)$ with the 2x2 ``covariance`` $\Sigma$ (PSD).

    Closed form when known; otherwise the Mehler series to ``degree`` at the given variances.
    """
    c = check_covariance("covariance", covariance, 2)
    if c[0, 0] <= 0 or c[1, 1] <= 0:
        raise ValueError(f"`covariance` must have positive variances; got {c.tolist()}.")
    return two_point(f, g, degree=degree, variances=(c[0, 0], c[1, 1]))(c)


# ----------------------------------------------------------------------------------------------
# Committee-machine integrals for g(z) = erf(z / sqrt 2); one formula, two back ends.


class _SympyOps:
    asin, sqrt, pi = staticmethod(sp.asin), staticmethod(sp.sqrt), sp.pi


class _JaxOps:
    pi = math.pi

    @staticmethod
    def asin(x):
        return jnp.arcsin(jnp.clip(x, -1.0, 1.0))

    @staticmethod
    def sqrt(x):
        return jnp.sqrt(x)


def _i2(c, ops):
    return 2 / ops.pi * ops.asin(c[0][1] / ops.sqrt((1 + c[0][0]) * (1 + c[1][1])))


def _j2(c, ops):
    return 2 / ops.pi / ops.sqrt(1 + c[0][0] + c[1][1] + c[0][0] * c[1][1] - c[0][1] ** 2)


def _i3(c, ops):
    lam3 = (1 + c[0][0]) * (1 + c[2][2]) - c[0][2] ** 2
    return 2 / ops.pi / ops.sqrt(lam3) * (c[1][2] * (1 + c[0][0]) - c[0][1] * c[0][2]) / (1 + c[0][0])


def _i4(c, ops):
    lam4 = (1 + c[0][0]) * (1 + c[1][1]) - c[0][1] ** 2
    lam0 = (lam4 * c[2][3] - c[1][2] * c[1][3] * (1 + c[0][0]) - c[0][2] * c[0][3] * (1 + c[1][1])
            + c[0][1] * c[0][2] * c[1][3] + c[0][1] * c[0][3] * c[1][2])
    lam1 = lam4 * (1 + c[2][2]) - c[1][2] ** 2 * (1 + c[0][0]) - c[0][2] ** 2 * (1 + c[1][1]) + 2 * c[0][1] * c[0][2] * c[1][2]
    lam2 = lam4 * (1 + c[3][3]) - c[1][3] ** 2 * (1 + c[0][0]) - c[0][3] ** 2 * (1 + c[1][1]) + 2 * c[0][1] * c[0][3] * c[1][3]
    return 4 / ops.pi**2 / ops.sqrt(lam4) * ops.asin(lam0 / ops.sqrt(lam1 * lam2))


def _as_rows(c):
    return [[c[..., i, j] for j in range(c.shape[-1])] for i in range(c.shape[-2])]


def _committee_jax(formula, size):
    def integral(covariance):
        c = jnp.asarray(covariance, jnp.float64)
        if c.shape[-2:] != (size, size):
            raise ValueError(f"`covariance` must have shape (..., {size}, {size}); got {c.shape}.")
        return formula(_as_rows(c), _JaxOps)
    return integral


def _committee_expr(formula, size):
    def integral(covariance):
        c = sp.Matrix(covariance)
        if c.shape != (size, size):
            raise ValueError(f"`covariance` must be a {size}x{size} sympy matrix; got shape {c.shape}.")
        return formula([[c[i, j] for j in range(size)] for i in range(size)], _SympyOps)
    return integral


committee_i2 = _committee_jax(_i2, 2)
committee_j2 = _committee_jax(_j2, 2)
committee_i3 = _committee_jax(_i3, 3)
committee_i4 = _committee_jax(_i4, 4)
committee_i2_expr = _committee_expr(_i2, 2)
committee_j2_expr = _committee_expr(_j2, 2)
committee_i3_expr = _committee_expr(_i3, 3)
committee_i4_expr = _committee_expr(_i4, 4)

for _fn, _doc in [
    (committee_i2, "I_2(a, b) = E[g(z_a) g(z_b)] = (2/pi) asin(C12 / sqrt((1 + C11)(1 + C22))) (JAX)."),
    (committee_j2, "J_2(a, b) = E[g'(z_a) g'(z_b)] = (2/pi) / sqrt(1 + C11 + C22 + C11 C22 - C12^2) (JAX)."),
    (committee_i3, "I_3(a, b, c) = E[g'(z_a) z_b g(z_c)] for g = erf(z/sqrt2) (JAX; covariance (..., 3, 3))."),
    (committee_i4, "I_4(a, b, c, d) = E[g'(z_a) g'(z_b) g(z_c) g(z_d)] for g = erf(z/sqrt2) (JAX; (..., 4, 4))."),
    (committee_i2_expr, "Sympy form of ``committee_i2`` (argument: a 2x2 sympy Matrix)."),
    (committee_j2_expr, "Sympy form of ``committee_j2`` (argument: a 2x2 sympy Matrix)."),
    (committee_i3_expr, "Sympy form of ``committee_i3`` (argument: a 3x3 sympy Matrix)."),
    (committee_i4_expr, "Sympy form of ``committee_i4`` (argument: a 4x4 sympy Matrix)."),
]:
    _fn.__doc__ = _doc
