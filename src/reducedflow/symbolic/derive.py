r"""From a population risk in order parameters to gradient-flow ODEs, compiled to JAX.

Setting. Vectors $x_p \in \mathbb R^d$ (first-layer weights of students, fixed teacher
vectors) enter the risk only through their Gram matrix $G_{pq} = \langle x_p, x_q\rangle$
(overlaps), and scalar parameters $\theta$ (second-layer weights) enter directly:
$\mathcal R = \mathcal R(G, \theta)$. Write the risk with one symbol per unordered pair
$\{p, q\}$ and set $D_{pq} = \partial\mathcal R/\partial G_{pq}$ ($p \ne q$),
$D_{pp} = 2\,\partial\mathcal R/\partial G_{pp}$, so that $\nabla_{x_p}\mathcal R = \sum_r D_{pr}x_r$
and $\langle\nabla_{x_p}\mathcal R, x_q\rangle = (DG)_{pq}$. Each vector moves by

- ``"free"``: $\dot x_p = -\eta_p\nabla_{x_p}\mathcal R$;
- ``"sphere"`` ($\|x_p\| = 1$, $G_{pp} = 1$): $\dot x_p = -\eta_p(I - x_px_p^\top)\nabla_{x_p}\mathcal R$;
- ``"fixed"``: $\dot x_p = 0$ (teachers);

hence the closed order-parameter flow

$$\dot G_{pq} = -\eta_p\big[(DG)_{pq} - \mathbb 1_{\rm sphere}(p)\,(DG)_{pp}G_{pq}\big]
              - \eta_q\big[(DG)_{qp} - \mathbb 1_{\rm sphere}(q)\,(DG)_{qq}G_{pq}\big],$$

(the bracket of a fixed vector is absent), e.g. $\dot s_i = -\eta(1 - s_i^2)\partial_{s_i}\mathcal R - \dots$
for an overlap $s_i = \langle u_i, u_*\rangle$ with a fixed unit teacher. Scalars move by
$\dot\theta = -\eta_\theta\,\partial\mathcal R/\partial\theta$. The rates $\eta$ are sympy expressions in
the constants (e.g. $m/\varepsilon$ for a second layer that is $1/\varepsilon$ times faster).

This is the population gradient flow of Berthier, Montanari & Zhou, arXiv:2303.00055 (their
Eqs. (5)-(6) with $\eta_u = m$, $\eta_a = m/\varepsilon$), and the $O(\eta)$ part of the
Saad & Solla (1995) committee ODEs with $\eta_w = 1$.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._checks import as_float_array, check_in, check_integer, check_positive, is_concrete
from .._system import AbstractSystem
from .codegen import to_jax

__all__ = ["VectorMotion", "ReducedRisk", "DerivedSystem", "derive"]

MOTIONS = ("free", "sphere", "fixed")
TIME = sp.Symbol("t", real=True)


@dataclasses.dataclass(frozen=True)
class VectorMotion:
    """How one weight vector moves: ``motion`` in ``("free", "sphere", "fixed")`` at ``rate``
    $\\eta$ (a sympy expression in the constants; ignored for ``"fixed"``)."""

    name: str
    motion: str = "free"
    rate: sp.Expr = sp.Integer(1)

    def __post_init__(self):
        check_in(f"motion of {self.name!r}", self.motion, MOTIONS)


@dataclasses.dataclass(frozen=True)
class ReducedRisk:
    r"""A population risk written in order parameters, with how each parameter moves.

    **Fields:**

    - ``risk``: the sympy expression $\mathcal R(G, \theta)$.
    - ``vectors``: the ``VectorMotion`` of every weight vector.
    - ``overlaps``: ``{(p, q): symbol or number}`` for every unordered pair of vector names
      (``p == q`` for squared norms) that the risk uses; a number (e.g. 1 on the sphere, the
      teacher's norm) is substituted, a symbol is a state variable when p or q moves.
    - ``scalars``: ``{symbol: rate}`` for trained scalars (second-layer weights).
    - ``constants``: ``{symbol: default value}`` for the remaining symbols (epsilon, fixed
      second layers, ...), which become the system's ``constants`` field.
    """

    risk: sp.Expr
    vectors: Sequence[VectorMotion]
    overlaps: Mapping
    scalars: Mapping = dataclasses.field(default_factory=dict)
    constants: Mapping = dataclasses.field(default_factory=dict)


def _tidy(expr: sp.Expr, mode) -> sp.Expr:
    if mode == "full":
        return sp.simplify(expr)
    if mode:
        return sp.factor_terms(sp.powsimp(sp.expand(expr, deep=False, mul=True, multinomial=False)))
    return expr


@dataclasses.dataclass(frozen=True, eq=False)
class _Compiled:
    """The static part of a ``DerivedSystem``: names, sympy expressions and generated code."""

    state_symbols: tuple
    constant_symbols: tuple
    risk_expr: sp.Expr
    rhs_exprs: tuple
    gradient_exprs: tuple
    rates: tuple  # per state component, sympy rate
    rhs: object
    risk: object
    rate_fn: object
    derive_seconds: float
    title: str

    def __hash__(self):
        return id(self)


class DerivedSystem(AbstractSystem):
    r"""A gradient-flow system derived symbolically from a ``ReducedRisk``.

    State: a flat float64 vector; ``state_names`` lists its components (scalars first, then
    the moving overlaps), ``pack``/``unpack`` convert from/to a ``{name: value}`` dict.
    ``constants`` (field, float64 vector, names in ``constant_names``) holds epsilon and the
    other fixed numbers, so changing them never recompiles and ``vmap`` over systems is a sweep.
    Observables: ``"risk"``. ``timescale_ratio()`` is the largest over the smallest rate.
    ``equations()`` prints the derived ODEs (``latex=True`` for LaTeX).
    """

    constants: jax.Array = eqx.field(converter=as_float_array)
    compiled: _Compiled = eqx.field(static=True)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.compiled.state_symbols)

    @property
    def constant_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.compiled.constant_symbols)

    @property
    def risk_expression(self) -> sp.Expr:
        return self.compiled.risk_expr

    @property
    def rhs_expressions(self) -> tuple:
        return self.compiled.rhs_exprs

    @property
    def gradient_expressions(self) -> tuple:
        """$\\partial\\mathcal R/\\partial y_k$ for each state component (sympy)."""
        return self.compiled.gradient_exprs

    def vector_field(self, t, y, args):
        return self.compiled.rhs(y, self.constants)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((len(self.compiled.state_symbols),), jnp.float64)

    def observables(self, t, y):
        return {"risk": self.risk(y)}

    def risk(self, y):
        """The population risk at state ``y``."""
        return self.compiled.risk(y, self.constants)

    def _rates(self):
        return jnp.abs(self.compiled.rate_fn(self.constants))

    def timescale_ratio(self):
        rates = self._rates()
        if rates.shape[0] == 0:
            return 1.0
        return jnp.max(rates) / jnp.min(rates)

    def fast_components(self):
        rates = self._rates()
        if not is_concrete(rates) or rates.shape[0] == 0:
            return None
        rates = np.asarray(rates)
        if np.max(rates) <= np.min(rates):
            return None
        return rates > np.min(rates)

    def pack(self, values: Mapping) -> jax.Array:
        """The state vector from ``{name: value}`` (every name of ``state_names``)."""
        missing = [n for n in self.state_names if n not in values]
        if missing:
            raise ValueError(f"`values` must give every state component; missing {missing}.")
        return jnp.asarray([values[n] for n in self.state_names], jnp.float64)

    def unpack(self, y) -> dict:
        """``{name: value}`` from a state vector (or a trajectory's ``ys``, last axis)."""
        return {n: y[..., k] for k, n in enumerate(self.state_names)}

    def equations(self, latex: bool = False) -> str:
        """The derived ODEs, one per line: pretty text, or LaTeX (``latex=True``)."""
        lines = []
        for sym, rhs in zip(self.compiled.state_symbols, self.compiled.rhs_exprs):
            if latex:
                lines.append(rf"\frac{{d{sp.latex(sym)}}}{{dt}} = {sp.latex(rhs)}")
            else:
                lines.append(sp.pretty(sp.Eq(sp.Derivative(sp.Function(str(sym))(TIME), TIME), rhs), use_unicode=False, wrap_line=False))
        risk = sp.latex(self.compiled.risk_expr) if latex else sp.pretty(self.compiled.risk_expr, use_unicode=False, wrap_line=False)
        head = (rf"\mathcal R = {risk}" if latex else f"{self.compiled.title}\nrisk R =\n{risk}")
        return (" \\\\\n" if latex else "\n\n").join([head] + lines)

    def with_constants(self, **values) -> "DerivedSystem":
        """A copy with some constants changed (by name)."""
        names = self.constant_names
        new = np.array(self.constants)
        for key, value in values.items():
            check_in("constant name", key, names)
            new[names.index(key)] = value
        return DerivedSystem(new, self.compiled)


def derive(reduced: ReducedRisk, *, simplify=True, title: str = "derived gradient flow") -> DerivedSystem:
    r"""Derive and compile the gradient flow of ``reduced`` (see the module docstring).

    **Arguments:**

    - ``reduced``: a ``ReducedRisk``.
    - ``simplify``: ``True`` (cheap: expand products, collect powers and common factors),
      ``"full"`` (``sympy.simplify``, slow for wide networks) or ``False``.
    - ``title``: a one-line description printed by ``equations()``.

    **Returns:** a ``DerivedSystem`` with ``constants`` at their default values.
    """
    start = time.perf_counter()
    check_in("simplify", simplify, (True, False, "full"))
    risk = sp.sympify(reduced.risk)
    motion = {v.name: v for v in reduced.vectors}
    names = list(motion)

    def overlap(p, q):
        for key in ((p, q), (q, p)):
            if key in reduced.overlaps:
                return sp.sympify(reduced.overlaps[key])
        raise ValueError(f"`overlaps` must give the overlap of {p!r} and {q!r} (used by the gradient).")

    gram = {(p, q): overlap(p, q) for p in names for q in names}
    for p in names:
        if motion[p].motion == "sphere" and gram[(p, p)] != 1:
            raise ValueError(f"vector {p!r} moves on the unit sphere, so its overlap with itself must be 1; got {gram[(p, p)]}.")

    # D_pq coefficients of the weight gradient.
    def d_coeff(p, q):
        g = gram[(p, q)]
        if not isinstance(g, sp.Symbol):
            return sp.Integer(0)
        return (2 if p == q else 1) * sp.diff(risk, g)

    dmat = {(p, q): d_coeff(p, q) for p in names for q in names}

    def dg(p, q):
        return sp.Add(*[dmat[(p, r)] * gram[(r, q)] for r in names])

    def bracket(p, q):
        vm = motion[p]
        if vm.motion == "fixed":
            return sp.Integer(0)
        term = dg(p, q)
        if vm.motion == "sphere":
            term -= dg(p, p) * gram[(p, q)]
        return -vm.rate * term

    state, rhs, rates = [], [], []
    for sym, rate in reduced.scalars.items():
        state.append(sym)
        rhs.append(-sp.sympify(rate) * sp.diff(risk, sym))
        rates.append(sp.sympify(rate))
    seen = set()
    for i, p in enumerate(names):
        for q in names[i:]:
            g = gram[(p, q)]
            if not isinstance(g, sp.Symbol) or g in seen:
                continue
            moving = [r for r in {p, q} if motion[r].motion != "fixed"]
            if not moving:
                continue
            seen.add(g)
            state.append(g)
            rhs.append(bracket(p, q) + (bracket(q, p) if p != q else bracket(p, p)))
            rates.append(sp.sympify(motion[moving[0]].rate))
    rhs = [_tidy(e, simplify) for e in rhs]
    constant_symbols = tuple(reduced.constants)
    unknown = (risk.free_symbols | set().union(*[e.free_symbols for e in rhs])) - set(state) - set(constant_symbols)
    if unknown:
        raise ValueError(
            f"the risk uses symbols that are neither state variables nor constants: {sorted(map(str, unknown))}; "
            "list them in `overlaps`, `scalars` or `constants`."
        )
    gradients = tuple(sp.diff(risk, s) for s in state)
    args = [list(state), list(constant_symbols)]
    compiled = _Compiled(
        state_symbols=tuple(state),
        constant_symbols=constant_symbols,
        risk_expr=risk,
        rhs_exprs=tuple(rhs),
        gradient_exprs=gradients,
        rates=tuple(rates),
        rhs=to_jax(args, rhs),
        risk=to_jax(args, risk),
        rate_fn=to_jax([list(constant_symbols)], rates) if rates else (lambda c: jnp.zeros((0,))),
        derive_seconds=time.perf_counter() - start,
        title=title,
    )
    return DerivedSystem(np.array([float(v) for v in reduced.constants.values()], dtype=np.float64), compiled)
