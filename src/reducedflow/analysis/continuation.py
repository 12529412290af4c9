r"""Pseudo-arclength continuation of a branch of fixed points in one parameter, with stability
along the branch and detection of folds, Hopf points and branch points.

The unknowns are $X = (y, p) \in \mathbb R^{n+1}$ with $F(X) = f(y; p) = 0$: generically a curve.
From a point $X_k$ with unit tangent $T_k$ (the null vector of $DF = [f_y\; f_p]$), the
predictor is $X_k + hT_k$ and the corrector solves, by Newton,

$$f(y; p) = 0, \qquad T_k\cdot(X - X_k) = h,$$

whose Jacobian $\begin{bmatrix} f_y & f_p \\ T_k^\top \end{bmatrix}$ stays regular at folds,
where $f_y$ is singular and the branch turns back in $p$ (Keller 1977; Kuznetsov, *Elements of
Applied Bifurcation Theory*, ch. 10). The new tangent solves
$\begin{bmatrix} DF \\ T_k^\top\end{bmatrix} T = \begin{bmatrix}0\\1\end{bmatrix}$ (normalised),
which keeps the direction of travel.

Test functions between consecutive points, each located by Brent's method along the arc:

- **fold** (limit point, a real eigenvalue crosses 0 and the branch turns): the parameter
  component $T_p$ of the tangent changes sign;
- **branch point** (transcritical/pitchfork, a real eigenvalue crosses 0 without a turn):
  $\det f_y$ changes sign while $T_p$ does not;
- **Hopf** (a complex pair crosses the imaginary axis): the bialternate-product test function
  $\psi = \prod_{i<j}(\lambda_i + \lambda_j)$ (real; it vanishes when two eigenvalues sum
  to zero) changes sign, and the pair nearest the axis at the located point is complex (a
  sign change with a real pair $\lambda, -\lambda$ is a neutral saddle, not reported); located
  where the real part of that pair vanishes, reported with its frequency
  $\omega = |\operatorname{Im}\lambda|$ (Kuznetsov 2004, sec. 10.2).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .._checks import check_finite, check_integer, check_positive, check_real
from .._system import AbstractSystem
from ._layout import StateLayout, as_flat, flat_field, layout_of
from .fixed_points import classify


# ----------------------------------------------------------------------------------------------
# The parameter


class _Field(eqx.Module):
    """``where`` for ``eqx.tree_at``: the (possibly dotted) field ``name`` of a system."""

    name: str = eqx.field(static=True)

    def __call__(self, system):
        node = system
        for part in self.name.split("."):
            node = getattr(node, part)
        return node


def parameter_accessor(system: AbstractSystem, parameter) -> Callable:
    """A ``where`` function for ``eqx.tree_at`` selecting ``parameter`` (a field name, dotted
    for nested modules, or a callable ``system -> leaf``); ``ValueError`` naming ``parameter``
    unless it selects a scalar array."""
    if isinstance(parameter, str):
        where = _Field(parameter)
        try:
            value = where(system)
        except AttributeError:
            fields = [f.name for f in dataclasses.fields(system)]
            raise ValueError(
                f"`parameter` must be a field of {type(system).__name__}, one of {fields}; got {parameter!r}."
            ) from None
    elif callable(parameter):
        where = parameter
        value = where(system)
    else:
        raise ValueError(f"`parameter` must be a field name or a callable system -> field; got {parameter!r}.")
    if not eqx.is_array(value) or np.shape(value) != ():
        raise ValueError(
            f"`parameter` must select a scalar array field of {type(system).__name__}; "
            f"{parameter!r} is {type(value).__name__} with shape {np.shape(value)}."
        )
    return where


def with_parameter(system, where, value):
    """``system`` with the field selected by ``where`` set to ``value`` (float64)."""
    return eqx.tree_at(where, system, jnp.asarray(value, jnp.float64))


# ----------------------------------------------------------------------------------------------
# Compiled kernels


def _extended(system, where, layout, t, args, X):
    n = layout.size
    return flat_field(with_parameter(system, where, X[n]), layout, t, X[:n], args)


@eqx.filter_jit
def _extended_jacobian(system, where, layout, t, args, X):
    return jax.jacfwd(lambda X: _extended(system, where, layout, t, args, X))(X)


def _tangent_from(jac_ext, previous):
    """Unit null vector of ``jac_ext`` (n x (n+1)) oriented along ``previous``."""
    a = jnp.concatenate([jac_ext, previous[None, :]], axis=0)
    rhs = jnp.zeros(a.shape[0]).at[-1].set(1.0)
    tangent = jnp.linalg.solve(a, rhs)
    return tangent / jnp.linalg.norm(tangent)


@eqx.filter_jit
def _correct(system, where, layout, t, args, X_prev, T_prev, h, tol, max_iter):
    """Newton on ``[F(X); T_prev . (X - X_prev) - h] = 0`` from ``X_prev + h T_prev``.
    Returns (X, converged, iterations, tangent at X, f_y at X)."""

    def residual(X):
        return jnp.concatenate([_extended(system, where, layout, t, args, X), (T_prev @ (X - X_prev) - h)[None]])

    def body(carry):
        X, _, it = carry
        jac = jax.jacfwd(residual)(X)
        dX = jnp.linalg.solve(jac, -residual(X))
        return X + dX, jnp.max(jnp.abs(dX)) / (1.0 + jnp.max(jnp.abs(X))), it + 1

    def cond(carry):
        X, step, it = carry
        return (step > tol) & (it < max_iter) & jnp.all(jnp.isfinite(X))

    X, step, it = jax.lax.while_loop(cond, body, (X_prev + h * T_prev, jnp.inf, 0))
    F = _extended(system, where, layout, t, args, X)
    jac_ext = jax.jacfwd(lambda X: _extended(system, where, layout, t, args, X))(X)
    ok = (step <= tol) & jnp.all(jnp.isfinite(X)) & jnp.all(jnp.isfinite(jac_ext))
    ok = ok & (jnp.max(jnp.abs(F)) <= 1e3 * tol * (1.0 + jnp.max(jnp.abs(jac_ext)) * (1.0 + jnp.max(jnp.abs(X)))))
    tangent = _tangent_from(jac_ext, T_prev)
    return X, ok, it, tangent, jac_ext[:, : layout.size]


@eqx.filter_jit
def _newton_at_fixed_parameter(system, where, layout, t, args, X, tol, max_iter):
    n = layout.size

    def residual(y):
        return _extended(system, where, layout, t, args, jnp.concatenate([y, X[n:]]))

    def body(carry):
        y, _, it = carry
        dy = jnp.linalg.solve(jax.jacfwd(residual)(y), -residual(y))
        return y + dy, jnp.max(jnp.abs(dy)) / (1.0 + jnp.max(jnp.abs(y))), it + 1

    def cond(carry):
        y, step, it = carry
        return (step > tol) & (it < max_iter) & jnp.all(jnp.isfinite(y))

    y, step, _ = jax.lax.while_loop(cond, body, (X[:n], jnp.inf, 0))
    return jnp.concatenate([y, X[n:]]), step <= tol


# ----------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class BifurcationPoint:
    """A special point on a branch.

    **Attributes:** ``kind`` (``"fold"``, ``"hopf"`` or ``"branch point"``), ``parameter``
    (its value), ``coordinates`` (flat state), ``state`` (state PyTree), ``eigenvalues`` of
    $f_y$ there, ``frequency`` ($|\\operatorname{Im}\\lambda|$ of the critical pair for Hopf
    points, else NaN), ``index`` (it lies between branch points ``index`` and ``index + 1``).
    """

    kind: str
    parameter: float
    coordinates: np.ndarray
    state: object
    eigenvalues: np.ndarray = dataclasses.field(repr=False)
    frequency: float
    index: int


@dataclasses.dataclass(frozen=True)
class Branch:
    """A continued branch of fixed points.

    **Attributes:**

    - ``parameter_name``: the continued field; ``names``: coordinate names.
    - ``parameter``: values along the branch, shape ``(N,)``; ``coordinates``: states, shape
      ``(N, n)``; ``arclength``: cumulative pseudo-arclength, shape ``(N,)``.
    - ``eigenvalues``: of $f_y$ at each point, shape ``(N, n)``, sorted by decreasing real part.
    - ``stable``: all eigenvalues in the open left half-plane; ``unstable_dimension``: number
      with positive real part.
    - ``bifurcations``: the ``BifurcationPoint`` list, in the order met.
    - ``stop_reason``: why continuation ended.
    """

    parameter_name: str
    names: tuple[str, ...]
    parameter: np.ndarray
    coordinates: np.ndarray
    arclength: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    unstable_dimension: np.ndarray
    bifurcations: tuple[BifurcationPoint, ...]
    stop_reason: str
    system: str
    layout: StateLayout = dataclasses.field(repr=False)

    def __len__(self) -> int:
        return self.parameter.shape[0]

    @property
    def folds(self) -> list[BifurcationPoint]:
        return [b for b in self.bifurcations if b.kind == "fold"]

    @property
    def hopf_points(self) -> list[BifurcationPoint]:
        return [b for b in self.bifurcations if b.kind == "hopf"]

    def coordinate(self, name) -> np.ndarray:
        """One coordinate along the branch, by name or index."""
        return self.coordinates[:, self.layout.index(name, "name")]

    def __repr__(self) -> str:
        lines = [
            f"Branch of {self.system} in {self.parameter_name}: {len(self)} points, "
            f"{self.parameter_name} from {self.parameter[0]:.6g} to {self.parameter[-1]:.6g} "
            f"(range [{self.parameter.min():.6g}, {self.parameter.max():.6g}]); stopped: {self.stop_reason}",
        ]
        for b in self.bifurcations:
            state = ", ".join(f"{n}={v:.6g}" for n, v in zip(self.names[:4], b.coordinates[:4]))
            extra = f", frequency {b.frequency:.6g}" if b.kind == "hopf" else ""
            lines.append(f"  {b.kind:<12} at {self.parameter_name} = {b.parameter:.8g} ({state}{extra})")
        return "\n".join(lines)

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimension ``point`` (and ``eigenvalue``): the parameter,
        each coordinate, ``stable``, ``unstable_dimension``, eigenvalues (real and imaginary
        parts), arclength; bifurcations as ``bifurcation_*`` variables on dimension
        ``bifurcation``."""
        import xarray as xr

        data = {self.parameter_name: ("point", self.parameter), "arclength": ("point", self.arclength)}
        for i, name in enumerate(self.names):
            data[name] = ("point", self.coordinates[:, i])
        data.update(
            stable=("point", self.stable),
            unstable_dimension=("point", self.unstable_dimension),
            eigenvalue_real=(("point", "eigenvalue"), self.eigenvalues.real),
            eigenvalue_imag=(("point", "eigenvalue"), self.eigenvalues.imag),
            bifurcation_kind=("bifurcation", np.array([b.kind for b in self.bifurcations], dtype=str)),
            bifurcation_parameter=("bifurcation", np.array([b.parameter for b in self.bifurcations])),
            bifurcation_frequency=("bifurcation", np.array([b.frequency for b in self.bifurcations])),
        )
        return xr.Dataset(data, attrs=dict(system=self.system, parameter=self.parameter_name,
                                           stop_reason=self.stop_reason))

    def plot(self, variable=None, ax=None, **kwargs):
        """The bifurcation diagram (``reducedflow.plot.bifurcation_diagram``)."""
        from ..plot.bifurcation import bifurcation_diagram

        return bifurcation_diagram(self, variable=variable, ax=ax, **kwargs)


