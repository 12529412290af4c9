r"""The two-layer teacher–student network as a ``ReducedRisk``, derived and compiled.

Student and teacher (inputs $x \sim N(0, I_d)$):

$$f(x) = c\sum_{i=1}^m a_i\,\sigma(\langle w_i, x\rangle),\qquad
  y(x) = \sum_{n=1}^M A_n\,\varphi(\langle w^*_n, x\rangle),$$

with $c = 1/m$ (``normalisation="mean_field"``, Berthier, Montanari & Zhou, arXiv:2303.00055)
or $c = 1$ (``"sum"``, the soft committee machine of Saad & Solla 1995). Order parameters:
$Q_{ij} = \langle w_i, w_j\rangle$, $R_{in} = \langle w_i, w^*_n\rangle$ and the fixed teacher Gram
$T_{nn'}$. The population risk $\mathcal R = \tfrac12E(y - f)^2$ is

$$\mathcal R = \tfrac12\sum_{nn'}A_nA_{n'}K_{\varphi\varphi}(T) - c\sum_{in}a_iA_nK_{\sigma\varphi}(Q_{ii}, R_{in}, T_{nn})
 + \tfrac{c^2}2\sum_{ij}a_ia_jK_{\sigma\sigma}(Q_{ii}, Q_{ij}, Q_{jj}),$$

with the two-point kernels $K_{fg}(c_{11}, c_{12}, c_{22}) = E[f(u)g(v)]$ of
``reducedflow.symbolic.two_point``. Gradient flow (``derive``): first layer at rate $\eta$
($\eta = m$ for mean field, 1 for ``"sum"``), free or on the unit sphere; second layer at rate
$\eta/\varepsilon$, so $\varepsilon \to 0$ is a fast second layer (BMZ's Eqs. (5)-(6):
$\varepsilon\dot a_i = -m\,\partial_{a_i}\mathcal R$).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .._checks import check_in, check_integer, check_positive
from ._activations import check_second_moment, resolve
from .derive import DerivedSystem, ReducedRisk, VectorMotion, derive
from .gaussian import C11, C12, C22, two_point

__all__ = ["two_layer", "two_layer_risk"]

EPSILON = sp.Symbol("epsilon", positive=True)


def two_layer_risk(activation="relu", target=None, *, width: int = 2, teacher_width: int = 1,
                   second_layer: str = "trained", first_layer: str = "sphere", epsilon: float = 1.0,
                   normalisation: str = "mean_field", teacher_second_layer=None, teacher_overlaps=None,
                   second_layer_values=None, degree: int | None = None) -> ReducedRisk:
    """The ``ReducedRisk`` of ``two_layer`` (same arguments), before derivation."""
    width = check_integer("width", width, minimum=1)
    teacher_width = check_integer("teacher_width", teacher_width, minimum=1)
    check_in("second_layer", second_layer, ("trained", "fixed"))
    check_in("first_layer", first_layer, ("sphere", "free"))
    check_in("normalisation", normalisation, ("mean_field", "sum"))
    check_positive("epsilon", epsilon)
    sigma = resolve(activation, "activation")
    phi = resolve(activation if target is None else target, "target")
    check_second_moment(sigma, "activation")
    check_second_moment(phi, "target")

    m, k = width, teacher_width
    t_mat = np.eye(k) if teacher_overlaps is None else np.asarray(teacher_overlaps, dtype=np.float64)
    if t_mat.shape != (k, k) or not np.allclose(t_mat, t_mat.T) or np.min(np.linalg.eigvalsh(t_mat)) < -1e-12 \
            or np.min(np.diag(t_mat)) <= 0:
        raise ValueError(
            f"`teacher_overlaps` must be a symmetric positive semi-definite ({k}, {k}) matrix with a "
            f"positive diagonal (the teacher Gram <w*_n, w*_n'>); got {t_mat.tolist()}."
        )
    amps = np.ones(k) if teacher_second_layer is None else np.asarray(teacher_second_layer, dtype=np.float64)
    if amps.shape != (k,) or not np.all(np.isfinite(amps)):
        raise ValueError(f"`teacher_second_layer` must be {k} finite numbers; got {teacher_second_layer!r}.")

    a = [sp.Symbol(f"a_{i + 1}", real=True) for i in range(m)]
    A = [sp.Symbol(f"A_{n + 1}", real=True) for n in range(k)]
    students = [f"w{i + 1}" for i in range(m)]
    teachers = [f"wstar{n + 1}" for n in range(k)]
    overlaps = {}
    for i in range(m):
        overlaps[(students[i], students[i])] = 1 if first_layer == "sphere" else sp.Symbol(f"Q_{i + 1}{i + 1}", positive=True)
        for j in range(i + 1, m):
            overlaps[(students[i], students[j])] = sp.Symbol(f"Q_{i + 1}{j + 1}", real=True)
        for n in range(k):
            overlaps[(students[i], teachers[n])] = sp.Symbol(f"R_{i + 1}{n + 1}" if k > 1 else f"s_{i + 1}", real=True)
    for n in range(k):
        for n2 in range(n, k):
            overlaps[(teachers[n], teachers[n2])] = sp.nsimplify(t_mat[n, n2]) if float(t_mat[n, n2]).is_integer() else sp.Float(t_mat[n, n2], 17)

    def ov(p, q):
        return sp.sympify(overlaps[(p, q)] if (p, q) in overlaps else overlaps[(q, p)])

    def kernel(f, g, p, q):
        c11, c12, c22 = ov(p, p), ov(p, q), ov(q, q)
        numeric = c11.is_number and c22.is_number
        try:
            k_fg = two_point(f, g, degree=degree, variances=(float(c11), float(c22)) if numeric else None)
        except ValueError as err:
            raise ValueError(
                f"{err} With first_layer='free' the variances are state variables, so a series needs "
                "an activation with a closed form; use first_layer='sphere' with `degree`, or give the "
                "activation as Hermite coefficients (a polynomial)."
            ) from None
        expr = k_fg.expr.subs({C11: c11, C12: c12, C22: c22}, simultaneous=True)
        return expr

    c = sp.Rational(1, m) if normalisation == "mean_field" else sp.Integer(1)
    kss = {}
    risk = sp.Integer(0)
    for n in range(k):
        for n2 in range(k):
            risk += A[n] * A[n2] * kernel(phi, phi, teachers[n], teachers[n2]) / 2
    for i in range(m):
        for n in range(k):
            risk -= c * a[i] * A[n] * kernel(sigma, phi, students[i], teachers[n])
    for i in range(m):
        for j in range(m):
            key = (min(i, j), max(i, j))
            if key not in kss:
                kss[key] = kernel(sigma, sigma, students[key[0]], students[key[1]])
            risk += c**2 * a[i] * a[j] * kss[key] / 2

    rate = sp.Integer(m) if normalisation == "mean_field" else sp.Integer(1)
    vectors = [VectorMotion(s, first_layer, rate) for s in students] + [VectorMotion(t, "fixed") for t in teachers]
    constants = {EPSILON: float(epsilon)}
    constants.update({A[n]: float(amps[n]) for n in range(k)})
    if second_layer == "trained":
        scalars = {ai: rate / EPSILON for ai in a}
    else:
        values = np.ones(m) if second_layer_values is None else np.asarray(second_layer_values, dtype=np.float64)
        if values.shape != (m,):
            raise ValueError(f"`second_layer_values` must be {m} numbers; got {second_layer_values!r}.")
        scalars = {}
        constants.update({ai: float(v) for ai, v in zip(a, values)})
    return ReducedRisk(risk, vectors, overlaps, scalars, constants)


def two_layer(activation="relu", target=None, *, width: int = 2, teacher_width: int = 1,
              second_layer: str = "trained", first_layer: str = "sphere", epsilon: float = 1.0,
              normalisation: str = "mean_field", teacher_second_layer=None, teacher_overlaps=None,
              second_layer_values=None, degree: int | None = None, simplify=True) -> DerivedSystem:
    r"""Derive and compile the population gradient flow of a two-layer teacher–student network.

    **Arguments:**

    - ``activation``: the student's $\sigma$ (name, sympy expression, callable, Hermite coefficients).
    - ``target``: the teacher's $\varphi$ (default: the same as ``activation``).
    - ``width``: student width $m \ge 1$; ``teacher_width``: $M \ge 1$.
    - ``second_layer``: ``"trained"`` (state $a_i$, rate $\eta/\varepsilon$) or ``"fixed"``
      (constants, ``second_layer_values``, default 1).
    - ``first_layer``: ``"sphere"`` ($\|w_i\| = 1$; state $Q_{ij}$, $i<j$, and $R_{in}$, named
      ``s_i`` when $M = 1$) or ``"free"`` (also $Q_{ii}$).
    - ``epsilon``: $\varepsilon > 0$, first-layer rate over second-layer rate (a constant of
      the system, changeable with ``with_constants(epsilon=...)``).
    - ``normalisation``: ``"mean_field"`` ($c = 1/m$, $\eta = m$) or ``"sum"`` ($c = 1$, $\eta = 1$).
    - ``teacher_second_layer``: $A_n$ (default 1; constants ``A_n``); ``teacher_overlaps``: $T$
      (default identity).
    - ``degree``: Hermite/Mehler truncation for activations without closed-form kernels (sphere only).
    - ``simplify``: see ``reducedflow.symbolic.derive``.

    **Returns:** a ``DerivedSystem``; ``equations()`` prints the ODEs.
    """
    reduced = two_layer_risk(activation, target, width=width, teacher_width=teacher_width,
                             second_layer=second_layer, first_layer=first_layer, epsilon=epsilon,
                             normalisation=normalisation, teacher_second_layer=teacher_second_layer,
                             teacher_overlaps=teacher_overlaps, second_layer_values=second_layer_values,
                             degree=degree)
    sigma = resolve(activation).name
    phi = resolve(activation if target is None else target).name
    title = (f"two-layer network: sigma = {sigma}, target = {phi}, m = {width}, M = {teacher_width}, "
             f"first layer {first_layer}, second layer {second_layer}, {normalisation} normalisation")
    return derive(reduced, simplify=simplify, title=title)
