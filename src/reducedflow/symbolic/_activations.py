"""Activations and targets as one-variable functions: named, sympy expressions, callables or
Hermite coefficient lists, classified into the families whose Gaussian integrals are known in
closed form."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import sympy as sp

#: The variable of every activation expression: $f(z)$.
Z = sp.Symbol("z", real=True)

_NAMED: dict[str, sp.Expr] = {
    "linear": Z,
    "quadratic": Z**2,
    "cubic": Z**3,
    "relu": sp.Max(0, Z),
    "abs": sp.Abs(Z),
    "sign": sp.sign(Z),
    "step": sp.Heaviside(Z),
    "exp": sp.exp(Z),
    "erf": sp.erf(Z),
    "erf_sqrt2": sp.erf(Z / sp.sqrt(2)),
    "tanh": sp.tanh(Z),
    "sigmoid": 1 / (1 + sp.exp(-Z)),
    "softplus": sp.log(1 + sp.exp(Z)),
}

#: Accepted activation names; ``"erf_sqrt2"`` is $\mathrm{erf}(z/\sqrt2)$ of Saad & Solla.
ACTIVATION_NAMES = tuple(_NAMED)

#: Kinds with exact (sympy) Hermite coefficients.
EXACT_KINDS = ("polynomial", "exp", "erf", "relu", "abs", "sign", "step")

_ACCEPTED = (
    f"one of the names {', '.join(repr(n) for n in ACTIVATION_NAMES)}; a sympy expression in one "
    "real variable; a Python callable acting elementwise on NumPy arrays; or a sequence of "
    "normalised Hermite coefficients (c_0, c_1, ...)"
)


@dataclasses.dataclass(frozen=True, eq=False)
class Activation:
    r"""A function $f:\mathbb R\to\mathbb R$ of one Gaussian field, classified for exact work.

    ``kind`` is one of ``EXACT_KINDS`` or ``"numerical"``. For the exact kinds other than
    ``"polynomial"`` the function is $f(z) = c\,b(a z)$ with ``outer`` $= c$, ``inner`` $= a$
    and $b$ the base function of the kind ($e^{z}$, $\mathrm{erf}$, ReLU, $|z|$, sign,
    Heaviside step); ReLU, $|z|$, sign and step are positively homogeneous, so their inner
    scale is folded into ``outer`` and ``inner`` is 1. ``expr`` is the sympy expression in
    ``Z`` (``None`` for a callable), ``numpy`` evaluates $f$ on arrays and ``breakpoints``
    lists known points where $f$ is not smooth (used by quadrature).
    """

    name: str
    kind: str
    expr: sp.Expr | None
    numpy: Callable[[np.ndarray], np.ndarray]
    outer: sp.Expr = sp.Integer(1)
    inner: sp.Expr = sp.Integer(1)
    breakpoints: tuple[float, ...] = ()

    @property
    def jax(self) -> Callable:
        """$f$ as a JAX-traceable function (lambdified to ``jax.numpy``); only for activations
        given by a sympy expression."""
        if self.expr is None:
            raise ValueError(
                f"`activation` {self.name!r} is a Python callable and has no JAX form; give it as a "
                f"sympy expression or a name instead. Accepted: {_ACCEPTED}."
            )
        return sp.lambdify(Z, self.expr, modules="jax")

    @property
    def exact(self) -> bool:
        """Whether the Hermite coefficients are known exactly (sympy)."""
        return self.kind in EXACT_KINDS

    def __call__(self, z):
        return self.numpy(np.asarray(z, dtype=np.float64))

    def scaled(self, sigma) -> "Activation":
        r"""The activation $z \mapsto f(\sigma z)$ ($\sigma > 0$), e.g. to expand a field of
        variance $\sigma^2$ in Hermite polynomials of a standard Gaussian."""
        sigma_sym = sp.nsimplify(sigma) if isinstance(sigma, (int, Fraction)) else sp.sympify(sigma)
        if self.expr is not None:
            return from_expression(self.expr.subs(Z, sigma_sym * Z), name=f"{self.name}(sigma z)")
        fn, s = self.numpy, float(sigma)
        return Activation(
            name=f"{self.name}(sigma z)", kind="numerical", expr=None, numpy=lambda z: fn(s * z),
            breakpoints=tuple(b / s for b in self.breakpoints),
        )

    def atoms(self):
        """This function as a list of ``(coefficient, atom)`` with atoms ``("poly", expr)``,
        ``("exp", a)``, ``("erf", a)``, ``("relu",)``, ``("sign",)`` (for the closed-form
        table of two-point expectations), or ``None`` for a numerical activation."""
        c, a = self.outer, self.inner
        if self.kind == "polynomial":
            return [(sp.Integer(1), ("poly", self.expr))]
        if self.kind in ("exp", "erf"):
            return [(c, (self.kind, a))]
        if self.kind == "relu":
            return [(c, ("relu",))]
        if self.kind == "sign":
            return [(c, ("sign",))]
        if self.kind == "abs":  # |z| = 2 relu(z) - z
            return [(2 * c, ("relu",)), (sp.Integer(1), ("poly", -c * Z))]
        if self.kind == "step":  # H(z) = 1/2 + sign(z)/2
            return [(sp.Integer(1), ("poly", c / 2 + 0 * Z)), (c / 2, ("sign",))]
        return None


def _lambdify_numpy(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    fn = sp.lambdify(Z, expr, modules=["scipy", "numpy"])

    def evaluate(z):
        z = np.asarray(z, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.broadcast_to(np.asarray(fn(z), dtype=np.float64), z.shape).copy()

    return evaluate


def _linear(arg) -> tuple[sp.Expr, sp.Expr] | None:
    """``(a, b)`` if ``arg = a z + b`` with numbers a, b; else None."""
    arg = sp.expand(arg)
    if not arg.is_polynomial(Z) or sp.degree(arg, Z) > 1:
        return None
    a, b = arg.coeff(Z, 1), arg.coeff(Z, 0)
    if not (a.is_number and b.is_number) or a == 0:
        return None
    return a, b


def _breakpoints(expr: sp.Expr) -> tuple[float, ...]:
    points = set()
    for atom in expr.atoms(sp.Heaviside, sp.Abs, sp.sign, sp.Max, sp.Min):
        args = atom.args[:1] if isinstance(atom, (sp.Heaviside, sp.Abs, sp.sign)) else [
            x - y for i, x in enumerate(atom.args) for y in atom.args[i + 1:]
        ]
        for arg in args:
            lin = _linear(arg)
            if lin is not None:
                points.add(float(-lin[1] / lin[0]))
    return tuple(sorted(points))


def from_expression(expr, name: str | None = None) -> Activation:
    """Classify a sympy expression in one real variable (renamed to ``Z``)."""
    expr = sp.sympify(expr)
    free = expr.free_symbols
    if len(free) > 1:
        raise ValueError(
            f"`activation` must be a function of one variable; the sympy expression {expr} has "
            f"the free symbols {sorted(map(str, free))}. Accepted: {_ACCEPTED}."
        )
    if free:
        (var,) = free
        if var != Z:
            expr = expr.subs(var, Z)
    name = name or str(expr)
    numpy = _lambdify_numpy(expr)
    breakpoints = _breakpoints(expr)
    if expr.is_polynomial(Z):
        return Activation(name, "polynomial", sp.expand(expr), numpy)
    c, rest = expr.as_independent(Z, as_Add=False)
    if c.is_number and c != 0:
        kind, outer, inner = None, c, sp.Integer(1)
        if isinstance(rest, sp.exp):
            lin = _linear(rest.args[0])
            if lin is not None:
                kind, outer, inner = "exp", c * sp.exp(lin[1]), lin[0]
        elif isinstance(rest, sp.erf):
            lin = _linear(rest.args[0])
            if lin is not None and lin[1] == 0:
                kind, inner = "erf", lin[0]
        elif isinstance(rest, sp.Max) and len(rest.args) == 2 and 0 in rest.args:
            other = rest.args[0] if rest.args[1] == 0 else rest.args[1]
            lin = _linear(other)
            if lin is not None and lin[1] == 0 and lin[0] > 0:
                kind, outer = "relu", c * lin[0]
        elif isinstance(rest, (sp.Abs, sp.sign, sp.Heaviside)):
            lin = _linear(rest.args[0])
            if lin is not None and lin[1] == 0:
                if isinstance(rest, sp.Abs):
                    kind, outer = "abs", c * abs(lin[0])
                elif isinstance(rest, sp.sign):
                    kind, outer = "sign", c * sp.sign(lin[0])
                elif lin[0] > 0:
                    kind = "step"
        if kind is not None:
            return Activation(name, kind, expr, numpy, outer=outer, inner=inner, breakpoints=breakpoints)
    return Activation(name, "numerical", expr, numpy, breakpoints=breakpoints)


def from_hermite(coefficients: Sequence, name: str | None = None) -> Activation:
    r"""The polynomial $\sum_k c_k\,He_k(z)/\sqrt{k!}$ (a truncated Hermite series)."""
    terms = []
    for k, c in enumerate(coefficients):
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, float, Fraction, np.integer, np.floating, sp.Expr)):
            raise ValueError(
                f"Hermite coefficients must be real numbers; got {c!r} at position {k}. Accepted: {_ACCEPTED}."
            )
        if isinstance(c, float) and not math.isfinite(c):
            raise ValueError(f"Hermite coefficients must be finite; got {c!r} at position {k}.")
        c = sp.Rational(c.numerator, c.denominator) if isinstance(c, Fraction) else sp.sympify(c)
        terms.append(c * sp.hermite_prob(k, Z) / sp.sqrt(sp.factorial(k)))
    expr = sp.expand(sp.Add(*terms))
    act = from_expression(expr, name=name or f"hermite{tuple(coefficients)}")
    return act


def resolve(spec, name: str = "activation") -> Activation:
    """An ``Activation`` from a name, a sympy expression, a callable or Hermite coefficients;
    anything else raises ``ValueError`` listing the accepted choices."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"`{name}` must be {_ACCEPTED}; got the unknown name {spec!r}.")
        return from_expression(_NAMED[spec], name=spec)
    if isinstance(spec, sp.Basic):
        return from_expression(spec)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return from_expression(sp.sympify(spec))
    if isinstance(spec, (list, tuple, np.ndarray)) and len(spec) > 0:
        return from_hermite(list(np.asarray(spec).tolist()) if isinstance(spec, np.ndarray) else list(spec))
    if callable(spec):
        label = getattr(spec, "__name__", repr(spec))

        def evaluate(z, _f=spec):
            z = np.asarray(z, dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = _f(z)
                return np.broadcast_to(np.asarray(out, dtype=np.float64), z.shape).copy()

        return Activation(label, "numerical", None, evaluate)
    raise ValueError(f"`{name}` must be {_ACCEPTED}; got {spec!r}.")


def check_second_moment(act: Activation, name: str = "activation") -> None:
    r"""Raise ``ValueError`` unless $f(z)^2\varphi(z)$ is finite and decays in the tails
    (the cheap part of the test that $E f(G)^2 < \infty$; quadrature checks the rest)."""
    zs = np.array([-38.0, -30.0, -20.0, -12.0, -8.0, -4.0, -1.5, -0.5, 0.5, 1.5, 4.0, 8.0, 12.0, 20.0, 30.0, 38.0])
    values = act(zs)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.exp(2.0 * np.log(np.abs(values) + 1e-300) - zs**2 / 2)
    inner = np.max(q[np.abs(zs) <= 8.0])
    if not np.all(np.isfinite(values)) or not np.all(np.isfinite(q)) or np.max(q[np.abs(zs) >= 38.0]) > 1e-8 * (1.0 + inner):
        raise ValueError(
            f"`{name}` {act.name!r} has no finite second moment E f(G)^2 under a standard Gaussian "
            f"(f(z)^2 exp(-z^2/2) does not decay: values at z = +-38 are {values[0]!r}, {values[-1]!r}). "
            "Accepted: functions with E f(G)^2 < infinity, e.g. polynomials, exp(a z), ReLU, erf, tanh."
        )