# ----------------------------------------------------------------------------------------------
# Continuation


def _spectrum(jac_y: np.ndarray) -> np.ndarray:
    lam = np.linalg.eigvals(jac_y)
    return lam[np.argsort(-lam.real, kind="stable")]


def _bialternate_sign(lam) -> float:
    r"""The sign of $\prod_{i<j}(\lambda_i + \lambda_j)$ (a real number: the factors come in
    conjugate pairs), from the phases of the factors so that it neither overflows nor
    underflows; 0 if a factor vanishes."""
    i, j = np.triu_indices(lam.size, k=1)
    terms = lam[i] + lam[j]
    if terms.size == 0:
        return 1.0
    if np.any(terms == 0):
        return 0.0
    return float(np.sign(np.prod(terms / np.abs(terms)).real))


def _nearest_axis_complex(lam, tol) -> float:
    scale = max(1.0, float(np.max(np.abs(lam))))
    pairs = lam[np.abs(lam.imag) > tol * scale]
    return float(pairs[np.argmin(np.abs(pairs.real))].real) if pairs.size else np.nan


def continuation(
    system: AbstractSystem,
    parameter,
    y0,
    *,
    bounds: tuple[float, float],
    direction: int = 1,
    step: float = 0.02,
    min_step: float = 1e-7,
    max_step: float = 0.1,
    max_points: int = 1000,
    tol: float = 1e-11,
    max_iterations: int = 10,
    t: float = 0.0,
    args=None,
    like=None,
    hyperbolic_tol: float = 1e-7,
) -> Branch:
    r"""Continue the fixed point near ``y0`` of ``system`` in ``parameter`` by
    pseudo-arclength continuation (module docstring), from the parameter's current value
    until it leaves ``bounds``, ``max_points`` are computed, or the step size falls below
    ``min_step``.

    The step $h$ grows by 1.5 after a corrector that converged in at most 3 iterations and
    halves after a failure or when the tangent turns by more than about 25 degrees in one
    step. Stability at each point is from the eigenvalues of $f_y$; folds, Hopf points and
    branch points found between points are refined to the precision of the corrector.

    **Arguments:**

    - ``system``: an ``AbstractSystem``; its current ``parameter`` value is the start.
    - ``parameter``: the name of a scalar array field of the system (dotted for nested
      modules), or a callable ``system -> field`` as for ``eqx.tree_at``.
    - ``y0``: a guess of the fixed point at the start (state PyTree or flat vector), refined
      by Newton at the fixed starting parameter.
    - ``bounds``: ``(low, high)`` of the parameter; continuation stops outside.
    - ``direction``: ``+1`` or ``-1``, the initial direction of the parameter.
    - ``step``, ``min_step``, ``max_step``: initial, smallest and largest arclength step
      (``0 < min_step <= step <= max_step``).
    - ``max_points``: most points on the branch (>= 2).
    - ``tol``: Newton's relative step tolerance; ``max_iterations`` its budget per point.
    - ``t``, ``args``, ``like``: as for ``find_fixed_points``.
    - ``hyperbolic_tol``: tolerance for eigenvalues on the imaginary axis (as ``classify``).

    **Returns:** a ``Branch``.
    """
    where = parameter_accessor(system, parameter)
    parameter_name = parameter if isinstance(parameter, str) else getattr(parameter, "__name__", "parameter")
    layout = layout_of(system, like)
    n = layout.size
    try:
        low, high = (check_real("bounds", b) for b in bounds)
    except TypeError:
        raise ValueError(f"`bounds` must be a pair (low, high); got {bounds!r}.") from None
    p0 = float(where(system))
    if not low < high or not low <= p0 <= high:
        raise ValueError(
            f"`bounds` must be (low, high) with low < high containing the starting {parameter_name} = {p0:g}; "
            f"got {bounds!r}."
        )
    if direction not in (1, -1):
        raise ValueError(f"`direction` must be +1 or -1; got {direction!r}.")
    for name, value in (("step", step), ("min_step", min_step), ("max_step", max_step), ("tol", tol),
                        ("hyperbolic_tol", hyperbolic_tol)):
        check_positive(name, value)
    if not min_step <= step <= max_step:
        raise ValueError(f"`step` must lie in [min_step, max_step] = [{min_step:g}, {max_step:g}]; got {step:g}.")
    max_points = check_integer("max_points", max_points, minimum=2)
    max_iterations = check_integer("max_iterations", max_iterations)
    x0 = as_flat(layout, y0, "y0")
    check_finite("y0", x0)
    t = jnp.float64(check_real("t", t))
    tol_arr = jnp.float64(tol)

    X, ok = _newton_at_fixed_parameter(system, where, layout, t, args, jnp.concatenate([jnp.asarray(x0), jnp.array([p0])]),
                                      tol_arr, 50)
    if not bool(ok):
        raise ValueError(
            f"`y0`: Newton's method found no fixed point near {x0.tolist()} at {parameter_name} = {p0:g}; "
            "give a better guess (e.g. from find_fixed_points)."
        )
    jac_ext = _extended_jacobian(system, where, layout, t, args, X)
    # Initial tangent: null vector of [f_y f_p], oriented along the requested parameter direction.
    seed_direction = jnp.zeros(n + 1).at[n].set(float(direction))
    T = _tangent_from(jac_ext, seed_direction)
    if float(T[n]) * direction < 0:
        T = -T

    def record(X, T, jac_y):
        lam = _spectrum(np.asarray(jac_y))
        return np.asarray(X), np.asarray(T), lam

    points = [record(X, T, jac_ext[:, :n])]
    arclength = [0.0]
    h = float(step)
    stop_reason = f"max_points = {max_points} reached"
    while len(points) < max_points:
        X_new, ok, iterations, T_new, jac_y = _correct(system, where, layout, t, args, X, T, jnp.float64(h), tol_arr,
                                                     max_iterations)
        turn = float(T_new @ T)
        if not bool(ok) or turn < 0.9:
            h /= 2.0
            if h < min_step:
                stop_reason = f"step size fell below min_step = {min_step:g} at {parameter_name} = {float(X[n]):.6g}"
                break
            continue
        p_new = float(X_new[n])
        if not low <= p_new <= high:
            stop_reason = f"{parameter_name} left bounds {tuple(bounds)}"
            break
        X, T = X_new, T_new
        points.append(record(X, T, jac_y))
        arclength.append(arclength[-1] + h)
        if int(iterations) <= 3:
            h = min(1.5 * h, max_step)

    Xs = np.array([p[0] for p in points])
    Ts = np.array([p[1] for p in points])
    lams = np.array([p[2] for p in points])
    bifurcations = _locate_bifurcations(system, where, layout, t, args, Xs, Ts, lams, tol_arr, max_iterations,
                                        hyperbolic_tol, np.array(arclength))
    unstable = np.array([classify(l, hyperbolic_tol)[1] for l in lams], dtype=int)
    scale = np.maximum(1.0, np.max(np.abs(lams), axis=1))
    stable = np.all(lams.real < -hyperbolic_tol * scale[:, None], axis=1)
    return Branch(parameter_name, layout.names, Xs[:, n], Xs[:, :n], np.array(arclength), lams, stable, unstable,
                  tuple(bifurcations), stop_reason, type(system).__name__, layout)


def _locate_bifurcations(system, where, layout, t, args, Xs, Ts, lams, tol, max_iterations, hyperbolic_tol, arclength):
    n = layout.size
    found = []

    def point_at(k, s):
        X, ok, _, T, jac_y = _correct(system, where, layout, t, args, jnp.asarray(Xs[k]), jnp.asarray(Ts[k]),
                                      jnp.float64(s), tol, max_iterations)
        return np.asarray(X), np.asarray(T), _spectrum(np.asarray(jac_y)), bool(ok)

    def refine(k, test):
        h = arclength[k + 1] - arclength[k]

        def g(s):
            X, T, lam, ok = point_at(k, s)
            value = test(X, T, lam) if ok else np.nan
            # The corrector itself is singular exactly at a branch point: that is the root.
            return value if np.isfinite(value) else 0.0

        g_a, g_b = test(Xs[k], Ts[k], lams[k]), test(Xs[k + 1], Ts[k + 1], lams[k + 1])
        try:
            s = scipy.optimize.brentq(g, 0.0, h, xtol=1e-14, rtol=1e-12)
        except ValueError:  # no sign change of the test function: interpolate it linearly
            s = h * g_a / (g_a - g_b) if np.isfinite(g_a - g_b) and g_a != g_b else 0.5 * h
        X, T, lam, ok = point_at(k, s)
        if not ok:  # singular corrector (branch point): interpolate along the chord
            X = Xs[k] + (s / h) * (Xs[k + 1] - Xs[k])
            lam = _spectrum(np.asarray(_extended_jacobian(system, where, layout, t, args, jnp.asarray(X)))[:, :n])
        return X, T, lam, ok

    def signed_det(lam):
        return float(np.prod(lam).real)

    for k in range(len(Xs) - 1):
        lam_a, lam_b = lams[k], lams[k + 1]
        turned = np.sign(Ts[k, n]) * np.sign(Ts[k + 1, n]) < 0
        det_flip = np.sign(signed_det(lam_a)) * np.sign(signed_det(lam_b)) < 0
        if turned:
            X, _, lam, _ = refine(k, lambda X, T, lam: T[n])
            found.append(BifurcationPoint("fold", float(X[n]), X[:n], layout.unravel_numpy(X[:n]), lam, np.nan, k))
        elif det_flip:
            X, _, lam, _ = refine(k, lambda X, T, lam: signed_det(lam))
            found.append(BifurcationPoint("branch point", float(X[n]), X[:n], layout.unravel_numpy(X[:n]), lam, np.nan, k))
        has_pair = (np.isfinite(_nearest_axis_complex(lam_a, hyperbolic_tol))
                    or np.isfinite(_nearest_axis_complex(lam_b, hyperbolic_tol)))
        if has_pair and _bialternate_sign(lam_a) * _bialternate_sign(lam_b) < 0:
            X, _, lam, _ = refine(k, lambda X, T, lam: _nearest_axis_complex(lam, hyperbolic_tol))
            scale = max(1.0, float(np.max(np.abs(lam))))
            pairs = lam[np.abs(lam.imag) > hyperbolic_tol * scale]
            if pairs.size and abs(pairs[np.argmin(np.abs(pairs.real))].real) <= 1e-6 * scale:
                frequency = float(np.abs(pairs[np.argmin(np.abs(pairs.real))].imag))
                found.append(BifurcationPoint("hopf", float(X[n]), X[:n], layout.unravel_numpy(X[:n]), lam, frequency,
                                              k))
    return found
